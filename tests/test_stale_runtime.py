"""Issue 13 item 4: a stale XDG_RUNTIME_DIR (tmux or screen after logout, `su`, `sudo -E`)
never stops a command that can work without a session; `unlock` falls back to a private
folder of its own. Real processes, a real missing (or non-folder) runtime dir, a real agent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, Cli, make_key, require_tool

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sessions are POSIX only")


@pytest.fixture(params=["missing", "a file"])
def stale(request: pytest.FixtureRequest, vault_cli: Cli, tmp_path: Path) -> Iterator[Cli]:
    """The vault's runner with XDG_RUNTIME_DIR naming a folder that is gone, or a file."""
    runtime = tmp_path / "run-user-1000"
    if request.param == "a file":
        runtime.write_text("not a folder\n")
    runner = Cli(vault_cli.home, {**vault_cli.env, "XDG_RUNTIME_DIR": str(runtime)})
    yield runner
    runner("lock")


def test_every_command_works_with_a_stale_runtime_dir(stale: Cli) -> None:
    key = make_key()
    stale.ok("add", "main", "--project", "demo", input=key)
    assert stale.ok("get", "main").out.strip() == key
    assert key in stale.ok("env", "--project", "demo", "--shell", "bash").out
    assert "main" in stale.ok("list").out
    assert stale.ok("status").out.startswith("locked")
    assert stale.ok("lock").out.strip() == "no session was running"
    assert "cannot write the output" not in stale("doctor").err


def test_unlock_falls_back_to_a_private_folder(stale: Cli) -> None:
    key = make_key()
    stale.ok("add", "main", "--project", "demo", input=key)
    assert stale.ok("unlock", "--ttl", "5m").out.startswith("unlocked until")
    no_passphrase = {**stale.env, "KEYVAULT_PASSPHRASE": ""}
    assert stale.ok("get", "main", env=no_passphrase).out.strip() == key  # the session
    assert stale.ok("status").out.startswith("unlocked until")
    assert stale.ok("lock").out.strip() == "locked"
    assert stale("get", "main", env=no_passphrase).code == 3


def test_the_shell_hook_works_on_every_cd(stale: Cli, tmp_path: Path) -> None:
    bash = require_tool("bash")
    key = make_key()
    stale.ok("add", "main", "--project", "demo", input=key)
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".keyvault.toml").write_text('project = "demo"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "keyvault"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m vault "$@"\n')
    shim.chmod(0o755)
    env = {**stale.env, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    script = (
        f'eval "$(keyvault hook bash)"; cd {project}; _keyvault_hook; echo "IN=$OPENAI_API_KEY"'
    )
    done = subprocess.run(
        [bash, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        start_new_session=True,
        check=False,
    )
    assert f"IN={key}" in done.stdout.splitlines()
    assert done.stderr == ""
