"""Entry and project names for shell completion, from an unlocked session only.

Completion runs on every Tab: it must never prompt, never run scrypt, never print. So the
vault is opened only through a running session (`keyvault unlock`); locked, or anything at
all going wrong, means no names, silently. The other unlock sources are left out on purpose:
KEYVAULT_PASSPHRASE would cost a scrypt per Tab.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import click
from click.shell_completion import CompletionItem

from vault.cli.options import OPTIONS_META

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault.model.document import VaultDoc

Complete = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _unlocked_doc(ctx: click.Context) -> VaultDoc | None:
    from vault.session.client import Session  # noqa: PLC0415
    from vault.session.identity import UnlockSettings  # noqa: PLC0415
    from vault.session.unlock import Unlocker  # noqa: PLC0415
    from vault.store.config import Paths, resolve_home  # noqa: PLC0415
    from vault.store.keyvault import Keyvault  # noqa: PLC0415

    given = ctx.meta.get(OPTIONS_META, {}).get("vault")
    home = resolve_home(given or ctx.find_root().params.get("vault_home"), os.environ)
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
