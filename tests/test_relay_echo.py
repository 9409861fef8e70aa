"""Issue 13 item 11: a relay that echoes its key back altered (without its first characters,
short of its last one, cut in the middle) gets every long-enough piece of it masked, in what
`check` prints and in what the vault stores. A real relay on loopback, the real CLI.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable

import pytest

from tests.helpers import Cli
from tests.hostile_http import HostileServer

# a relay key that looks nothing like `sk-…`, so only the key itself can find its echoes
RELAY_KEY = "rk_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(45))

ECHOES: dict[str, Callable[[str], str]] = {
    "whole": lambda key: key,
    "without its first 3": lambda key: key[3:],
    "without its first 7": lambda key: key[7:],
    "short of its last": lambda key: key[:-1],
    "both ends cut": lambda key: key[5:-5],
    "middle only": lambda key: key[10:26],
    "in two halves": lambda key: f"{key[:24]} ... {key[24:]}",
}


def pieces(secret: str, size: int = 12) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


@pytest.mark.parametrize("echo", sorted(ECHOES))
def test_an_echoed_relay_key_is_masked_in_output_and_storage(vault_cli: Cli, echo: str) -> None:
    with HostileServer("echo-key", echo=ECHOES[echo]) as relay:
        vault_cli.add("relay-1", RELAY_KEY, "--provider", "relay", "--base-url", f"{relay.url}/v1")
        checked = vault_cli("check", "relay-1", "--json")
        assert relay.authorization == RELAY_KEY  # it really was sent the key, and echoed it
    assert checked.code == 5
    row = json.loads(checked.out)[0]
    assert row["status"] == "invalid"
    assert "[masked]" in row["message"] or "…" in row["message"]
    shown = vault_cli.ok("show", "relay-1", "--json").out
    listed = vault_cli.ok("list", "--json").out
    for text in (checked.out, checked.err, shown, listed):
        leaked = [p for p in pieces(RELAY_KEY) if p in text]
        assert leaked == [], f"{echo}: {leaked[:2]}"
