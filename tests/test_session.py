"""Cached unlock sessions with real agent processes, real sockets and, as root, a real user.

The agent decrypts for its own uid and never hands out its identity; every test identity is a
fresh random one, so finding its text anywhere is a leak. Every agent a test starts is killed
by the `begin` fixture's finalizer, so nothing leaks between tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cryptography
import pytest

from tests.helpers import REPO
from vault import age
from vault.errors import (
    AgeHeaderError,
    AgeHeaderMacError,
    AgePayloadError,
    InvalidValue,
    NoMatchingIdentity,
    SessionError,
)
from vault.session import client as session
from vault.session import runtime, wire

pytestmark = pytest.mark.skipif(not runtime.supported(), reason="needs unix domain sockets")
pwd = pytest.importorskip("pwd")

OTHER_USER = "kvtest2"
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to act as another user"
)

Begin = Callable[..., session.SessionInfo]


def make_identity() -> str:
    """A fresh random age identity: its text anywhere outside the agent is a leak."""
    return age.X25519Identity.generate().to_string()


def recipient_of(identity: str) -> str:
    return age.X25519Identity.parse(identity).recipient().to_string()


def sealed_to(identity: str, message: bytes) -> bytes:
    return age.encrypt(message, [age.X25519Identity.parse(identity).recipient()])


def opens(identity: str, **where: Path) -> bool:
    """True when the session at `where` decrypts a file sealed to `identity`."""
    message = secrets.token_bytes(48)
    return session.Session(**where).decrypt(sealed_to(identity, message)) == message


def no_session(**where: Path) -> bool:
    """True when nothing answers at `where`: no recipient, and decrypt says None."""
    client = session.Session(**where)
    return client.recipient() is None and client.decrypt(sealed_to(make_identity(), b"x")) is None


def frame(header: bytes, body: bytes = b"") -> bytes:
    return wire.FRAME.pack(len(header), len(body)) + header + body


def raw_request(path: str, data: bytes, *, close_write: bool = True) -> bytes:
    """Send raw bytes to the agent; everything it answers before closing."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        with contextlib.suppress(ConnectionResetError):  # it closed with our bytes unread
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def is_agent(pid: int) -> bool:
    """True while `pid` is a live (not zombie) session agent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # the agent's parent exited, so nobody may reap it here: a zombie counts as gone
    return state not in ("Z", "X") and b"vault.session.agent" in cmdline


def wait_until(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def agents() -> Iterator[list[int]]:
    """Pids of agents started by a test; whatever still runs afterwards is killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if is_agent(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def vault_home(tmp_path: Path) -> Path:
    home = tmp_path / "kv"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text("# not a secret\n")
    return home


@pytest.fixture
def begin(agents: list[int], runtime_dir: Path) -> Begin:
    """`session.start` with a 60 s TTL in the test's runtime folder (or `folder`)."""

    def start(
        identity: str, home: Path, *, folder: Path | None = None, **settings: float | None
    ) -> session.SessionInfo:
        info = session.start(
            identity,
            vault_home=home,
            runtime_dir=folder or runtime_dir,
            **{"ttl": 60.0, **settings},
        )
        agents.append(info.pid)
        return info

    return start


def sockets_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if stat.S_ISSOCK(p.lstat().st_mode))


# --- lifecycle ----------------------------------------------------------------------------


@pytest.mark.slow
def test_start_decrypt_status_end(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    identity = make_identity()
    before = time.time()
    info = begin(identity, vault_home, ttl=3600.0, idle=600.0)
    where = {"vault_home": vault_home, "runtime_dir": runtime_dir}

    assert opens(identity, **where)
    assert session.Session(**where).recipient() == recipient_of(identity)
    shown = session.status(**where)
    assert shown is not None and shown.pid == info.pid
    assert before + 3600 <= shown.expires_at <= time.time() + 3600
    assert shown.idle_expires_at is not None and before + 600 <= shown.idle_expires_at
    socket_file = runtime_dir / sockets_in(runtime_dir)[0]
    assert stat.S_IMODE(socket_file.stat().st_mode) == 0o600

    assert session.end(**where) is True
    assert no_session(**where)
    assert session.status(**where) is None
    assert session.end(**where) is False
    assert wait_until(lambda: not is_agent(info.pid))
    assert sockets_in(runtime_dir) == []


@pytest.mark.slow
def test_lock_is_always_acknowledged(
    agents: list[int], vault_home: Path, runtime_dir: Path
) -> None:
    """`lock` answers before the agent exits: the reply once raced the accept loop's exit
    (2 of 40 `end` calls heard nothing)."""
    identity = make_identity()
    for _ in range(25):
        info = session.start(identity, vault_home=vault_home, ttl=60, runtime_dir=runtime_dir)
        agents.append(info.pid)
        assert session.end(vault_home=vault_home, runtime_dir=runtime_dir) is True


@pytest.mark.slow
def test_ttl_expiry_ends_the_agent(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    identity = make_identity()
    info = begin(identity, vault_home, ttl=1.0)
    where = {"vault_home": vault_home, "runtime_dir": runtime_dir}
    assert opens(identity, **where)
    time.sleep(1.2)
    assert no_session(**where)
    assert wait_until(lambda: not is_agent(info.pid))
    assert sockets_in(runtime_dir) == []


@pytest.mark.slow
def test_idle_timeout_moves_with_use(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    identity = make_identity()
    info = begin(identity, vault_home, ttl=60.0, idle=2.0)
    where = {"vault_home": vault_home, "runtime_dir": runtime_dir}
    # 3 s in all, more than the idle period, but never idle for 2 s: 1.4 s of slack, so that
    # a slow `opens` on a loaded machine (xdist, other suites) cannot let the agent expire
    for _ in range(5):
        time.sleep(0.6)
        assert opens(identity, **where)
    time.sleep(2.3)
    assert no_session(**where)
    assert wait_until(lambda: not is_agent(info.pid))


@pytest.mark.slow
def test_a_connection_open_across_the_ttl_gets_no_plaintext(
    begin: Begin, vault_home: Path, runtime_dir: Path
) -> None:
    """A client that connected before the TTL and asks after it gets nothing: the agent exits
    at the TTL even with connections open (or, in the moment before, answers "expired")."""
    identity = make_identity()
    info = begin(identity, vault_home, ttl=1.0)
    message = secrets.token_bytes(32)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(runtime.socket_path(vault_home, runtime_dir))
        time.sleep(1.2)  # the agent accepted at once and now waits (up to 2 s) for a request
        try:
            wire.send_message(sock, {"op": "decrypt"}, sealed_to(identity, message))
            reply = wire.recv_message(sock)
        except OSError:
            reply = None  # the agent had already exited
    assert reply in (None, ({"error": "expired"}, b""))
    assert wait_until(lambda: not is_agent(info.pid))
    assert sockets_in(runtime_dir) == []


def test_every_request_checks_the_deadline(tmp_path: Path) -> None:
    """The agent's own check on each request, with an injected clock: a request handled after
    the TTL gets "expired", the identity is dropped, and the socket is removed."""
    from vault.session.agent import Agent, Deadlines

    now = [1000.0]
    deadlines = Deadlines(60.0, None, wall=lambda: now[0], steady=lambda: now[0])
    identity = make_identity()
    path = tmp_path / "agent.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    agent = Agent(age.X25519Identity.parse(identity), listener, path, deadlines)
    message = secrets.token_bytes(32)
    for advance, expected in ((59.0, message), (2.0, b"")):
        now[0] += advance
        ours, theirs = socket.socketpair(socket.AF_UNIX)
        with ours, theirs:
            wire.send_message(theirs, {"op": "decrypt"}, sealed_to(identity, message))
            agent._handle(ours)
            header, body = wire.recv_message(theirs)
        assert body == expected
    assert header == {"error": "expired"}
    assert not path.exists()
    listener.close()


def test_sigterm_wipes_and_sighup_is_ignored(
    begin: Begin, vault_home: Path, runtime_dir: Path
) -> None:
    identity = make_identity()
    info = begin(identity, vault_home)
    where = {"vault_home": vault_home, "runtime_dir": runtime_dir}
    os.kill(info.pid, signal.SIGHUP)  # the terminal closed: the session stays
    time.sleep(0.1)
    assert opens(identity, **where)
    os.kill(info.pid, signal.SIGTERM)
    assert wait_until(lambda: not is_agent(info.pid))
    assert sockets_in(runtime_dir) == []
    assert no_session(**where)


def test_start_again_replaces_the_agent(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    first_identity, second_identity = make_identity(), make_identity()
    first = begin(first_identity, vault_home)
    second = begin(second_identity, vault_home)
    assert second.pid != first.pid
    assert wait_until(lambda: not is_agent(first.pid))
    assert opens(second_identity, vault_home=vault_home, runtime_dir=runtime_dir)
    with pytest.raises(NoMatchingIdentity):  # the first identity is gone with its agent
        opens(first_identity, vault_home=vault_home, runtime_dir=runtime_dir)
    assert len(sockets_in(runtime_dir)) == 1


def test_stale_socket_is_replaced(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    path = runtime.socket_path(vault_home, runtime_dir)
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(path)  # a crashed agent's socket: nobody listens
    assert no_session(vault_home=vault_home, runtime_dir=runtime_dir)
    identity = make_identity()
    begin(identity, vault_home)
    assert opens(identity, vault_home=vault_home, runtime_dir=runtime_dir)


def test_two_vault_homes_two_sessions(begin: Begin, tmp_path: Path, runtime_dir: Path) -> None:
    homes = [tmp_path / "a", tmp_path / "b"]
    identities = [make_identity(), make_identity()]
    for home, identity in zip(homes, identities, strict=True):
        begin(identity, home)
    assert len(sockets_in(runtime_dir)) == 2
    for home, identity in zip(homes, identities, strict=True):
        assert opens(identity, vault_home=home, runtime_dir=runtime_dir)
    with pytest.raises(NoMatchingIdentity):
        opens(identities[1], vault_home=homes[0], runtime_dir=runtime_dir)
    assert session.end(vault_home=homes[0], runtime_dir=runtime_dir)
    assert no_session(vault_home=homes[0], runtime_dir=runtime_dir)
    assert opens(identities[1], vault_home=homes[1], runtime_dir=runtime_dir)


def test_same_home_by_another_spelling_is_the_same_session(
    begin: Begin, vault_home: Path, runtime_dir: Path, tmp_path: Path
) -> None:
    identity = make_identity()
    begin(identity, vault_home)
    (tmp_path / "link").symlink_to(vault_home)
    for spelling in (tmp_path / "link", vault_home / ".." / vault_home.name):
        assert opens(identity, vault_home=spelling, runtime_dir=runtime_dir)


GARBAGE = [
    b"",
    b"not json\n",  # the old line protocol: read as absurd lengths
    b'{"op": "get"}\n',
    b"\xff" * 8,  # lengths over the limits
    frame(b"not json"),
    frame(b"[1]"),
    frame(b'{"op": "steal"}'),
    frame(b'{"op": "get"}'),  # the old protocol's "give me the identity"
    frame(b'{"op": ["decrypt"]}'),
    frame(b'{"op": {"x": 1}}'),
    frame(b'{"op": "decrypt"}'),  # nothing to decrypt
    frame(b'{"op": "decrypt"}', b"age-encryption.org/v1\n"),
    wire.FRAME.pack(17, 1000) + b'{"op": "decrypt"}' + b"short",  # body never completes
    frame(b"x" * 5000),
]


def test_garbage_requests_do_not_disturb_the_agent(
    begin: Begin, vault_home: Path, runtime_dir: Path
) -> None:
    identity = make_identity()
    begin(identity, vault_home)
    path = runtime.socket_path(vault_home, runtime_dir)
    secret_part = identity.removeprefix("AGE-SECRET-KEY-1").encode()
    for request in GARBAGE:
        reply = raw_request(path, request)
        assert secret_part not in reply.upper(), request
    assert opens(identity, vault_home=vault_home, runtime_dir=runtime_dir)


def test_no_request_gets_the_identity(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    """The agent decrypts; it never sends its key, whatever is asked (the ssh-agent model)."""
    identity = make_identity()
    begin(identity, vault_home)
    path = runtime.socket_path(vault_home, runtime_dir)
    secret_part = identity.removeprefix("AGE-SECRET-KEY-1").encode()
    raw_key = age.X25519Identity.parse(identity)._key.private_bytes_raw()
    replies = [
        raw_request(path, frame(json.dumps({"op": op}).encode(), body))
        for op in ("get", "identity", "status", "export", "decrypt", "lock")  # lock: the last
        for body in (sealed_to(identity, b"hello"), b"")
        if op != "lock" or not body
    ]
    assert any(reply.endswith(b"hello") for reply in replies)  # decrypt answered
    for reply in replies:
        assert secret_part not in reply.upper() and raw_key not in reply


@pytest.mark.parametrize(
    "spoil",
    [
        lambda data: data[:-1],  # truncated
        lambda data: data[:40] + bytes([data[40] ^ 1]) + data[41:],  # the x25519 share
        lambda data: data.replace(b"--- ", b"--- A", 1),  # the header mac
        lambda data: data[:-5] + bytes([data[-5] ^ 1]) + data[-4:],  # the payload
        lambda data: data[:30],  # no header end
        lambda data: b"age-encryption.org/v2" + data[21:],  # version
    ],
)
def test_a_damaged_file_raises_as_it_would_locally(
    spoil: Callable[[bytes], bytes],
    begin: Begin,
    vault_home: Path,
    runtime_dir: Path,
) -> None:
    identity = make_identity()
    begin(identity, vault_home)
    damaged = spoil(sealed_to(identity, secrets.token_bytes(100)))
    with pytest.raises((AgeHeaderError, AgePayloadError, NoMatchingIdentity)) as local:
        age.decrypt(damaged, [age.X25519Identity.parse(identity)])
    client = session.Session(vault_home=vault_home, runtime_dir=runtime_dir)
    with pytest.raises(type(local.value)) as remote:
        client.decrypt(damaged)
    assert type(remote.value) is type(local.value)
    assert str(remote.value) == str(local.value)
    assert opens(identity, vault_home=vault_home, runtime_dir=runtime_dir)  # still serving


def test_header_mac_and_foreign_files(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    identity = make_identity()
    begin(identity, vault_home)
    client = session.Session(vault_home=vault_home, runtime_dir=runtime_dir)
    sealed = bytearray(sealed_to(identity, b"x" * 10))
    mac_at = sealed.index(b"--- ") + 4
    sealed[mac_at] = ord("A") if sealed[mac_at] != ord("A") else ord("B")
    with pytest.raises((AgeHeaderMacError, AgeHeaderError)):
        client.decrypt(bytes(sealed))
    with pytest.raises(NoMatchingIdentity):
        client.decrypt(sealed_to(make_identity(), b"not yours"))


def test_large_files_cross_the_socket(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    """A vault of tens of thousands of keys is several MB: both directions stream it whole."""
    identity = make_identity()
    begin(identity, vault_home)
    message = secrets.token_bytes(9 << 20)
    plain = session.Session(vault_home=vault_home, runtime_dir=runtime_dir).decrypt(
        sealed_to(identity, message)
    )
    assert plain == message


def test_a_burst_of_clients_is_served_not_refused(
    begin: Begin, vault_home: Path, runtime_dir: Path
) -> None:
    """150 commands at once (more than the agent's backlog), each sending a 512 KiB vault:
    every one gets its plaintext; none falls back to asking for the passphrase."""
    identity = make_identity()
    begin(identity, vault_home)
    message = secrets.token_bytes(512 << 10)
    sealed = sealed_to(identity, message)
    client = session.Session(vault_home=vault_home, runtime_dir=runtime_dir)
    with ThreadPoolExecutor(max_workers=150) as pool:
        results = list(pool.map(lambda _: client.decrypt(sealed), range(150)))
    assert sum(plain == message for plain in results) == 150


def test_a_stalled_client_does_not_hold_up_others(
    begin: Begin, vault_home: Path, runtime_dir: Path
) -> None:
    identity = make_identity()
    begin(identity, vault_home)
    path = runtime.socket_path(vault_home, runtime_dir)
    stalled = []
    for _ in range(3):  # connected, half a request sent, then silence
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        sock.sendall(wire.FRAME.pack(17, 100) + b'{"op": "decrypt"}')
        stalled.append(sock)
    try:
        started = time.monotonic()
        assert opens(identity, vault_home=vault_home, runtime_dir=runtime_dir)
        assert time.monotonic() - started < 1.0  # not after the stalled ones time out (2 s)
    finally:
        for sock in stalled:
            sock.close()


# --- the secret stays out of argv, environ and files ---------------------------------------


def test_identity_never_in_argv_environ_or_files(
    begin: Begin,
    vault_home: Path,
    runtime_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    identity = make_identity()
    # a user who exported it (or an API key) must not see it copied into the agent's env
    monkeypatch.setenv("KEYVAULT_IDENTITY", identity)
    monkeypatch.setenv("OPENAI_API_KEY", identity)
    info = begin(identity, vault_home)
    proc = Path(f"/proc/{info.pid}")
    assert b"vault.session.agent" in (proc / "cmdline").read_bytes()
    assert identity.encode() not in (proc / "cmdline").read_bytes()
    try:
        environ = (proc / "environ").read_bytes()
    except PermissionError:
        environ = None  # not root: the agent is non-dumpable, so even we cannot read it
    if os.geteuid() == 0:
        assert environ is not None and b"PYTHONPATH=" in environ
    assert environ is None or identity.encode() not in environ
    for folder in (runtime_dir, vault_home):
        for path in folder.rglob("*"):
            if path.is_file():
                assert identity.encode() not in path.read_bytes(), path
    assert opens(identity, vault_home=vault_home, runtime_dir=runtime_dir)


def test_agent_has_no_core_dumps(begin: Begin, vault_home: Path) -> None:
    info = begin(make_identity(), vault_home)
    limits = Path(f"/proc/{info.pid}/limits").read_text().splitlines()
    core = next(line for line in limits if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]


# --- the runtime folder ---------------------------------------------------------------------


def test_runtime_folder_is_created_private(tmp_path: Path, vault_home: Path) -> None:
    folder = tmp_path / "fresh"
    path = runtime.socket_path(vault_home, folder, create=True)
    assert Path(path).parent == folder
    assert stat.S_IMODE(folder.lstat().st_mode) == 0o700
    assert Path(path).name.startswith("agent-") and path.endswith(".sock")


@pytest.mark.parametrize("spoil", ["world-open", "group-readable", "symlink", "file"])
def test_unsafe_runtime_folder_is_refused(
    spoil: str, begin: Begin, tmp_path: Path, vault_home: Path, runtime_dir: Path
) -> None:
    folder = tmp_path / "spoiled"
    if spoil == "symlink":
        folder.symlink_to(runtime_dir)  # points at a perfectly private folder, still refused
    elif spoil == "file":
        os.close(os.open(folder, os.O_CREAT | os.O_WRONLY, 0o600))
    else:
        folder.mkdir(mode=0o700)
        folder.chmod(0o777 if spoil == "world-open" else 0o740)
    with pytest.raises(SessionError, match="not a private folder"):
        begin(make_identity(), vault_home, folder=folder)
    with pytest.raises(SessionError):
        session.status(vault_home=vault_home, runtime_dir=folder)
    # the hot path never raises: the caller simply asks for the passphrase
    assert no_session(vault_home=vault_home, runtime_dir=folder)
    assert not folder.is_dir() or sockets_in(folder) == []


@as_root
def test_runtime_folder_owned_by_someone_else_is_refused(
    begin: Begin, tmp_path: Path, vault_home: Path
) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)  # nobody
    with pytest.raises(SessionError, match="not a private folder"):
        begin(make_identity(), vault_home, folder=folder)
    assert no_session(vault_home=vault_home, runtime_dir=folder)


def test_default_folder_follows_xdg_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert runtime.default_runtime_dir() == str(xdg / "keyvault")
    xdg.chmod(0o755)  # not private: not trusted, fall back to our own folder in /tmp
    assert runtime.default_runtime_dir() == f"/tmp/keyvault-{os.geteuid()}"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert runtime.default_runtime_dir() == f"/tmp/keyvault-{os.geteuid()}"


def test_start_refuses_bad_input(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    for bad_identity in (make_identity() + '", "pid": 1', make_identity()[:-1]):
        with pytest.raises((InvalidValue, SessionError)) as caught:
            begin(bad_identity, vault_home)
        assert bad_identity not in str(caught.value)
    for ttl, idle in ((0, None), (60, 0), (31 * 86400, None), (-1, None)):
        with pytest.raises(InvalidValue):
            begin(make_identity(), vault_home, ttl=ttl, idle=idle)
    assert sockets_in(runtime_dir) == []


# --- other users ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_user() -> Iterator[pwd.struct_passwd]:
    """A real second account; created for this module and removed again if it was absent."""
    created = False
    try:
        pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", OTHER_USER],
            check=True,
            capture_output=True,
        )
        created = True
    yield pwd.getpwnam(OTHER_USER)
    if created:
        subprocess.run(["userdel", OTHER_USER], check=False, capture_output=True)


def run_as(
    user: pwd.struct_passwd, code: str, stdin: object, env: dict[str, str] | None = None
) -> str:
    """Run Python `code` as `user` (a real setuid/setgid child), `stdin` as JSON; its stdout."""
    for python in (sys.executable, shutil.which("python3", path="/usr/bin:/bin") or ""):
        try:
            probe = subprocess.run(
                [python, "-c", "import sys; assert sys.version_info >= (3, 11)"],
                user=user.pw_uid,
                group=user.pw_gid,
                extra_groups=[],
                cwd="/",
                capture_output=True,
                check=False,
            )
        except OSError:
            continue  # e.g. an interpreter under /root
        if probe.returncode == 0:
            break
    else:
        pytest.skip(f"no python 3.11 that {user.pw_name} may run")
    done = subprocess.run(
        [python, "-c", code],
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        input=json.dumps(stdin),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


ATTACK = """
import json, socket, struct, sys
pid, path, door, sealed_hex = json.load(sys.stdin)
sealed = bytes.fromhex(sealed_hex)
found = {}
def attempt(name, action):
    try:
        found[name] = repr(action())
    except OSError as error:
        found[name] = type(error).__name__
def ask(where):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(3)
        sock.connect(where)
        header = b'{"op": "decrypt"}'
        sock.sendall(struct.pack("!II", len(header), len(sealed)) + header + sealed)
        return sock.recv(1 << 16)
def read(name):
    with open(f"/proc/{pid}/{name}", "rb") as handle:
        return handle.read(1 << 20)
attempt("socket", lambda: ask(path))
attempt("open_door", lambda: ask(door))
attempt("mem", lambda: read("mem"))
attempt("environ", lambda: read("environ"))
attempt("cmdline", lambda: read("cmdline"))
print(json.dumps(found))
"""


@as_root
@pytest.mark.xdist_group("kvtest2")  # one worker owns the second OS user (created, removed)
def test_another_user_cannot_read_the_secret(
    begin: Begin, vault_home: Path, runtime_dir: Path, other_user: pwd.struct_passwd
) -> None:
    identity = make_identity()
    info = begin(identity, vault_home)
    path = runtime.socket_path(vault_home, runtime_dir)
    canary = secrets.token_hex(16)
    sealed = sealed_to(identity, canary.encode())
    # tamper as root: a hard link to the socket in a folder anyone may enter, mode 0666,
    # so that only the agent's own peer-uid check stands between the other user and the secret
    door_folder = Path(tempfile.mkdtemp(prefix="kvdoor"))
    try:
        door_folder.chmod(0o755)
        door = door_folder / "s"
        os.link(path, door)
        door.chmod(0o666)
        # control: the door works for us
        reply = raw_request(str(door), frame(b'{"op": "decrypt"}', sealed))
        assert reply.endswith(canary.encode())

        output = run_as(other_user, ATTACK, [info.pid, path, str(door), sealed.hex()])
    finally:
        shutil.rmtree(door_folder)
    found = json.loads(output)
    assert identity not in output and canary not in output
    assert found["socket"] == "PermissionError"  # the 0700 folder and the 0600 socket
    assert found["open_door"] in ("b''", "ConnectionResetError", "BrokenPipeError")  # peer uid
    assert found["mem"] == "PermissionError"
    assert found["environ"] == "PermissionError"
    assert (
        "vault.session.agent" in found["cmdline"]
    )  # readable by all, which is why argv holds nothing
    assert opens(identity, vault_home=vault_home, runtime_dir=runtime_dir)


PROBE = """
import json, sys
from vault import age
from vault.session import client as session
from vault.session import wire
identity, home, run = json.load(sys.stdin)
info = session.start(identity, vault_home=home, ttl=60, runtime_dir=run)
print(json.dumps({"pid": info.pid}), flush=True)
sealed = age.encrypt(b"probe", [age.X25519Identity.parse(identity).recipient()])
found = {"decrypted": session.Session(home, run).decrypt(sealed) == b"probe"}
for name in ("environ", "mem", "maps"):
    try:
        with open(f"/proc/{info.pid}/{name}", "rb") as handle:
            found[name] = identity in handle.read(1 << 16).decode("latin-1")
    except OSError as error:
        found[name] = type(error).__name__
found["ended"] = session.end(vault_home=home, runtime_dir=run)
print(json.dumps(found))
"""


@pytest.mark.xdist_group("kvtest2")
def test_agent_is_not_dumpable_even_for_its_own_user(
    agents: list[int], tmp_path: Path, runtime_dir: Path, request: pytest.FixtureRequest
) -> None:
    """Another process of the *same* (non-root) user cannot read the agent's memory either.

    As root the probe runs as the other user, from a copy of keyvault and cryptography (the
    checkout and the interpreter's packages may be in folders that user cannot read).
    """
    identity = make_identity()
    if os.geteuid() == 0:
        user = request.getfixturevalue("other_user")
        stage = Path(tempfile.mkdtemp(prefix="kvstage"))
        request.addfinalizer(lambda: shutil.rmtree(stage))
        stage.chmod(0o755)
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(REPO / "vault", stage / "vault", ignore=ignore)
        shutil.copytree(Path(cryptography.__file__).parent, stage / "cryptography", ignore=ignore)
        for path in [stage, *stage.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        run = stage / "run"
        run.mkdir(mode=0o700)
        os.chown(run, user.pw_uid, user.pw_gid)
        settings = [identity, str(stage / "home"), str(run)]
        output = run_as(user, PROBE, settings, env={"PYTHONPATH": str(stage)})
    else:
        done = subprocess.run(
            [sys.executable, "-c", PROBE],
            # runtime_dir: a short path, as a unix socket's must be (tmp_path under xdist is not)
            input=json.dumps([identity, str(tmp_path / "home"), str(runtime_dir)]),
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        output = done.stdout
    started, found = (json.loads(line) for line in output.splitlines())
    agents.append(started["pid"])
    assert found == {
        "decrypted": True,
        "environ": "PermissionError",
        "mem": "PermissionError",
        "maps": "PermissionError",
        "ended": True,
    }


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("8h", 8 * 3600),
        ("30m", 1800),
        ("90s", 90),
        ("1h30m", 5400),
        ("2d", 2 * 86400),
        ("1d2h3m4s", 86400 + 7200 + 180 + 4),
        ("30d", 30 * 86400),
        (" 8H ", 8 * 3600),
        ("0h1s", 1),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert session.parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "8", "h", "8x", "0s", "0h0m", "31d", "30d1s", "1.5h", "-1h", "30m1h", "1h1h", "8 h",
     "1h30", "\u0668h", "99999999999999999999d"],
)  # fmt: skip
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(InvalidValue):
        session.parse_duration(text)
