"""The `KEYVAULT_*` environment variables: the ones keyvault knows, and a warning for any
other, so a misspelt one is named instead of ignored without a word (`KEYVAULT_HOEM=/srv/kv`
would open the default vault). Imported on every run: no click, nothing heavy."""

from __future__ import annotations

from vault.cli.report import safe, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

# the ones people set (README.md#automation lists each); a warning, not an error, for any
# other: a user's own scripts may use the prefix, and a stray variable never made aws-vault
# or pass refuse to run
USER_VARIABLES = (
    "KEYVAULT_HOME", "KEYVAULT_PASSPHRASE", "KEYVAULT_PASSPHRASE_FILE", "KEYVAULT_IDENTITY",
    "KEYVAULT_IDENTITY_FILE", "KEYVAULT_NEW_PASSPHRASE", "KEYVAULT_NEW_PASSPHRASE_FILE",
    "KEYVAULT_TEAM_PIN",
)  # fmt: skip
KNOWN_VARIABLES = frozenset({
    *USER_VARIABLES,
    "KEYVAULT_HOOK_PROJECT", "KEYVAULT_HOOK_SAVED",  # the cd hook's (vault/export/hook.py)
    "KEYVAULT_EXEC",  # marks a `keyvault exec` child (vault/export/process.py)
    "KEYVAULT_DEBUG",  # accepted and ignored: no debug output could leak (docs/security.md)
})  # fmt: skip
# what people reach for that is not a variable here, and what does that job
NOT_VARIABLES = {
    "KEYVAULT_PROJECT": "choose the project with --project, a .keyvault.toml or default_project",
    "KEYVAULT_VAULT": "the vault folder is KEYVAULT_HOME",
    "KEYVAULT_DIR": "the vault folder is KEYVAULT_HOME",
    "KEYVAULT_PROXY": "set proxy in config.toml, or --proxy",
}


def warn_unknown_variables(environ: Mapping[str, str]) -> None:
    """`keyvault: warning: KEYVAULT_HOEM is not a keyvault variable …` for each unknown one."""
    unknown = sorted(
        name for name in environ if name.startswith("KEYVAULT_") and name not in KNOWN_VARIABLES
    )
    if not unknown:
        return
    from difflib import get_close_matches  # noqa: PLC0415 - only for a misspelt variable

    for name in unknown:
        close = get_close_matches(name, USER_VARIABLES, n=1, cutoff=0.8)
        advice = NOT_VARIABLES.get(name) or (f"did you mean {close[0]}?" if close else "")
        warn(
            f"{safe(name)} is not a keyvault variable: ignored" + (f"; {advice}" if advice else "")
        )
