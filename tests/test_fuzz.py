"""Property fuzzing of the two parsers that read untrusted bytes: age and the JSON document.

Whatever the input, they return a value or raise one of keyvault's own errors (a
`KeyvaultError`): never a ValueError, IndexError, RecursionError or a hang. Example counts
are fixed here (total well under 20 s) and recorded in docs/security.md; the atheris
harness in fuzz/ runs the same targets without a bound.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import make_key
from vault import age
from vault.errors import KeyvaultError
from vault.model import codec as document
from vault.model.document import FORMAT

# name → max_examples; docs/security.md's table quotes these numbers
EXAMPLES = {
    "age_random_bytes": 2000,
    "age_header_grammar": 1000,
    "age_mutated_vault": 1000,
    "age_mutated_identity": 300,
    "document_random_bytes": 2000,
    "document_random_json": 500,
    "document_hostile_entries": 400,
}
IDENTITY = age.X25519Identity.generate()
PLAINTEXT = document.dumps(
    document.loads(
        json.dumps(
            {
                "format": FORMAT,
                "generation": 3,
                "recipients": [{"name": "owner", "recipient": IDENTITY.recipient().to_string()}],
                "entries": [
                    {"id": "00000000000000e1", "name": "k", "secret": make_key(), "project": "p"}
                ],
                "history": [{"at": "2026-01-01T00:00:00Z", "action": "init"}],
            }
        ).encode()
    )
)
VAULT = age.encrypt(PLAINTEXT, [IDENTITY.recipient()])
# cheap scrypt, and a reader cap just above it: a mutated work factor can never cost more
IDENTITY_FILE = age.encrypt(b"AGE-SECRET-KEY-1X\n", [age.ScryptRecipient("pw", log_n=4)])
SCRYPT_READER = age.ScryptIdentity("pw", max_log_n=8)


def fuzz_settings(name: str) -> Any:
    return settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def only_keyvault_errors(action: Any, *args: Any) -> Any:
    try:
        return action(*args)
    except KeyvaultError as exc:
        assert str(exc) and "\n" not in str(exc)  # one-line message, as the CLI prints it
        return None


# --- age ----------------------------------------------------------------------------------


@pytest.mark.slow
@fuzz_settings("age_random_bytes")
@given(st.one_of(st.binary(max_size=600), st.binary(max_size=200).map(lambda b: VAULT[:40] + b)))
def test_age_random_bytes(data: bytes) -> None:
    only_keyvault_errors(age.decrypt, data, [IDENTITY])
    only_keyvault_errors(age.decrypt, data, [SCRYPT_READER])


_ARG = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7F), min_size=0, max_size=50)
_B64 = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=90)
_STANZA = st.builds(
    lambda kind, args, body: f"-> {kind} {' '.join(args)}\n{body}\n",
    st.sampled_from(["X25519", "scrypt", "x", "", "scrypt "]),
    st.lists(st.one_of(_ARG, _B64, st.integers(-5, 10**6).map(str)), max_size=3),
    st.one_of(_B64, st.just("A" * 64 + "\n" + "A" * 10)),
)


@pytest.mark.slow
@fuzz_settings("age_header_grammar")
@given(
    st.lists(_STANZA, max_size=4),
    st.one_of(_B64, st.just("")),
    st.binary(max_size=80),
)
def test_age_header_grammar(stanzas: list[str], mac: str, payload: bytes) -> None:
    """Nearly well-formed headers reach the deep checks: base64, stanza shapes, work factors."""
    data = ("age-encryption.org/v1\n" + "".join(stanzas) + f"--- {mac}\n").encode() + payload
    header = only_keyvault_errors(age.parse_header, data)
    if header is not None:
        assert data[: header.payload_offset].endswith(b"\n")
    assert only_keyvault_errors(age.decrypt, data, [IDENTITY, SCRYPT_READER]) is None


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Overwrite, insert or delete single bytes: (kind, position, value)."""
    out = bytearray(data)
    for kind, position, value in edits:
        at = position % (len(out) + 1)
        if kind == 0 and at < len(out):
            out[at] = value
        elif kind == 1:
            out.insert(at, value)
        elif at < len(out):
            del out[at]
    return bytes(out)


_EDITS = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.integers(0, 255)),
    min_size=1,
    max_size=4,
)


@pytest.mark.slow
@fuzz_settings("age_mutated_vault")
@given(_EDITS)
def test_age_mutated_vault(edits: list[tuple[int, int, int]]) -> None:
    data = mutate(VAULT, edits)
    plain = only_keyvault_errors(age.decrypt, data, [IDENTITY])
    if data != VAULT:
        assert plain is None, "a changed file decrypted"
    else:
        assert plain == PLAINTEXT


@fuzz_settings("age_mutated_identity")
@given(_EDITS)
def test_age_mutated_identity(edits: list[tuple[int, int, int]]) -> None:
    data = mutate(IDENTITY_FILE, edits)
    plain = only_keyvault_errors(age.decrypt, data, [SCRYPT_READER])
    assert plain is None or data == IDENTITY_FILE


# --- the JSON document --------------------------------------------------------------------


@pytest.mark.slow
@fuzz_settings("document_random_bytes")
@given(
    st.one_of(st.binary(max_size=300), st.binary(max_size=100).map(lambda b: PLAINTEXT[:60] + b))
)
def test_document_random_bytes(data: bytes) -> None:
    only_keyvault_errors(document.loads, data)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=8,
)
_FIELDS = [
    "id",
    "name",
    "secret",
    "provider",
    "kind",
    "status",
    "project",
    "phone",
    "tags",
    "priority",
    "credit_usd",
    "health",
    "created",
    "note",
    "base_url",
    "bogus",
]


@pytest.mark.slow
@fuzz_settings("document_random_json")
@given(
    st.dictionaries(
        st.sampled_from(
            ["format", "generation", "recipients", "entries", "history", "exports", "x"]
        ),
        _JSON,
    ),
    st.sampled_from([FORMAT, "keyvault/1.7", "keyvault/2", "keyvault/", "keyvault/\u0661", None]),
)
def test_document_random_json(raw: dict[str, Any], fmt: str | None) -> None:
    if fmt is not None:
        raw["format"] = fmt
    only_keyvault_errors(document.loads, json.dumps(raw).encode())


@pytest.mark.slow
@fuzz_settings("document_hostile_entries")
@given(st.lists(st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=8), max_size=4))
def test_document_hostile_entries(entries: list[dict[str, Any]]) -> None:
    """Entries with every field of every JSON type: refused as damaged, or loaded whole."""
    raw = {"format": FORMAT, "generation": 1, "recipients": [], "entries": entries}
    doc = only_keyvault_errors(document.loads, json.dumps(raw).encode())
    if doc is not None:
        assert len(doc.entries) == len(entries)
        for entry in doc.entries:
            assert repr(entry.secret) == f"Secret({entry.secret.masked!r})"


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_deeply_nested_document_is_damaged_not_a_crash(depth: int) -> None:
    only_keyvault_errors(document.loads, b"[" * depth + b"]" * depth)
    only_keyvault_errors(document.loads, b'{"format":' * depth)
