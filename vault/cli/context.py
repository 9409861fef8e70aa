"""What every command shares: the resolved context, prompts, and output helpers."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

import click

from vault.cli.everyday import command_context
from vault.cli.options import OPTIONS_META, vault_option
from vault.cli.report import safe, warn
from vault.errors import Cancelled, InvalidValue, NoPassphraseSource, NothingTyped
from vault.model.secret import Secret
from vault.model.validate import key_as_pasted, key_from_bytes
from vault.session.identity import read_passphrase_file
from vault.session.unlock import ask_hidden, terminal_available
from vault.store.context import Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault.export.targets import SyncOutcome
    from vault.health.checking import CheckOptions


def ask_new_passphrase(env_prefix: str = "KEYVAULT_PASSPHRASE") -> Secret:
    """A new passphrase: from `<prefix>` / `<prefix>_FILE`, or asked twice on the terminal.

    `init` reads KEYVAULT_PASSPHRASE(_FILE); `passwd` reads KEYVAULT_NEW_PASSPHRASE(_FILE)
    so that scripts can give the old and the new one.
    """
    if os.environ.get(env_prefix):
        return Secret(os.environ[env_prefix])
    if os.environ.get(f"{env_prefix}_FILE"):
        path = Path(os.environ[f"{env_prefix}_FILE"]).expanduser()
        return read_passphrase_file(path, variable=f"{env_prefix}_FILE", warn=warn)
    if not terminal_available():  # name the variables this command reads, not the unlock ones
        raise NoPassphraseSource(
            "no terminal to ask for the new passphrase",
            hint=f"set {env_prefix} or {env_prefix}_FILE for automation",
        )
    first = ask_hidden("new passphrase: ")
    second = ask_hidden("repeat passphrase: ")
    if first != second:
        raise InvalidValue("the two passphrases differ; nothing was changed")
    return first


def read_secret_input(prompt: str = "key: ") -> Secret:
    """The key to store: piped on stdin (as bytes: a Windows pipe or file may carry a
    byte-order mark, or be UTF-16), or typed at a hidden prompt; either way without the
    whitespace and byte-order marks around it (validate.key_as_pasted)."""
    if sys.stdin is not None and not sys.stdin.isatty():
        raw = getattr(sys.stdin, "buffer", None)
        data = raw.read(1 << 17) if raw is not None else sys.stdin.read(1 << 16)
        text = key_from_bytes(data) if isinstance(data, bytes) else key_as_pasted(data)
        if not text:
            raise InvalidValue("no key on standard input")
        return Secret(text)
    try:
        typed = ask_hidden(prompt)
    except NothingTyped:
        typed = Secret("")
    if not key_as_pasted(typed.reveal()):  # nothing, or only a paste's invisible characters
        raise Cancelled(
            "no key given", hint='paste it at the prompt, or pipe it: printf %s "$KEY" | keyvault …'
        )
    return Secret(key_as_pasted(typed.reveal()))


def pass_context(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give `command` the invocation's `Context`, resolved once from the options declared in
    vault/cli/options.py (`--vault`, `--project`, `--proxy`): commands never resolve these
    themselves, so every command means the same project, proxy and vault."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        click_ctx = click.get_current_context()
        given = click_ctx.meta.get(OPTIONS_META, {})
        context = command_context(
            vault_option(click_ctx),
            given.get("project"),
            given.get("proxy"),
            timeout_option=given.get("timeout"),
            run_timeout_option=given.get("run_timeout"),
        )
        return command(context, *args, **kwargs)

    return run


# --- output -----------------------------------------------------------------------------


def print_json(data: Any) -> None:
    # ASCII only: bidi overrides and other tricks in hostile metadata reach no terminal raw
    click.echo(json.dumps(data, indent=2, ensure_ascii=True))


def print_json_array(items: Iterable[Any]) -> None:
    """Stream a JSON array, one item per line: 10,000 entries never sit in memory as one
    string, and the C encoder (not used with indent=) keeps it fast."""
    out = sys.stdout
    first = True
    out.write("[")
    for item in items:
        text = json.dumps(item, ensure_ascii=True)
        out.write(("\n  " if first else ",\n  ") + text)
        first = False
    out.write("\n]\n" if not first else "]\n")
    out.flush()


def print_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    width: int | None = None,
    flexible: Collection[int] = (),
) -> None:
    """A table on stdout, hostile characters neutralised; with `width`, the `flexible`
    columns shrink until it fits (vault/cli/table.py)."""
    from vault.cli.table import render  # noqa: PLC0415 - unicodedata only for tables

    cells = ([safe(c) for c in row] for row in rows)
    click.echo(render(headers, cells, width=width, flexible=flexible))


def terminal_width() -> int:
    """Columns to fit: the terminal's (or $COLUMNS), 80 when the output is not a terminal."""
    import shutil  # noqa: PLC0415

    return shutil.get_terminal_size((80, 24)).columns


def print_synced(outcomes: Iterable[SyncOutcome]) -> None:
    """What happened to each registered .env file after a change: done ones on stdout, the
    ones that could not follow as warnings (stderr, which cron mails)."""
    failed = False
    for outcome in outcomes:
        if outcome.ok:
            click.echo(f"  {outcome.detail}: {safe(outcome.path)}")
        else:
            warn(f"could not update {safe(outcome.path)}: {safe(outcome.detail)}")
            failed = True
    if failed:  # said at every change until the file is fixed or forgotten: the way out
        warn("a file keyvault should no longer rewrite: keyvault dotenv --forget PATH")


def check_options(app: Context, **fields: Any) -> CheckOptions:
    """How this invocation reaches the network: its proxy, its deadlines (each request, and
    one for the whole command, started once), and the base URL of keys stored without one."""
    from vault.health.checking import CheckOptions  # noqa: PLC0415 - only network commands

    settings: dict[str, Any] = {
        "proxy": app.proxy,
        "request_timeout": app.request_timeout,
        "run_timeout": app.run_timeout,
        "run_ends": app.run_ends,
        "default_base_url": app.config.default_base_url,
    }
    return CheckOptions(**{**settings, **fields})
