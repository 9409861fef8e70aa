"""vault/validate.py: every check that guards user input, table-driven.

Key shapes follow docs/openai-api.md; test keys are built at run time.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.helpers import make_key
from vault.errors import InvalidValue, UsageError
from vault.model import validate as v
from vault.model.validate import KeyKind

TODAY = dt.date(2026, 11, 20)


# --- keys -------------------------------------------------------------------------------

# (label, builder, expected length or None, kind, warns)
KEY_KINDS = [
    ("legacy user", lambda: make_key("sk-", 20), 51, KeyKind.USER, False),
    ("early project", lambda: make_key("sk-proj-", 20), 56, KeyKind.PROJECT, False),
    ("project", lambda: make_key("sk-proj-", 74), 164, KeyKind.PROJECT, False),
    ("service account", lambda: make_key("sk-svcacct-", 74), 167, KeyKind.SERVICE_ACCOUNT, False),
    ("admin", lambda: make_key("sk-admin-", 58), 133, KeyKind.ADMIN, False),
    ("relay", lambda: make_key("sk-", 20, marker=False), None, KeyKind.USER, True),
    (
        "relay with a proj prefix",
        lambda: make_key("sk-proj-", 30, marker=False),
        None,
        KeyKind.PROJECT,
        True,
    ),
    (
        "underscores and dashes",
        lambda: "sk-" + "a_b-" * 6 + "T3Blbk" + "FJ" + "c_d-" * 6,
        None,
        KeyKind.USER,
        False,
    ),
]


@pytest.mark.parametrize(
    ("label", "build", "length", "kind", "warns"), KEY_KINDS, ids=[row[0] for row in KEY_KINDS]
)
def test_check_key_classifies_by_prefix(label, build, length, kind, warns):
    key = build()
    if length is not None:
        assert len(key) == length, f"{label} keys are {length} characters"
    checked = v.check_key(key)
    assert checked.value == key
    assert checked.kind is kind
    assert bool(checked.warnings) is warns
    if warns:
        assert "relay" in checked.warnings[0]
        assert key not in checked.warnings[0]


def test_check_key_trims_surrounding_whitespace():
    key = make_key()
    assert v.check_key(f"  {key}\r\n").value == key
    assert v.check_key(f"\t{key} ").kind is KeyKind.PROJECT


def _with_space(key: str) -> str:
    return key[:20] + " " + key[20:]


# (label, transform of a valid key, words the message must contain)
BAD_KEYS = [
    ("empty", lambda k: "", "empty"),
    ("only blanks", lambda k: " \t\n ", "empty"),
    ("bearer prefix", lambda k: f"Bearer {k}", "bearer"),
    ("lower-case bearer", lambda k: f"bearer {k}", "bearer"),
    ("embedded newline", lambda k: k[:30] + "\n" + k[30:], "line break"),
    ("two keys on two lines", lambda k: f"{k}\n{k}", "line break"),
    ("carriage return", lambda k: k[:30] + "\r" + k[30:], "line break"),
    ("embedded space", _with_space, "spaces"),
    ("embedded tab", lambda k: k[:20] + "\t" + k[20:], "spaces"),
    ("nul byte", lambda k: k[:20] + "\x00" + k[20:], "control"),
    ("non-ascii letter", lambda k: k[:20] + "é" + k[20:], "non-ascii"),
    ("zero-width space", lambda k: k[:20] + "\u200b" + k[20:], "non-ascii"),
    ("fullwidth dash", lambda k: "sk\uff0d" + k[3:], "non-ascii"),
    ("not sk-", lambda k: "pk-" + k[3:], "not an openai key"),
    ("too short", lambda k: "sk-" + "a" * 19, "not an openai key"),
    ("punctuation", lambda k: k[:20] + "!" + k[20:], "not an openai key"),
]


@pytest.mark.parametrize(
    ("label", "transform", "words"), BAD_KEYS, ids=[row[0] for row in BAD_KEYS]
)
def test_check_key_refuses_and_never_echoes_the_key(label, transform, words):
    key = make_key()
    with pytest.raises(InvalidValue) as caught:
        v.check_key(transform(key))
    message = str(caught.value)
    assert words in message.lower(), label
    assert "\n" not in message
    assert key[8:40] not in message and key[-20:] not in message


def test_minimum_openai_key_length_is_twenty_after_sk():
    assert v.check_key("sk-" + "a" * 20).kind is KeyKind.USER
    with pytest.raises(InvalidValue):
        v.check_key("sk-" + "a" * 19)


def test_other_provider_skips_the_shape_check_but_not_the_hygiene():
    checked = v.check_key("relay-token_0123456789", provider="other")
    assert (checked.value, checked.kind, checked.warnings) == (
        "relay-token_0123456789",
        KeyKind.OTHER,
        (),
    )
    assert v.check_key("short", provider="relay").kind is KeyKind.OTHER
    for bad in ("tok en", "tok\nen", "tok\ten", "tokén", "Bearer tok", ""):
        with pytest.raises(InvalidValue):
            v.check_key(bad, provider="other")


def test_invalid_value_is_a_usage_error_exit_2():
    assert issubclass(InvalidValue, UsageError)
    assert InvalidValue("x").exit_code == 2


# --- phones -----------------------------------------------------------------------------

GOOD_PHONES = [
    ("+447911123456", "+447911123456"),
    ("+44 7911 123456", "+447911123456"),
    ("+44 (0)7911 123456", "+447911123456"),
    ("+1 (415) 555-2671", "+14155552671"),
    ("+1.415.555.2671", "+14155552671"),
    (" +33 6 12 34 56 78 ", "+33612345678"),
    ("+49 151 12345678", "+4915112345678"),
]


@pytest.mark.parametrize(("raw", "e164"), GOOD_PHONES)
def test_phones_are_normalised_to_e164(raw, e164):
    assert v.normalize_phone(raw) == e164


BAD_PHONES = [
    ("07911123456", "country code"),
    ("447911123456", "country code"),
    ("", "country code"),
    ("+", "not a phone number"),
    ("+999123456789", "not a phone number"),
    ("+12345", "not a valid number"),
    ("+447700900123", "not a valid number"),  # Ofcom's range reserved for drama
    ("+44 7911 12345x", "letters"),
    ("+1 415 555 CALL", "letters"),  # keypad letters would silently become digits
    ("+1 800 FLOWERS", "letters"),
    ("+14155552671 ext. 5", "letters"),
]


@pytest.mark.parametrize(("raw", "words"), BAD_PHONES)
def test_bad_phones_are_refused(raw, words):
    with pytest.raises(InvalidValue) as caught:
        v.normalize_phone(raw)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


# --- dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2026-11-20", "2026-11-20"),  # today is fine
        (" 2024-02-29 ", "2024-02-29"),
        ("2015-01-01", "2015-01-01"),
    ],
)
def test_dates_are_iso_and_not_in_the_future(raw, iso):
    assert v.parse_date(raw, today=TODAY) == iso


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("2024/01/02", "not YYYY-MM-DD"),
        ("02-01-2024", "not YYYY-MM-DD"),
        ("yesterday", "not YYYY-MM-DD"),
        ("2024-13-01", "not YYYY-MM-DD"),
        ("2023-02-29", "not YYYY-MM-DD"),
        ("", "not YYYY-MM-DD"),
        ("2026-11-21", "in the future"),
        ("2999-01-01", "in the future"),
        ("1999-12-31", "before any openai key"),
        ("2014-12-31", "before any openai key"),
    ],
)
def test_bad_dates_are_refused(raw, words):
    with pytest.raises(InvalidValue) as caught:
        v.parse_date(raw, today=TODAY)
    assert words.lower() in str(caught.value).lower()


# --- cards ------------------------------------------------------------------------------


def luhn_complete(body: str) -> str:
    """`body` plus the check digit that makes it pass Luhn."""
    for digit in "0123456789":
        if v._luhn_ok(body + digit):
            return body + digit
    raise AssertionError("unreachable")


def luhn_broken(body: str) -> str:
    good = luhn_complete(body)
    return good[:-1] + str((int(good[-1]) + 1) % 10)


def test_luhn_oracle_matches_published_test_numbers():
    # well-known test card numbers (they are in every payment SDK's docs)
    for number in (
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "4222222222222",
        "6011111111111117",
    ):
        assert v._luhn_ok(number), number
    assert not v._luhn_ok("4111111111111112")


VISA16 = "4111111111111111"
FULL_CARDS = [
    ("16 digits", VISA16),
    ("16 digits with spaces", "4111 1111 1111 1111"),
    ("16 digits with dashes", "4111-1111-1111-1111"),
    ("16 digits, mixed separators", "4111 1111-1111 1111"),
    ("inside a label", "WildCard 4111111111111111 (mine)"),
    ("13 digits", luhn_complete("422222222222")),
    ("15 digits amex", "3782 822463 10005"),
    ("19 digits", luhn_complete("622202020202020202")),
    ("followed by an expiry", "4111 1111 1111 1111 12/27"),
    ("followed by more digits", "Visa 4111 1111 1111 1111 2027"),
]


@pytest.mark.parametrize(("label", "raw"), FULL_CARDS, ids=[row[0] for row in FULL_CARDS])
def test_full_card_numbers_are_refused(label, raw):
    with pytest.raises(InvalidValue) as caught:
        v.check_card_label(raw)
    message = str(caught.value)
    assert "full card number" in message, label
    assert "1111" not in message and "4111" not in message


ALLOWED_LABELS = [
    ("masked label", "WildCard ****1234"),
    ("last four only", "Visa 1234"),
    ("non-luhn 16 digits", luhn_broken("411111111111111")),
    ("non-luhn 16 digits with spaces", "4111 1111 1111 1112"),
    ("12 digits luhn-valid (too short)", luhn_complete("41111111111")),
    ("20 digits luhn-valid (too long)", luhn_complete("4111111111111111111")),
    ("a date and an amount", "topped up 2026-11-20 with 20 USD"),
]


@pytest.mark.parametrize(("label", "raw"), ALLOWED_LABELS, ids=[row[0] for row in ALLOWED_LABELS])
def test_card_labels_and_non_card_digit_runs_are_allowed(label, raw):
    assert v.check_card_label(f"  {raw} ") == raw, label


def test_card_label_hygiene():
    with pytest.raises(InvalidValue, match="control"):
        v.check_card_label("Visa\x1b[31m")
    with pytest.raises(InvalidValue, match="longer than 80"):
        v.check_card_label("x" * 81)


# --- names, urls, ids, credit, text -------------------------------------------------------


@pytest.mark.parametrize("name", ["work-1", "a", "A.b_c@d+e", "x" * 64, "0day"])
def test_good_names(name):
    assert v.check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "-lead", ".hidden", "_x", "a b", "é", "x" * 65, "a/b", "a\n", "a\x00"]
)
def test_bad_names(name):
    with pytest.raises(InvalidValue) as caught:
        v.check_name(name, "project")
    message = str(caught.value)
    assert message.startswith("project ")
    assert "\n" not in message and "\x00" not in message


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("https://relay.example.com/v1/", "https://relay.example.com/v1"),
        (" https://relay.example.com:8443/openai/v1 ", "https://relay.example.com:8443/openai/v1"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("http://localhost:3000/v1", "http://localhost:3000/v1"),
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
    ],
)
def test_good_base_urls(raw, url):
    assert v.check_base_url(raw) == url


BAD_URLS = [
    ("http://example.com/v1", "plain http"),
    ("http://localhost.evil.example/v1", "plain http"),
    ("ftp://example.com/v1", "not an http(s) url"),
    ("example.com/v1", "not an http(s) url"),
    ("https://", "not an http(s) url"),
    ("", "not an http(s) url"),
    ("https://user:hunter2-pw@example.com/v1", "user name or password"),
    ("https://:hunter2-pw@example.com/v1", "user name or password"),
    ("https://example.com/v1?key=1", "query or fragment"),
    ("https://example.com/v1#x", "query or fragment"),
    ("https://exa mple.com/v1", "spaces or control"),
    ("https://example.com/v1\x1b", "spaces or control"),
    ("https://example.com:99999/v1", "port"),
    ("https://example.com:abc/v1", "port"),
    ("http://[::1/v1", "not a valid url"),
    ("ftp://bob:hunter2-pw@example.com", "user name or password"),
    ("https://bob:hunter2-pw@exa mple.com/v1", "user name or password"),
]


@pytest.mark.parametrize(("raw", "words"), BAD_URLS)
def test_bad_base_urls(raw, words):
    with pytest.raises(InvalidValue) as caught:
        v.check_base_url(raw)
    message = str(caught.value).lower()
    assert words in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("what", "good", "bad"),
    [
        (
            "org id",
            ["org-AbCdEf123456", "org-abcdef"],
            ["org_abc123", "org-abc", "proj_abc123", "org-abc def", "", "org-" + "a" * 65],
        ),
        (
            "project id",
            ["proj_abc123XYZ", " proj_abcdef "],
            ["proj-abc123", "prj_abc123", "proj_", "proj_abc-123"],
        ),
    ],
)
def test_ids(what, good, bad):
    for raw in good:
        assert v.check_id(raw, what) == raw.strip()
    for raw in bad:
        with pytest.raises(InvalidValue, match=f"^{what} .* must look like"):
            v.check_id(raw, what)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("0", 0.0),
        ("12.5", 12.5),
        (" 20 ", 20.0),
        ("1e3", 1000.0),
        (3, 3.0),
        ("0.123456", 0.1235),
        ("1000000", 1_000_000.0),
    ],
)
def test_good_credit(raw, value):
    assert v.check_credit(raw) == value


@pytest.mark.parametrize(
    "raw", ["-1", "-0.01", "nan", "NaN", "inf", "-inf", "abc", "", "1e400", "1000000.01", "$5"]
)
def test_bad_credit(raw):
    with pytest.raises(InvalidValue, match=r"^credit "):
        v.check_credit(raw)


def test_clean_text():
    assert v.clean_text("  two\nlines\tand a tab ", "note") == "two\nlines\tand a tab"
    for bad in ("bell\x07", "esc\x1b[2J", "del\x7f", "c1\x85"):
        with pytest.raises(InvalidValue, match=r"^note contains control characters$"):
            v.clean_text(bad, "note")
    with pytest.raises(InvalidValue, match="longer than 10"):
        v.clean_text("x" * 11, "note", max_len=10)


def test_messages_quote_user_input_on_one_bounded_line():
    with pytest.raises(InvalidValue) as caught:
        v.parse_date("2024\n" + "9" * 200, today=TODAY)
    message = str(caught.value)
    assert "\n" not in message
    assert len(message) < 120
