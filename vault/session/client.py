"""Cached unlock: an agent process keeps the unlocked identity in memory for a while.

`keyvault unlock` calls `start` once after the passphrase opened the identity. Later commands
hand the sealed vault to the agent (`Session.decrypt`) and ask for the passphrase only when no
agent answers. The identity never leaves the agent, as with ssh-agent: clients get the
plaintext of the file they sent, never the key. The agent (vault/agent.py) listens on a Unix
socket in a folder only we can enter, answers only our own uid, and exits at the TTL, after
an idle period, on `lock`, or on SIGTERM. Nothing secret is ever written to disk, argv or the
environment. docs/sessions.md gives the reasons.

This module is imported on the hot path of every command, so it imports only cheap modules:
no cryptography at all (decryption happens in the agent), `_socket` rather than `socket`, and
subprocess only inside `start`.
"""

# os.path, not pathlib: importing pathlib costs ~5 ms on every command
# ruff: noqa: PTH100, PTH102, PTH118, PTH120
from __future__ import annotations

# the C module, not `socket`: the wrapper's enums and selectors cost ~2 ms on every command
import _socket as socket
import json
import os
import stat
import sys

from vault.errors import InvalidValue, SessionError
from vault.session.wire import exchange, refusal

TYPE_CHECKING = False
if TYPE_CHECKING:
    StrPath = str | os.PathLike[str]

IDENTITY_PREFIX = "AGE-SECRET-KEY-1"
AGENT_MODULE = "vault.session.agent"
START_TIMEOUT = 5.0  # seconds for the agent to read its settings and bind; ~60 ms here
MAX_SECONDS = 30 * 86400
# sun_path is 108 bytes on Linux and 104 on macOS; stay below both
MAX_SOCKET_PATH = 100
# settings the agent needs; everything else (KEYVAULT_*, OPENAI_*, tokens) stays behind
AGENT_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT")
# what a failed agent's exit status means (vault/agent.py sets them)
AGENT_FAILURES = {
    2: "the session agent refused its settings",
    3: "cannot create the session socket",
}
DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class SessionInfo:
    """What `status` reports: wall-clock deadlines (epoch seconds) and the agent's pid."""

    __slots__ = ("expires_at", "idle_expires_at", "pid")

    def __init__(self, expires_at: float, idle_expires_at: float | None, pid: int) -> None:
        self.expires_at = expires_at
        self.idle_expires_at = idle_expires_at
        self.pid = pid

    def __repr__(self) -> str:
        return (
            f"SessionInfo(expires_at={self.expires_at!r}, "
            f"idle_expires_at={self.idle_expires_at!r}, pid={self.pid!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionInfo):
            return NotImplemented
        mine = (self.expires_at, self.idle_expires_at, self.pid)
        return mine == (other.expires_at, other.idle_expires_at, other.pid)

    def __hash__(self) -> int:
        return hash((self.expires_at, self.idle_expires_at, self.pid))


def parse_duration(text: str) -> float:
    """Seconds in `8h`, `30m`, `90s`, `1h30m`, `2d`: units d/h/m/s, each once, largest first."""
    problem = InvalidValue(
        f"invalid duration {text!r}", hint="use a number with a unit: 8h, 30m, 90s, 1h30m, 2d"
    )
    units = list(DURATION_UNITS)
    seconds, digits = 0, ""
    for char in text.strip().lower():
        if char in "0123456789":
            digits += char
        elif char in units and digits:
            units = units[units.index(char) + 1 :]
            seconds += int(digits) * DURATION_UNITS[char]
            digits = ""
        else:
            raise problem
    if digits or not seconds:
        raise problem
    if seconds > MAX_SECONDS:
        raise InvalidValue(f"duration {text!r} is longer than 30 days")
    return float(seconds)


def start(
    identity: str,
    *,
    vault_home: StrPath,
    ttl: float,
    idle: float | None = None,
    runtime_dir: StrPath | None = None,
) -> SessionInfo:
    """Hand `identity` to a new agent for `ttl` seconds (ending early after `idle` unused).

    Replaces an agent already serving this vault. Raises SessionError when sessions are not
    possible here (no Unix sockets, unsafe runtime folder, agent failed to start).
    """
    if not supported():
        raise SessionError(
            "cached sessions need unix domain sockets, which this platform lacks",
            hint="set KEYVAULT_PASSPHRASE_FILE or KEYVAULT_IDENTITY_FILE instead",
        )
    if not _is_identity(identity):
        raise InvalidValue("the session identity is not an age secret key")
    for seconds in (ttl, idle):
        if seconds is not None and not 0 < seconds <= MAX_SECONDS:
            raise InvalidValue("session durations must be between 1 second and 30 days")
    path = socket_path(vault_home, runtime_dir, create=True)
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise SessionError(f"{path}: too long for a unix socket", hint="use a shorter folder")
    exchange(path, {"op": "lock"})  # the old agent removes its socket before it answers
    settings = json.dumps({"socket": path, "ttl": ttl, "idle": idle})
    _spawn_agent(f"{identity}\n{settings}\n".encode())
    reply = exchange(path, {"op": "status"})
    info = _info(reply[0] if reply else None)
    if info is None:
        raise SessionError("the session agent started but does not answer")
    return info


class Session:
    """The unlocked session of one vault home, as `vault.store.keyvault.Unlocker` uses it."""

    __slots__ = ("runtime_dir", "vault_home")

    def __init__(self, vault_home: StrPath, runtime_dir: StrPath | None = None) -> None:
        self.vault_home = vault_home
        self.runtime_dir = runtime_dir

    def decrypt(self, sealed: bytes) -> bytes | None:
        """The plaintext of the age file `sealed`, decrypted by the agent with its identity.

        None when no agent answers (none running, expired, an unsafe folder, an older agent),
        so the caller falls back to the passphrase. A file the agent could not open raises
        the error `vault.age.decrypt` would have raised here (a damaged file, exit 4; another
        identity's file, NoMatchingIdentity).
        """
        reply = self._ask("decrypt", sealed)
        if reply is None:
            return None
        answer, plain = reply
        if answer.get("error") == "refused":
            raise refusal(answer)
        return plain if "pid" in answer else None

    def recipient(self) -> str | None:
        """The public key (age1…) of the session's identity, or None without a session."""
        reply = self._ask("status")
        found = reply[0].get("recipient") if reply else None
        return found if isinstance(found, str) else None

    def _ask(self, op: str, body: bytes = b"") -> tuple[dict[str, object], bytes] | None:
        """The agent's reply, or None: no agent, or an unsafe folder (never raises, so the
        caller can always fall back to the passphrase)."""
        try:
            path = socket_path(self.vault_home, self.runtime_dir)
        except SessionError:
            return None
        return exchange(path, {"op": op}, body)


def status(*, vault_home: StrPath, runtime_dir: StrPath | None = None) -> SessionInfo | None:
    """The running session's deadlines, or None; raises SessionError on an unsafe folder."""
    reply = exchange(socket_path(vault_home, runtime_dir), {"op": "status"})
    return _info(reply[0] if reply else None)


def end(*, vault_home: StrPath, runtime_dir: StrPath | None = None) -> bool:
    """Tell the agent to wipe the identity and exit; True when one was running."""
    reply = exchange(socket_path(vault_home, runtime_dir), {"op": "lock"})
    return bool(reply and reply[0].get("locked") is True)


def socket_path(
    vault_home: StrPath, runtime_dir: StrPath | None = None, *, create: bool = False
) -> str:
    """Where the agent for `vault_home` listens: one socket per vault home.

    Returns "" when sessions are unsupported or the folder does not exist yet (and not
    `create`); connecting to "" simply fails. Raises SessionError when the folder is unsafe.
    """
    if not supported():
        return ""
    folder = os.fspath(runtime_dir) if runtime_dir is not None else default_runtime_dir()
    if not _private_folder(folder, create=create):
        return ""
    return _socket_in(folder, vault_home)


def watched_socket_path(vault_home: StrPath, runtime_dir: StrPath | None = None) -> str:
    """Where the agent for `vault_home` listens or would listen, with no check of the folder.

    For the directory hook, whose shell code only tests whether a socket is there to notice
    `unlock`, `lock` and expiry; every use of the socket goes through `socket_path`. "" when
    sessions are unsupported.
    """
    if not supported():
        return ""
    folder = os.fspath(runtime_dir) if runtime_dir is not None else default_runtime_dir()
    return _socket_in(folder, vault_home)


def _socket_in(folder: str, vault_home: StrPath) -> str:
    home = os.path.realpath(os.fspath(vault_home)).encode("utf-8", "surrogateescape")
    return os.path.join(folder, f"agent-{_digest(home)[:16]}.sock")


def _digest(data: bytes) -> str:
    """A name for the vault home's socket (not a security boundary: the folder is private).

    BLAKE2b from CPython's built-in `_blake2`: `hashlib` would load OpenSSL's hashlib (~2 ms)
    and cryptography's first digest initialises OpenSSL's EVP tables (~0.8 ms), both on the
    hot path of every command.
    """
    try:
        from _blake2 import blake2b  # noqa: PLC0415
    except ImportError:  # pragma: no cover - CPython always has it; other interpreters may not
        from hashlib import blake2b  # noqa: PLC0415

    return blake2b(data, digest_size=16).hexdigest()


def supported() -> bool:
    """True where sessions work: Unix sockets and uids (not Windows)."""
    return hasattr(socket, "AF_UNIX") and hasattr(os, "geteuid")


def default_runtime_dir() -> str:
    """$XDG_RUNTIME_DIR/keyvault when that is our private tmpfs, else /tmp/keyvault-<uid>."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and _is_private(xdg):
        return os.path.join(xdg, "keyvault")
    return f"/tmp/keyvault-{os.geteuid()}"  # noqa: S108  # verified private before any use


def _private_folder(folder: str, *, create: bool) -> bool:
    """True when `folder` is a real directory of ours that nobody else may enter.

    /tmp is shared: someone may have created our folder first, or left a symlink there.
    """
    if create:
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError as error:
            raise SessionError(f"cannot create {folder}: {error.strerror}") from None
    try:
        private = _is_private(folder)
    except FileNotFoundError:
        return False
    if not private:
        raise SessionError(
            f"{folder} is not a private folder",
            hint="it must be a real directory owned by you with mode 0700; remove it",
        )
    return True


def _is_private(folder: str) -> bool:
    info = os.lstat(folder)
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )


def _is_identity(text: str) -> bool:
    # the agent embeds it in JSON unescaped: ASCII letters, digits and dashes only
    return (
        text.startswith(IDENTITY_PREFIX)
        and len(text) < 200
        and text.isascii()
        and text.replace("-", "").isalnum()
    )


def _info(answer: dict[str, object] | None) -> SessionInfo | None:
    if answer is None:
        return None
    expires, idle, pid = answer.get("expires_at"), answer.get("idle_expires_at"), answer.get("pid")
    if not isinstance(expires, float | int) or not isinstance(pid, int):
        return None
    return SessionInfo(float(expires), float(idle) if isinstance(idle, float | int) else None, pid)


def _spawn_agent(settings: bytes) -> None:
    """Run the agent detached; its first process exits once the socket is listening.

    The agent forks once more so it is not our child: no zombie and no ResourceWarning in a
    long-lived caller. stdout/stderr go to /dev/null so `$(keyvault unlock)` does not hang.
    """
    import subprocess  # noqa: PLC0415  # only `unlock` pays for it

    if not sys.executable:
        raise SessionError("cannot find the python interpreter to run the session agent")
    env = {name: os.environ[name] for name in AGENT_ENV_KEEP if name in os.environ}
    # the folder that holds the `vault` package (this file is vault/session/client.py)
    package_root = os.path.abspath(__file__)
    for _ in range(3):
        package_root = os.path.dirname(package_root)
    env["PYTHONPATH"] = package_root
    process = subprocess.Popen(
        [sys.executable, "-P", "-m", AGENT_MODULE],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        start_new_session=True,
        cwd="/",
        env=env,
    )
    try:
        process.communicate(settings, timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise SessionError("the session agent did not start in time") from None
    if process.returncode != 0:
        raise SessionError(AGENT_FAILURES.get(process.returncode, "the session agent failed"))
