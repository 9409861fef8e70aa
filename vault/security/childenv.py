"""What a process that keyvault starts may inherit from keyvault's environment.

The variables that open the vault (a passphrase, an identity, or files holding them) stay
with keyvault: `keyvault exec` hands its command the project's key and nothing that opens
the whole vault, and helper programs (git, ps) get neither those nor any OPENAI_* key.
The unlock agent gets an allow-list instead (vault/session/client.py, AGENT_ENV_KEEP).
Pure and cheap: imported on the hot path of `exec`.
"""

from __future__ import annotations

from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~2 ms at import, on the exec path
    from typing import Final

# Everything vault/session/identity.py and `passwd`/`init` read to open or re-seal the vault.
UNLOCK_VARIABLES: Final = frozenset(
    {
        "KEYVAULT_PASSPHRASE",
        "KEYVAULT_PASSPHRASE_FILE",
        "KEYVAULT_IDENTITY",
        "KEYVAULT_IDENTITY_FILE",
        "KEYVAULT_NEW_PASSPHRASE",
        "KEYVAULT_NEW_PASSPHRASE_FILE",
    }
)
# A helper program needs none of keyvault's settings and no API key.
TOOL_DROPPED_PREFIXES: Final = ("KEYVAULT_", "OPENAI_")


def without_unlock(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without the variables that open the vault (compared case-insensitively,
    as Windows does)."""
    return {k: v for k, v in environ.items() if k.upper() not in UNLOCK_VARIABLES}


def for_tool(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` for a helper program such as git: no KEYVAULT_* and no OPENAI_* at all."""
    return {k: v for k, v in environ.items() if not k.upper().startswith(TOOL_DROPPED_PREFIXES)}
