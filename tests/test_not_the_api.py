"""Answers that did not come from the API: a CDN's block page, a proxy's or captive portal's
login, a body cut short, a wait no server means. None of them is a verdict on the key, so none
may disable a key, make a project due or rotate away from a working key (real CLI processes,
the fake server on 127.0.0.1)."""

from __future__ import annotations

import json

import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import Cli, actives, add, by_name, open_vault, write_config

CLOUDFLARE = "Attention Required! | Cloudflare"


@pytest.mark.slow
def test_a_cdn_block_page_neither_rotates_nor_disables(fake_openai: FakeOpenAI, cli: Cli) -> None:
    """The active key and a standby key sit behind Cloudflare's 403 page (the API's own host
    blocks this network); a third standby key works. `check --rotate` from cron must keep the
    active key and disable nothing, and still show what the page said."""
    write_config(cli.home, "[health]\ndisable_after = 1\n")
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    blocked = fake_openai.add_key("page", status=403, message=CLOUDFLARE)
    login = fake_openai.add_key("page", status=401, message="401 Authorization Required")
    add(kv, "main", blocked, project="work", base_url=url, activate=True)
    add(kv, "spare", login, project="work", base_url=url, priority=5)
    add(kv, "good", fake_openai.add_key("ok"), project="work", base_url=url)
    result = cli("check", "--rotate", "--json")
    assert result.code == 5, result.err  # not ok, but nothing to rotate for
    report = json.loads(result.out)
    statuses = {c["name"]: (c["status"], c["action"]) for c in report["checked"]}
    assert statuses == {
        "main": ("unexpected", None),
        "spare": ("unexpected", None),
        "good": ("ok", None),
    }
    assert report["rotate"]["rotations"] == []
    assert f'server said "{CLOUDFLARE}"' in result.err
    assert "http 403 with a non-json body, not an api verdict" in result.err
    doc = open_vault(cli.home).read()
    assert actives(doc, "work") == ["main"]
    spare = by_name(doc)["spare"]
    assert spare.status == "standby" and spare.health is not None
    assert spare.health.consecutive_failures == 0
    assert cli("rotate", "--due").code == 0  # and a later cron run agrees: nothing is due
    assert actives(open_vault(cli.home).read(), "work") == ["main"]
