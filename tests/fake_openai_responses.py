"""What the fake OpenAI server answers: test keys, error bodies, headers and key behaviours.

Every status, header and body follows docs/openai-api.md; relay answers follow
one-api / new-api (songquanpeng/one-api `middleware/auth.go`, `model/token.go`;
QuantumNous/new-api `i18n/locales/zh-CN.yaml`, `middleware/utils.go`). Where the reference marks a
fact unconfirmed, the comment here says so too.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any, Final

# ----------------------------------------------------------------------------- test keys

_ALPHABET: Final = string.ascii_letters + string.digits + "_-"
# (prefix, characters on each side of the "T3BlbkFJ" marker), from the reference's key table
KEY_SHAPES: Final = {
    "proj": ("sk-proj-", 74),
    "svcacct": ("sk-svcacct-", 74),
    "admin": ("sk-admin-", 58),
    "legacy": ("sk-", 20),
}
_MARKER: Final = "T3Blbk" + "FJ"  # split so no file holds a real-looking key literally


def _chars(seed: str, count: int) -> str:
    out: list[str] = []
    block = 0
    while len(out) < count:
        digest = hashlib.sha256(f"{seed}:{block}".encode()).digest()
        out.extend(_ALPHABET[b % 64] for b in digest)
        block += 1
    return "".join(out[:count])


def make_key(seed: object, kind: str = "proj") -> str:
    """A deterministic key of the real shape for `kind` (proj, svcacct, admin, legacy)."""
    prefix, side = KEY_SHAPES[kind]
    body = _chars(f"{kind}:{seed}", 2 * side)
    return prefix + body[:side] + _MARKER + body[side:]


def make_relay_key(seed: object) -> str:
    """A one-api style key: `sk-` + 48 characters, no OpenAI marker."""
    return "sk-" + _chars(f"relay:{seed}", 48)


def api_masked(key: str) -> str:
    """How the API itself shows a key in 401 messages: first 8, `*` x (len - 12), last 4."""
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


def admin_redacted(key: str) -> str:
    """How the Administration API shows a key: `sk-abc...def`."""
    return f"{key[:6]}...{key[-3:]}"


# ----------------------------------------------------------------------------- bodies


def request_id() -> str:
    return "req_" + secrets.token_hex(16)


def error_body(
    message: str, etype: str | None, code: str | None, param: str | None = None
) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": etype, "param": param, "code": code}},
        ensure_ascii=False,
    ).encode()


def relay_error_body(message: str, etype: str, code: str | None) -> bytes:
    """one-api/new-api shape: no `param`, request id appended to the message."""
    rid = time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)
    err = {"message": f"{message} (request id: {rid})", "type": etype, "code": code}
    return json.dumps({"error": err}, ensure_ascii=False).encode()


DEFAULT_MODELS: Final = ("gpt-4o-mini", "gpt-4o", "o3-mini", "text-embedding-3-small", "whisper-1")


def models_body(models: tuple[str, ...]) -> bytes:
    data = [
        {"id": m, "object": "model", "created": 1_700_000_000 + i, "owned_by": "system"}
        for i, m in enumerate(models)
    ]
    return json.dumps({"object": "list", "data": data}).encode()


def chat_body(model: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-" + secrets.token_urlsafe(21),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hi", "refusal": None},
                    "logprobs": None,
                    "finish_reason": "length",
                }
            ],
            "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
            "system_fingerprint": "fp_" + secrets.token_hex(5),
        }
    ).encode()


def ratelimit_headers(
    remaining_requests: int = 9999, remaining_tokens: int = 199_990
) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": str(remaining_requests),
        "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-tokens": str(remaining_tokens),
        "x-ratelimit-reset-requests": "6ms" if remaining_requests else "6m0s",
        "x-ratelimit-reset-tokens": "13.694s",
    }


# ----------------------------------------------------------------------------- behaviours


@dataclass
class KeySpec:
    """How the server treats one key. `times` bounds transient failures (-1: forever)."""

    behaviour: str = "ok"
    times: int = -1
    retry_after: str | None = None
    retry_after_ms: str | None = None
    org_id: str | None = None
    org_slug: str = "keyvault-tests"
    status: int = 200
    message: str = ""
    error_type: str | None = None
    error_code: str | None = None
    slow_s: float = 5.0
    location: str = "https://elsewhere.invalid/v1/models"
    hard_limit_usd: float = 100.0
    total_usage_cents: float = 0.0
    models: tuple[str, ...] = DEFAULT_MODELS
    endpoints: frozenset[str] | None = None
    served_failures: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Canned:
    """A response decided by a behaviour; `reset` means: drop the connection with a TCP RST."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    delay_s: float = 0.0


INVALID_KEY_MSG: Final = (
    "Incorrect API key provided: {masked}. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)
NO_AUTH_MSG: Final = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
    "blank username) if you're accessing the API from your browser and are prompted for a "
    "username. You can obtain an API key from https://platform.openai.com/account/api-keys."
)
QUOTA_MSG: Final = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
MISSING_SCOPES_MSG: Final = (
    "You have insufficient permissions for this operation. Missing scopes: {scope}. Check that "
    "you have the correct role in your organization (Reader, Writer, Owner) and project "
    "(Member, Owner), and if you're using a restricted API key, that it has the necessary scopes."
)


def invalid_key(key: str) -> Canned:
    return Canned(
        401,
        error_body(
            INVALID_KEY_MSG.format(masked=api_masked(key)),
            "invalid_request_error",
            "invalid_api_key",
        ),
    )


def no_auth() -> Canned:
    return Canned(401, error_body(NO_AUTH_MSG, "invalid_request_error", None))


def missing_scopes(scope: str) -> Canned:
    return Canned(
        401, error_body(MISSING_SCOPES_MSG.format(scope=scope), "invalid_request_error", None)
    )


def mismatched_org() -> Canned:
    return Canned(
        401,
        error_body(
            "OpenAI-Organization header should match organization for API key",
            "invalid_request_error",
            "mismatched_organization",
        ),
    )


def _rate_limited(spec: KeySpec, model: str) -> Canned:
    wait = spec.retry_after or "20"
    msg = (
        f"Rate limit reached for {model} in organization org-keyvaulttests on requests per min "
        f"(RPM): Limit 3, Used 3, Requested 1. Please try again in {wait}s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more."
    )
    headers = ratelimit_headers(remaining_requests=0)
    if spec.retry_after is not None:
        headers["retry-after"] = spec.retry_after
    if spec.retry_after_ms is not None:
        headers["retry-after-ms"] = spec.retry_after_ms
    return Canned(429, error_body(msg, "requests", "rate_limit_exceeded"), headers)


def _too_large(model: str) -> Canned:
    msg = (
        f"Request too large for {model} in organization org-keyvaulttests on tokens per min "
        "(TPM): Limit 10000, Requested 30000. The input or output tokens must be reduced in order "
        "to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    return Canned(429, error_body(msg, "tokens", "rate_limit_exceeded"), ratelimit_headers(9999, 0))


def model_not_found(model: str) -> Canned:
    """The API's answer to a model that does not exist or that this key may not use."""
    msg = f"The model `{model}` does not exist or you do not have access to it."
    return Canned(404, error_body(msg, "invalid_request_error", "model_not_found"))


def _static(status: int, message: str, etype: str | None, code: str | None) -> Any:
    return lambda spec, model: Canned(status, error_body(message, etype, code))


# behaviour -> (endpoints it affects by default, is it transient, builder(spec, model) -> Canned)
ALL: Final = frozenset({"models", "chat", "billing_subscription", "billing_usage"})
CHAT: Final = frozenset({"chat"})
BEHAVIOURS: Final[dict[str, tuple[frozenset[str], bool, Any]]] = {
    "no_auth": (ALL, False, lambda spec, model: no_auth()),
    "no_organization": (
        ALL,
        False,
        _static(
            401,
            "You must be a member of an organization to use the API. Please contact us through "
            "our help center at help.openai.com.",
            "invalid_request_error",
            "no_organization",
        ),
    ),
    "mismatched_organization": (ALL, False, lambda spec, model: mismatched_org()),
    # message and type unconfirmed (reference): the code is what clients see documented
    "ip_not_authorized": (
        ALL,
        False,
        _static(
            401,
            "You are not authorized to access this resource from your IP address.",
            "invalid_request_error",
            "ip_not_authorized",
        ),
    ),
    "missing_scopes": (ALL, False, lambda spec, model: missing_scopes("api.model.read")),
    "region_blocked": (
        ALL,
        False,
        _static(
            403,
            "Country, region, or territory not supported",
            "request_forbidden",
            "unsupported_country_region_territory",
        ),
    ),
    "quota": (CHAT, False, _static(429, QUOTA_MSG, "insufficient_quota", "insufficient_quota")),
    "quota_old": (CHAT, False, _static(429, QUOTA_MSG, "insufficient_quota", None)),
    "rate_limited": (ALL, True, _rate_limited),
    "too_large": (CHAT, False, lambda spec, model: _too_large(model)),
    "model_not_found": (CHAT, False, lambda spec, model: model_not_found(model)),
    "server_error": (
        ALL,
        True,
        _static(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
    ),
    # 503 body unconfirmed: the shape of the 500 with OpenAI's overload wording
    "unavailable": (
        ALL,
        True,
        _static(503, "The server is overloaded or not ready yet.", "server_error", None),
    ),
    "slow": (ALL, True, lambda spec, model: Canned(delay_s=spec.slow_s)),
    "reset": (ALL, True, lambda spec, model: Canned(reset=True)),
    "garbage": (
        ALL,
        False,
        lambda spec, model: Canned(
            200,
            b"<html><head><title>Welcome to nginx!</title></head><body>ok</body></html>",
            {"content-type": "text/html"},
        ),
    ),
    "relay": (
        ALL,
        False,
        lambda spec, model: Canned(
            spec.status,
            relay_error_body(spec.message, spec.error_type or "new_api_error", spec.error_code),
        ),
    ),
    "redirect": (ALL, False, lambda spec, model: Canned(302, b"", {"location": spec.location})),
    # an HTML page in front of the API (status and title from the spec): Cloudflare's block
    # page ("Attention Required! | Cloudflare", 403), a proxy's or captive portal's login
    "page": (ALL, False, lambda spec, model: html_page(spec.status, spec.message)),
}


def html_page(status: int, title: str) -> Canned:
    """A page as a CDN, a firewall or a captive portal sends it: HTML, never the API's JSON."""
    body = f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1>"
    body += "<p>Ray ID: 8e5f0c1d2b3a4f67</p></body></html>"
    headers = {"content-type": "text/html; charset=UTF-8", "server": "cloudflare"}
    return Canned(status, body.encode(), headers | {"cf-ray": "8e5f0c1d2b3a4f67-LHR"})


# Relay answers seen in the wild: name -> (http status, error.type, error.code, message).
RELAY_ERRORS: Final[dict[str, tuple[int, str, str | None, str]]] = {
    # new-api i18n token.exhausted / one-api ValidateUserToken
    "token_exhausted": (
        401,
        "new_api_error",
        "",
        "该令牌额度已用尽 TokenStatusExhausted[sk-abc***xyz]",
    ),
    "token_invalid": (401, "new_api_error", "", "无效的令牌"),
    "token_expired": (401, "new_api_error", "", "该令牌已过期"),
    "token_disabled": (401, "new_api_error", "", "该令牌状态不可用"),
    # one-api ValidateUserToken: the token is empty after "Bearer " and "sk-" are stripped
    "token_missing": (401, "new_api_error", "", "未提供令牌"),
    # early one-api answered token errors with HTTP 200 and type one_api_error
    "token_exhausted_200": (200, "one_api_error", None, "该令牌额度已用尽"),
    "balance_low_200": (200, "upstream_error", None, "余额不足，请充值后重试"),
    "in_arrears_200": (200, "upstream_error", None, "您的账户已欠费"),
    "saturated": (429, "new_api_error", "", "当前分组上游负载已饱和，请稍后再试"),
    "saturated_quota": (
        429,
        "insufficient_quota",
        "insufficient_user_quota",
        "当前分组上游负载已饱和，请稍后再试",
    ),
    "user_quota": (403, "one_api_error", "insufficient_user_quota", "user quota is not enough"),
    "pre_consume": (
        403,
        "one_api_error",
        "pre_consume_token_quota_failed",
        "token quota is not enough",
    ),
    "model_forbidden": (403, "new_api_error", "", "该令牌无权访问模型 gpt-4o-mini"),
    "no_channel": (
        503,
        "new_api_error",
        "model_not_found",
        "分组 default 下模型 gpt-4o-mini 无可用渠道（distributor）",
    ),
    "ip_denied": (403, "new_api_error", "access_denied", "您的 IP 不在令牌允许访问的列表中"),
    "user_banned": (403, "new_api_error", "", "用户已被封禁"),
}
