"""`keyvault exec -- CMD`: become CMD, with the variables in its environment.

The secret travels only in the environment, which other users cannot read (/proc/PID/environ
is private to the owner), never in argv, which every user can (/proc/PID/cmdline, `ps`).
On POSIX the process is replaced (execvpe), so CMD's exit status and the signal that kills
it are keyvault's own and nothing of keyvault lingers. Windows cannot replace a process; there
CMD runs as a child and its exit code is passed on.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Collection, Mapping, Sequence

from vault.errors import CommandNotExecutable, CommandNotFound, PolicyViolation, UsageError
from vault.export import EXEC_MARKER, OPENAI_VARIABLES, check_values, windows_program
from vault.security.childenv import without_unlock

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~2 ms at import, on the exec path
    from typing import Final, NoReturn


# What `--pristine` keeps: enough to find programs, read files in the home folder, print
# text in the user's language and drive the terminal. SYSTEMROOT and COMSPEC are needed by
# almost every Windows program (sockets fail without SYSTEMROOT), PATHEXT to find them.
PRISTINE_KEEP: Final = ("PATH", "HOME", "LANG", "TERM")
PRISTINE_KEEP_WINDOWS: Final = ("SYSTEMROOT", "COMSPEC", "PATHEXT")

# The cd hook's bookkeeping (vault/export/hook.py): which project the shell exported, and the
# user's own OPENAI_* values from before it, their own key among them. CMD gets neither: it
# was asked for the project's key only, and the hook in a shell it starts stands aside.
HOOK_VARIABLES: Final = ("KEYVAULT_HOOK_PROJECT", "KEYVAULT_HOOK_SAVED")

Execvpe = Callable[[str, Sequence[str], Mapping[str, str]], object]


def child_environment(
    values: Mapping[str, str],
    *,
    pristine: bool,
    environ: Mapping[str, str],
    windows: bool = os.name == "nt",
) -> dict[str, str]:
    """The environment CMD gets: ours (or a pristine minimum) plus `values` plus the marker.

    Never what opens the vault (KEYVAULT_PASSPHRASE, KEYVAULT_IDENTITY and their _FILE
    forms): CMD and everything it runs (a test suite's dependencies, say) get the project's
    key, not a credential for every key in the vault. Nor an inherited SDK variable
    (OPENAI_VARIABLES) that `values` does not set: a stale OPENAI_BASE_URL would send this
    key to another project's relay. Nor the cd hook's HOOK_VARIABLES.
    """
    refuse_nesting(environ)
    keep = PRISTINE_KEEP + (PRISTINE_KEEP_WINDOWS if windows else ())
    base = {k: environ[k] for k in keep if k in environ} if pristine else without_unlock(environ)
    dropped = (*OPENAI_VARIABLES, *HOOK_VARIABLES)
    base = {k: v for k, v in base.items() if k.upper() not in dropped}
    return base | check_values(values) | {EXEC_MARKER: "1"}


def refuse_nesting(environ: Mapping[str, str]) -> None:
    """PolicyViolation inside a `keyvault exec`: checked before the vault is opened, since
    the nested one has (by design) nothing that would open it."""
    if environ.get(EXEC_MARKER) == "1":
        raise PolicyViolation(
            "refusing to run keyvault exec inside keyvault exec",
            hint="the variables are already set here; run the command directly",
        )


def exec_with_env(
    argv: Sequence[str],
    values: Mapping[str, str],
    *,
    pristine: bool,
    environ: Mapping[str, str],
    execvpe: Execvpe | None = None,
    mask: Collection[str] = (),
) -> NoReturn:
    """Replace this process with `argv`, its environment built by `child_environment`.

    Raises UsageError for an empty argv, PolicyViolation when nested, CommandNotFound
    (exit 127) or CommandNotExecutable (exit 126), as a shell would. Returns never.
    `execvpe` is for tests and Windows; by default os.execvpe on POSIX and a child process
    whose exit code becomes ours on Windows. With `mask` (the project's keys), CMD runs as a
    child whose stdout and stderr show `<concealed by keyvault>` instead of any of them.
    """
    if not argv:
        raise UsageError("no command given", hint="keyvault exec -- CMD [ARG...]")
    env = child_environment(values, pristine=pristine, environ=environ)
    run = execvpe or (_run_child if os.name == "nt" else os.execvpe)
    if mask and execvpe is None:  # the command's output goes through vault/export/masking.py
        from vault.export.masking import run_masked  # noqa: PLC0415

        run = functools.partial(run_masked, secrets=mask)
    # Anything still buffered would be lost when the process image is replaced.
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        run(argv[0], list(argv), env)
    except FileNotFoundError:
        raise CommandNotFound(
            f"command not found: {argv[0]}", hint="check the name and PATH"
        ) from None
    except OSError as err:
        raise CommandNotExecutable(f"cannot run {argv[0]}: {err.strerror or err}") from None
    raise SystemExit(0)  # only a test double returns


def _run_child(program: str, argv: Sequence[str], env: Mapping[str, str]) -> NoReturn:
    """Windows stand-in for execvpe: run CMD, then leave with its exit code."""
    import subprocess  # noqa: PLC0415 - Windows only; on POSIX it would cost `exec` ~2 ms

    done = subprocess.run([windows_program(program, env), *argv[1:]], env=dict(env), check=False)
    raise SystemExit(done.returncode)
