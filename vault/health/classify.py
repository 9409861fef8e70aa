"""Turn one HTTP answer into a `Classification`: pure, table-driven, never raises.

Evidence for the tables is in docs/health.md and docs/openai-api.md. The order
of lookups is the order of trust: the machine-readable `error.code`, then `error.type`, then
known phrases in `error.message` (relays such as one-api and new-api put the real reason only
there, often in Chinese, and sometimes with HTTP 200), and only then the HTTP status.

Why `type` beats the message: new-api rewrites the message of every upstream 429 to
"当前分组上游负载已饱和" ("the group's upstream is saturated, try later") even when the type says
`insufficient_quota` — the message alone would make a dead key look merely throttled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from vault.health.model import Classification, Status
from vault.health.ratelimit import parse_ratelimit, parse_retry_after, retry_hint_from_message
from vault.health.redact import clip, safe_message
from vault.model.health import HARD_FAILURES

S = Status

ERROR_CODES: Final[Mapping[str, Status]] = {
    "invalid_api_key": S.INVALID,
    "account_deactivated": S.INVALID,
    "no_organization": S.FORBIDDEN,
    "mismatched_organization": S.FORBIDDEN,
    "mismatched_project": S.FORBIDDEN,
    "ip_not_authorized": S.FORBIDDEN,
    "access_denied": S.FORBIDDEN,  # new-api: client IP outside the token's allowlist
    "unsupported_country_region_territory": S.REGION_BLOCKED,
    "model_not_found": S.MODEL_UNAVAILABLE,
    "insufficient_quota": S.QUOTA_EXHAUSTED,
    "insufficient_user_quota": S.QUOTA_EXHAUSTED,  # one-api / new-api, HTTP 403
    "insufficient_token_quota": S.QUOTA_EXHAUSTED,
    "pre_consume_token_quota_failed": S.QUOTA_EXHAUSTED,  # one-api / new-api, HTTP 403
    "billing_hard_limit_reached": S.QUOTA_EXHAUSTED,
    # 429 "Your account is not active, please check your billing details": the card failed
    # (a virtual card banned after two failed charges); waiting does not help
    "billing_not_active": S.QUOTA_EXHAUSTED,
    "quota_exceeded": S.QUOTA_EXHAUSTED,  # relays' English spelling of the same
    "access_terminated": S.INVALID,  # 401 "Your access was terminated due to violation …"
    "invalid_organization": S.FORBIDDEN,  # 401 "No such organization": fix org_id, not the key
    "rate_limit_exceeded": S.RATE_LIMITED,
    "server_error": S.SERVER_ERROR,
}

ERROR_TYPES: Final[Mapping[str, Status]] = {
    "insufficient_quota": S.QUOTA_EXHAUSTED,
    "billing_not_active": S.QUOTA_EXHAUSTED,
    "access_terminated": S.INVALID,
    "authentication_error": S.INVALID,
    "permission_error": S.FORBIDDEN,
    "forbidden": S.FORBIDDEN,
    "request_forbidden": S.FORBIDDEN,
    "requests": S.RATE_LIMITED,
    "tokens": S.RATE_LIMITED,
    "rate_limit_error": S.RATE_LIMITED,
    "server_error": S.SERVER_ERROR,
    "api_error": S.SERVER_ERROR,
    "overloaded_error": S.SERVER_ERROR,
}

# Lower-cased substrings, first match wins: money problems first, because a relay's quota
# message may also contain words such as "token" or "请稍后".
MESSAGE_PHRASES: Final[tuple[tuple[str, Status], ...]] = (
    ("exceeded your current quota", S.QUOTA_EXHAUSTED),
    ("insufficient_quota", S.QUOTA_EXHAUSTED),
    ("credit balance is too low", S.QUOTA_EXHAUSTED),
    ("out of credits", S.QUOTA_EXHAUSTED),
    ("quota is not enough", S.QUOTA_EXHAUSTED),
    ("billing hard limit", S.QUOTA_EXHAUSTED),
    ("check your billing details", S.QUOTA_EXHAUSTED),  # billing_not_active's message
    ("insufficient balance", S.QUOTA_EXHAUSTED),
    ("insufficient account balance", S.QUOTA_EXHAUSTED),
    ("insufficient credits", S.QUOTA_EXHAUSTED),
    ("insufficient funds", S.QUOTA_EXHAUSTED),
    ("余额不足", S.QUOTA_EXHAUSTED),  # balance insufficient
    ("已欠费", S.QUOTA_EXHAUSTED),  # account in arrears
    ("额度已用尽", S.QUOTA_EXHAUSTED),  # one-api/new-api: 该令牌额度已用尽 (token quota used up)
    ("额度不足", S.QUOTA_EXHAUSTED),  # 用户额度不足 / 令牌额度不足
    ("额度已用完", S.QUOTA_EXHAUSTED),  # quota used up (another common wording)
    ("余额已用完", S.QUOTA_EXHAUSTED),  # balance used up
    ("请充值", S.QUOTA_EXHAUSTED),  # please recharge
    ("country, region, or territory not supported", S.REGION_BLOCKED),
    ("incorrect api key", S.INVALID),
    ("invalid api key", S.INVALID),
    ("api key not valid", S.INVALID),
    ("api key expired", S.INVALID),
    ("deactivated account", S.INVALID),
    ("access was terminated", S.INVALID),
    ("invalid token", S.INVALID),  # one-api / new-api in English
    ("无效的令牌", S.INVALID),  # invalid token
    ("无效的 token", S.INVALID),
    ("令牌已过期", S.INVALID),  # 该令牌已过期: token expired
    ("token 已过期", S.INVALID),
    ("令牌状态不可用", S.INVALID),  # 该令牌状态不可用: token disabled
    ("token 状态不可用", S.INVALID),
    ("does not exist or you do not have access", S.MODEL_UNAVAILABLE),
    # 403 for a model the key's project may not use: the key serves other models, so this
    # is not `forbidden` (a hard failure that would disable it)
    ("not allowed to sample from this model", S.MODEL_UNAVAILABLE),
    ("does not have access to model", S.MODEL_UNAVAILABLE),
    ("无权访问模型", S.MODEL_UNAVAILABLE),  # 该令牌无权访问模型 X: token may not use model X
    ("无权访问任何模型", S.MODEL_UNAVAILABLE),
    ("无可用渠道", S.MODEL_UNAVAILABLE),  # no channel serves this model
    ("no available channel", S.MODEL_UNAVAILABLE),
    ("missing scopes", S.FORBIDDEN),
    ("insufficient permissions", S.FORBIDDEN),
    ("must be a member of an organization", S.FORBIDDEN),
    ("should match organization", S.FORBIDDEN),
    ("no such organization", S.FORBIDDEN),
    ("organization has been disabled", S.FORBIDDEN),
    ("organization has been restricted", S.FORBIDDEN),
    ("not authorized to access this resource from your ip", S.FORBIDDEN),
    ("不在令牌允许访问的列表中", S.FORBIDDEN),  # IP not in the token's allowlist
    ("用户已被封禁", S.FORBIDDEN),  # user banned
    ("rate limit reached", S.RATE_LIMITED),
    ("rate limit exceeded", S.RATE_LIMITED),
    ("too many requests", S.RATE_LIMITED),
    ("上游负载已饱和", S.RATE_LIMITED),  # 当前分组上游负载已饱和: upstream group saturated
    ("请求数限制", S.RATE_LIMITED),  # new-api's own per-user request limit
    # AWS API Gateway's 403 for a path it has no route for (a relay hosted there, base_url
    # without /v1): it names a token, but says nothing about the key
    ("missing authentication token", S.UNEXPECTED),
    ("the server had an error", S.SERVER_ERROR),
    ("currently overloaded", S.SERVER_ERROR),
)

# "No key was sent", although every request carries one (transport.refusal stops an empty
# key before sending): a proxy, CDN or relay on the way dropped the Authorization header.
# The key was never judged, so it is a network problem, not `invalid`. one-api/new-api say
# 未提供令牌 for an empty token after stripping "Bearer " and "sk-".
KEY_NOT_RECEIVED: Final = ("didn't provide an api key", "未提供令牌")
KEY_NOT_RECEIVED_EVIDENCE: Final = (
    "the server got no key, though one was sent: a proxy, CDN or relay on the way dropped"
    " the Authorization header"
)

# A rate limit that waiting cannot cure: the single request is bigger than the whole limit.
# And a dropped key: the same proxy drops it again.
NO_RETRY_PHRASES: Final = ("request too large", *KEY_NOT_RECEIVED)

HTTP_STATUSES: Final[Mapping[int, Status]] = {
    401: S.INVALID,
    402: S.QUOTA_EXHAUSTED,
    403: S.FORBIDDEN,
    408: S.SERVER_ERROR,
    409: S.SERVER_ERROR,
    429: S.RATE_LIMITED,
}

RETRYABLE: Final = frozenset({S.RATE_LIMITED, S.SERVER_ERROR, S.NETWORK_ERROR})

# where relays put the reason when they do not use OpenAI's {"error": {…}}
RELAY_MESSAGE_FIELDS: Final = ("message", "msg", "detail", "error_msg", "errmsg")
RELAY_OK_CODES: Final = frozenset({"0", "200", "success", "ok", "OK"})
RELAY_FAILED_STATUSES: Final = frozenset({"error", "fail", "failed"})

_HTML_TITLE: Final = re.compile(r"(?is)<title[^>]*>(.*?)</title>")


@dataclass(frozen=True)
class _Body:
    """What could be read out of a response body."""

    is_json: bool
    has_error: bool = False
    error_type: str | None = None
    error_code: str | None = None
    message: str | None = None


def _text(value: object) -> str | None:
    """A JSON scalar as text; objects, lists and empty strings count as absent."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value) or None
    return None


_NOT_JSON: Final = object()


def _parse_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _read_body(status_code: int, body: bytes) -> _Body:
    """Find an OpenAI-style error in the body, or the relay shapes that stand in for one."""
    doc = _parse_json(body)
    if doc is _NOT_JSON:
        return _Body(is_json=False, message=_snippet(body))
    if isinstance(doc, list) and len(doc) == 1:  # Gemini's OpenAI endpoint: [{"error": …}]
        doc = doc[0]
    if not isinstance(doc, dict):
        return _Body(is_json=True)
    error = doc.get("error")
    if isinstance(error, dict):
        fields = (_text(error.get(k)) for k in ("type", "code", "message"))
        etype, code, message = fields
        return _Body(True, bool(etype or code or message), etype, code, message)
    if isinstance(error, str) and error:
        return _Body(True, True, message=error)
    # relay shapes: one-api's own API {"success": false, "message": …}, FastAPI's `detail`,
    # and the {"code": 401, "msg": …} envelope of many Chinese gateways, often with HTTP 200
    message = next(filter(None, (_text(doc.get(k)) for k in RELAY_MESSAGE_FIELDS)), None)
    code = doc.get("code")
    failed = code is not None and not isinstance(code, bool) and str(code) not in RELAY_OK_CODES
    said_failure = doc.get("success") is False or doc.get("status") in RELAY_FAILED_STATUSES
    if said_failure or (message and (status_code >= 400 or failed)):
        return _Body(True, True, error_code=_text(code) if failed else None, message=message)
    return _Body(is_json=True)


def _snippet(body: bytes) -> str | None:
    text = body[:4096].decode("utf-8", errors="replace")
    title = _HTML_TITLE.search(text)
    return clip(title.group(1) if title else text, 200) or None


def _by_fields(body: _Body) -> tuple[Status, str] | None:
    if body.error_code and body.error_code in ERROR_CODES:
        return ERROR_CODES[body.error_code], f"code={body.error_code}"
    if body.error_type and body.error_type in ERROR_TYPES:
        return ERROR_TYPES[body.error_type], f"type={body.error_type}"
    lowered = (body.message or "").lower()
    if any(phrase in lowered for phrase in KEY_NOT_RECEIVED):
        return S.NETWORK_ERROR, KEY_NOT_RECEIVED_EVIDENCE
    for phrase, status in MESSAGE_PHRASES:
        if phrase in lowered:
            return status, f"message contains {phrase!r}"
    return None


def _by_success(status_code: int, body: _Body) -> tuple[Status, str]:
    if body.has_error:
        return S.UNEXPECTED, f"http {status_code} with an unrecognised error body"
    if body.is_json:
        return S.OK, f"http {status_code}"
    return S.UNEXPECTED, f"http {status_code} with a non-json body"


def _by_http(status_code: int, body: _Body) -> tuple[Status, str]:
    if 200 <= status_code < 300:
        return _by_success(status_code, body)
    status = HTTP_STATUSES.get(status_code)
    if status in HARD_FAILURES and not body.is_json:
        # a page, not an API error: Cloudflare's "Attention Required", a proxy's or a captive
        # portal's login, nginx's "Forbidden". Whatever sent it, it was not the API judging
        # the key, and a hard verdict would disable the key or rotate away from it
        return S.UNEXPECTED, f"http {status_code} with a non-json body, not an api verdict"
    if status is None:
        status = S.SERVER_ERROR if 500 <= status_code < 600 else S.UNEXPECTED
    hint = " (does base_url end in /v1?)" if status_code == 404 else ""
    return status, f"http {status_code}{hint}"


def _server_failed(status_code: int, status: Status, evidence: str) -> tuple[Status, str]:
    """A 5xx says the server failed. A body that blames a key as well is a relay passing on
    what its upstream said about the relay's own key (its channel), not about this one."""
    if 500 <= status_code < 600 and status in HARD_FAILURES:
        return S.SERVER_ERROR, f"http {status_code}, although {evidence}"
    return status, evidence


def _redirect(location: str | None) -> str:
    """Where a redirect pointed, without query or credentials (either could carry a secret)."""
    if not location:
        return "redirect without a location"
    try:
        parts = urlsplit(location.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "redirect to an unparsable location"
    scheme = f"{parts.scheme}://" if parts.scheme else ""
    return clip(f"redirect to {scheme}{host}{port}{parts.path}", 200)


def classify(
    status_code: int | None,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Iterable[str] = (),
) -> Classification:
    """Classify one response. `secrets` are masked out of the kept message along with anything
    key-shaped. Unknown shapes end as `unexpected`; this function never raises on input."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    if status_code is None:
        return Classification(S.NETWORK_ERROR, True, "no http response")
    request_id = safe_message(lowered.get("x-request-id"), secrets)
    ratelimit = parse_ratelimit(lowered)
    if 300 <= status_code < 400:
        evidence = safe_message(_redirect(lowered.get("location")), secrets) or "redirect"
        return Classification(
            S.UNEXPECTED, False, evidence, status_code, request_id=request_id, ratelimit=ratelimit
        )
    parsed = _read_body(status_code, body)
    decided = (_by_fields(parsed) if parsed.has_error else None) or _by_http(status_code, parsed)
    status, evidence = _server_failed(status_code, *decided)
    message = safe_message(parsed.message, secrets)
    lowered_message = (message or "").lower()
    retryable = status in RETRYABLE and not any(p in lowered_message for p in NO_RETRY_PHRASES)
    hint = retry_hint_from_message(message) if status is S.RATE_LIMITED else None
    return Classification(
        status=status,
        retryable=retryable,
        evidence=evidence,
        http_status=status_code,
        error_type=safe_message(parsed.error_type, secrets),
        error_code=safe_message(parsed.error_code, secrets),
        message=message,
        retry_after_s=parse_retry_after(lowered),
        request_id=request_id,
        ratelimit=ratelimit,
        retry_hint_s=hint,
    )
