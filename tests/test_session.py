"""Cached unlock sessions with real agent processes, real sockets and, as root, a real user.

Every agent a test starts is killed by the `begin` fixture's finalizer, so nothing leaks.
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
from pathlib import Path

import pytest

from tests.conftest import REPO
from vault import session
from vault.errors import InvalidValue, SessionError

pytestmark = pytest.mark.skipif(not session.supported(), reason="needs unix domain sockets")
pwd = pytest.importorskip("pwd")

OTHER_USER = "kvtest2"
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to act as another user"
)

Begin = Callable[..., session.SessionInfo]


def make_identity() -> str:
    """A fresh canary shaped like an age identity, so a leak anywhere is unmistakable."""
    return "AGE-SECRET-KEY-1" + secrets.token_hex(29).upper()


def is_agent(pid: int) -> bool:
    """True while `pid` is a live (not zombie) session agent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # the agent's parent exited, so nobody may reap it here: a zombie counts as gone
    return state not in ("Z", "X") and b"vault.agent" in cmdline


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


def test_start_fetch_status_end(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    identity = make_identity()
    before = time.time()
    info = begin(identity, vault_home, ttl=3600.0, idle=600.0)
    where = {"vault_home": vault_home, "runtime_dir": runtime_dir}

    assert session.fetch(**where) == identity
    shown = session.status(**where)
    assert shown is not None and shown.pid == info.pid
    assert before + 3600 <= shown.expires_at <= time.time() + 3600
    assert shown.idle_expires_at is not None and before + 600 <= shown.idle_expires_at
    socket_file = runtime_dir / sockets_in(runtime_dir)[0]
    assert stat.S_IMODE(socket_file.stat().st_mode) == 0o600

    assert session.end(**where) is True
    assert session.fetch(**where) is None
    assert session.status(**where) is None
    assert session.end(**where) is False
    assert wait_until(lambda: not is_agent(info.pid))
    assert sockets_in(runtime_dir) == []


def test_ttl_expiry_ends_the_agent(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    identity = make_identity()
    info = begin(identity, vault_home, ttl=1.0)
    where = {"vault_home": vault_home, "runtime_dir": runtime_dir}
    assert session.fetch(**where) == identity
    time.sleep(1.2)
    assert session.fetch(**where) is None
    assert wait_until(lambda: not is_agent(info.pid))
    assert sockets_in(runtime_dir) == []


def test_idle_timeout_moves_with_use(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    identity = make_identity()
    info = begin(identity, vault_home, ttl=60.0, idle=1.0)
    where = {"vault_home": vault_home, "runtime_dir": runtime_dir}
    for _ in range(3):  # 1.8 s in all, more than the idle period, but never idle for 1 s
        time.sleep(0.6)
        assert session.fetch(**where) == identity
    time.sleep(1.3)
    assert session.fetch(**where) is None
    assert wait_until(lambda: not is_agent(info.pid))


def test_late_request_after_expiry_gets_no_secret(
    begin: Begin, vault_home: Path, runtime_dir: Path
) -> None:
    """A request read after the TTL is refused: the agent's timer cannot fire while it waits
    on a connection, so only the check on each request stands in the way."""
    info = begin(make_identity(), vault_home, ttl=1.0)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(session.socket_path(vault_home, runtime_dir))
        time.sleep(1.2)  # the agent accepted at once and now waits (up to 2 s) for our line
        sock.sendall(b'{"op": "get"}\n')
        reply = sock.recv(4096)
    assert json.loads(reply) == {"error": "expired"}
    assert wait_until(lambda: not is_agent(info.pid))
    assert sockets_in(runtime_dir) == []


def test_sigterm_wipes_and_sighup_is_ignored(
    begin: Begin, vault_home: Path, runtime_dir: Path
) -> None:
    identity = make_identity()
    info = begin(identity, vault_home)
    where = {"vault_home": vault_home, "runtime_dir": runtime_dir}
    os.kill(info.pid, signal.SIGHUP)  # the terminal closed: the session stays
    time.sleep(0.1)
    assert session.fetch(**where) == identity
    os.kill(info.pid, signal.SIGTERM)
    assert wait_until(lambda: not is_agent(info.pid))
    assert sockets_in(runtime_dir) == []
    assert session.fetch(**where) is None


def test_start_again_replaces_the_agent(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    first = begin(make_identity(), vault_home)
    second_identity = make_identity()
    second = begin(second_identity, vault_home)
    assert second.pid != first.pid
    assert wait_until(lambda: not is_agent(first.pid))
    assert session.fetch(vault_home=vault_home, runtime_dir=runtime_dir) == second_identity
    assert len(sockets_in(runtime_dir)) == 1


def test_stale_socket_is_replaced(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    path = session.socket_path(vault_home, runtime_dir)
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(path)  # a crashed agent's socket: nobody listens
    assert session.fetch(vault_home=vault_home, runtime_dir=runtime_dir) is None
    identity = make_identity()
    begin(identity, vault_home)
    assert session.fetch(vault_home=vault_home, runtime_dir=runtime_dir) == identity


def test_two_vault_homes_two_sessions(begin: Begin, tmp_path: Path, runtime_dir: Path) -> None:
    homes = [tmp_path / "a", tmp_path / "b"]
    identities = [make_identity(), make_identity()]
    for home, identity in zip(homes, identities, strict=True):
        begin(identity, home)
    assert len(sockets_in(runtime_dir)) == 2
    fetched = [session.fetch(vault_home=h, runtime_dir=runtime_dir) for h in homes]
    assert fetched == identities
    assert session.end(vault_home=homes[0], runtime_dir=runtime_dir)
    assert session.fetch(vault_home=homes[0], runtime_dir=runtime_dir) is None
    assert session.fetch(vault_home=homes[1], runtime_dir=runtime_dir) == identities[1]


def test_same_home_by_another_spelling_is_the_same_session(
    begin: Begin, vault_home: Path, runtime_dir: Path, tmp_path: Path
) -> None:
    identity = make_identity()
    begin(identity, vault_home)
    (tmp_path / "link").symlink_to(vault_home)
    for spelling in (tmp_path / "link", vault_home / ".." / vault_home.name):
        assert session.fetch(vault_home=spelling, runtime_dir=runtime_dir) == identity


def test_garbage_requests_do_not_disturb_the_agent(
    begin: Begin, vault_home: Path, runtime_dir: Path
) -> None:
    identity = make_identity()
    begin(identity, vault_home)
    path = session.socket_path(vault_home, runtime_dir)
    for request in (b"not json\n", b'{"op": "steal"}\n', b"[1]\n", b"x" * 5000 + b"\n", b""):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(3)
            sock.connect(path)
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            reply = sock.recv(8192)
        assert identity.encode() not in reply
    assert session.fetch(vault_home=vault_home, runtime_dir=runtime_dir) == identity


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
    assert b"vault.agent" in (proc / "cmdline").read_bytes()
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
    assert session.fetch(vault_home=vault_home, runtime_dir=runtime_dir) == identity


def test_agent_has_no_core_dumps(begin: Begin, vault_home: Path) -> None:
    info = begin(make_identity(), vault_home)
    limits = Path(f"/proc/{info.pid}/limits").read_text().splitlines()
    core = next(line for line in limits if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]


# --- the runtime folder ---------------------------------------------------------------------


def test_runtime_folder_is_created_private(tmp_path: Path, vault_home: Path) -> None:
    folder = tmp_path / "fresh"
    path = session.socket_path(vault_home, folder, create=True)
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
    assert session.fetch(vault_home=vault_home, runtime_dir=folder) is None
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
    assert session.fetch(vault_home=vault_home, runtime_dir=folder) is None


def test_default_folder_follows_xdg_runtime_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    assert session.default_runtime_dir() == str(xdg / "keyvault")
    xdg.chmod(0o755)  # not private: not trusted, fall back to our own folder in /tmp
    assert session.default_runtime_dir() == f"/tmp/keyvault-{os.geteuid()}"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert session.default_runtime_dir() == f"/tmp/keyvault-{os.geteuid()}"


def test_start_refuses_bad_input(begin: Begin, vault_home: Path, runtime_dir: Path) -> None:
    bad_identity = make_identity() + '", "pid": 1'
    with pytest.raises(InvalidValue) as caught:
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
import json, socket, sys
pid, path, door = json.load(sys.stdin)
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
        sock.sendall(b'{"op": "get"}\\n')
        return sock.recv(4096)
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
def test_another_user_cannot_read_the_secret(
    begin: Begin, vault_home: Path, runtime_dir: Path, other_user: pwd.struct_passwd
) -> None:
    identity = make_identity()
    info = begin(identity, vault_home)
    path = session.socket_path(vault_home, runtime_dir)
    # tamper as root: a hard link to the socket in a folder anyone may enter, mode 0666,
    # so that only the agent's own peer-uid check stands between the other user and the secret
    door_folder = Path(tempfile.mkdtemp(prefix="kvdoor"))
    try:
        door_folder.chmod(0o755)
        door = door_folder / "s"
        os.link(path, door)
        door.chmod(0o666)
        with socket.socket(socket.AF_UNIX) as sock:  # control: the door works for us
            sock.settimeout(3)
            sock.connect(str(door))
            sock.sendall(b'{"op": "get"}\n')
            assert identity.encode() in sock.recv(4096)

        output = run_as(other_user, ATTACK, [info.pid, path, str(door)])
    finally:
        shutil.rmtree(door_folder)
    found = json.loads(output)
    assert identity not in output
    assert found["socket"] == "PermissionError"  # the 0700 folder and the 0600 socket
    assert found["open_door"] in ("b''", "ConnectionResetError", "BrokenPipeError")  # peer uid
    assert found["mem"] == "PermissionError"
    assert found["environ"] == "PermissionError"
    assert "vault.agent" in found["cmdline"]  # readable by all, which is why argv holds nothing
    assert session.fetch(vault_home=vault_home, runtime_dir=runtime_dir) == identity


PROBE = """
import json, sys
from vault import session
identity, home, run = json.load(sys.stdin)
info = session.start(identity, vault_home=home, ttl=60, runtime_dir=run)
print(json.dumps({"pid": info.pid}), flush=True)
found = {"fetched": session.fetch(vault_home=home, runtime_dir=run) == identity}
for name in ("environ", "mem", "maps"):
    try:
        with open(f"/proc/{info.pid}/{name}", "rb") as handle:
            found[name] = identity in handle.read(1 << 16).decode("latin-1")
    except OSError as error:
        found[name] = type(error).__name__
found["ended"] = session.end(vault_home=home, runtime_dir=run)
print(json.dumps(found))
"""


def test_agent_is_not_dumpable_even_for_its_own_user(
    agents: list[int], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Another process of the *same* (non-root) user cannot read the agent's memory either.

    As root the probe runs as the other user, from a copy of the stdlib-only session modules
    (the checkout may be in a folder that user cannot read).
    """
    identity = make_identity()
    if os.geteuid() == 0:
        user = request.getfixturevalue("other_user")
        stage = Path(tempfile.mkdtemp(prefix="kvstage"))
        request.addfinalizer(lambda: shutil.rmtree(stage))
        stage.chmod(0o755)
        (stage / "vault").mkdir(mode=0o755)
        for name in ("__init__.py", "errors.py", "session.py", "agent.py"):
            shutil.copy(REPO / "vault" / name, stage / "vault" / name)
        run = stage / "run"
        run.mkdir(mode=0o700)
        os.chown(run, user.pw_uid, user.pw_gid)
        settings = [identity, str(stage / "home"), str(run)]
        output = run_as(user, PROBE, settings, env={"PYTHONPATH": str(stage)})
    else:
        done = subprocess.run(
            [sys.executable, "-c", PROBE],
            input=json.dumps([identity, str(tmp_path / "home"), str(tmp_path / "run")]),
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
        "fetched": True,
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
