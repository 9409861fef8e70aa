"""Run the real `keyvault` command line inside the test process (`vault.cli.main.run`).

For suites that run thousands of commands (hostile documents, the consumers-agree state
machine): a subprocess per command would cost ~100 ms of interpreter start each. Everything
below the argument list is the real thing: click parsing, the Context, the age layer, the
store, the error printer. Commands that replace the process (`exec`) run in a forked child.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vault.cli.main import run


@dataclass
class Ran:
    code: int
    out: str
    err: str
    raised: BaseException | None = None  # anything that escaped run(): always a bug


@contextlib.contextmanager
def process_state(env: Mapping[str, str], cwd: Path) -> Iterator[None]:
    """The environment and working folder a real process would have, restored after."""
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)


def run_cli(args: Sequence[str], *, env: Mapping[str, str], cwd: Path, stdin: str = "") -> Ran:
    """`keyvault ARGS` with `env` as its whole environment, in `cwd`, stdin from `stdin`."""
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="replace", write_through=True)
    given = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
    streams = sys.stdin, sys.stdout, sys.stderr
    raised: BaseException | None = None
    code = -1
    with process_state(env, cwd):
        sys.stdin, sys.stdout, sys.stderr = given, out, err
        try:
            code = run(list(args))
        except BaseException as exc:
            raised = exc
        finally:
            sys.stdin, sys.stdout, sys.stderr = streams
    return Ran(code, out_bytes.getvalue().decode(), err_bytes.getvalue().decode(), raised)


def exec_env(args: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> dict[str, str] | Ran:
    """The environment a program started by `keyvault exec ARGS -- env -0` sees, from a forked
    child of this process (the real exec, no interpreter start); a Ran when exec failed."""
    read, write = os.pipe()
    err_read, err_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become `keyvault exec … -- env -0`
        try:
            os.dup2(write, 1)
            os.dup2(err_write, 2)
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            with process_state(env, cwd):
                try:
                    code = run([*args, "--", "/usr/bin/env", "-0"])
                except SystemExit as done:  # what main() would have exited with
                    code = done.code if isinstance(done.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        finally:
            os._exit(99)
    os.close(write)
    os.close(err_write)
    with open(read, "rb") as stream:
        data = stream.read()
    with open(err_read, "rb") as stream:
        errors = stream.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        return Ran(code, data.decode(errors="replace"), errors)
    pairs = (item.split("=", 1) for item in data.decode().split("\0") if "=" in item)
    return dict(pairs)
