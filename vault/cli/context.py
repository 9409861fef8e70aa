"""What every command shares: the vault home, the unlocker, prompts and output helpers."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from vault.errors import InvalidValue, NoPassphraseSource
from vault.model.secret import Secret
from vault.session.client import Session
from vault.session.identity import UnlockSettings, read_passphrase_file
from vault.session.unlock import Unlocker
from vault.store.config import Paths, resolve_home
from vault.store.keyvault import Keyvault


def terminal_available() -> bool:
    """True when a human can be asked: a controlling terminal we can open."""
    if sys.platform == "win32":
        return sys.stdin.isatty()
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def ask_hidden(prompt: str) -> Secret:
    """Read a secret from the terminal without echo (never from stdin, never argv)."""
    if not terminal_available():
        raise NoPassphraseSource(
            "no terminal to ask for the passphrase",
            hint="set KEYVAULT_PASSPHRASE_FILE or KEYVAULT_IDENTITY for automation",
        )
    import getpass  # noqa: PLC0415

    try:
        return Secret(getpass.getpass(prompt))
    except EOFError:
        raise NoPassphraseSource("no passphrase given") from None


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
    """The key to store: piped on stdin, or typed at a hidden prompt."""
    if sys.stdin is not None and not sys.stdin.isatty():
        data = sys.stdin.read(1 << 16)
        if not data.strip():
            raise InvalidValue("no key on standard input")
        return Secret(data.strip("\r\n\t "))
    return ask_hidden(prompt)


class AppContext:
    """What every command shares; built once per run by the click group."""

    def __init__(self, vault_home: str | None = None, environ: dict[str, str] | None = None):
        self.vault_home = vault_home
        self.environ = environ if environ is not None else dict(os.environ)

    @cached_property
    def paths(self) -> Paths:
        return Paths(resolve_home(self.vault_home, self.environ))

    @cached_property
    def unlocker(self) -> Unlocker:
        return Unlocker(
            settings=UnlockSettings.from_environ(self.environ),
            ask=ask_hidden if terminal_available() else None,
            session=Session(self.paths.home),
            warn=warn,
        )

    @cached_property
    def kv(self) -> Keyvault:
        return Keyvault(self.paths, self.unlocker)


pass_app = click.make_pass_decorator(AppContext)

# --- output -----------------------------------------------------------------------------

_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe(value: object) -> str:
    """Display text with control and bidi characters neutralised (hostile metadata)."""
    if value is None:
        return "-"
    return _UNSAFE.sub("?", str(value)).replace("\n", " ")


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


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    cells = [[safe(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    click.echo("\n".join(lines))


def warn(message: str) -> None:
    click.echo(f"keyvault: warning: {message}", err=True)
