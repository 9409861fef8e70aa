"""Where keyvault's folders are: the vault home, the per-machine state folder, and the name
of a project file. Owned here, in plain `os.path`, because every command (the fast path of
`keyvault env` too) resolves them first.

    vault_home(option, environ)   --vault, then $KEYVAULT_HOME, then data_home(environ)
    data_home(environ)            $XDG_DATA_HOME/keyvault if absolute, else
                                  ~/.local/share/keyvault (Linux, BSD),
                                  ~/Library/Application Support/keyvault (macOS),
                                  platformdirs' user data folder (Windows)
    state_folder(environ)         trust pins: never inside a vault home

The POSIX rules are written out rather than asked of platformdirs, for two reasons. Importing
platformdirs costs more than the rest of `keyvault env` (it loads pathlib, re, tempfile: ~20
ms here). And platformdirs changed its answer inside its 4.x series (macOS honours
$XDG_DATA_HOME from 4.x on, earlier 4.x ignored it), so a dependency update could move a
user's vault home under them. Here the rule is ours and stays put; tests/test_folders.py
checks it gives platformdirs' answer (the pinned version) for the environments users have.
"""

# os.path, not pathlib: this module is on the hot path of every command
# ruff: noqa: PTH109, PTH110, PTH111, PTH112, PTH117, PTH118
from __future__ import annotations

import os
import sys

from vault.errors import ConfigError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

APP_NAME = "keyvault"
PROJECT_FILE = ".keyvault.toml"
HOME_VARIABLE = "KEYVAULT_HOME"


def vault_home(option: str | None, environ: Mapping[str, str]) -> str:
    """The vault home from `--vault`, `KEYVAULT_HOME`, or the platform's data folder, as an
    absolute path (not resolved through symlinks).

    `--vault ''` is refused: a `--vault "$DIR"` whose variable is unset must not quietly open
    another vault. An empty `KEYVAULT_HOME` counts as unset, as an empty PASSWORD_STORE_DIR
    does for pass. A leading `~` is your home folder; a relative path starts where the
    command runs. A path that is a file, not a folder, is refused here, once, rather than as
    "config.toml: not a directory" by whichever file is opened first.
    """
    if option is not None and not option.strip():
        raise UsageError("--vault needs a folder; it was given an empty path")
    chosen = option or environ.get(HOME_VARIABLE)
    home = _absolute(os.path.expanduser(chosen)) if chosen else data_home(environ)
    if os.path.exists(home) and not os.path.isdir(home):
        raise ConfigError(
            f"{home}: the vault home is a file, not a folder",
            hint="point --vault or KEYVAULT_HOME at the folder that holds vault.age",
        )
    return home


def _absolute(path: str) -> str:
    """`path` from the working folder, with `..` kept as written (as pathlib's `absolute`:
    `link/..` is the link's parent, not this folder)."""
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)


def data_home(environ: Mapping[str, str]) -> str:
    """The default vault home (see the module docstring)."""
    if sys.platform == "win32":
        from platformdirs import user_data_dir  # noqa: PLC0415 - no fast path on Windows

        return user_data_dir(APP_NAME, appauthor=False)
    xdg = environ.get("XDG_DATA_HOME", "")
    if os.path.isabs(xdg):
        return os.path.join(xdg, APP_NAME)
    if sys.platform == "darwin":
        return os.path.join(user_home(environ), "Library", "Application Support", APP_NAME)
    return os.path.join(user_home(environ), ".local", "share", APP_NAME)


def user_home(environ: Mapping[str, str]) -> str:
    """$HOME when it is absolute, else the home folder of our uid in the password database
    (a relative HOME counts as unset, as platformdirs reads it)."""
    home = environ.get("HOME", "")
    if os.path.isabs(home):
        return home
    try:
        import pwd  # noqa: PLC0415 - only without a usable HOME

        home = pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError):
        home = ""
    if not os.path.isabs(home):
        raise ConfigError(
            "cannot tell your home folder",
            hint="set HOME to an absolute path, or KEYVAULT_HOME to the vault's folder",
        )
    return home


def state_folder(environ: Mapping[str, str]) -> str:
    """Where keyvault keeps per-machine state: never inside a vault home."""
    home = environ.get("HOME") or os.path.expanduser("~")
    if sys.platform == "win32":
        return os.path.join(environ.get("LOCALAPPDATA") or home, "keyvault-state")
    if sys.platform == "darwin":  # user_data_dir there is the default vault home itself
        return os.path.join(home, "Library", "Application Support", "keyvault-state")
    state = environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):
        state = os.path.join(home, ".local", "state")
    return os.path.join(state, "keyvault")
