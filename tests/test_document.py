"""vault/document.py: the JSON inside vault.age, its versions, and the golden vaults.

Golden vaults (tests/golden/vN/) were written by the code of their day with
tests/golden/make_golden.py and are never regenerated: today's code must open them as they are.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_key, require_tool
from vault import age
from vault.errors import DamagedVault, UnsupportedFormat
from vault.model import codec as document
from vault.model.document import FORMAT, Entry, Kind, Status, VaultDoc
from vault.model.health import HealthRecord, HealthStatus
from vault.model.records import (
    Action,
    Event,
    ExportKind,
    ExportTarget,
    MintRecord,
    MintState,
    PastKey,
    Phone,
    Recipient,
)
from vault.model.secret import Secret
from vault.session.identity import UnlockSettings
from vault.session.unlock import Unlocker
from vault.store.config import Paths
from vault.store.keyvault import Keyvault

GOLDEN = Path(__file__).parent / "golden"


OWNER = {"name": "owner", "recipient": "age1" + "q" * 58}


def body(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "format": "keyvault/1",
        "generation": 3,
        "recipients": [OWNER],
        "entries": [],
        "history": [],
        "exports": [],
    }
    raw.update(overrides)
    return raw


def encode(raw: Any) -> bytes:
    return json.dumps(raw).encode()


def entry_dict(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": name.encode().hex()[:16].rjust(16, "0"),
        "name": name,
        "secret": make_key(),
        **fields,
    }


# --- round trip and versions ------------------------------------------------------------


def test_dumps_then_loads_keeps_every_field():
    key = make_key()
    e = Entry(
        id="00000000000000e1",
        name="main",
        secret=Secret(key),
        project="work",
        created="2025-01-02",
        phone="+447911123456",
        card="Visa ****1234",
        credit_usd=12.5,
        org_id="org-abcdef",
        project_id="proj_abcdef",
        base_url="https://relay.example.com/v1",
        tags=["a", "b"],
        note="two\nlines",
        status=Status.ACTIVE,
        priority=3,
        health=HealthRecord(
            HealthStatus.OK, "2026-11-20T00:00:00Z", ratelimit={"limit_requests": 3}
        ),
        added_at="2026-11-20T00:00:00Z",
        updated_at="2026-11-21T00:00:00Z",
    )
    doc = VaultDoc(
        generation=7,
        recipients=[Recipient("owner", OWNER["recipient"], added_at="2026-11-20T00:00:00Z")],
        entries=[e],
        history=[Event("2026-11-20T00:00:00Z", Action.ADD, e.id, e.name, e.project)],
        exports=[ExportTarget(ExportKind.DOTENV, "work", "/home/u/app/.env")],
        mints=[
            MintRecord(
                "00000000000000f1",
                MintState.INTENT,
                "work",
                "proj_x",
                e.id,
                "acct",
                e.added_at or "",
            )
        ],
        phones=[
            Phone(
                "+33612345678", note="spare", past=(PastKey(e.id, "gone", "2026-11-21T00:00:00Z"),)
            )
        ],
    )
    data = document.dumps(doc)
    assert json.loads(data)["format"] == FORMAT == "keyvault/1"
    assert json.loads(data)["entries"][0]["secret"] == key  # the vault holds the real key
    assert document.loads(data) == doc


def test_non_ascii_metadata_round_trips_as_utf8():
    raw = body(entries=[entry_dict("k", note="café ☕ 鍵")])
    doc = document.loads(encode(raw))
    assert "café ☕ 鍵".encode() in document.dumps(doc)
    assert document.loads(document.dumps(doc)).entries[0].note == "café ☕ 鍵"


@pytest.mark.parametrize("version", ["keyvault/1", "keyvault/1.0", "keyvault/1.7", "keyvault/01"])
def test_known_major_versions_open(version):
    assert document.loads(encode(body(format=version))).generation == 3


@pytest.mark.parametrize(
    "version", ["keyvault/2", "keyvault/9", "keyvault/2.0", "keyvault/0", "keyvault/123456789"]
)
def test_unknown_major_versions_are_unsupported_not_damaged(version):
    with pytest.raises(UnsupportedFormat) as caught:
        document.loads(encode(body(format=version)), source="vault.age")
    assert caught.value.message == f"vault.age: unsupported format {version}"
    assert caught.value.exit_code == 4
    assert "newer keyvault" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b'"keyvault/1"',
        b"null",
        b"{",
        b"[" * 100_000,  # deep nesting must not crash the reader
    ],
)
def test_garbage_is_damaged(data):
    with pytest.raises(DamagedVault) as caught:
        document.loads(data)
    assert caught.value.exit_code == 4


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"format": None}, "not a keyvault document"),
        ({"format": 1}, "not a keyvault document"),
        ({"format": "other/1"}, "not a keyvault document"),
        ({"format": "keyvault/"}, "malformed format version"),
        ({"format": "keyvault/x"}, "malformed format version"),
        ({"format": "keyvault/-1"}, "malformed format version"),
        ({"format": "keyvault/²"}, "malformed format version"),
        ({"format": "keyvault/" + "9" * 5000}, "malformed format version"),
        ({"generation": "3"}, "generation is not a whole number"),
        ({"generation": True}, "generation is not a whole number"),
        ({"generation": -1}, "generation is not a whole number"),
        ({"generation": 2**60}, "generation is not a whole number"),
        ({"entries": {}}, "entries is not a list"),
        ({"history": "x"}, "history is not a list"),
        ({"recipients": None}, "recipients is not a list"),
        ({"entries": ["not an entry"]}, "entries[0] is not an object"),
        ({"entries": [{"name": "k"}]}, "entries[0].id is missing"),
        ({"recipients": []}, "the vault lists no recipients"),
    ],
)
def test_malformed_documents_are_damaged_with_a_precise_message(overrides, words):
    raw = body(**overrides) if overrides.get("format", "") is not None else body()
    if overrides.get("format", "") is None:
        del raw["format"]
    with pytest.raises(DamagedVault) as caught:
        document.loads(encode(raw))
    assert words in caught.value.message
    assert len(caught.value.message) < 120


def test_a_loaded_document_is_checked_for_invariants():
    twins = body(
        entries=[
            entry_dict("a", project="p", status="active"),
            entry_dict("b", project="p", status="active"),
        ]
    )
    with pytest.raises(DamagedVault, match="two active keys in project 'p'"):
        document.loads(encode(twins))
    dupes = body(entries=[entry_dict("a"), entry_dict("a")])
    with pytest.raises(DamagedVault, match="share the name 'a'"):
        document.loads(encode(dupes))


def test_damage_messages_never_hold_a_secret():
    key = make_key()
    raw = body(entries=[{"id": "1", "name": "k", "secret": key, "status": key}])
    with pytest.raises(DamagedVault) as caught:
        document.loads(encode(raw))
    assert key not in str(caught.value) and key not in repr(caught.value)


def test_unknown_top_level_keys_survive_a_rewrite():
    future = {"policies": [{"project": "work", "rotate": "weekly"}], "schema_note": "v1.3"}
    doc = document.loads(encode(body(format="keyvault/1.3", **future)))
    assert doc.extra == future
    doc.generation += 1
    rewritten = json.loads(document.dumps(doc))
    assert {k: rewritten[k] for k in future} == future
    assert rewritten["format"] == "keyvault/1"
    assert rewritten["generation"] == 4


def test_unknown_keys_cannot_shadow_known_ones():
    doc = document.loads(encode(body(extra_thing=1)))
    doc.extra["generation"] = 99  # a buggy caller; the real generation must win
    assert json.loads(document.dumps(doc))["generation"] == 3


def test_unknown_top_level_keys_survive_a_save_through_the_store(tmp_path):
    identity = age.X25519Identity.generate()
    recipient = identity.recipient().to_string()
    raw = body(recipients=[{"name": "owner", "recipient": recipient}], future={"nested": [1, 2, 3]})
    home = tmp_path / "kv"
    home.mkdir()
    (home / "vault.age").write_bytes(age.encrypt(encode(raw), [identity.recipient()]))
    unlocker = Unlocker(UnlockSettings(identity=Secret(identity.to_string())))
    kv = Keyvault(Paths(home), unlocker)
    kv.transact(lambda doc: doc.record(Event("2026-11-30T00:00:00Z", "touch")))
    saved = json.loads(age.decrypt((home / "vault.age").read_bytes(), [identity]))
    assert saved["future"] == {"nested": [1, 2, 3]}
    assert saved["generation"] == 4
    touch, first_team = saved["history"]
    assert touch == {"at": "2026-11-30T00:00:00Z", "action": "touch"}
    # a vault written before team records gets one at its first save (issue 15)
    assert first_team["action"] == "team-secret"
    assert first_team["secret"] == saved["team"]["secrets"][0]["id"]


# --- golden vaults ------------------------------------------------------------------------

GOLDEN_V1_ENTRIES = [
    {
        "id": "0000000000000001",
        "name": "golden-main",
        "secret": "sk-golden-" + "x" * 30,
        "provider": "openai",
        "kind": "api",
        "project": "work",
        "created": "2025-03-04",
        "phone": "+447911123456",
        "card": "WildCard ****1234",
        "credit_usd": 12.25,
        "org_id": "org-golden123",
        "project_id": "proj_golden123",
        "base_url": "https://relay.example.com/v1",
        "tags": ["ci", "main"],
        "note": "golden note\nsecond line",
        "status": "active",
        "priority": 5,
        "health": None,
        "added_at": "2026-11-20T09:02:00Z",
        "updated_at": "2026-11-20T09:12:00Z",
    },
    {
        "id": "0000000000000002",
        "name": "golden-spare",
        "secret": "golden-relay-" + "y" * 20,
        "provider": "relay",
        "kind": "api",
        "project": "work",
        "created": "2025-06-07",
        "phone": "+447911123456",
        "card": None,
        "credit_usd": None,
        "org_id": None,
        "project_id": None,
        "base_url": None,
        "tags": [],
        "note": None,
        "status": "standby",
        "priority": 0,
        "health": None,
        "added_at": "2026-11-20T09:04:00Z",
        "updated_at": "2026-11-20T09:04:00Z",
    },
    {
        "id": "0000000000000003",
        "name": "golden-admin",
        "secret": "sk-admin-golden-" + "z" * 30,
        "provider": "openai",
        "kind": "admin",
        "project": "ops",
        "created": "2025-01-02",
        "phone": None,
        "card": None,
        "credit_usd": None,
        "org_id": None,
        "project_id": None,
        "base_url": None,
        "tags": [],
        "note": None,
        "status": "standby",
        "priority": 0,
        "health": None,
        "added_at": "2026-11-20T09:06:00Z",
        "updated_at": "2026-11-20T09:06:00Z",
    },
    {
        "id": "0000000000000004",
        "name": "golden-old",
        "secret": "sk-golden-old-" + "w" * 26,
        "provider": "openai",
        "kind": "api",
        "project": None,
        "created": "2024-12-31",
        "phone": None,
        "card": None,
        "credit_usd": None,
        "org_id": None,
        "project_id": None,
        "base_url": None,
        "tags": [],
        "note": None,
        "status": "retired",
        "priority": 0,
        "health": None,
        "added_at": "2026-11-20T09:08:00Z",
        "updated_at": "2026-11-20T09:14:00Z",
    },
]
GOLDEN_V1_HISTORY = [
    ("2026-11-20T09:00:00Z", "init", None),
    ("2026-11-20T09:02:00Z", "add", "golden-main"),
    ("2026-11-20T09:04:00Z", "add", "golden-spare"),
    ("2026-11-20T09:06:00Z", "add", "golden-admin"),
    ("2026-11-20T09:08:00Z", "add", "golden-tmp"),
    ("2026-11-20T09:10:00Z", "add", "golden-gone"),
    ("2026-11-20T09:12:00Z", "edit", "golden-main"),
    ("2026-11-20T09:14:00Z", "edit", "golden-old"),
    ("2026-11-20T09:15:00Z", "rm", "golden-gone"),
]
GOLDEN_PASSPHRASE = "golden passphrase, test only"


@pytest.fixture
def golden_v1(tmp_path: Path) -> Path:
    """A private copy: tests may write to it, the committed files stay as they are."""
    home = tmp_path / "golden"
    shutil.copytree(GOLDEN / "v1", home)
    home.chmod(0o700)
    return home


def _golden_recipient(home: Path) -> str:
    lines = (home / "identity.txt").read_text().splitlines()
    return next(line.split(": ")[1] for line in lines if line.startswith("# public key"))


def test_golden_v1_opens_with_every_field(golden_v1):
    unlocker = Unlocker(UnlockSettings(identity_file=golden_v1 / "identity.txt"))
    doc = Keyvault(Paths(golden_v1), unlocker).read()
    assert doc.generation == 9
    assert doc.recipients == [Recipient("owner", _golden_recipient(golden_v1))]
    assert [document.entry_json(e, reveal=True) for e in doc.entries] == GOLDEN_V1_ENTRIES
    assert [(h.at, h.action, h.name) for h in doc.history] == GOLDEN_V1_HISTORY
    assert doc.history[7].detail["fields"] == ["name", "status"]
    assert doc.exports == [] and doc.extra == {}
    assert doc.find("golden-admin").kind is Kind.ADMIN
    assert doc.active("work").name == "golden-main"


def test_golden_v1_identity_age_opens_with_its_passphrase(golden_v1):
    unlocker = Unlocker(UnlockSettings(passphrase=Secret(GOLDEN_PASSPHRASE)))
    doc = Keyvault(Paths(golden_v1), unlocker).read()
    assert [e.name for e in doc.entries] == [e["name"] for e in GOLDEN_V1_ENTRIES]


def test_golden_v1_through_the_cli(golden_v1, cli):
    env = {
        "KEYVAULT_HOME": str(golden_v1),
        "KEYVAULT_IDENTITY_FILE": str(golden_v1 / "identity.txt"),
        "KEYVAULT_PASSPHRASE": "",
    }
    listed = json.loads(cli.ok("list", "--json", env=env).out)
    masked = [{**e, "secret": listed[i]["secret"]} for i, e in enumerate(GOLDEN_V1_ENTRIES)]
    assert listed == masked
    assert [e["secret"] for e in listed] == ["sk-…xxxx", "…yyyy", "sk-admin-…zzzz", "sk-…wwww"]
    shown = json.loads(cli.ok("show", "golden-main", "--json", "--reveal", env=env).out)
    assert shown == GOLDEN_V1_ENTRIES[0]
    assert cli.ok("get", "--project", "work", env=env).out == "sk-golden-" + "x" * 30 + "\n"
    log = json.loads(cli.ok("log", "--json", env=env).out)
    assert [(h["at"], h["action"], h.get("name")) for h in log] == GOLDEN_V1_HISTORY


def test_golden_v1_is_rewritten_without_loss(golden_v1, cli):
    env = {
        "KEYVAULT_HOME": str(golden_v1),
        "KEYVAULT_IDENTITY_FILE": str(golden_v1 / "identity.txt"),
    }
    cli.ok("edit", "golden-spare", "--note", "touched", env=env)
    identity = age.X25519Identity.parse((golden_v1 / "identity.txt").read_text().splitlines()[-1])
    saved = json.loads(age.decrypt((golden_v1 / "vault.age").read_bytes(), [identity]))
    assert saved["format"] == "keyvault/1" and saved["generation"] == 10
    spare = saved["entries"][1]
    assert spare["note"] == "touched"
    assert {**spare, "note": None, "updated_at": GOLDEN_V1_ENTRIES[1]["updated_at"]} == (
        GOLDEN_V1_ENTRIES[1]
    )
    assert [saved["entries"][i] for i in (0, 2, 3)] == [GOLDEN_V1_ENTRIES[i] for i in (0, 2, 3)]
    assert (golden_v1 / "vault.age.bak").read_bytes() == (GOLDEN / "v1" / "vault.age").read_bytes()


def test_golden_v1_opens_with_the_real_age_tool(golden_v1):
    tool = require_tool("age")
    proc = subprocess.run(
        [tool, "-d", "-i", str(golden_v1 / "identity.txt"), str(golden_v1 / "vault.age")],
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["entries"] == GOLDEN_V1_ENTRIES
