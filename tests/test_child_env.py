"""Issue 13 item 3: `keyvault exec` hands its command the project's key and nothing that
opens the vault. A real child process dumps the environment it received.

The same class for the other programs keyvault starts: git (tests/test_git_runner.py), the
unlock agent (an allow-list, tests/test_session.py), `ps` (below).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.helpers import PASSPHRASE, Cli

pytestmark = pytest.mark.skipif(os.name == "nt", reason="exec replaces the process on POSIX")

UNLOCK_VARIABLES = {  # vault/security/childenv.py, spelled out: the test stands on its own
    "KEYVAULT_PASSPHRASE",
    "KEYVAULT_PASSPHRASE_FILE",
    "KEYVAULT_IDENTITY",
    "KEYVAULT_IDENTITY_FILE",
    "KEYVAULT_NEW_PASSPHRASE",
    "KEYVAULT_NEW_PASSPHRASE_FILE",
}
DUMP = "import json, os; print(json.dumps(dict(os.environ)))"


def child_env(cli: Cli, *options: str, env: dict[str, str]) -> dict[str, str]:
    result = cli(
        "exec",
        "--no-masking",
        "--project",
        "work",
        *options,
        "--",
        sys.executable,
        "-c",
        DUMP,
        env=env,
    )
    assert result.code == 0, result.err
    dumped: dict[str, str] = json.loads(result.out)
    return dumped


@pytest.fixture
def unlock_ways(vault_cli: Cli, tmp_path: Path) -> dict[str, dict[str, str]]:
    """Every way of opening the vault without a prompt, each as an environment."""
    identity = vault_cli.ok("identity", "export").out.strip().splitlines()[-1]
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    passphrase_file.chmod(0o600)
    identity_file = tmp_path / "identity.txt"
    identity_file.write_text(identity + "\n")
    identity_file.chmod(0o600)
    return {
        "passphrase": {"KEYVAULT_PASSPHRASE": PASSPHRASE},
        "passphrase file": {
            "KEYVAULT_PASSPHRASE": "",
            "KEYVAULT_PASSPHRASE_FILE": str(passphrase_file),
        },
        "identity": {"KEYVAULT_PASSPHRASE": "", "KEYVAULT_IDENTITY": identity},
        "identity file": {"KEYVAULT_PASSPHRASE": "", "KEYVAULT_IDENTITY_FILE": str(identity_file)},
        "all at once": {
            "KEYVAULT_IDENTITY": identity,
            "KEYVAULT_PASSPHRASE_FILE": str(passphrase_file),
            "KEYVAULT_NEW_PASSPHRASE": "another passphrase",
        },
    }


@pytest.mark.slow
def test_exec_child_gets_the_key_and_nothing_that_opens_the_vault(
    vault_cli: Cli, unlock_ways: dict[str, dict[str, str]]
) -> None:
    key = vault_cli.add("work-1", None, "--project", "work")
    for way, env in unlock_ways.items():
        for options in ((), ("--pristine",)):
            seen = child_env(vault_cli, *options, env=env)
            assert seen["OPENAI_API_KEY"] == key, way
            leaked = sorted(name for name in seen if name.upper() in UNLOCK_VARIABLES)
            assert leaked == [], f"{way} {options}: {leaked}"
            values = set(env.values()) - {""}
            assert not values & set(seen.values()), f"{way} {options}"
            assert PASSPHRASE not in json.dumps(seen)


def test_exec_drops_an_inherited_openai_setting_the_entry_does_not_set(vault_cli: Cli) -> None:
    """A stale OPENAI_BASE_URL from the shell would send this project's key elsewhere."""
    key = vault_cli.add("work-1", None, "--project", "work")
    stale = {"OPENAI_BASE_URL": "https://other-relay.example/v1", "OPENAI_ORG_ID": "org-other1"}
    seen = child_env(vault_cli, env=stale)
    assert seen["OPENAI_API_KEY"] == key
    assert "OPENAI_BASE_URL" not in seen and "OPENAI_ORG_ID" not in seen
    assert seen["KEYVAULT_HOME"] == str(vault_cli.home)  # ordinary settings still pass


def test_exec_drops_the_cd_hooks_saved_values(vault_cli: Cli) -> None:
    """In a shell the cd hook manages, KEYVAULT_HOOK_SAVED holds the user's own OPENAI_*
    values, their own key among them: a command asked for the project's key gets neither
    that nor the hook's project."""
    key = vault_cli.add("work-1", None, "--project", "work")
    own = "sk-users-own-key-from-before-the-project-folder"
    hooked = {
        "KEYVAULT_HOOK_PROJECT": "other",
        "KEYVAULT_HOOK_SAVED": json.dumps({"OPENAI_API_KEY": own}),
    }
    for options in ((), ("--pristine",)):
        seen = child_env(vault_cli, *options, env=hooked)
        assert seen["OPENAI_API_KEY"] == key
        assert "KEYVAULT_HOOK_SAVED" not in seen and "KEYVAULT_HOOK_PROJECT" not in seen
        assert own not in json.dumps(seen)


def test_the_hook_variables_are_the_hooks() -> None:
    from vault.export import hook
    from vault.export.process import HOOK_VARIABLES

    assert set(HOOK_VARIABLES) == {hook.CURRENT, hook.SAVED}


def test_helper_programs_get_no_keyvault_or_openai_variable() -> None:
    from vault.security.childenv import for_tool

    environ = {
        "PATH": "/bin",
        "KEYVAULT_PASSPHRASE": "x",
        "keyvault_identity": "y",
        "OPENAI_API_KEY": "z",
        "HOME": "/h",
    }
    assert for_tool(environ) == {"PATH": "/bin", "HOME": "/h"}
