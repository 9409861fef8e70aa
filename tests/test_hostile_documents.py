"""Documents that decrypt but are not a sound keyvault document (a bug, a hand edit, a forged
file from someone holding only the public keys): every command either works or says
"damaged" (exit 4) in one line naming the field's path, never its value, never a traceback.

The documents go through the real age layer (sealed to the test's identity) and the real
command line (in-process: thousands of commands). Issue 12's reproductions are named cases;
a hypothesis suite crafts 1,000+ more by mutating a sound document at random places.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.inprocess import Ran, run_cli
from vault import age

IDENTITY = age.X25519Identity.generate()
CANARY = "sk-proj-" + "C4n4ry" * 12 + "T3BlbkFJ" + "x" * 20
OTHER = "sk-" + "Z" * 40
PROJECT = "work"
NAME = "main"
AT = "2026-11-30T12:00:00Z"
BIG_INT = "\0BIGINT\0"  # placeholders: JSON text that json.dumps cannot write itself
HUGE_FLOAT = "\0E999\0"
TEAM_KEY = "A" * 42 + "E="  # canonical base64 of 32 bytes


def sound() -> dict[str, Any]:
    """A document with one of everything, as keyvault writes it."""
    main = {
        "id": "00000000000000a1",
        "name": NAME,
        "secret": CANARY,
        "provider": "openai",
        "kind": "api",
        "project": PROJECT,
        "created": "2026-01-02",
        "phone": "+447911123456",
        "card": "WildCard ****1234",
        "credit_usd": 12.5,
        "org_id": "org-abcdef12",
        "project_id": "proj_abcdef12",
        "base_url": "https://relay.example.com/v1",
        "tags": ["a"],
        "note": "two\nlines",
        "status": "active",
        "priority": 1,
        "health": {"status": "ok", "checked_at": AT, "probe": "models", "attempts": 1},
        "added_at": AT,
        "updated_at": AT,
    }
    spare = {"id": "00000000000000a2", "name": "spare", "secret": OTHER, "project": PROJECT}
    admin = {
        "id": "00000000000000a3",
        "name": "adm",
        "secret": "sk-admin-" + "A" * 40,
        "kind": "admin",
    }
    return {
        "format": "keyvault/1",
        "generation": 5,
        "recipients": [{"name": "owner", "recipient": IDENTITY.recipient().to_string()}],
        "entries": [main, spare, admin],
        "history": [
            {"at": AT, "action": "init"},
            {
                "at": AT,
                "action": "add",
                "entry": "00000000000000a1",
                "name": NAME,
                "project": PROJECT,
            },
        ],
        "exports": [{"kind": "dotenv", "project": PROJECT, "path": "/nonexistent/.env"}],
        "service_accounts": [
            {
                "rid": "00000000000000b1",
                "state": "intent",
                "project": PROJECT,
                "project_id": "proj_abcdef12",
                "admin": "00000000000000a3",
                "name": "keyvault-work-1",
                "planned_at": AT,
            }
        ],
        "phones": [
            {
                "number": "+33612345678",
                "past": [{"entry": "00000000000000a9", "name": "gone", "removed_at": AT}],
            }
        ],
        "team": {
            "vault_id": "00000000000000c1",
            "secrets": [{"id": "00000000000000d1", "key": TEAM_KEY, "added_at": AT}],
        },
    }


def encode(doc: Any) -> bytes:
    text = json.dumps(doc, ensure_ascii=True, allow_nan=True)
    text = text.replace(json.dumps(BIG_INT), "9" * 5000).replace(json.dumps(HUGE_FLOAT), "1e999")
    return text.encode()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile") / "kv"
    folder.mkdir(mode=0o700)
    return folder


def environment(home: Path) -> dict[str, str]:
    return {
        "KEYVAULT_HOME": str(home),
        "KEYVAULT_IDENTITY": IDENTITY.to_string(),
        "PATH": "/usr/bin:/bin",
        "HOME": str(home.parent),
        "XDG_RUNTIME_DIR": str(home.parent),
    }


def plant(home: Path, doc: Any, *, forget_pin: bool = True) -> None:
    """`doc` as this home's vault.age. The machine forgets its trust pin first (each
    document is a new vault to it): this suite is about reading documents, not about trust
    (except where `forget_pin` is False)."""
    (home / "vault.age").write_bytes(age.encrypt(encode(doc), [IDENTITY.recipient()]))
    (home / "vault.age.bak").unlink(missing_ok=True)
    if forget_pin:
        shutil.rmtree(home.parent / ".local" / "state" / "keyvault", ignore_errors=True)


READS = (
    ["list"],
    ["list", "--json"],
    ["show", NAME, "--json"],
    ["get", NAME],
    ["env", "--project", PROJECT, "--shell", "bash"],
    ["log", "--json"],
    ["phones", "--json"],
    ["rotate", "--project", PROJECT, "--dry-run", "--no-check"],
)


def check_clean(args: list[str], ran: Ran) -> None:
    """What every command owes a hostile document: an answer, never a crash or a leak."""
    assert ran.raised is None, f"{args} raised {ran.raised!r}"
    assert ran.code in (0, 1, 2, 3, 4, 5), (args, ran.code, ran.err)
    assert "Traceback" not in ran.err, (args, ran.err)
    assert CANARY not in ran.err and CANARY[8:30] not in ran.err, args
    if ran.code == 4:
        lines = ran.err.splitlines()
        assert lines[0].startswith("keyvault: error: "), ran.err
        assert len(lines) <= 2, ran.err


def run_everything(home: Path, doc: Any) -> dict[str, Ran]:
    plant(home, doc)
    env = environment(home)
    results = {}
    for args in READS:
        ran = run_cli(args, env=env, cwd=home)
        check_clean(args, ran)
        results[" ".join(args)] = ran
    opened = results["list"].code == 0
    for key, ran in results.items():  # one reader: a document opens for all or for none
        assert (ran.code == 4) == (not opened) or ran.code != 4, (key, ran.err)
    entries = doc.get("entries") if isinstance(doc.get("entries"), list) else []
    if opened and any(isinstance(e, dict) and e.get("name") == NAME for e in entries):
        edited = run_cli(["edit", NAME, "--note", "touched"], env=env, cwd=home)
        check_clean(["edit"], edited)
        after = run_cli(["list", "--json"], env=env, cwd=home)
        assert after.code == 0, f"a document that opened can no longer be read: {after.err}"
    return results


# --- issue 12's reproductions, by name ----------------------------------------------------------


def at(path: str, value: Any) -> dict[str, Any]:
    """The sound document with `path` (a.b[0].c) set to `value`."""
    doc = sound()
    *parents, last = re.findall(r"\w+|\[\d+\]", path)
    node: Any = doc
    for part in parents:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value
    return doc


CASES = {
    "a 5,000-digit generation": (
        at("generation", BIG_INT),
        "generation is a number JSON cannot carry",
    ),
    "a 5,000-digit priority": (
        at("entries[0].priority", BIG_INT),
        "entries[0].priority is a number",
    ),
    "a negative generation": (at("generation", -1), "generation is not a whole number"),
    "a history item that is no object": (at("history[1]", "add"), "history[1] is not an object"),
    "malformed exports": (at("exports[0]", {"kind": "dotenv", "path": 7}), "exports[0].path"),
    "credit Infinity": (
        at("entries[0].credit_usd", float("inf")),
        "entries[0].credit_usd is a number",
    ),
    "credit NaN": (at("entries[0].credit_usd", float("nan")), "entries[0].credit_usd is a number"),
    "credit 1e999": (at("entries[0].credit_usd", HUGE_FLOAT), "entries[0].credit_usd is a number"),
    "negative credit": (
        at("entries[0].credit_usd", -5),
        "entries[0].credit_usd is not a finite amount",
    ),
    "a lone surrogate in a secret": (
        at("entries[1].secret", "sk-\ud800" + "x" * 30),
        "entries[1].secret is not valid unicode",
    ),
    "an active admin key": (
        at("entries[2].status", "active"),
        "entries[2]: an admin key cannot be active",
    ),
    "an id that is not hex": (
        at("entries[1].id", "../../etc"),
        "entries[1].id is not 16 hex digits",
    ),
    "two entries with one id": (at("entries[1].id", "00000000000000a1"), "share the id"),
    "a plain-http base URL off loopback": (
        at("entries[0].base_url", "http://evil.example/v1"),
        "entries[0].base_url",
    ),
    "a relative export path": (
        at("exports[0].path", "../.bashrc"),
        "exports[0].path is not an absolute path",
    ),
    "an unknown mint state": (
        at("service_accounts[0].state", "exploded"),
        "service_accounts[0].state",
    ),
    "no recipients": (at("recipients", []), "the vault lists no recipients"),
    "a bidi override in a project": (at("entries[1].project", "work\u202e"), "entries[1].project"),
    # issue 15: the team record
    "a team that is no object": (at("team", ["x"]), "team is not an object"),
    "a vault id that is not hex": (at("team.vault_id", "../x"), "team.vault_id is not 16 hex"),
    "a team without secrets": (at("team.secrets", []), "team.secrets is not a list of 1"),
    "a team secret that is no object": (at("team.secrets[0]", "k"), "team.secrets[0] is not"),
    "a team secret of 31 bytes": (
        at("team.secrets[0].key", "A" * 40 + "E=="),
        "team.secrets[0].key is not a base64 team secret",
    ),
    "a team secret that is not base64": (
        at("team.secrets[0].key", "!" * 43 + "="),
        "team.secrets[0].key is not a base64",
    ),
    "a team secret id that is not hex": (
        at("team.secrets[0].id", "zz"),
        "team.secrets[0].id is not 16 hex",
    ),
    "two team secrets with one id": (
        at("team.secrets", [{"id": "00000000000000d1", "key": TEAM_KEY}] * 2),
        "team.secrets holds two secrets with one id",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_reproduction_is_damaged_with_its_path(case: str, home: Path) -> None:
    doc, words = CASES[case]
    results = run_everything(home, doc)
    listed = results["list"]
    assert listed.code == 4, (case, listed.code, listed.err)
    first = listed.err.splitlines()[0]
    assert first.startswith("keyvault: error: vault.age: ")
    assert words in first, (case, first)


def test_the_sound_document_opens_everywhere(home: Path) -> None:
    results = run_everything(home, sound())
    assert {k: r.code for k, r in results.items()} == dict.fromkeys(results, 0)
    assert results["get main"].out == CANARY + "\n"


def test_a_forged_export_path_is_never_written(home: Path, tmp_path: Path) -> None:
    """The document names a file `dotenv` never wrote: a change of the project's key must not
    append the key to it (it holds no key of the project)."""
    victim = tmp_path / "victim.sh"
    victim.write_text("echo hello\n")
    doc = at("exports[0].path", str(victim))
    plant(home, doc)
    env = environment(home)
    ran = run_cli(
        ["rotate", "--project", PROJECT, "--to", "spare", "--no-check"], env=env, cwd=home
    )
    assert ran.code == 1, ran.err  # rotated, but a registered file could not follow
    assert "holds no OPENAI_API_KEY keyvault wrote" in ran.err
    assert victim.read_text() == "echo hello\n"


def test_a_document_without_the_pinned_team_secret_is_refused(home: Path) -> None:
    """Once this machine pinned the team secret, a sound document without it (written with
    only the public key) is refused by every command, and nothing is printed on stdout."""
    run_everything(home, sound())  # pins the team record
    for forged in (
        {k: v for k, v in sound().items() if k != "team"},
        at("team.secrets[0].key", "B" * 42 + "E="),
        at("team.vault_id", "00000000000000c2"),
    ):
        plant(home, forged, forget_pin=False)
        for args in READS:
            ran = run_cli(args, env=environment(home), cwd=home)
            check_clean(args, ran)
            assert ran.code == 4 and ran.out == "", (args, ran.err)
            assert "not written by a member" in ran.err or "another vault" in ran.err


# --- the generated suite ------------------------------------------------------------------------

SPECIALS = st.sampled_from(
    [
        None,
        True,
        -1,
        0,
        2**63,
        -(2**63),
        1.5,
        float("inf"),
        float("-inf"),
        float("nan"),
        BIG_INT,
        HUGE_FLOAT,
        "",
        " ",
        "\ud800",
        "sk-\udfff",
        "\x1b]52;c;cHduZWQ=\x07",
        "\u202eevil",
        "x" * 20000,
        "工作",
        "../../etc/passwd",
        "http://evil.example/v1",
        "active",
        "admin",
        "00000000000000a1",
        [],
        {},
        [[[[[[[[[[1]]]]]]]]]],
        {"status": "ok"},
    ]
)
VALUES = st.one_of(
    SPECIALS.map(copy.deepcopy),  # the sampled lists and dicts are shared: never mutate them
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def mutate(doc: Any, data: st.DataObject) -> None:
    """One change at a random place: replace, delete, add an unknown key, or duplicate."""
    node: Any = doc
    for _ in range(data.draw(st.integers(0, 4))):
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        containers = [(k, v) for k, v in children if isinstance(v, dict | list) and v]
        if not containers:
            break
        _, node = data.draw(st.sampled_from(containers))
    if isinstance(node, dict) and node:
        key = data.draw(st.sampled_from(sorted(node)))
        how = data.draw(st.sampled_from(["replace", "delete", "unknown"]))
        if how == "replace":
            node[key] = data.draw(VALUES)
        elif how == "delete":
            del node[key]
        else:
            node[data.draw(st.text(min_size=1, max_size=8))] = data.draw(VALUES)
    elif isinstance(node, list) and node:
        index = data.draw(st.integers(0, len(node) - 1))
        how = data.draw(st.sampled_from(["replace", "duplicate", "delete"]))
        if how == "replace":
            node[index] = data.draw(VALUES)
        elif how == "duplicate":
            node.append(copy.deepcopy(node[index]))
        else:
            del node[index]


@pytest.mark.slow
@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_thousand_hostile_documents(home: Path, data: st.DataObject) -> None:
    doc = sound()
    for _ in range(data.draw(st.integers(1, 3))):
        mutate(doc, data)
    results = run_everything(home, doc)
    event("opened" if results["list"].code == 0 else f"refused with exit {results['list'].code}")
