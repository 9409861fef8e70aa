"""Lists that fit: `list` in 80 columns (`--wide` for all), sorts, filters, the count and
empty lines; the cards view; spare phones; `list --json | head -1` under pipefail."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cli.table_width import display_width
from tests.helpers import Cli, make_key, open_vault
from vault.model.health import HealthRecord, HealthStatus

pytestmark = pytest.mark.slow  # a stocked vault through the real CLI per case

UK, US, FR = "+447911123456", "+14155552671", "+33612345678"
LONG = "a-very-long-name-for-a-key-that-someone-typed-in-full-detail"


@pytest.fixture
def stocked(vault_cli: Cli) -> Cli:
    """Keys across projects, cards, phones, credit and health verdicts."""
    cli = vault_cli
    wild = ("--card", "WildCard ****1234")
    cli.add(
        "work-main",
        None,
        "--project",
        "work",
        "--phone",
        UK,
        *wild,
        "--credit",
        "20",
        "--created",
        "2025-03-01",
        "--tag",
        "ci",
    )
    cli.add(
        "work-spare",
        None,
        "--project",
        "work",
        "--phone",
        UK,
        *wild,
        "--credit",
        "5",
        "--created",
        "2025-01-01",
    )
    cli.add(
        LONG,
        None,
        "--project",
        "一个非常长的项目名称用于测试对齐",
        "--card",
        "Depay ****9999",
        "--credit",
        "12.5",
        "--created",
        "2025-02-01",
        "--tag",
        "ci",
    )
    cli.add("home-1", None, "--project", "home", "--phone", US)
    kv = open_vault(cli.home)

    def mark(doc):  # type: ignore[no-untyped-def]
        at = "2026-01-02T03:04:05Z"
        doc.store_health(doc.find("work-spare"), HealthRecord(HealthStatus.INVALID, at), at=at)
        doc.store_health(doc.find("home-1"), HealthRecord(HealthStatus.OK, at), at=at)
        main = doc.find("work-main")
        doc.set_credit(main, 17.5, at=at, source="balance")  # spent 2.50
        doc.set_credit(main, 30.0, at=at, source="balance")  # recharged: not negative spend
        doc.set_credit(main, 29.0, at=at, source="balance")  # spent 1.00

    kv.transact(mark)
    return cli


def names(result_out: str) -> list[str]:
    lines = result_out.splitlines()
    return [line.split()[0] for line in lines[1:-1]]


def test_list_fits_80_columns_and_wide_shows_everything(stocked: Cli) -> None:
    table = stocked.ok("list").out.splitlines()
    assert max(display_width(line) for line in table) <= 80
    assert table[0].split() == ["NAME", "PROJECT", "STATUS", "KEY", "CREDIT", "HEALTH"]
    long_row = next(line for line in table if line.startswith("a-very"))
    assert "…" in long_row  # the name was cut to fit, and says so
    assert table[-1] == "4 keys: 3 active, 1 standby"
    wide = stocked.ok("list", "--wide").out.splitlines()
    assert wide[0].split()[:9] == [
        "NAME",
        "PROJECT",
        "STATUS",
        "KEY",
        "PHONE",
        "CARD",
        "CREATED",
        "CREDIT",
        "HEALTH",
    ]
    assert any(LONG in w for w in wide)
    assert any("WildCard ****1234" in w and UK in w and "2025-03-01" in w for w in wide)
    wider = stocked.ok("list", env={"COLUMNS": "200"}).out.splitlines()
    assert any(LONG in w for w in wider)


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        ("name", ["a-very…", "home-1", "work-main", "work-spare"]),
        ("project", ["home-1", "work-main", "work-spare", "a-very…"]),
        ("created", ["work-spare", "a-very…", "work-main", "home-1"]),
        ("credit", ["work-spare", "a-very…", "work-main", "home-1"]),
        ("health", ["work-spare", "home-1", "a-very…", "work-main"]),
    ],
)
def test_sort_orders(stocked: Cli, sort: str, order: list[str]) -> None:
    listed = json.loads(stocked.ok("list", "--sort", sort, "--json").out)
    got = [e["name"] for e in listed]
    assert [n if not n.startswith("a-very") else "a-very…" for n in got] == order


def test_filters_and_typos(stocked: Cli) -> None:
    def listed(*argv: str) -> list[str]:
        return [e["name"] for e in json.loads(stocked.ok("list", *argv, "--json").out)]

    assert listed("--status", "standby") == ["work-spare"]
    assert listed("--tag", "ci") == ["work-main", LONG]
    assert listed("--phone", "0044 7911 123456") == ["work-main", "work-spare"]
    assert listed("--card", "1234") == ["work-main", "work-spare"]
    assert listed("--card", "depay") == [LONG]
    assert listed("--health", "invalid") == ["work-spare"]
    assert listed("--health", "unchecked", "--project", "work") == ["work-main"]
    assert listed("--tag", "ci", "--card", "wildcard") == ["work-main"]
    for argv, words in (
        (["--tag", "cii"], "did you mean 'ci'?"),
        (["--tag", "nightly"], "tags on file: ci"),
        (["--card", "4321"], "cards on file: Depay ****9999, WildCard ****1234"),
        (["--phone", FR], f"no key has the phone '{FR}'"),
        (["--health", "sick"], "invalid value for '--health'"),
    ):
        refused = stocked("list", *argv)
        assert refused.code in (1, 2) and refused.out == ""
        assert words in refused.err, refused.err
    nothing = stocked.ok("list", "--status", "disabled")
    assert nothing.out == "no keys match (4 in the vault)\n"


def test_an_empty_vault_says_how_to_start(vault_cli: Cli) -> None:
    out = vault_cli.ok("list").out
    assert out.startswith("no keys yet: add one with `keyvault add NAME`")
    assert "keyvault import" in out
    assert vault_cli.ok("list", "--json").out == "[]\n"
    assert vault_cli.ok("cards").out.startswith("no keys yet")


def test_cards_view_sums_keys_credit_and_spend(stocked: Cli) -> None:
    rows = json.loads(stocked.ok("cards", "--json").out)
    wild = [r for r in rows if r["card"] == "WildCard ****1234"]
    assert wild[0] == {
        "card": "WildCard ****1234",
        "project": None,
        "keys": 2,
        "active": 1,
        "credit_usd": 34.0,
        "spend_usd": 3.5,
    }
    assert wild[1]["project"] == "work" and wild[1]["keys"] == 2
    no_card = [r for r in rows if r["card"] is None]
    assert no_card[0]["keys"] == 1 and no_card[0]["credit_usd"] is None
    table = stocked.ok("cards").out.splitlines()
    assert table[0].split() == ["CARD", "PROJECT", "KEYS", "ACTIVE", "CREDIT", "SPEND"]
    assert any(line.startswith("WildCard ****1234") and "$34.00" in line for line in table)
    assert any("(no card)" in line for line in table)
    assert max(display_width(line) for line in table) <= 80


def test_spare_phones_are_recorded_and_offered(stocked: Cli) -> None:
    added = stocked.ok("phones", "add", "0033 6 12 34 56 78", "--note", "spare SIM")
    assert added.out == f"added phone {FR} (free slots: 2)\n"
    phones = {p["phone"]: p for p in json.loads(stocked.ok("phones", "--json").out)}
    assert phones[FR]["used"] == 0 and phones[FR]["note"] == "spare SIM"
    assert any(FR in line and "(spare)" in line for line in stocked.ok("phones").out.splitlines())
    again = stocked("phones", "add", FR)
    assert again.code == 1 and "already on file" in again.err
    full = stocked("add", "third", "--phone", UK, input=make_key())
    assert full.code == 1 and FR in full.err  # the hint offers the spare
    bad = stocked("phones", "add", "12345")
    assert bad.code == 2 and "country code" in bad.err


def test_a_spare_phone_typed_in_groups_without_quotes(stocked: Cli) -> None:
    """`keyvault phones add 0044 7911 123456` as the help and usage.md show it, unquoted."""
    added = stocked.ok("phones", "add", "0033", "6", "12", "34", "56", "78", "--note", "spare SIM")
    assert added.out == f"added phone {FR} (free slots: 2)\n"
    phones = {p["phone"]: p for p in json.loads(stocked.ok("phones", "--json").out)}
    assert phones[FR]["note"] == "spare SIM"
    missing = stocked("phones", "add")
    assert missing.code == 2 and "NUMBER" in missing.err


def test_list_json_into_head_exits_0_under_pipefail(vault_cli: Cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = ["name,key,project"] + [f"k{n},{make_key()},bulk" for n in range(400)]
    sheet = tmp_path / "keys.csv"
    sheet.write_text("\n".join(rows) + "\n")
    vault_cli.ok("import", str(sheet))
    assert len(vault_cli.ok("list", "--json").out) > 100_000  # beyond a pipe's 64 KiB
    command = f"set -o pipefail; {sys.executable} -m vault list --json | head -1"
    for argv in (["bash", "-c", command], ["bash", "-c", command.replace("--json", "--wide")]):
        done = subprocess.run(
            argv, capture_output=True, text=True, env=vault_cli.env, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
