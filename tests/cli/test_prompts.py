"""Prompts that forgive, on a real terminal (a pty): three passphrase tries, the key asked
only once the vault opened, a declined `rm` cancelled, Ctrl-D at the key prompt, and the
commands that say what is missing before asking anything."""

from __future__ import annotations

import json
import time

import pytest

from tests.cli.terminal import in_terminal
from tests.helpers import PASSPHRASE, Cli, make_key

pytestmark = pytest.mark.slow  # each case waits for a real process on a terminal


def person(cli: Cli) -> dict[str, str]:
    """The environment of someone at a terminal: no passphrase in the environment."""
    env = {k: v for k, v in cli.env.items() if k != "KEYVAULT_PASSPHRASE"}
    return {**env, "TERM": "dumb"}


def test_three_passphrase_tries_then_the_key_prompt_once(vault_cli: Cli) -> None:
    key = make_key()
    term = in_terminal(["add", "main", "--project", "work"], person(vault_cli))
    term.expect("passphrase: ")
    term.send("not it\n")
    term.expect("wrong passphrase, try again (2 left): ")
    term.send("still not it\n")
    term.expect("wrong passphrase, try again (1 left): ")
    term.send(PASSPHRASE + "\n")
    before_key = term.expect("key: ")
    assert "passphrase" not in before_key  # the key prompt comes once, after the vault opened
    term.send(key + "\n")
    assert term.wait() == 0, term.text
    assert "added main" in term.text
    assert key not in term.text  # hidden input is not echoed
    assert vault_cli.ok("get", "main").out == key + "\n"


def test_three_wrong_passphrases_end_with_exit_3_and_no_key_asked(vault_cli: Cli) -> None:
    term = in_terminal(["add", "main"], person(vault_cli))
    for prompt in ("passphrase: ", "(2 left): ", "(1 left): "):
        term.expect(prompt)
        term.send("wrong passphrase\n")
    assert term.wait() == 3
    assert "wrong passphrase or damaged identity" in term.text
    assert "key: " not in term.text
    assert json.loads(vault_cli.ok("list", "--json").out) == []


def test_a_typo_in_a_field_fails_before_the_key_is_asked(vault_cli: Cli) -> None:
    term = in_terminal(["add", "main", "--phone", "07911123456"], person(vault_cli))
    term.expect("passphrase: ")
    term.send(PASSPHRASE + "\n")
    assert term.wait() == 2
    assert "no country code" in term.text and "key: " not in term.text


def test_ctrl_d_at_the_key_prompt_says_no_key_given(vault_cli: Cli) -> None:
    term = in_terminal(["add", "main"], person(vault_cli))
    term.expect("passphrase: ")
    term.send(PASSPHRASE + "\n")
    term.expect("key: ")
    term.send("\x04")
    assert term.wait() == 1
    assert "keyvault: error: no key given" in term.text
    assert "interrupted" not in term.text


def test_declining_rm_is_cancelled_not_interrupted(vault_cli: Cli) -> None:
    vault_cli.add("keep", None, "--project", "work")
    term = in_terminal(["rm", "keep"], vault_cli.env)
    term.expect("remove keep? [y/N]: ")
    term.send("n\n")
    assert term.wait() == 1
    assert "keyvault: error: cancelled: 'keep' was not removed" in term.text
    assert "interrupted" not in term.text
    assert [e["name"] for e in json.loads(vault_cli.ok("list", "--json").out)] == ["keep"]
    accepted = in_terminal(["rm", "keep"], vault_cli.env)
    accepted.expect("remove keep? [y/N]: ")
    accepted.send("y\n")
    assert accepted.wait() == 0 and "removed keep" in accepted.text


def test_init_on_an_existing_vault_says_so_before_asking(vault_cli: Cli) -> None:
    term = in_terminal(["init"], person(vault_cli))
    assert term.wait(timeout=30) == 1
    assert "already holds a vault" in term.text
    assert "passphrase" not in term.text  # nothing was asked


def test_status_without_a_vault_says_there_is_none(cli: Cli) -> None:
    result = cli("status")
    assert result.code == 1
    assert result.err.splitlines() == [
        f"keyvault: error: no vault in {cli.home}",
        "keyvault: hint: create one with `keyvault init`",
    ]


def test_completion_without_a_shell_lists_the_shells(cli: Cli) -> None:
    result = cli("completion")
    assert result.code == 2 and result.out == ""  # `eval "$(keyvault completion)"` runs nothing
    for shell in ("bash", "zsh", "fish"):
        assert f"keyvault completion {shell} >" in result.err
    assert "keyvault: error: name a shell: bash, zsh or fish" in result.err


def test_env_in_a_terminal_reminds_that_it_is_for_eval(vault_cli: Cli) -> None:
    key = vault_cli.add("main", None, "--project", "work")
    term = in_terminal(["env", "--project", "work", "--shell", "bash"], vault_cli.env)
    assert term.wait() == 0
    reminder = "keyvault: warning: these lines are for your shell to run, not to read"
    assert f'{reminder}: eval "$(keyvault env)"' in term.text
    assert key in term.text  # the user asked for it; the reminder does not withhold it
    piped = vault_cli.ok("env", "--project", "work", "--shell", "bash")
    assert piped.err == ""  # in `eval "$(…)"` stdout is a pipe: no reminder
    fish = in_terminal(["env", "--project", "work", "--shell", "fish"], vault_cli.env)
    assert fish.wait() == 0 and "keyvault env | source" in fish.text


def test_a_session_unlocked_on_a_terminal_needs_no_further_prompt(vault_cli: Cli) -> None:
    vault_cli.add("main", None, "--project", "work")
    term = in_terminal(["unlock", "--ttl", "1m"], person(vault_cli))
    term.expect("passphrase: ")
    term.send("typo\n")
    term.expect("(2 left): ")
    term.send(PASSPHRASE + "\n")
    assert term.wait() == 0 and "unlocked until" in term.text
    try:
        started = time.monotonic()
        listed = in_terminal(["list"], person(vault_cli))
        assert listed.wait() == 0 and "main" in listed.text
        assert "passphrase" not in listed.text
        assert time.monotonic() - started < 20
    finally:
        vault_cli("lock")


@pytest.mark.parametrize(
    ("answer", "code", "last_lines"),
    [
        # Ctrl-D gives no answer: the default (no), not an interruption
        ("\x04", 1, ["remove keep? [y/N]: ", "keyvault: error: cancelled: 'keep' was not removed"]),
        # Ctrl-C: the error starts its own line, not after the terminal's ^C echo
        ("\x03", 130, ["remove keep? [y/N]: ^C", "keyvault: error: interrupted"]),
    ],
)
def test_ctrl_d_and_ctrl_c_at_the_rm_question(
    vault_cli: Cli, answer: str, code: int, last_lines: list[str]
) -> None:
    vault_cli.add("keep", None, "--project", "work")
    term = in_terminal(["rm", "keep"], vault_cli.env)
    term.expect("remove keep? [y/N]: ")
    time.sleep(0.2)  # the terminal in raw-enough mode: ^C must reach the prompt, not the spawn
    term.send(answer)
    assert term.wait() == code
    assert term.text.replace("\r\n", "\n").splitlines()[-2:] == last_lines
    assert [e["name"] for e in json.loads(vault_cli.ok("list", "--json").out)] == ["keep"]
