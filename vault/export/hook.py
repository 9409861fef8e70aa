"""The directory hook's bookkeeping: export a project's variables on entering its folder and
give the user back what they had on leaving, as direnv does.

The shell keeps two variables between prompts: `KEYVAULT_HOOK_PROJECT` (the project whose
variables are exported now) and `KEYVAULT_HOOK_SAVED` (the user's own OPENAI_* values from
before the first project folder, as JSON; a name missing from it was unset). Pure: the
environment and the project's values come in, the statements' content goes out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from vault.export import OPENAI_VARIABLES
from vault.model.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

CURRENT: Final = "KEYVAULT_HOOK_PROJECT"
SAVED: Final = "KEYVAULT_HOOK_SAVED"


class HookChange(NamedTuple):
    """What the shell must do: set these, then unset those (names only in `unset`)."""

    set: dict[str, str]
    unset: list[str]

    @property
    def empty(self) -> bool:
        return not self.set and not self.unset


def saved_values(environ: Mapping[str, str]) -> dict[str, str]:
    """The user's own OPENAI_* values: saved on entering a project, else what is set now."""
    if CURRENT not in environ:
        return {n: environ[n] for n in OPENAI_VARIABLES if n in environ}
    try:
        saved = json.loads(environ.get(SAVED, "{}"))
    except ValueError:
        return {}
    if not isinstance(saved, dict):
        return {}
    return {n: v for n, v in saved.items() if n in OPENAI_VARIABLES and isinstance(v, str)}


def hook_change(
    environ: Mapping[str, str], project: str | None, values: Mapping[str, str] | None
) -> HookChange:
    """The change for a shell now in `project` (None: no project folder) whose variables are
    `values` (None: the vault could not be opened without asking)."""
    current = environ.get(CURRENT)
    if project is not None and project == current and values is not None:
        return _follow(environ, values)
    if project is None and current is None:
        return HookChange({}, [])
    base = saved_values(environ)
    if project is None or values is None:  # leave: give the user's own values back
        unset = [n for n in OPENAI_VARIABLES if n not in base]
        return HookChange(dict(base), [*unset, CURRENT, SAVED])
    exported = {**values, CURRENT: project, SAVED: json.dumps(base, separators=(",", ":"))}
    return HookChange(exported, [n for n in OPENAI_VARIABLES if n not in values])


def _follow(environ: Mapping[str, str], values: Mapping[str, str]) -> HookChange:
    """Still in the same project: bring the shell to what it exports now. The hook runs
    again when vault.age changed (a rotation, an edited base URL, a removed key), and a
    shell must not keep the old key or the old relay while `env` gives the new ones."""
    changed = {n: v for n, v in values.items() if environ.get(n) != v}
    return HookChange(changed, [n for n in OPENAI_VARIABLES if n not in values and n in environ])
