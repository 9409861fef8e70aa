"""Issue 13 item 2: a hostile repository runs no program, and git never sees a secret;
issue 15: the same for `keyvault sync` in the vault's own repository (the VAULT_REPO profile).

Real git, a real `.git/config` that names a marker script for every setting that makes git
run a program (and hooks, and a partial clone whose lazy fetch would start ssh), exercised
through every command that runs git: `scan --git`, `dotenv`, `doctor`. The marker script
records that it ran and which KEYVAULT_/OPENAI_ variables it saw.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tokenize
from pathlib import Path

import pytest

from tests.helpers import REPO, Cli

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

# every setting of a repository's config that names a program git may run
PROGRAM_SETTINGS = (
    "core.fsmonitor",
    "core.pager",
    "core.sshCommand",
    "core.askPass",
    "core.editor",
    "sequence.editor",
    "pager.log",
    "pager.ls-files",
    "diff.external",
    "diff.evil.textconv",
    "diff.evil.command",
    "filter.evil.clean",
    "filter.evil.smudge",
    "filter.evil.process",
    "gpg.program",
    "gpg.ssh.program",
    "remote.origin.uploadpack",
    "remote.origin.receivepack",
    "core.alternateRefsCommand",
)
HOOKS = ("pre-commit", "post-checkout", "post-index-change", "reference-transaction", "fsmonitor")


def git(folder: Path, *args: str) -> str:
    """The test's own git, for setting up (fsmonitor off: the setup is not under test)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(folder), "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(
        ["git", "-c", "core.fsmonitor=false", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return done.stdout.decode()


def marker_script(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "ran.txt"
    script = tmp_path / "evil.sh"
    script.write_text(
        f'#!/bin/sh\n{{ echo "ran: $0 $*"; env | grep -E "^(KEYVAULT|OPENAI)_"; }} >> {marker}\n'
        "cat > /dev/null 2>&1 &\nexit 0\n"
    )
    script.chmod(0o755)
    return script, marker


def hostile_repo(root: Path, script: Path, secret: str) -> Path:
    """A repository with a stored key in its history and a config full of programs."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "settings.py").write_text(f"KEY = '{secret}'\n")
    git(repo, "add", "settings.py")
    git(repo, "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "leak")
    hooks = repo / "evil-hooks"
    hooks.mkdir()
    for name in HOOKS:
        (hooks / name).symlink_to(script)
    (repo / ".gitattributes").write_text("* diff=evil filter=evil\n")
    (repo / "evil.cfg").write_text(f"[core]\n\tfsmonitor = {script}\n")
    for setting in PROGRAM_SETTINGS:
        git(repo, "config", setting, str(script))
    settings = {
        "core.hooksPath": str(hooks),
        "credential.helper": f"!{script}",
        "log.showSignature": "true",
        "remote.origin.url": "ssh://example.invalid/x",
        "protocol.allow": "always",
        "protocol.ext.allow": "always",
        "submodule.recurse": "true",
        "include.path": str(repo / "evil.cfg"),
    }
    for setting, value in settings.items():
        git(repo, "config", setting, value)
    return repo


def make_partial_clone(repo: Path) -> None:
    """Turn `repo` into a partial clone missing a blob: reading it starts a lazy fetch."""
    for setting, value in {
        "core.repositoryformatversion": "1",
        "extensions.partialClone": "origin",
        "remote.origin.promisor": "true",
        "remote.origin.partialclonefilter": "blob:none",
    }.items():
        git(repo, "config", setting, value)
    blob = git(repo, "rev-parse", "HEAD:settings.py").strip()
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()


@pytest.fixture
def leaked(vault_cli: Cli) -> str:
    return vault_cli.add("work-1", None, "--project", "work")


def test_scan_git_runs_nothing_from_a_hostile_repo(
    vault_cli: Cli, tmp_path: Path, leaked: str
) -> None:
    script, marker = marker_script(tmp_path)
    repo = hostile_repo(tmp_path, script, leaked)
    result = vault_cli("scan", "--git", str(repo), env={"OPENAI_API_KEY": leaked})
    assert result.code == 1, result.err  # found, in the file and in the commit
    assert re.search(r"^[0-9a-f]{12}:settings.py:1: work-1 ", result.out, re.M)
    assert not marker.exists(), marker.read_text()


def test_a_partial_clone_fetches_nothing_and_runs_no_ssh(
    vault_cli: Cli, tmp_path: Path, leaked: str
) -> None:
    script, marker = marker_script(tmp_path)
    repo = hostile_repo(tmp_path, script, leaked)
    make_partial_clone(repo)
    marker.unlink(missing_ok=True)
    result = vault_cli("scan", "--git", "--no-vault", str(repo))
    assert result.code == 1
    assert result.err.startswith("keyvault: error: git log failed")
    assert not marker.exists(), marker.read_text()


def test_dotenv_and_doctor_run_nothing_from_a_hostile_repo(
    vault_cli: Cli, tmp_path: Path, leaked: str
) -> None:
    script, marker = marker_script(tmp_path)
    repo = hostile_repo(tmp_path, script, leaked)
    written = vault_cli("dotenv", str(repo / ".env"), "--project", "work")
    assert written.code == 0, written.err
    assert ".env is not ignored by git" in written.err  # git really answered
    doctor = vault_cli("doctor")
    assert ".env is not ignored by git" in doctor.out
    assert not marker.exists(), marker.read_text()


def test_git_sees_no_secret_and_every_guard(vault_cli: Cli, tmp_path: Path, leaked: str) -> None:
    """A `git` first on PATH records its argv and environment, then runs the real git."""
    log = tmp_path / "git-calls.txt"
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "git"
    real = shutil.which("git")
    wrapper.write_text(
        f'#!/bin/sh\n{{ echo "argv: $*"; env; echo ---; }} >> {log}\nexec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    repo = tmp_path / "plain"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    env = {
        "PATH": f"{wrapper_dir}{os.pathsep}{os.environ['PATH']}",
        "OPENAI_API_KEY": leaked,
        "GIT_SSH_COMMAND": "touch /nonexistent",
        "GIT_CONFIG_PARAMETERS": "'core.fsmonitor'='true'",
    }
    assert vault_cli("dotenv", str(repo / ".env"), "--project", "work", env=env).code == 0
    assert vault_cli("scan", "--git", str(repo), env=env).code in (0, 1)
    assert vault_cli("doctor", env=env).code in (0, 1)
    calls = [c for c in log.read_text().split("---\n") if c.strip()]
    assert len(calls) >= 5  # rev-parse, ls-files, check-ignore (dotenv, doctor), log
    for call in calls:
        assert "KEYVAULT_" not in call and "OPENAI_" not in call and leaked not in call
        assert "GIT_SSH_COMMAND" not in call and "GIT_CONFIG_PARAMETERS" not in call
        assert "GIT_ALLOW_PROTOCOL=\n" in call and "GIT_TERMINAL_PROMPT=0" in call
        assert "core.fsmonitor=false" in call and "--no-pager" in call
    assert any("--no-ext-diff --no-textconv" in call for call in calls)


def test_only_reviewed_subcommands_run() -> None:
    from vault.store import git as hardened_git

    with pytest.raises(ValueError, match="not a reviewed subcommand"):
        hardened_git.git_argv(Path(), ["commit", "-m", "x"])  # the read-only profile
    with pytest.raises(ValueError, match="not a reviewed subcommand"):
        hardened_git.git_argv(Path(), [])


# Where keyvault may start another program, each reviewed for what the child inherits:
# the git runner, `exec` (and its Windows stand-in), `ps` for shell detection, the agent.
REVIEWED_CHILD_PROCESSES = {
    "vault/store/git.py",
    "vault/export/process.py",
    "vault/export/masking.py",  # exec with masking: the same environment exec builds
    "vault/store/sources/runner.py",  # pass/gpg for import: an allowlisted environment
    "vault/export/shells.py",
    "vault/session/client.py",
}


def test_every_child_process_starts_in_a_reviewed_place() -> None:
    # tokens are joined by spaces: `subprocess . run`
    starting = re.compile(r"\bsubprocess \.|\bos \. (exec|spawn|system|popen|posix_spawn)")
    found = {
        str(path.relative_to(REPO))
        for path in (REPO / "vault").rglob("*.py")
        if starting.search(_code_only(path.read_text(encoding="utf-8")))
    }
    assert found == REVIEWED_CHILD_PROCESSES


def _code_only(text: str) -> str:
    """The source without its strings and comments: the names of audit events
    (vault/cli/memo.py lists "subprocess.Popen") start nothing."""
    skipped = (tokenize.STRING, tokenize.COMMENT)
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return " ".join(token.string for token in tokens if token.type not in skipped)


def test_the_code_only_scan_still_sees_a_call() -> None:
    assert "subprocess . run" in _code_only('import subprocess\nsubprocess.run(["x"])  # "y"\n')
    assert "subprocess" not in _code_only('NAMES = {"subprocess.Popen"}  # subprocess.run\n')


# --- the vault's own repository (issue 15: `keyvault sync`, VAULT_REPO profile) -------------

# what a local .git/config (or a pushed .gitattributes) could make `sync` run; the user's
# transport settings (core.sshCommand, credential.helper, askpass) stay theirs on purpose
VAULT_PROGRAM_SETTINGS = (
    "core.fsmonitor",
    "core.pager",
    "core.editor",
    "sequence.editor",
    "pager.log",
    "diff.external",
    "diff.keyvault.textconv",
    "merge.keyvault.driver",
    "filter.evil.clean",
    "filter.evil.smudge",
    "filter.evil.process",
    "gpg.program",
    "remote.origin.uploadpack",
    "remote.origin.receivepack",
    "core.alternateRefsCommand",
)
VAULT_HOOKS = (
    "pre-commit", "commit-msg", "post-commit", "post-merge", "pre-push", "post-checkout",
    "reference-transaction", "post-index-change", "post-rewrite", "pre-merge-commit",
)  # fmt: skip


@pytest.mark.slow
def test_sync_runs_no_program_a_vault_repository_names(tmp_path: Path, runtime_dir: Path) -> None:
    from tests.team import bare_repository, found_team

    alice, bob = found_team(tmp_path, runtime_dir, bare_repository(tmp_path))
    script, marker = marker_script(tmp_path)
    (bob.home / ".gitattributes").write_text("* filter=evil diff=evil\n")  # pushed by a member
    bob.git("commit", "-qam", "attributes")
    bob.add("from-bob")
    bob.ok("sync")
    hooks = tmp_path / "evil-hooks"
    hooks.mkdir()
    for name in VAULT_HOOKS:
        (hooks / name).symlink_to(script)
    for setting in VAULT_PROGRAM_SETTINGS:
        alice.git("config", setting, str(script))
    alice.git("config", "core.hooksPath", str(hooks))
    alice.git("config", "commit.gpgSign", "true")
    alice.add("from-alice")
    merged = alice("sync", env={"OPENAI_API_KEY": "sk-" + "x" * 40})
    assert merged.code == 0, merged.err
    assert "+ from-bob" in merged.out and "out: pushed" in merged.out
    assert not marker.exists(), marker.read_text()


@pytest.mark.slow
def test_sync_gives_git_no_secret(tmp_path: Path, runtime_dir: Path) -> None:
    from tests.team import bare_repository, found_team

    alice, bob = found_team(tmp_path, runtime_dir, bare_repository(tmp_path))
    log = tmp_path / "git-calls.txt"
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    real = shutil.which("git")
    (wrapper_dir / "git").write_text(
        f'#!/bin/sh\n{{ echo "argv: $*"; env; echo ---; }} >> {log}\nexec {real} "$@"\n'
    )
    (wrapper_dir / "git").chmod(0o755)
    bob.add("b")
    bob.ok("sync")
    alice.add("a")
    env = {
        "PATH": f"{wrapper_dir}{os.pathsep}{os.environ['PATH']}",
        "OPENAI_API_KEY": "sk-" + "y" * 40,
        "GIT_DIR": str(tmp_path / "elsewhere"),  # a hook's leftover must not redirect us
        "GIT_CONFIG_PARAMETERS": "'merge.keyvault.driver'='touch /tmp/x'",
    }
    assert alice("sync", env=env).code == 0
    calls = [c for c in log.read_text().split("---\n") if c.strip()]
    assert any("argv: " in c and " push " in c for c in calls)
    for call in calls:
        assert "KEYVAULT_" not in call and "OPENAI_" not in call
        assert "GIT_DIR=" not in call and "GIT_CONFIG_PARAMETERS" not in call
        assert "GIT_ALLOW_PROTOCOL=file:ssh:https\n" in call and "GIT_TERMINAL_PROMPT=0" in call
        assert f"core.hooksPath={os.devnull}" in call and "merge.keyvault.driver=exit 1" in call


def test_the_vault_profile_is_explicit() -> None:
    from vault.store import git as hardened_git

    with pytest.raises(ValueError, match="not a reviewed subcommand"):
        hardened_git.git_argv(Path(), ["gc"], profile=hardened_git.VAULT_REPO)
    with pytest.raises(ValueError, match="takes no extra settings"):
        hardened_git.git_argv(Path(), ["log"], config=["core.pager=less"])
    argv = hardened_git.git_argv(Path(), ["commit", "-m", "x"], profile=hardened_git.VAULT_REPO)
    assert "merge.keyvault.driver=exit 1" in argv and "commit.gpgSign=false" in argv
    assert hardened_git.READ_ONLY.environment({})["GIT_ALLOW_PROTOCOL"] == ""
