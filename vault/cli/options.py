"""Options several commands share, declared once so they cannot drift apart.

`--project` and `--proxy` are not handed to the command function: they feed the invocation's
`Context` (vault/store/context.py), which resolves them with `.keyvault.toml`, config.toml
and the environment in one place. A command that filters by project (`list`, `check`, `log`)
reads `ctx.project_option`, the flag as typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
OPTIONS_META = "keyvault.options"


def _remember(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.meta.setdefault(OPTIONS_META, {})[name] = value
        return value

    return store


def project_option(
    help_text: str = "Project (default: .keyvault.toml, then config.toml).",
) -> Callable[[F], F]:
    return click.option(
        "--project",
        metavar="NAME",
        default=None,
        expose_value=False,
        callback=_remember("project"),
        help=help_text,
    )


def _proxy_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from vault.store.config import PROXY_HINT, is_proxy_url  # noqa: PLC0415

    if value is not None and not is_proxy_url(value):
        raise click.BadParameter(PROXY_HINT)  # never echo the URL: it may hold a password
    stored: str | None = _remember("proxy")(ctx, param, value)
    return stored


proxy_option = click.option(
    "--proxy",
    metavar="URL",
    default=None,
    expose_value=False,
    callback=_proxy_url,
    help="Proxy for the API (http://, https://, socks5://); default: proxy in config.toml,"
    " then HTTPS_PROXY/ALL_PROXY.",
)

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output (keys masked)."
)

utc_option = click.option(
    "--utc",
    is_flag=True,
    expose_value=False,
    callback=lambda ctx, param, value: _remember("utc")(ctx, param, value or None),
    help="Show times in UTC instead of local time (--json is always UTC).",
)


def utc_wanted() -> bool:
    """Whether this invocation asked for UTC on its human output (`--utc`)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(OPTIONS_META, {}).get("utc"))
