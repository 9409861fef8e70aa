"""Issue 13 item 10: a key (or an age identity, or a card number) pasted into a metadata
field is refused, through the real CLI, with a message that never repeats it and says that
the value is now in the shell history; nothing is saved. Metadata is shown unmasked by
`show`, `list` and --json, so a secret must never get there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Cli, Result, make_key

CARD = "4111 1111 1111 1111"  # the standard Visa test number (Luhn-valid)
# legacy-length keys fit a name, a tag or a project (64 characters at most)
SHORT = make_key("sk-", 20)
LONG = make_key()
IDENTITY = "AGE-SECRET-KEY-1" + "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L" * 2


# (label, the options that paste it, the pasted secret)
PASTES: list[tuple[str, list[str], str]] = [
    ("note", ["--note", f"backup key {LONG}"], LONG),
    ("note with a card", ["--note", f"paid with {CARD} exp 12/27"], CARD),
    ("base url", ["--base-url", f"https://relay.example/{LONG}/v1"], LONG),
    ("card label", ["--card", LONG], LONG),
    ("tag", ["--tag", SHORT], SHORT),
    ("tag with a card", ["--tag", CARD.replace(" ", "")], CARD),
    ("project", ["--project", SHORT], SHORT),
    ("provider", ["--provider", SHORT], SHORT),
    ("identity in a note", ["--note", IDENTITY], IDENTITY),
    # fields whose own checks used to quote (part of) the value in their error message
    ("priority", ["--priority", LONG], LONG),
    ("credit", ["--credit", CARD.replace(" ", "")], CARD),
    ("created", ["--created", SHORT], SHORT),
    ("org id", ["--org-id", LONG], LONG),
]


def fragments(secret: str) -> list[str]:
    """Every 12-character piece of `secret` (and its digits alone for a card)."""
    text = secret.replace(" ", "") if secret == CARD else secret
    return [text[i : i + 12] for i in range(len(text) - 11)]


def assert_refused_quietly(result: Result, secret: str) -> None:
    code, out, err = result.code, result.out, result.err
    assert code == 2, err
    assert out == ""
    assert "nothing was saved" in err and "shell history" in err
    for piece in fragments(secret):
        assert piece not in err, "the message repeats part of the secret"


@pytest.mark.parametrize(("label", "options", "secret"), PASTES, ids=[p[0] for p in PASTES])
def test_add_refuses_a_secret_in_a_metadata_field(
    vault_cli: Cli,
    snapshot: Callable[[Path], dict[str, bytes]],
    label: str,
    options: list[str],
    secret: str,
) -> None:
    before = snapshot(vault_cli.home)
    result = vault_cli("add", "k1", *options, input=make_key())
    assert_refused_quietly(result, secret)
    assert snapshot(vault_cli.home) == before


def test_a_key_as_the_entry_name_is_refused(vault_cli: Cli) -> None:
    assert_refused_quietly(vault_cli("add", SHORT, input=make_key()), SHORT)
    assert_refused_quietly(vault_cli("add", LONG, input=make_key()), LONG)  # too long, too


def test_edit_refuses_too_and_keeps_the_entry(vault_cli: Cli) -> None:
    vault_cli.add("k1", None, "--project", "p", "--note", "fine")
    assert_refused_quietly(vault_cli("edit", "k1", "--note", LONG), LONG)
    shown = json.loads(vault_cli.ok("show", "k1", "--json").out)
    assert shown["note"] == "fine"


def test_a_relay_key_that_is_not_key_shaped_is_refused_in_its_own_entry(vault_cli: Cli) -> None:
    relay_key = "r3lay" + "Q7x" * 12  # no sk- prefix: only comparing with the key finds it
    result = vault_cli(
        "add", "relay-1", "--provider", "relay", "--note", relay_key, input=relay_key
    )
    assert_refused_quietly(result, relay_key)


def test_errors_that_quote_input_mask_keys(vault_cli: Cli) -> None:
    """A key given where a name is looked up: the 'not found' line masks it."""
    for args in (["show", LONG], ["get", SHORT], ["rm", LONG, "--yes"], [LONG]):
        result = vault_cli(*args)
        assert result.code != 0
        for piece in fragments(LONG if LONG in args else SHORT):
            assert piece not in result.err, args


def test_ordinary_values_are_still_accepted(vault_cli: Cli) -> None:
    vault_cli.add(
        "k1",
        None,
        "--note",
        "sk-learn model; order 1234 5678; call +44 7911 123456",
        "--card",
        "WildCard ****1234",
        "--base-url",
        "https://gateway.ai.cloudflare.com/v1/0123456789abcdef0123456789abcdef/gw/openai",
        "--tag",
        "team-2026",
    )


def test_ids_that_happen_to_hold_a_luhn_valid_run_are_accepted(vault_cli: Cli) -> None:
    """A random project id made `mint --finish` fail: proj_dccf4ed680980203523485a4 holds
    680980203523485, 15 digits that pass Luhn. An id's own format check refuses anything
    that is not an id, so a card number cannot hide in one."""
    project_id, org_id = "proj_dccf4ed680980203523485a4", "org-4111111111111111abcd"
    vault_cli.add("k1", None, "--project-id", project_id, "--org-id", org_id)
    vault_cli.ok("edit", "k1", "--project-id", project_id)
    shown = vault_cli.ok("show", "k1").out
    assert project_id in shown and org_id in shown
    refused = vault_cli("edit", "k1", "--project-id", "4111 1111 1111 1111")
    assert refused.code != 0 and "4111" not in refused.err


def test_hide_secrets_masks_only_key_shapes() -> None:
    from vault.model.shapes import hide_secrets

    masked = hide_secrets(f"no entry named '{LONG}' near sk-learn")
    assert LONG not in masked and "sk-learn" in masked and LONG[-4:] in masked


def test_a_secret_identity_given_as_a_recipient_is_refused(vault_cli: Cli) -> None:
    result = vault_cli("recipients", "add", "ci", IDENTITY)
    assert_refused_quietly(result, IDENTITY)
    assert "ci" not in vault_cli.ok("recipients", "list").out.split()


def test_a_card_number_given_as_a_phone_is_not_quoted(vault_cli: Cli) -> None:
    result = vault_cli("add", "k1", "--phone", "+" + CARD, input=make_key())
    assert result.code == 2
    assert CARD.replace(" ", "")[:12] not in result.err.replace(" ", "")
