"""The classifier, header parsers and masking: pure functions, table-driven and fuzzed."""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fake_openai_responses import (
    INVALID_KEY_MSG,
    MISSING_SCOPES_MSG,
    NO_AUTH_MSG,
    QUOTA_MSG,
    RELAY_ERRORS,
    api_masked,
    make_key,
    make_relay_key,
)
from vault.health import (
    HealthResult,
    Status,
    classify,
    mask_text,
    parse_go_duration,
    parse_ratelimit,
    parse_retry_after,
)
from vault.health.checking import health_record
from vault.model import codec

S = Status


def body(message: str, etype: str | None, code: str | None) -> bytes:
    err = {"message": message, "type": etype, "param": None, "code": code}
    return json.dumps({"error": err}).encode()


RATE_MSG = (
    "Rate limit reached for gpt-4o in organization org-abc on requests per min (RPM): Limit 3, "
    "Used 3, Requested 1. Please try again in 20s. Visit "
    "https://platform.openai.com/account/rate-limits to learn more."
)
TOO_LARGE_MSG = (
    "Request too large for gpt-4o in organization org-abc on tokens per min (TPM): Limit 10000, "
    "Requested 30000."
)

IRE = "invalid_request_error"


class Row(NamedTuple):
    status: int
    etype: str | None
    code: str | None
    message: str
    verdict: Status
    retryable: bool


# Every row of the reference's error table, plus the variants it mentions
REFERENCE_ROWS = [
    Row(401, IRE, "invalid_api_key", INVALID_KEY_MSG.format(masked="sk-abcd****wxyz"),
        S.INVALID, False),
    # keyvault always sends a key: "you didn't provide one" means it was dropped on the way
    Row(401, IRE, None, NO_AUTH_MSG, S.NETWORK_ERROR, False),
    Row(401, IRE, "no_organization", "You must be a member of an organization.",
        S.FORBIDDEN, False),
    Row(401, IRE, "mismatched_organization", "header should match", S.FORBIDDEN, False),
    Row(401, None, "ip_not_authorized", "unconfirmed wording", S.FORBIDDEN, False),
    Row(401, IRE, None, MISSING_SCOPES_MSG.format(scope="api.model.read"), S.FORBIDDEN, False),
    Row(403, "request_forbidden", "unsupported_country_region_territory",
        "Country, region, or territory not supported", S.REGION_BLOCKED, False),
    Row(404, IRE, "model_not_found",
        "The model `gpt-4` does not exist or you do not have access to it.",
        S.MODEL_UNAVAILABLE, False),
    Row(429, "insufficient_quota", "insufficient_quota", QUOTA_MSG, S.QUOTA_EXHAUSTED, False),
    Row(429, "insufficient_quota", None, QUOTA_MSG, S.QUOTA_EXHAUSTED, False),
    Row(429, "requests", "rate_limit_exceeded", RATE_MSG, S.RATE_LIMITED, True),
    Row(429, "tokens", "rate_limit_exceeded", RATE_MSG, S.RATE_LIMITED, True),
    Row(429, "tokens", "rate_limit_exceeded", TOO_LARGE_MSG, S.RATE_LIMITED, False),
    Row(500, "server_error", None, "The server had an error processing your request.",
        S.SERVER_ERROR, True),
]  # fmt: skip


@pytest.mark.parametrize("row", REFERENCE_ROWS)
def test_reference_error_table(row: Row) -> None:
    got = classify(
        row.status, {"x-request-id": "req_" + "a" * 32}, body(row.message, row.etype, row.code)
    )
    assert (got.status, got.retryable) == (row.verdict, row.retryable)
    assert got.http_status == row.status
    assert got.error_code == row.code
    assert got.request_id == "req_" + "a" * 32
    assert got.evidence


RELAY_VERDICTS = {
    "token_exhausted": (S.QUOTA_EXHAUSTED, False),
    "token_invalid": (S.INVALID, False),
    "token_expired": (S.INVALID, False),
    "token_disabled": (S.INVALID, False),
    "token_exhausted_200": (S.QUOTA_EXHAUSTED, False),
    "balance_low_200": (S.QUOTA_EXHAUSTED, False),
    "in_arrears_200": (S.QUOTA_EXHAUSTED, False),
    "saturated": (S.RATE_LIMITED, True),
    "saturated_quota": (S.QUOTA_EXHAUSTED, False),
    "user_quota": (S.QUOTA_EXHAUSTED, False),
    "pre_consume": (S.QUOTA_EXHAUSTED, False),
    "model_forbidden": (S.MODEL_UNAVAILABLE, False),
    "no_channel": (S.MODEL_UNAVAILABLE, False),
    "ip_denied": (S.FORBIDDEN, False),
    "user_banned": (S.FORBIDDEN, False),
    "token_missing": (S.NETWORK_ERROR, False),
}


def test_every_relay_error_has_a_verdict() -> None:
    assert set(RELAY_VERDICTS) == set(RELAY_ERRORS)


@pytest.mark.parametrize("name", sorted(RELAY_ERRORS))
def test_relay_messages(name: str) -> None:
    status, etype, code, message = RELAY_ERRORS[name]
    payload = json.dumps({"error": {"message": message, "type": etype, "code": code}}).encode()
    got = classify(status, {}, payload)
    assert (got.status, got.retryable) == RELAY_VERDICTS[name]
    assert got.message == message


# Real answers seen in the wild that are not in docs/openai-api.md: the status a
# user must act on, and whether retrying could help.
WILD = [
    # the virtual card failed its charges: OpenAI marks the account's billing inactive
    (429, "billing_not_active", "billing_not_active",
     "Your account is not active, please check your billing details on our website.",
     S.QUOTA_EXHAUSTED, False),
    (429, None, None,
     "Your account is not active, please check your billing details on our website.",
     S.QUOTA_EXHAUSTED, False),
    (401, "access_terminated", "access_terminated",
     "Your access was terminated due to violation of our policies, please check your email for"
     " more information.", S.INVALID, False),
    (401, IRE, "invalid_organization", "No such organization: org-abc123.", S.FORBIDDEN, False),
    (403, "new_api_error", None, "Insufficient account balance, please recharge",
     S.QUOTA_EXHAUSTED, False),
    (402, None, None, "Insufficient credits. Add more using https://example.invalid/credits",
     S.QUOTA_EXHAUSTED, False),
    (200, None, None, "该令牌额度已用完，请充值", S.QUOTA_EXHAUSTED, False),
    (403, None, "quota_exceeded", "You have exceeded your quota", S.QUOTA_EXHAUSTED, False),
    (401, None, None, "Invalid token (request id: 2025)", S.INVALID, False),
    # a model this key's project may not use: the key still serves others
    (403, IRE, None, "You are not allowed to sample from this model", S.MODEL_UNAVAILABLE,
     False),
    (403, IRE, None, "Project `proj_abc` does not have access to model `o3`",
     S.MODEL_UNAVAILABLE, False),
    # Azure OpenAI: the code is the HTTP status as a string, the reason only in the prose
    (429, None, "429", "Requests to the ChatCompletions_Create Operation under Azure OpenAI API"
     " version 2024-02-01 have exceeded call rate limit of your current OpenAI S0 pricing tier."
     " Please retry after 6 seconds.", S.RATE_LIMITED, True),
]  # fmt: skip

# Gateways that skip OpenAI's {"error": {…}} envelope, often answering HTTP 200.
ENVELOPES = [
    (200, {"code": 401, "msg": "无效的令牌"}, S.INVALID),
    (200, {"code": 500, "message": "用户额度不足"}, S.QUOTA_EXHAUSTED),
    (200, {"status": "error", "message": "invalid token"}, S.INVALID),
    (200, {"success": False, "msg": "该令牌已过期"}, S.INVALID),
    (403, {"msg": "余额不足"}, S.QUOTA_EXHAUSTED),
    (200, {"code": "insufficient_user_quota", "message": "quota"}, S.QUOTA_EXHAUSTED),
    (200, {"code": 1001, "errmsg": "something new"}, S.UNEXPECTED),
    (200, {"code": 0, "msg": "success", "object": "list", "data": []}, S.OK),
    (200, {"code": 200, "message": "ok", "data": []}, S.OK),
    (200, {"object": "list", "data": [{"id": "gpt-4o-mini"}]}, S.OK),
]  # fmt: skip


@pytest.mark.parametrize(("status", "doc", "verdict"), ENVELOPES)
def test_relay_envelopes(status: int, doc: dict[str, object], verdict: Status) -> None:
    got = classify(status, {}, json.dumps(doc, ensure_ascii=False).encode())
    assert got.status is verdict


@pytest.mark.parametrize("case", WILD)
def test_answers_seen_in_the_wild(
    case: tuple[int, str | None, str | None, str, Status, bool],
) -> None:
    status, etype, code, message, verdict, retry = case
    got = classify(status, {}, body(message, etype, code))
    assert (got.status, got.retryable) == (verdict, retry)


# Bodies in other shapes: Gemini's OpenAI-compatible endpoint wraps its error in a list, and
# AWS API Gateway answers a path it has no route for (no /v1 in base_url) with a 403 that
# names a token but is no verdict on the key.
SHAPES = [
    (400, [{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                      "status": "INVALID_ARGUMENT"}}], S.INVALID),
    (429, [{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                      "status": "RESOURCE_EXHAUSTED"}}], S.RATE_LIMITED),
    (403, {"message": "Missing Authentication Token"}, S.UNEXPECTED),
    (200, [{"id": "gpt-4o-mini"}], S.OK),  # a list, but no error in it
]  # fmt: skip


@pytest.mark.parametrize(("status", "doc", "verdict"), SHAPES)
def test_other_shapes(status: int, doc: object, verdict: Status) -> None:
    got = classify(status, {}, json.dumps(doc).encode())
    assert got.status is verdict


def test_type_beats_a_misleading_message() -> None:
    """new-api rewrites every 429 message to "upstream saturated" even for an empty wallet."""
    saturated = "当前分组上游负载已饱和，请稍后再试"
    got = classify(429, {}, body(saturated, "insufficient_quota", None))
    assert got.status is S.QUOTA_EXHAUSTED
    assert got.evidence == "type=insufficient_quota"


def test_one_api_dashboard_shape_with_http_200() -> None:
    payload = json.dumps({"success": False, "message": "无效的令牌"}, ensure_ascii=False).encode()
    assert classify(200, {}, payload).status is S.INVALID


def test_error_as_plain_string_and_unknown_error_at_200() -> None:
    assert classify(401, {}, b'{"error": "Unauthorized"}').status is S.INVALID
    odd = classify(200, {}, b'{"error": {"message": "something odd", "type": "x"}}')
    assert (odd.status, odd.message) == (S.UNEXPECTED, "something odd")


@pytest.mark.parametrize(
    ("status", "payload", "verdict", "retryable"),
    [
        (200, b'{"object": "list", "data": []}', S.OK, False),
        (200, b"<html><title>Captive portal</title></html>", S.UNEXPECTED, False),
        (200, b"", S.UNEXPECTED, False),
        (502, b"<html><title>502 Bad Gateway</title></html>", S.SERVER_ERROR, True),
        (503, b"", S.SERVER_ERROR, True),
        (408, b"", S.SERVER_ERROR, True),
        (409, b"", S.SERVER_ERROR, True),
        (402, b"{}", S.QUOTA_EXHAUSTED, False),
        (403, b'{"message": "Forbidden"}', S.FORBIDDEN, False),
        (403, b"Forbidden", S.UNEXPECTED, False),  # nginx's text page: not the API's verdict
        (404, b"{}", S.UNEXPECTED, False),
        (400, b"{}", S.UNEXPECTED, False),
        (418, b"teapot", S.UNEXPECTED, False),
        (None, b"", S.NETWORK_ERROR, True),
    ],
)
def test_http_status_fallbacks(
    status: int | None, payload: bytes, verdict: Status, retryable: bool
) -> None:
    got = classify(status, {}, payload)
    assert (got.status, got.retryable) == (verdict, retryable)


PAGES = {
    "cloudflare block": (403, b"<html><head><title>Attention Required! | Cloudflare</title>"),
    "cloudflare challenge": (403, b"<!DOCTYPE html><html><title>Just a moment...</title>"),
    "proxy login": (401, b"<html><head><title>401 Authorization Required</title></head>"),
    "captive portal": (402, b"<html><title>Payment Required: buy Wi-Fi access</title></html>"),
    "empty 401": (401, b""),
    "plain text": (403, b"Forbidden"),
}


@pytest.mark.parametrize("page", PAGES)
def test_a_page_in_front_of_the_api_is_never_a_verdict_on_the_key(page: str) -> None:
    """401/402/403 blame the key only in an API's JSON: an HTML or text page comes from a CDN,
    a firewall, a proxy or a captive portal, and says nothing about the key."""
    status, payload = PAGES[page]
    got = classify(status, {"content-type": "text/html"}, payload)
    assert (got.status, got.retryable) == (S.UNEXPECTED, False)
    assert got.evidence == f"http {status} with a non-json body, not an api verdict"
    assert got.http_status == status


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (500, body("Incorrect API key provided: sk-abc***xyz.", "invalid_request_error", None)),
        (502, body("upstream said", "insufficient_quota", "insufficient_quota")),
        (503, json.dumps({"success": False, "message": "余额不足"}).encode()),
    ],
)
def test_a_server_error_that_blames_a_key_is_still_a_server_error(
    status: int, payload: bytes
) -> None:
    """A relay that fails (5xx) while passing on its upstream's words about a key speaks of
    its own channel's key, not of this one: retried, and never a hard verdict."""
    got = classify(status, {}, payload)
    assert (got.status, got.retryable) == (S.SERVER_ERROR, True)
    assert got.evidence.startswith(f"http {status}, although ")


def test_the_same_statuses_in_json_still_blame_the_key() -> None:
    assert classify(401, {}, b'{"success": false, "message": "token not found"}').status is (
        S.INVALID
    )
    assert classify(402, {}, b"{}").status is S.QUOTA_EXHAUSTED
    assert classify(403, {}, b'{"error": {"message": "nope"}}').status is S.FORBIDDEN


def test_html_title_becomes_the_message() -> None:
    assert (
        classify(502, {}, b"<html><title>502 Bad Gateway</title></html>").message
        == "502 Bad Gateway"
    )


def test_404_without_code_hints_at_base_url() -> None:
    assert "/v1" in classify(404, {}, b"{}").evidence


def test_redirect_evidence_drops_query_and_credentials() -> None:
    location = "https://user:pw@elsewhere.example:8443/v1/models?key=sk-" + "x" * 40
    got = classify(302, {"Location": location}, b"")
    assert got.status is S.UNEXPECTED and not got.retryable
    assert got.evidence == "redirect to https://elsewhere.example:8443/v1/models"


def test_retry_after_headers() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    dated = {
        "retry-after": "Wed, 21 Oct 2015 07:28:30 GMT",
        "date": "Wed, 21 Oct 2015 07:28:00 GMT",
    }
    assert parse_retry_after(dated) == 30.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after-ms": "-5"}) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "99999999"},  # three years, from a relay
        {"retry-after-ms": "999999999999"},
        {"retry-after": "Fri, 01 Jan 2100 00:00:00 GMT", "date": "Wed, 21 Oct 2015 07:28:00 GMT"},
    ],
)
def test_an_absurd_retry_after_is_taken_as_a_day(headers: dict[str, str]) -> None:
    """No limit of the API lasts longer than a day; a longer wait is a relay's nonsense that
    would bench the key (rotation honours the server's wait) for years."""
    assert parse_retry_after(headers) == 86400.0


def test_an_absurd_wait_in_the_message_is_taken_as_a_day() -> None:
    got = classify(
        429, {}, body("Rate limit reached. Please try again in 99999h.", "requests", None)
    )
    assert (got.status, got.retry_hint_s, got.wait_hint_s) == (S.RATE_LIMITED, 86400.0, 86400.0)


def test_rate_limit_message_hint_is_reported_not_obeyed() -> None:
    got = classify(429, {}, body(RATE_MSG, "requests", "rate_limit_exceeded"))
    assert got.retry_after_s is None
    assert got.retry_hint_s == 20.0
    assert got.wait_hint_s == 20.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("12ms", 0.012),
        ("13.694s", 13.694),
        ("6m0s", 360.0),
        ("1h2m3.5s", 3723.5),
        ("250us", 0.00025),
        ("1.5", 1.5),
        ("0s", 0.0),
        ("", None),
        ("abc", None),
        ("5 s", None),
        ("-3s", None),
        ("1h2x", None),
        ("9" * 400, None),
        (None, None),
    ],
)
def test_go_durations(text: str | None, seconds: float | None) -> None:
    got = parse_go_duration(text)
    assert got == pytest.approx(seconds) if seconds is not None else got is None


def test_ratelimit_headers_parse_and_tolerate_garbage() -> None:
    headers = {
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": "9999",
        "X-RateLimit-Limit-Tokens": "200000",
        "x-ratelimit-remaining-tokens": "lots",
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    assert parse_ratelimit(headers) == {
        "limit_requests": 10000,
        "remaining_requests": 9999,
        "limit_tokens": 200000,
        "reset_requests_s": 0.006,
        "reset_tokens_s": 360.0,
    }
    assert parse_ratelimit({"x-ratelimit-reset-tokens": "never"}) is None
    assert parse_ratelimit({}) is None


def test_masking_of_keys_in_messages() -> None:
    key = make_key("mask-me")
    relay = make_relay_key("mask-me")
    text = f"bad key {key}, relay {relay}, stripped {relay[3:]}, header Bearer {relay}"
    masked = mask_text(text, [relay])
    for secret in (key, relay, relay[3:], key[20:60]):
        assert secret not in masked
    assert key[-4:] in masked  # still recognisable by its tail
    # the API's own half-masked form carries no secret and is kept as the API wrote it
    assert mask_text(f"provided: {api_masked(key)}.") == f"provided: {api_masked(key)}."


def test_classify_masks_the_given_secret_even_when_not_key_shaped() -> None:
    secret = "relay-token-" + "Q" * 30
    got = classify(401, {}, body(f"token {secret} is unknown", None, None), secrets=[secret])
    assert secret not in (got.message or "")


def test_a_result_is_stored_and_read_back_through_the_document_codec() -> None:
    result = HealthResult(
        name="main", status=S.RATE_LIMITED, checked_at="2025-01-01T00:00:00Z", latency_ms=12,
        http_status=429, ratelimit={"limit_requests": 3}, retry_after_s=1.5, attempts=3,
        probe="chat", evidence="code=rate_limit_exceeded",
    )  # fmt: skip
    record = health_record(result, consecutive_failures=1)
    stored = json.loads(json.dumps(codec.health_json(record)))
    assert stored["status"] == "rate_limited"
    entry = {"id": "00000000000000aa", "name": "k", "secret": "sk-x", "health": stored}
    owner = {"name": "owner", "recipient": "age1" + "q" * 58}
    doc = {"format": "keyvault/1", "recipients": [owner], "entries": [entry]}
    assert codec.loads(json.dumps(doc).encode()).entries[0].health == record
    entry["health"] = {**stored, "status": "from-the-future", "new": 1}
    again = codec.loads(json.dumps(doc).encode()).entries[0].health
    assert again is not None and again.status is S.UNEXPECTED and again.extra == {"new": 1}


# --- fuzz -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
error_like = st.fixed_dictionaries(
    {
        "error": st.one_of(
            json_values,
            st.dictionaries(st.sampled_from(["message", "type", "code", "param"]), json_values),
        )
    }
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    error_like.map(lambda v: json.dumps(v).encode()),
    st.just(b"[" * 5000 + b"]" * 5000),
)
header_names = st.sampled_from(
    [
        "retry-after",
        "retry-after-ms",
        "date",
        "location",
        "x-request-id",
        "x-ratelimit-reset-tokens",
    ]
)
header_maps = st.dictionaries(header_names | st.text(max_size=20), st.text(max_size=40), max_size=6)


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(
    status=st.none() | st.integers(min_value=-5, max_value=1000),
    headers=header_maps,
    payload=bodies,
)
def test_classifier_never_crashes(
    status: int | None, headers: dict[str, str], payload: bytes
) -> None:
    got = classify(status, headers, payload, secrets=["sk-" + "Z" * 40])
    assert isinstance(got.status, Status)
    assert got.retryable == (
        got.retryable and got.status in {S.RATE_LIMITED, S.SERVER_ERROR, S.NETWORK_ERROR}
    )
    assert "sk-" + "Z" * 40 not in repr(got)
    assert got.retry_after_s is None or got.retry_after_s >= 0
