"""`keyvault exec`: a real process replaced by the command, the secret only in its environment.

Each test starts a fresh Python that reads its request (and the secret) from stdin, never
argv, and calls exec_with_env the way the CLI does; errors become exit codes the way the
CLI's error handler turns them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, make_key
from vault.errors import PolicyViolation, UsageError
from vault.export.process import EXEC_MARKER, child_environment, exec_with_env

pytestmark = pytest.mark.skipif(os.name == "nt", reason="exec replaces the process on POSIX only")

CHILD = f"""
import json, os, sys
sys.path.insert(0, {str(REPO)!r})
from vault.errors import KeyvaultError
from vault.export.process import exec_with_env
line = b""
while not line.endswith(b"\\n"):  # byte by byte: a nested child reads the next line
    chunk = os.read(0, 1)
    if not chunk:
        break
    line += chunk
request = json.loads(line)
try:
    exec_with_env(request["argv"], request["values"], pristine=request["pristine"],
                  environ=os.environ)
except KeyvaultError as err:
    print("keyvault: error: " + err.message, file=sys.stderr)
    sys.exit(err.exit_code)
"""


def request(argv: list[str], values: dict[str, str], *, pristine: bool = False) -> bytes:
    return json.dumps({"argv": argv, "values": values, "pristine": pristine}).encode() + b"\n"


def start(env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env if env is not None else base_env(),
    )


def run(
    argv: list[str],
    values: dict[str, str],
    *,
    pristine: bool = False,
    env: dict[str, str] | None = None,
) -> tuple[int, bytes, bytes]:
    child = start(env)
    out, err = child.communicate(request(argv, values, pristine=pristine), timeout=30)
    return child.returncode, out, err


def base_env() -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": "/nonexistent-home",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "KEEP_ME": "yes",
        "DROP_ME": "no",
    }


def env_of(output: bytes) -> dict[str, str]:
    return dict(entry.decode().split("=", 1) for entry in output.split(b"\0") if entry)


def test_exit_code_passes_through() -> None:
    code, _, err = run(["sh", "-c", "exit 7"], {"OPENAI_API_KEY": make_key()})
    assert (code, err) == (7, b"")


def test_the_process_is_replaced_so_signals_pass_through() -> None:
    child = start()
    script = 'echo "$$"; kill -TERM "$$"'
    out, _ = child.communicate(request(["sh", "-c", script], {"OPENAI_API_KEY": "k"}), timeout=30)
    assert int(out) == child.pid  # same process: python became sh
    assert child.returncode == -signal.SIGTERM


def test_variables_are_added_to_the_environment() -> None:
    key = make_key()
    code, out, _ = run(["env", "-0"], {"OPENAI_API_KEY": key, "OPENAI_ORG_ID": "org-1"})
    env = env_of(out)
    assert code == 0
    assert env["OPENAI_API_KEY"] == key
    assert env["OPENAI_ORG_ID"] == "org-1"
    assert env["KEEP_ME"] == "yes"
    assert env[EXEC_MARKER] == "1"


def test_pristine_keeps_only_the_basics() -> None:
    key = make_key()
    code, out, _ = run(["env", "-0"], {"OPENAI_API_KEY": key}, pristine=True)
    assert code == 0
    assert env_of(out) == {
        "PATH": os.environ["PATH"],
        "HOME": "/nonexistent-home",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "OPENAI_API_KEY": key,
        EXEC_MARKER: "1",
    }


def test_pristine_on_windows_keeps_what_windows_programs_need() -> None:
    environ = {
        "PATH": "C:\\bin",
        "SYSTEMROOT": "C:\\Windows",
        "COMSPEC": "cmd.exe",
        "PATHEXT": ".EXE",
        "USERNAME": "me",
    }
    env = child_environment({"A": "1"}, pristine=True, environ=environ, windows=True)
    assert env == {
        "PATH": "C:\\bin",
        "SYSTEMROOT": "C:\\Windows",
        "COMSPEC": "cmd.exe",
        "PATHEXT": ".EXE",
        "A": "1",
        EXEC_MARKER: "1",
    }


def test_nesting_is_refused() -> None:
    # a keyvault exec whose command is another keyvault exec
    inner = [sys.executable, "-c", CHILD]
    child = start()
    lines = request(inner, {"OPENAI_API_KEY": "k"}) + request(["true"], {"OPENAI_API_KEY": "k"})
    _, err = child.communicate(lines, timeout=30)
    assert child.returncode == PolicyViolation.exit_code
    assert b"refusing to run keyvault exec inside keyvault exec" in err
    with pytest.raises(PolicyViolation):
        child_environment({}, pristine=False, environ={EXEC_MARKER: "1"})


def test_command_not_found_exits_127_without_the_secret() -> None:
    key = make_key()
    code, _, err = run(["no-such-command-kv"], {"OPENAI_API_KEY": key})
    assert code == 127
    assert b"command not found: no-such-command-kv" in err
    assert key.encode() not in err


def test_not_executable_exits_126(tmp_path: Path) -> None:
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    env = base_env() | {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    code, _, err = run(["tool"], {"OPENAI_API_KEY": "k"}, env=env)
    assert code == 126
    assert b"cannot run tool" in err


def test_empty_command_and_bad_values_fail_before_exec() -> None:
    with pytest.raises(UsageError, match="no command"):
        exec_with_env([], {"OPENAI_API_KEY": "k"}, pristine=False, environ={})
    code, _, err = run(["true"], {"OPENAI_API_KEY": "bad\0value"})
    assert code == 2
    assert b"nul" in err


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_secret_never_appears_in_any_command_line() -> None:
    key = make_key()
    child = start()
    assert child.stdin is not None
    child.stdin.write(request(["sleep", "20"], {"OPENAI_API_KEY": key}))
    child.stdin.close()
    try:
        deadline = time.monotonic() + 20
        while Path(f"/proc/{child.pid}/comm").read_text().strip() != "sleep":
            assert time.monotonic() < deadline, "exec did not happen"
            time.sleep(0.01)
        # the scan is meaningful: the secret is really in the running child's environment
        assert key.encode() in Path(f"/proc/{child.pid}/environ").read_bytes()
        seen = 0
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                data = cmdline.read_bytes()
            except OSError:
                continue  # the process ended while we looked
            seen += 1
            assert key.encode() not in data, cmdline
        assert seen > 3
    finally:
        child.kill()
        child.wait(timeout=30)
