"""The directory hook where a stranger's shell differs from ours: folder names that need
quoting (a line break, quotes, `$`, a leading dash), a folder deleted under the shell, and the
strict options people keep in their rc files (`set -eu`, zsh's nounset with ksh_arrays and
warn_create_global). Uses the shells and the logging shim of test_hook_shells.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.test_hook_shells import SHELLS, hooked, shell_for
from tests.helpers import Cli

__all__ = ["hooked"]  # the fixture, used by name

Hooked = tuple[dict[str, str], Path, dict[str, str]]

# each a folder holding a project file; `in` below it is where the shell goes
NAMES = ("with space", "q'uote", 'd"q', "$HOME", "`id`", "line\nbreak", "-dash", "ünï", "*")


def quoted(shell: str, path: Path) -> str:
    if shell == "fish":  # only \\ and \' are escapes inside fish's single quotes
        return "'" + str(path).replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + str(path).replace("'", "'\\''") + "'"


def noise(stderr: str) -> list[str]:
    """stderr lines that are not the shim's own (`/bin/sh` in a deleted folder)."""
    return [line for line in stderr.splitlines() if "getcwd() failed" not in line]


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_folder_names_that_need_quoting(
    hooked: Hooked, vault_cli: Cli, tmp_path: Path, shell: str
) -> None:
    """fish split a folder name at its line break (a command substitution makes a list of
    lines), so the project file above `line\\nbreak/in` was never found."""
    _, _, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    script = shell_for(shell, hooked)
    for number, name in enumerate(NAMES):
        inner = tmp_path / "odd" / name / "in"
        inner.mkdir(parents=True)
        (inner.parent / ".keyvault.toml").write_text('project = "demo"\n')
        script.run(f"cd {quoted(shell, inner)}").prompt().show(f"IN{number}")
        script.cd("/").show(f"OUT{number}")
    got = script.results()
    assert {got[f"IN{n}"] for n in range(len(NAMES))} == {keys["demo"]}, got
    assert {got[f"OUT{n}"] for n in range(len(NAMES))} == {"unset"}, got
    assert noise(script.stderr) == []


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_a_folder_deleted_under_the_shell_gives_the_users_values_back(
    hooked: Hooked, vault_cli: Cli, shell: str
) -> None:
    """`rm -rf` of the project from another terminal: the key stayed exported and every
    hook-env said "cannot write the output" (os.getcwd() failed); fish's `pwd -P` complained."""
    _, project, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    script = shell_for(shell, hooked)
    set_mine = "set -gx OPENAI_API_KEY mine" if shell == "fish" else "export OPENAI_API_KEY=mine"
    script.run(set_mine).cd(project / "sub").show("IN")
    script.run(f"rm -rf {quoted(shell, project)}").prompt().show("GONE")
    script.show("PROJECT", "KEYVAULT_HOOK_PROJECT").prompt().prompt().calls("CALLS")
    got = script.results()
    assert got == {"IN": keys["demo"], "GONE": "mine", "PROJECT": "unset", "CALLS": "2"}
    assert noise(script.stderr) == []


def test_commands_in_a_deleted_folder_say_so(vault_cli: Cli, tmp_path: Path) -> None:
    """The project a deleted folder meant is unknowable: `env` must not fall back to the
    default project's key, and must not blame the output."""

    def in_a_deleted_folder(command: str) -> subprocess.CompletedProcess[str]:
        gone = tmp_path / command
        gone.mkdir()
        script = f"cd {quoted('bash', gone)} && rmdir ../{command} && python -m vault {command}"
        return subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, env=vault_cli.env, check=False
        )

    env_run, list_run = in_a_deleted_folder("env"), in_a_deleted_folder("list")
    assert env_run.returncode == 1 and env_run.stdout == ""
    assert "the current folder no longer exists" in env_run.stderr
    assert "--project" in env_run.stderr and "cannot write" not in env_run.stderr
    assert list_run.returncode == 0, list_run.stderr  # needs no project


@pytest.mark.slow
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_strict_shell_options_load_and_run_the_hook_quietly(
    hooked: Hooked, vault_cli: Cli, shell: str
) -> None:
    """zsh with `setopt nounset ksh_arrays` failed to load the hook ("precmd_functions:
    parameter not set"), and warn_create_global warned about the hook's own variables."""
    _, project, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    script = shell_for(shell, hooked)
    if shell == "bash":
        script.lines.insert(0, "set -eu -o pipefail")
    else:
        script.lines.insert(0, "setopt nounset err_exit pipefail ksh_arrays warn_create_global")
        script.lines.insert(1, "precmd_functions=(true)")
    script.cd(project).show("IN").cd("/").show("OUT").run("echo DONE=1")
    got = script.results()
    assert got == {"IN": keys["demo"], "OUT": "unset", "DONE": "1"}
    assert noise(script.stderr) == []


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_a_project_file_created_in_the_folder_counts_at_the_next_prompt(
    hooked: Hooked, vault_cli: Cli, tmp_path: Path, shell: str
) -> None:
    """The search ran once per change of folder while no file was found: a file written
    where the shell sat was ignored until a `cd`, while `keyvault env` used it at once."""
    _, _, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    plain = tmp_path / "plain"
    plain.mkdir()
    script = shell_for(shell, hooked)
    script.cd(plain).show("BEFORE").prompt().calls("QUIET")
    script.run("echo 'project = \"demo\"' > .keyvault.toml").prompt().show("CREATED")
    script.run("rm .keyvault.toml").prompt().show("REMOVED").prompt().calls("CALLS")
    got = script.results()
    assert got == {
        "BEFORE": "unset",
        "QUIET": "0",
        "CREATED": keys["demo"],
        "REMOVED": "unset",
        "CALLS": "2",
    }


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_a_cd_through_a_re_pointed_link_follows_the_new_folder(
    hooked: Hooked, vault_cli: Cli, tmp_path: Path, shell: str
) -> None:
    """`current -> v1` (project demo), re-pointed to v2 (project other), then `cd current`
    again: the same `$PWD`, another folder; the hook must not keep demo's key there."""
    _, _, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    for version, project in (("v1", "demo"), ("v2", "other")):
        (tmp_path / version).mkdir()
        (tmp_path / version / ".keyvault.toml").write_text(f'project = "{project}"\n')
    link = tmp_path / "current"
    link.symlink_to(tmp_path / "v1")
    repoint = f"ln -sfn {quoted(shell, tmp_path / 'v2')} {quoted(shell, link)}"
    script = shell_for(shell, hooked)
    script.cd(link).show("V1").prompt().run(repoint).prompt().show("STAYED")
    script.cd(link).show("V2")
    got = script.results()
    # the shell stays in v1's folder until it changes folder, as `keyvault env` there would
    assert got == {"V1": keys["demo"], "STAYED": keys["demo"], "V2": keys["other"]}

    # re-pointed before the hook first looked: it must watch v1's file, where the shell is
    link.unlink()
    link.symlink_to(tmp_path / "v1")
    edit = f"echo 'project = \"other\"' > {quoted(shell, tmp_path / 'v1' / '.keyvault.toml')}"
    script = shell_for(shell, hooked)
    script.run(f"cd {quoted(shell, link)}").run(repoint).prompt().show("FIRST")
    script.run(edit).prompt().show("EDITED")
    got = script.results()
    assert got == {"FIRST": keys["demo"], "EDITED": keys["other"]}


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_a_project_file_edited_into_nonsense_gives_the_users_values_back(
    hooked: Hooked, vault_cli: Cli, shell: str
) -> None:
    """hook-env failed on the unreadable file and changed nothing, so the shell kept demo's
    key for a folder whose file no longer names demo (`keyvault env` there fails)."""
    _, project, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    project_file = quoted(shell, project / ".keyvault.toml")
    set_mine = "set -gx OPENAI_API_KEY mine" if shell == "fish" else "export OPENAI_API_KEY=mine"
    script = shell_for(shell, hooked)
    script.run(set_mine).cd(project).show("IN")
    script.run(f"echo 'project = ' > {project_file}").prompt().show("BROKEN").prompt().prompt()
    script.run(f"echo 'project = \"demo\"' > {project_file}").prompt().show("MENDED")
    got = script.results()
    assert got == {"IN": keys["demo"], "BROKEN": "mine", "MENDED": keys["demo"]}
    said = [line for line in noise(script.stderr) if "not exporting" in line]
    assert len(said) == 1 and "cannot read" in said[0], script.stderr


@pytest.mark.slow
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_leaving_never_fails_on_a_value_that_is_not_utf8(
    hooked: Hooked, vault_cli: Cli, shell: str
) -> None:
    """The user's OPENAI_ORG_ID held a byte that is not UTF-8: giving it back failed all of
    `hook-env` on leaving, so the project's key stayed in the shell outside its folder."""
    _, project, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    script = shell_for(shell, hooked)
    script.run("export OPENAI_API_KEY=mine OPENAI_ORG_ID=$'org\\xff'")
    script.cd(project).show("IN").show("IN_ORG", "OPENAI_ORG_ID")
    script.cd("/").show("OUT").show("OUT_ORG", "OPENAI_ORG_ID").show(
        "LEFT", "KEYVAULT_HOOK_PROJECT"
    )
    got = script.results()
    assert got == {
        "IN": keys["demo"],
        "IN_ORG": "unset",
        "OUT": "mine",
        "OUT_ORG": "unset",
        "LEFT": "unset",
    }
    assert noise(script.stderr) == [
        "keyvault: warning: the value of OPENAI_ORG_ID is not valid unicode text:"
        " it is unset rather than given back"
    ]
