"""`keyvault scan`: stored keys and unknown OpenAI keys in files and git history, never printed.

Library tests drive `vault.security.scan` directly; CLI tests run the real command against
real files, real git repositories (history, merges, a hostile repo config) and a real
pre-commit hook.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import REPO, Cli, make_key
from vault.model.secret import Secret
from vault.security.scan import (
    ALLOW_PRAGMA,
    MAX_FILE_BYTES,
    UNKNOWN_KEY,
    Matcher,
    read_text,
    scan_paths,
)
from vault.security.scan_history import scan_git

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX files and git")


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def git(repo: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {args}: {done.stdout}{done.stderr}")
    return done.stdout


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    return path


def commit(repo: Path, files: dict[str, str], message: str = "c") -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


# --- the matcher --------------------------------------------------------------------------

KEY = make_key()
OTHER = make_key("sk-svcacct-")


@pytest.fixture
def matcher() -> Matcher:
    return Matcher([("work-1", Secret(KEY)), ("relay", Secret("rk_" + "x9" * 20 + "=="))])


@pytest.mark.parametrize(
    "line",
    [
        f"OPENAI_API_KEY={KEY}",
        f'OPENAI_API_KEY="{KEY}"',
        f"export OPENAI_API_KEY='{KEY}'",
        f'{{"api_key": "{KEY}"}}',
        f"api_key: {KEY}",
        f"Authorization: Bearer {KEY}",
        f"https://relay.example/v1?key={KEY}&x=1",
        f"client = OpenAI(api_key=({KEY}))",
        f"  {KEY}  ",
    ],
)
def test_a_stored_key_is_found_in_any_usual_context(matcher: Matcher, line: str) -> None:
    assert matcher.match_line(line) == [("work-1", Secret(KEY).masked, True)]


def test_a_secret_of_another_alphabet_is_found(matcher: Matcher) -> None:
    relay = "rk_" + "x9" * 20 + "=="
    assert matcher.match_line(f"RELAY_TOKEN={relay}") == [("relay", "…x9==", True)]


@pytest.mark.parametrize("line", [KEY[:-1], KEY + "A", "x" + KEY, KEY.replace("T3Blbk", "T3Blbl")])
def test_near_misses_are_not_the_stored_key(matcher: Matcher, line: str) -> None:
    names = [hit[0] for hit in matcher.match_line(line)]
    assert "work-1" not in names


def test_unknown_openai_keys_are_flagged_masked(matcher: Matcher) -> None:
    hits = matcher.match_line(f"KEY={OTHER} # and {KEY}")
    assert ("work-1", Secret(KEY).masked, True) in hits
    assert (UNKNOWN_KEY, Secret(OTHER).masked, False) in hits
    assert len(hits) == 2


def test_the_allow_pragma_silences_unknown_keys_only(matcher: Matcher) -> None:
    assert matcher.match_line(f"example = '{OTHER}'  # {ALLOW_PRAGMA}") == []
    assert matcher.match_line(f"{KEY}  # {ALLOW_PRAGMA}")[0][0] == "work-1"


def test_short_sk_words_are_not_keys(matcher: Matcher) -> None:
    assert matcher.match_line("task-manager sk-learn risk-assessment-of-a-long-project") == []


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: base64.b64encode(text.encode()).decode(),
        lambda text: base64.b64encode(text.encode()).decode().rstrip("="),
        lambda text: base64.urlsafe_b64encode(text.encode()).decode(),
    ],
)
@pytest.mark.parametrize("plain", [KEY, f"OPENAI_API_KEY={KEY}\nDEBUG=1\n", f"x {KEY} y"])
def test_a_base64_encoded_key_is_found(
    matcher: Matcher, encode: Callable[[str], str], plain: str
) -> None:
    """Kubernetes Secrets, docker configs and `base64 .env` pastes hide keys this way."""
    for line in (f"  OPENAI_API_KEY: {encode(plain)}", f'"data": "{encode(plain)}",'):
        assert matcher.match_line(line) == [("work-1 (base64)", Secret(KEY).masked, True)]


def test_base64_that_is_not_a_key_is_quiet(matcher: Matcher) -> None:
    noise = [
        base64.b64encode(bytes(range(256))).decode(),  # binary: not UTF-8
        base64.b64encode(b"just some harmless configuration text").decode(),
        "sha512-" + base64.b64encode(bytes(64)).decode(),  # npm integrity hash
        "A" * 200,
        base64.b64encode(f"{OTHER} # {ALLOW_PRAGMA}".encode()).decode(),
    ]
    for line in noise:
        assert matcher.match_line(line) == []
    unknown = base64.b64encode(OTHER.encode()).decode()
    assert matcher.match_line(unknown) == [("unknown key (base64)", Secret(OTHER).masked, False)]
    assert matcher.match_line(f"{unknown}  # {ALLOW_PRAGMA}") == []


def test_the_matcher_holds_no_plaintext_secret(matcher: Matcher) -> None:
    state = repr(vars(matcher)) + repr(matcher)
    assert KEY not in state and KEY[8:40] not in state


def test_two_runs_use_different_hmac_keys() -> None:
    first, second = Matcher([("a", Secret(KEY))]), Matcher([("a", Secret(KEY))])
    assert vars(first)["_known"].keys() != vars(second)["_known"].keys()


# --- files --------------------------------------------------------------------------------


def test_files_are_scanned_with_line_numbers(tmp_path: Path, matcher: Matcher) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".env").write_text(f"A=1\n\nOPENAI_API_KEY={KEY}\n")
    (tmp_path / "clean.py").write_text("print('hello')\n")
    report = scan_paths([tmp_path], matcher)
    assert [(f.location(), f.name) for f in report.findings] == [
        (f"{tmp_path}/sub/.env:3", "work-1")
    ]
    assert report.files == 2


def test_binary_large_symlinked_and_special_files_are_skipped(
    tmp_path: Path, matcher: Matcher
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(KEY)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "blob.bin").write_bytes(b"\0\x01" + KEY.encode())
    (tree / "big.txt").write_text(KEY + "\n" + "x" * MAX_FILE_BYTES)
    (tree / "link.txt").symlink_to(outside / "secret.txt")
    (tree / "linkdir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(tree / "pipe")  # opening it for reading would block forever
    (tree / ".git").mkdir()
    (tree / ".git" / "config").write_text(KEY)  # history is --git's job
    report = scan_paths([tree], matcher)
    assert report.findings == []
    assert report.skipped == 4  # blob, big, link, pipe; linkdir is never entered
    assert read_text(tree / "link.txt") is None


def test_exclude_globs(tmp_path: Path, matcher: Matcher) -> None:
    (tmp_path / ".env").write_text(KEY)
    (tmp_path / "app.py").write_text(KEY)
    report = scan_paths([tmp_path], matcher, exclude=[".env"])
    assert [Path(f.path).name for f in report.findings] == ["app.py"]


# --- git history --------------------------------------------------------------------------


def test_a_key_removed_from_the_tree_is_still_found_in_history(
    tmp_path: Path, matcher: Matcher
) -> None:
    repo = new_repo(tmp_path / "repo")
    commit(repo, {"README": "hello\n"})
    leaked = commit(repo, {"config/settings.py": f"A = 1\nKEY = '{KEY}'\n"})
    (repo / "config" / "settings.py").write_text("A = 1\nKEY = os.environ['KEY']\n")
    commit(repo, {})
    assert scan_paths([repo], matcher).findings == []
    found = scan_git(repo, matcher).findings
    assert [(f.commit, f.path, f.line, f.name) for f in found] == [
        (leaked, "config/settings.py", 2, "work-1")
    ]


def test_history_covers_every_branch_merges_and_odd_paths(tmp_path: Path, matcher: Matcher) -> None:
    repo = new_repo(tmp_path / "repo")
    commit(repo, {"a.txt": "base\n"})
    git(repo, "checkout", "-q", "-b", "side")
    commit(repo, {"a.txt": "side\n", 'we"ird é.txt': f"{OTHER}\n"})
    git(repo, "checkout", "-q", "main")
    commit(repo, {"a.txt": "main\n"})
    git(repo, "merge", "-q", "side", check=False)  # conflicts on a.txt
    (repo / "a.txt").write_text(f"resolved {KEY}\n")  # the key exists only in the merge
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "--no-edit")
    merge = git(repo, "rev-parse", "HEAD").strip()
    found = {(f.path, f.name, f.commit) for f in scan_git(repo, matcher).findings}
    assert ("a.txt", "work-1", merge) in found
    assert any(path == 'we"ird é.txt' and name == UNKNOWN_KEY for path, name, _ in found)


def test_a_hostile_repo_config_runs_no_program(tmp_path: Path, matcher: Matcher) -> None:
    repo = new_repo(tmp_path / "repo")
    marker = tmp_path / "ran"
    script = tmp_path / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    for key in ("diff.external", "core.pager", "gpg.program", "diff.x.textconv", "core.fsmonitor"):
        git(repo, "config", key, str(script))
    git(repo, "config", "log.showSignature", "true")
    (repo / ".gitattributes").write_text("* diff=x\n")
    commit(repo, {"k.txt": f"{KEY}\n"})
    marker.unlink(missing_ok=True)  # the setup's own `git add` ran fsmonitor
    assert [f.name for f in scan_git(repo, matcher).findings] == ["work-1"]
    assert not marker.exists()


def test_the_history_walk_is_bounded(tmp_path: Path, matcher: Matcher) -> None:
    repo = new_repo(tmp_path / "repo")
    commit(repo, {"old.txt": f"{KEY}\n"})
    for i in range(3):
        commit(repo, {"n.txt": f"{i}\n"})
    report = scan_git(repo, matcher, max_commits=3)
    assert report.commits_capped and report.commits == 3
    assert report.findings == []  # the oldest commit was beyond the bound
    assert len(scan_git(repo, matcher, max_commits=4).findings) == 1


# --- the command --------------------------------------------------------------------------


@pytest.fixture
def stored(vault_cli: Cli) -> tuple[Cli, str]:
    key = vault_cli.add("work-1", None, "--project", "work")
    return vault_cli, key


def test_cli_reports_name_and_masked_key_and_exits_1(
    stored: tuple[Cli, str], tmp_path: Path
) -> None:
    cli, key = stored
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / ".env").write_text(f"OPENAI_API_KEY={key}\n")
    (tree / "notes.md").write_text(f"old one: {OTHER}\n")
    result = cli("scan", str(tree))
    assert result.code == 1
    assert f"{tree}/.env:1: work-1 ({Secret(key).masked})" in result.out
    assert f"{tree}/notes.md:1: unknown key ({Secret(OTHER).masked})" in result.out
    assert key not in result.out + result.err and OTHER not in result.out + result.err
    assert "2 found" in result.err


def test_cli_finds_a_key_in_a_kubernetes_secret(stored: tuple[Cli, str], tmp_path: Path) -> None:
    cli, key = stored
    encoded = base64.b64encode(key.encode()).decode()
    (tmp_path / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: openai\ndata:\n"
        f"  OPENAI_API_KEY: {encoded}\n"
    )
    result = cli("scan", str(tmp_path))
    assert result.code == 1
    assert f"secret.yaml:6: work-1 (base64) ({Secret(key).masked})" in result.out
    for leaked in (key, encoded):
        assert leaked not in result.out + result.err


def test_cli_clean_tree_exits_0(stored: tuple[Cli, str], tmp_path: Path) -> None:
    cli, _ = stored
    (tmp_path / "ok.txt").write_text("nothing here\n")
    result = cli("scan", str(tmp_path / "ok.txt"))
    assert (result.code, result.out) == (0, "")


def test_cli_finds_the_vault_identity(stored: tuple[Cli, str], tmp_path: Path) -> None:
    cli, _ = stored
    identity = cli.ok("identity", "export").out.strip()
    (tmp_path / "key.txt").write_text(f"# backup\n{identity}\n")
    result = cli("scan", str(tmp_path))
    assert result.code == 1
    assert ":2: your age identity (AGE-SECRET-KEY-1…" in result.out
    assert identity not in result.out + result.err


def test_cli_git_and_json(stored: tuple[Cli, str], tmp_path: Path) -> None:
    cli, key = stored
    repo = new_repo(tmp_path / "repo")
    sha = commit(repo, {"app.py": f"KEY = '{key}'\n"})
    git(repo, "rm", "-q", "app.py")
    git(repo, "commit", "-q", "-m", "oops")
    result = cli("scan", str(repo), "--git", "--json")
    assert result.code == 1
    data = json.loads(result.out)
    assert data["findings"] == [
        {
            "path": "app.py",
            "line": 1,
            "name": "work-1",
            "masked": Secret(key).masked,
            "known": True,
            "commit": sha,
        }
    ]
    assert data["commits"] == 2
    assert key not in result.out + result.err


def test_cli_no_vault_needs_no_passphrase(vault_cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text(OTHER)
    locked = {"KEYVAULT_PASSPHRASE": ""}
    found = vault_cli("scan", "--no-vault", str(tmp_path / "x.txt"), env=locked)
    assert found.code == 1 and "unknown key" in found.out
    refused = vault_cli("scan", str(tmp_path / "x.txt"), env=locked)
    assert refused.code == 3 and refused.out == ""
    assert "--no-vault" in refused.err or "unlock" in refused.err


def test_cli_as_a_git_pre_commit_hook(stored: tuple[Cli, str], tmp_path: Path) -> None:
    """The hook docs/security.md describes, as a plain .git/hooks/pre-commit script."""
    cli, key = stored
    repo = new_repo(tmp_path / "repo")
    commit(repo, {"README": "hi\n"})
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(
        "#!/bin/sh\n"
        f"git diff --cached --name-only -z --diff-filter=ACM | "
        f"xargs -0 -r env PYTHONPATH={REPO} {sys.executable} -m vault scan\n"
    )
    hook.chmod(0o755)
    (repo / "settings.py").write_text(f"KEY = '{key}'\n")
    git(repo, "add", "settings.py")
    env = {**cli.env, **GIT_ENV}
    refused = subprocess.run(
        ["git", "-C", str(repo), "commit", "-m", "leak"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert refused.returncode != 0
    assert "settings.py:1: work-1" in refused.stdout + refused.stderr
    assert key not in refused.stdout + refused.stderr
    (repo / "settings.py").write_text("KEY = os.environ['OPENAI_API_KEY']\n")
    git(repo, "add", "settings.py")
    accepted = subprocess.run(
        ["git", "-C", str(repo), "commit", "-qm", "fixed"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert accepted.returncode == 0, accepted.stderr
