"""The everyday forms of `env`, `get`, `exec` and `hook-env`, parsed without click.

`eval "$(keyvault env)"` runs in every new shell and `hook-env` on project changes; importing
click alone was half of `keyvault env` (70 of 140 ms, issue 16). This dispatcher recognises
exactly the forms people type every day and runs them through the same functions as the
click commands (vault/cli/everyday.py):

    keyvault [--vault PATH] env [--project NAME] [--shell SHELL] [--format FMT] [--unset]
    keyvault [--vault PATH] get [NAME] [--project NAME]
    keyvault [--vault PATH] exec [--project NAME] [--pristine] [--] COMMAND...
    keyvault [--vault PATH] hook-env --shell SHELL

with options in any order (for exec, only before COMMAND), `--opt VALUE` or `--opt=VALUE`,
and `--` ending the options, as click parses them. Anything else (help, `--version`, a
short or unknown option, a value click would refuse, a missing or extra argument, shell
completion, Windows, where click expands wildcards in argv) returns None, and click runs it
and words its error. tests/cli/test_fast_path.py reads the click commands' options and
proves both paths print the same bytes and exit codes for generated command lines.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Final

    from vault.store.context import Context

    Values = dict[str, str | bool]
    Runner = Callable[[Context, Values, list[str]], None]

# The values `--shell`, `--format` and hook-env's `--shell` accept, for both parsers. Written
# out rather than read from vault/export/shells.py and hook_scripts.py, which `get` and `exec`
# do not import (nor this table); tests/cli/test_fast_path.py checks they name the same
# shells and formats.
SHELL_CHOICES: Final = ("bash", "zsh", "sh", "fish", "powershell", "cmd")
FORMAT_CHOICES: Final = ("dotenv", "json")
HOOK_SHELL_CHOICES: Final = ("bash", "zsh", "fish")

# click's shell completion: `_KEYVAULT_COMPLETE=bash_complete keyvault …` asks click for words
COMPLETION_VARIABLE: Final = "_KEYVAULT_COMPLETE"


class Option:
    """A long option as click declares it: the parameter it fills and what it accepts."""

    __slots__ = ("choices", "dest", "flag")

    def __init__(
        self, dest: str, *, flag: bool = False, choices: tuple[str, ...] | None = None
    ) -> None:
        self.dest = dest
        self.flag = flag  # takes no value
        self.choices = choices  # any string when None


class Command:
    """One command's options and arguments, and the function that runs it."""

    __slots__ = ("interspersed", "least", "most", "options", "required", "run")

    def __init__(
        self,
        options: Mapping[str, Option],
        run: Runner,
        *,
        least: int = 0,
        most: int | None = 0,
        required: tuple[str, ...] = (),
        interspersed: bool = True,
    ) -> None:
        self.options = options
        self.run = run
        self.least = least  # arguments (NAME, COMMAND...) at least
        self.most = most  # and at most; None: any number
        self.required = required  # options that must be given
        self.interspersed = interspersed  # options after an argument (click's setting)


def commands() -> dict[str, Command]:
    """The table of what runs without click; the test compares it with the click commands.
    Building it imports nothing: each runner imports everyday.py (and with it the vault's
    model) only when it runs, which a command answered from the memo never does."""
    project = Option("project")
    vault = Option("vault")  # `--vault` after the command too, as click's hidden option
    return {
        "env": Command(
            {
                "--project": project,
                "--vault": vault,
                "--shell": Option("shell", choices=SHELL_CHOICES),
                "--format": Option("fmt", choices=FORMAT_CHOICES),
                "--unset": Option("unset", flag=True),
            },
            _env,
        ),
        "get": Command({"--project": project, "--vault": vault}, _get, most=1),
        "exec": Command(
            {
                "--project": project,
                "--vault": vault,
                "--pristine": Option("pristine", flag=True),
                "--no-masking": Option("no_masking", flag=True),
            },
            _exec,
            least=1,
            most=None,
            interspersed=False,  # everything after COMMAND is COMMAND's, `--project` too
        ),
        "hook-env": Command(
            {"--shell": Option("shell", choices=HOOK_SHELL_CHOICES), "--vault": vault},
            _hook_env,
            required=("shell",),
        ),
    }


def _env(app: Context, values: Values, _arguments: list[str]) -> None:
    from vault.cli.everyday import env  # noqa: PLC0415 - see commands()

    env(app, _text(values, "shell"), _text(values, "fmt"), "unset" in values)


def _get(app: Context, _values: Values, arguments: list[str]) -> None:
    from vault.cli.everyday import get  # noqa: PLC0415

    get(app, arguments[0] if arguments else None)


def _exec(app: Context, values: Values, arguments: list[str]) -> None:
    from vault.cli.everyday import exec_  # noqa: PLC0415

    exec_(app, "pristine" in values, tuple(arguments), masking="no_masking" not in values)


def _hook_env(app: Context, values: Values, _arguments: list[str]) -> None:
    from vault.cli.everyday import hook_env  # noqa: PLC0415

    hook_env(app, str(values["shell"]))


FAST_COMMANDS: Final = frozenset({"env", "get", "exec", "hook-env"})
# answered from the export memo when nothing changed: what they print is all they do
MEMO_COMMANDS: Final = frozenset({"env", "get"})
ROOT_OPTIONS: Final = {"--vault": Option("vault_home")}  # the group's, before the command


def dispatch(
    argv: Sequence[str], environ: Mapping[str, str], *, memo: bool = False
) -> Callable[[], None] | None:
    """The command to run for `argv` without click, or None to hand `argv` to click; with
    `memo` (the `keyvault` process itself), `env` and `get` go through the export memo."""
    if environ.get(COMPLETION_VARIABLE) or os.name == "nt":
        return None
    root = _root_options(argv)
    if root is None:
        return None
    vault_home, rest = root
    if not rest or rest[0] not in FAST_COMMANDS:
        return None
    command = commands()[rest[0]]
    parsed = parse_options(command.options, rest[1:], interspersed=command.interspersed)
    if parsed is None or not _fits(command, *parsed):
        return None
    options, arguments = parsed

    given = _text(options, "vault")
    home = given if given is not None else vault_home

    def run() -> None:
        from vault.cli.everyday import command_context  # noqa: PLC0415

        app = command_context(home, _text(options, "project"))
        command.run(app, options, arguments)

    if not memo or rest[0] not in MEMO_COMMANDS:
        return run
    return lambda: _through_memo(argv, home, run)


def _through_memo(argv: Sequence[str], home: str | None, run: Callable[[], None]) -> None:
    """`run`, or what an earlier run of the same command line printed while nothing it
    depended on has changed (vault/cli/memo.py)."""
    from vault.cli.memo import memo_for, recorded  # noqa: PLC0415

    memo = memo_for(argv, home)
    if memo is None:
        run()
    elif not memo.replay():
        recorded(memo, run)


def _root_options(argv: Sequence[str]) -> tuple[str | None, Sequence[str]] | None:
    """`--vault PATH` before the command name, where click's group stops parsing; None for
    any other option there (`--help`, `--version`, `-h`, `--`, a typo)."""
    vault_home = None
    index = 0
    while index < len(argv) and _is_option(argv[index]):
        name, has_value, value = argv[index].partition("=")
        if name not in ROOT_OPTIONS:
            return None
        if not has_value:
            if index + 1 == len(argv):
                return None
            index += 1
            value = argv[index]
        vault_home = value
        index += 1
    return vault_home, argv[index:]


def parse_options(
    options: Mapping[str, Option], args: Sequence[str], *, interspersed: bool = True
) -> tuple[Values, list[str]] | None:
    """Options and arguments as click's parser reads them, or None for anything beyond the
    long options in `options` (click then parses the line and words any error).

    Click's rules, kept here: `--` ends the options; a token longer than `-` that starts with
    `-` is an option wherever it stands; `--opt=VALUE` carries its value, else the next token
    is the value whatever it looks like; the last of repeated options wins. Without
    `interspersed` (click's `allow_interspersed_args=False`), the first argument ends the
    options and everything from it on, `--` included, is arguments.
    """
    values: Values = {}
    arguments: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            arguments.extend(args[index:])
            break
        if not _is_option(arg):
            arguments.append(arg)
            if not interspersed:
                arguments.extend(args[index:])
                break
            continue
        name, has_value, attached = arg.partition("=")
        option = options.get(name)
        if option is None or (option.flag and has_value):
            return None
        if option.flag:
            values[option.dest] = True
            continue
        if not has_value:
            if index == len(args):
                return None
            attached, index = args[index], index + 1
        if option.choices is not None and attached not in option.choices:
            return None
        values[option.dest] = attached
    return values, arguments


def _is_option(arg: str) -> bool:
    return arg[:1] == "-" and len(arg) > 1


def _fits(command: Command, values: Values, arguments: list[str]) -> bool:
    enough = len(arguments) >= command.least
    not_too_many = command.most is None or len(arguments) <= command.most
    return enough and not_too_many and all(name in values for name in command.required)


def _text(values: Values, dest: str) -> str | None:
    value = values.get(dest)
    return value if isinstance(value, str) else None
