"""The `keyvault` command: the entry point, the command table, and how failures exit.

`main` first offers the arguments to the fast dispatcher (vault/cli/fast.py), which runs the
everyday forms of `env`, `get`, `exec` and `hook-env` without importing click; anything else
goes to the click application (vault/cli/app.py, which holds the command table), whose
subcommands are imported only when
used, so `keyvault list` never pays for the health checker's imports either. Both paths end
here: a `KeyvaultError` becomes `keyvault: error: …` (vault/cli/report.py) and its exit code.
This module must not import click: the console script imports it on every run.
"""

from __future__ import annotations

import gc
import os
import sys

from vault.cli.report import first_line, house_style, print_error, report, silence_stdout
from vault.cli.variables import warn_unknown_variables
from vault.errors import EXIT_USAGE, KeyvaultError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import NoReturn

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C


def harden_process() -> None:
    """Private files whatever the umask; no core dumps that could hold a secret."""
    os.umask(0o077)
    try:
        import resource  # noqa: PLC0415 - POSIX only

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    if sys.platform.startswith("linux"):
        _linux_not_dumpable()


def readable_output() -> None:
    """A name the console cannot show prints as `?`, not as a traceback.

    Windows writes a redirected stdout (`keyvault list > out.txt`, a pipe) in the ANSI code
    page (cp1252, cp936…), and PYTHONIOENCODING can name any codec: `list` of a project
    named 项目 died in the encoder. Tables and messages are for people, so a character the
    encoding lacks becomes `?`; what a program reads keeps its guards: JSON is ASCII, `get`
    writes bytes, and `env` refuses text its output cannot carry (vault/cli/output.py).
    An encoding the user chose with its own error handler (`cp1252:backslashreplace`) is kept.
    """
    out = sys.stdout
    encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    if encoding.startswith("utf") or getattr(out, "errors", None) != "strict":
        return
    reconfigure = getattr(out, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")


PR_SET_DUMPABLE = 4


def _linux_not_dumpable() -> None:
    # PR_SET_DUMPABLE 0 also stops other processes of the same user reading /proc/PID/mem
    # without ptrace rights. Called through `_ctypes`, the C half of ctypes: `import ctypes`
    # builds its Python layer (~1.5 ms here, a tenth of `keyvault env`) for this one call.
    try:
        import _ctypes  # noqa: PLC0415

        program = _ctypes.dlopen(None)  # type: ignore[arg-type]  # dlopen(NULL): ourselves + libc
        prctl = _ctypes.dlsym(program, "prctl")
        _ctypes.call_function(prctl, (PR_SET_DUMPABLE, 0, 0, 0, 0))
    except (ImportError, AttributeError, TypeError, OSError):
        _prctl_through_ctypes()  # an interpreter whose _ctypes differs: the public way


def _prctl_through_ctypes() -> None:
    try:
        import ctypes  # noqa: PLC0415

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None, *, fast_path: bool = True) -> None:
    """Entry point: run one command and exit with its code, errors as one-line messages.

    `fast_path=False` sends every command through click; the tests that prove both paths
    print the same bytes pass it (a parameter, not an environment variable, so nothing a
    user sets can change which path runs).
    """
    harden_process()
    readable_output()
    warn_unknown_variables(os.environ)
    args = list(sys.argv[1:] if argv is None else argv)
    if fast_path:
        # A fast command lives ~15 ms and makes next to no cyclic garbage: the collector's
        # passes over the freshly imported modules cost ~1.5 ms of `keyvault env` here.
        gc.disable()
        fast = _fast_command(args, memo=True)
        if fast is not None:
            _leave_now(_guarded(fast))
        gc.enable()
    sys.exit(_guarded(lambda: _run_click(args)))


def run(argv: Sequence[str], *, fast_path: bool = True) -> int:
    """One command, in this process, returning its exit code (tests run thousands of
    commands this way); `main` is the same without the process-level steps, and without
    the export memo, which records a run by swapping process-wide state (os.environ,
    sys.stderr, an audit hook) that a host process must not see changed."""
    args = list(argv)
    fast = _fast_command(args, memo=False) if fast_path else None
    return _guarded(fast if fast is not None else lambda: _run_click(args))


def _fast_command(args: list[str], *, memo: bool) -> Callable[[], object] | None:
    from vault.cli.fast import dispatch  # noqa: PLC0415

    return dispatch(args, os.environ, memo=memo)


def _leave_now(code: int) -> NoReturn:
    """Exit without the interpreter's teardown (~6 ms of freeing modules here, a fifth of
    `keyvault env`). Safe on the fast path only: its commands start no thread and register
    nothing to run at exit, and everything they wrote is flushed here first."""
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)  # let the interpreter report the failed flush as it always does
    os._exit(code)


def _guarded(run: Callable[[], object]) -> int:
    """Run a command; its exit code, or the code of the failure it raised (printed here)."""
    try:
        # commands return an exit code when success is not simply 0 (`check` exits 5)
        code = run()
        if sys.stdout is not None:
            sys.stdout.flush()  # here, where a reader that left (`| head -1`) can be caught
    except KeyvaultError as exc:
        report(exc)
        return exc.exit_code
    except BrokenPipeError:
        # `keyvault list --json | head -1`: the reader took what it wanted and left. That is
        # success (also under `set -o pipefail`), not an error worth a traceback
        silence_stdout()
        return 0
    except (EOFError, KeyboardInterrupt):
        # the blank line closes the terminal's ^C echo (click writes it on its own path)
        sys.stderr.write("\n")
        print_error("interrupted")
        return EXIT_INTERRUPTED
    except UnicodeEncodeError as exc:
        # what a program reads (`env`) in an encoding that cannot carry it: a clear line,
        # not a traceback (human output never gets here in `main`: readable_output)
        lacking = exc.object[exc.start : exc.end]
        print_error(
            f"standard output ({_encoding_name(exc)}) cannot carry {lacking!a}",
            hint="set PYTHONUTF8=1 (or PYTHONIOENCODING=utf-8) so keyvault writes UTF-8",
        )
        return 1
    except OSError as exc:
        # `keyvault get NAME > /dev/full`: the library raised nothing, the output failed; an
        # error that names a file is about that file, not the output
        reason = (exc.strerror or type(exc).__name__).lower()
        print_error(
            f"{exc.filename}: {reason}" if exc.filename else f"cannot write the output ({reason})"
        )
        return 1
    return code if isinstance(code, int) else 0


def _encoding_name(exc: UnicodeEncodeError) -> str:
    """`cp1252`, as the user named it, rather than the codec's inner name (`charmap`)."""
    return getattr(sys.stdout, "encoding", None) or exc.encoding


def _run_click(args: list[str]) -> object:
    """The click application; its own exceptions become messages and exit codes here."""
    import click  # noqa: PLC0415 - only off the fast path

    from vault.cli.app import cli  # noqa: PLC0415

    try:
        return cli.main(args=args, prog_name="keyvault", standalone_mode=False)
    except click.exceptions.Abort as exc:
        # click writes the blank line that closes the terminal's ^C echo only when it turns
        # a KeyboardInterrupt into Abort itself; its prompts raise Abort with no cause and no
        # newline, which left "remove k1? [y/N]: ^Ckeyvault: error: …" on one line
        if exc.__cause__ is None:
            sys.stderr.write("\n")
        print_error("interrupted")
        return EXIT_INTERRUPTED
    except click.exceptions.NoArgsIsHelpError as exc:
        # bare `keyvault`: the help is what the user wants to see, on stdout
        click.echo(exc.ctx.get_help())
        return 0
    except click.ClickException as exc:
        message = house_style(first_line(exc.format_message()))
        print_error(message, _usage_hint(exc, message))
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except click.exceptions.Exit as exc:
        return exc.exit_code


def _usage_hint(exc: Exception, message: str) -> str | None:
    """`see keyvault X --help`; or, when the rejected argument was a key (`keyvault add NAME
    sk-…`), that it is now in the shell history: the message shows it masked."""
    if "sk-" in message or "T3BlbkFJ" in message or "age-secret-key" in message.lower():
        from vault.model.shapes import PASTED_HINT, hide_secrets  # noqa: PLC0415 - rare

        if hide_secrets(message) != message:
            return PASTED_HINT
    usage = getattr(exc, "ctx", None)
    return f"see `{usage.command_path} --help`" if usage is not None else None
