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
    from vault.cli.complete import project_names  # noqa: PLC0415 - cycle: complete needs us

    return click.option(
        "--project",
        metavar="NAME",
        default=None,
        expose_value=False,
        callback=_remember("project"),
        shell_complete=project_names,
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


# `--vault` after the subcommand; vault/cli/main.py adds it to every command, hidden (the
# global option documents it)
VAULT_OPTION = click.Option(
    ["--vault"],
    metavar="PATH",
    default=None,
    expose_value=False,
    hidden=True,
    callback=_remember("vault"),
    help="Vault folder (as the global --vault).",
)
