"""Running `pass` and `gpg` for `import`: one runner, with a minimal environment.

The child gets only what the tools need to find the store, the keyring, the agent and a
pinentry. Never our unlock settings (KEYVAULT_PASSPHRASE, KEYVAULT_IDENTITY(_FILE)): a tool,
or an extension or hook it runs, has no business with them; nor OPENAI_* or any other
variable. stdout (the secret) is captured, never logged; stderr is read for one line of
reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Final

from vault.errors import SourceError

# what pass, gpg, gpg-agent and pinentry read; nothing else crosses over
TOOL_ENV_KEEP: Final = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TERM",
    "TMPDIR", "GNUPGHOME", "GPG_TTY", "GPG_AGENT_INFO", "DISPLAY", "WAYLAND_DISPLAY",
    "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "PASSWORD_STORE_DIR", "PASSWORD_STORE_KEY",
    "PASSWORD_STORE_GPG_OPTS", "PASSWORD_STORE_UMASK",
)  # fmt: skip
TOOL_TIMEOUT: Final = 120.0  # a pinentry may be waiting for a person


def tool_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment `pass`/`gpg` get: the allowlist above, plus the terminal for a
    pinentry when a person is there."""
    env = {k: environ[k] for k in TOOL_ENV_KEEP if k in environ}
    if "GPG_TTY" not in env and sys.stdin is not None and sys.stdin.isatty():
        env["GPG_TTY"] = os.ttyname(sys.stdin.fileno())
    return env


class ToolFailed(Exception):
    """The tool ran and failed; `reason` is the first line of its stderr (never stdout)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def run_tool(
    argv: Sequence[str], *, environ: Mapping[str, str] | None = None, timeout: float = TOOL_TIMEOUT
) -> str:
    """stdout of `argv` as text. SourceError when the tool is missing or hangs; ToolFailed
    when it exits non-zero."""
    env = tool_environment(os.environ if environ is None else environ)
    stdin = None if sys.stdin is not None and sys.stdin.isatty() else subprocess.DEVNULL
    try:
        done = subprocess.run(
            list(argv), env=env, stdin=stdin, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise SourceError(f"{argv[0]} is not installed (or not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"{argv[0]} did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ToolFailed(lines[-1][:200] if lines else f"exit status {done.returncode}")
    return done.stdout.decode("utf-8", "replace")
