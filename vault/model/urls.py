"""The base URLs a key may be sent to: https, or plain http only to this machine.

Its own module, apart from vault/model/validate.py (user input: dataclasses, datetime and a
dozen patterns), because the document reader checks every stored `base_url` on every
command: a relay entry must not make `keyvault env` import what only `add` needs.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from vault.errors import InvalidValue

_LOOPBACK_NAMES = {"localhost"}
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # compiled on first use (re caches it)


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    import ipaddress  # noqa: PLC0415 - only for plain http URLs

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(raw: str) -> str:
    """An https URL (http only for loopback): keys must never cross the network in clear."""
    url = raw.strip().rstrip("/")
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced `[` in the host
        raise InvalidValue("base url is not a valid URL") from None
    # before anything below quotes the URL back: it may hold a password
    if parts.username or parts.password:
        raise InvalidValue("base url must not contain a user name or password")
    if not url.isprintable() or " " in url:
        raise InvalidValue(f"base url {_show(raw)} contains spaces or control characters")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidValue(f"base url {_show(raw)} is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise InvalidValue(f"base url {_show(raw)} has a bad port") from None
    if parts.query or parts.fragment:
        raise InvalidValue("base url must not have a query or fragment")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InvalidValue(
            "base url uses plain http: the key would cross the network unencrypted",
            hint="use https, or http only for 127.0.0.1/localhost",
        )
    return url


def _show(text: str, limit: int = 40) -> str:
    """Quote user input for an error message: printable, bounded, one line."""
    shown = re.sub(_CONTROL, "?", text.replace("\n", "?"))
    return repr(shown if len(shown) <= limit else shown[:limit] + "…")
