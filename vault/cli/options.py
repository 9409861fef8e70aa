"""Options several commands share, declared once so they cannot drift apart.

`--project` and `--proxy` are not handed to the command function: they feed the invocation's
`Context` (vault/store/context.py), which resolves them with `.keyvault.toml`, config.toml
and the environment in one place. A command that filters by project (`list`, `check`, `log`)
reads `ctx.project_option`, the flag as typed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault.model.document import VaultDoc

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

_SECONDS = click.FloatRange(min=0, max=86400, min_open=True)


def work_factor_option(help: str) -> Callable[[F], F]:
    """`--work-factor LOG2N`: the scrypt cost of a passphrase this command sets (init,
    passwd, clone); the same bounds everywhere."""
    return click.option(
        "--work-factor", type=click.IntRange(10, 22), default=None, metavar="LOG2N", help=help
    )


def deadline_options(command: F) -> F:
    """`--timeout` (each request) and `--run-timeout` (the whole command's network work);
    they feed the Context, which falls back to config.toml, then the defaults."""
    command = click.option(
        "--run-timeout",
        type=_SECONDS,
        default=None,
        metavar="SECONDS",
        expose_value=False,
        callback=_remember("run_timeout"),
        help="Give up on the network after this long in total (default: run_timeout in"
        " config.toml, else 600).",
    )(command)
    return click.option(
        "--timeout",
        type=_SECONDS,
        default=None,
        metavar="SECONDS",
        expose_value=False,
        callback=_remember("timeout"),
        help="Give up on a request whose whole answer takes longer (default: timeout in"
        " config.toml, else 30).",
    )(command)


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


def vault_option(ctx: click.Context) -> str | None:
    """`--vault` as given, after the subcommand or before it (the global option)."""
    given: str | None = ctx.meta.get(OPTIONS_META, {}).get("vault")
    return given if given is not None else ctx.find_root().params.get("vault_home")


# --- completion of names --------------------------------------------------------------------
# Completion runs on every Tab: it must never prompt, never run scrypt, never print. So the
# vault is opened only through a running session (`keyvault unlock`); locked, or anything at
# all going wrong, means no names, silently. KEYVAULT_PASSPHRASE is left out on purpose: it
# would cost a scrypt per Tab.

Complete = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _unlocked_doc(ctx: click.Context) -> VaultDoc | None:
    from vault.session.client import Session  # noqa: PLC0415
    from vault.session.identity import UnlockSettings  # noqa: PLC0415
    from vault.session.unlock import Unlocker  # noqa: PLC0415
    from vault.store.config import Paths, resolve_home  # noqa: PLC0415
    from vault.store.keyvault import Keyvault  # noqa: PLC0415

    home = resolve_home(vault_option(ctx), os.environ)
    session = Session(home)
    if session.recipient() is None:  # locked: no names, and no identity file is read
        return None
    unlocker = Unlocker(settings=UnlockSettings(), ask=None, session=session)
    return Keyvault(Paths(home), unlocker).read()


def _names(pick: Callable[[VaultDoc], list[str]]) -> Complete:
    def complete(
        ctx: click.Context, _param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        try:
            doc = _unlocked_doc(ctx)
        except Exception:
            return []
        if doc is None:
            return []
        return [CompletionItem(n) for n in pick(doc) if n.startswith(incomplete)]

    return complete


entry_names = _names(lambda doc: doc.names())
project_names = _names(lambda doc: [p for p in doc.projects() if p])
