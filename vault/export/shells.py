r"""Statements that set or remove variables in the user's shell, for `keyvault env`.

Each shell has its own quoting, and each is proven by evaluating the output in the real
shell (tests/test_export_shells.py); PowerShell and cmd, which the test machines lack, are
checked against reference tokenizers written from their documented rules.

- bash, zsh: `export NAME=$'...';`, every byte outside [A-Za-z0-9_-.,:/=+@%] as \xHH
- sh: `export NAME='...';`, POSIX single quotes with `'` as `'\''`
- fish: `set -gx NAME '...';`, single quotes (only \\ and \' inside), CR and LF as bare \r \n;
  removal erases the global only, never a universal (`_FISH_REMOVE`)
- powershell: `$env:NAME = '...'`, all five single-quote characters doubled, CR and LF as
  "`r" and "`n" joined with +
- cmd: `set "NAME=..."`, no quoting at all: %, !, ", controls and non-ASCII are refused
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from vault.errors import InvalidValue, UsageError
from vault.export import Unrepresentable, check_names, check_values
from vault.model.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

# --- bash and zsh -------------------------------------------------------------------------

# Why so few characters are safe: `eval $(keyvault env)` (unquoted) word-splits and globs the
# output before eval parses it. With blanks and *?[ (and extglob's parentheses, zsh's ~ ^ #)
# hex-escaped, every statement is one word that no glob can touch, so both eval forms see
# exactly the same text.
_POSIX_SAFE: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.,:/=+@%"
)


def quote_posix(value: str) -> str:
    """Quote for bash and zsh as `$'...'`, every unsafe byte as a two-digit `\\xHH` escape.

    Bytes, not `\\u` escapes: `\\u` depends on the shell's locale, `\\xHH` never does.
    """
    return "$'" + "".join(ch if ch in _POSIX_SAFE else _hex(ch) for ch in value) + "'"


def _hex(ch: str) -> str:
    return "".join(f"\\x{byte:02x}" for byte in ch.encode("utf-8"))


def quote_sh(value: str) -> str:
    """Quote for any POSIX sh (dash has no `$'...'`): single quotes, `'` as `'\\''`.

    Correct only for `eval "$(keyvault env --shell sh)"`; the unquoted form would split it.
    """
    return "'" + value.replace("'", "'\\''") + "'"


# --- fish ---------------------------------------------------------------------------------

_LINE_BREAKS: Final = re.compile(r"([\r\n])")
_FISH_BREAKS: Final = {"\n": "\\n", "\r": "\\r"}


def quote_fish(value: str) -> str:
    """Quote for fish: single-quoted runs (only `\\\\` and `\\'` are escapes inside them)
    joined by bare `\\n`/`\\r` escapes.

    Line breaks stay outside the quotes so that each statement is one line: `eval (keyvault
    env)` splits command output on newlines, `keyvault env | source` does not care.
    """
    pieces = [_FISH_BREAKS.get(run) or _fish_run(run) for run in _LINE_BREAKS.split(value) if run]
    return "".join(pieces) or "''"


def _fish_run(run: str) -> str:
    return "'" + run.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- PowerShell ---------------------------------------------------------------------------

# PowerShell's tokenizer ends a single-quoted string at any of these five characters and
# reads two of them in a row as one literal; doubling only U+0027 (as direnv does) lets
# U+2019 in a value close the string early.
POWERSHELL_QUOTES: Final = "'\u2018\u2019\u201a\u201b"
_PS_QUOTE_RUN: Final = re.compile(f"([{POWERSHELL_QUOTES}])")
_PS_BREAKS: Final = {"\n": '"`n"', "\r": '"`r"'}


def quote_powershell(value: str) -> str:
    """Quote for PowerShell: single-quoted runs joined with `+` to `"`n"`/`"`r"`.

    One statement per line, so that `keyvault env | Invoke-Expression`, which runs each line
    on its own, gets the same result as `... | Out-String | Invoke-Expression`. (An empty
    value removes the variable, in PowerShell as in cmd: Windows cannot hold an empty one.)
    """
    pieces = [_PS_BREAKS.get(run) or _ps_run(run) for run in _LINE_BREAKS.split(value) if run]
    return " + ".join(pieces) or "''"


def _ps_run(run: str) -> str:
    return "'" + _PS_QUOTE_RUN.sub(r"\1\1", run) + "'"


# --- cmd ----------------------------------------------------------------------------------

# cmd has no quoting that survives everything: `%` expands even inside quotes (and `%%`
# means `%` only in batch files, not at the prompt), `!` expands under delayed expansion,
# and `"` ends the quotes that protect & | < > ^ ( ). Refusing is the only honest answer.
_CMD_REFUSED: Final = {
    "%": "it contains %, which cmd expands even inside quotes",
    "!": "it contains !, which cmd expands when delayed expansion is on",
    '"': 'it contains ", which ends the quotes that protect it',
}
_CMD_PRINTABLE: Final = frozenset(chr(code) for code in range(0x20, 0x7F)) | {"\t"}


def quote_cmd(value: str) -> str:
    """Return `value` unchanged for `set "NAME=value"`, or raise Unrepresentable."""
    for ch in value:
        if ch in _CMD_REFUSED:
            raise Unrepresentable(_CMD_REFUSED[ch])
        if ch not in _CMD_PRINTABLE:
            raise Unrepresentable(
                "it contains a line break, control or non-ascii character, which a cmd "
                "set line cannot carry"
            )
    return value


# --- the table ----------------------------------------------------------------------------


# NamedTuple, not a dataclass: dataclasses cost milliseconds at import on the hot path
class Dialect(NamedTuple):
    """How one shell sets and removes a variable; templates take {name} and {value}.

    `keep` sets a variable of the shell itself, not exported to the programs it starts (the
    directory hook's own state).
    """

    quote: Callable[[str], str]
    assign: str
    remove: str
    keep: str


# fish: `set -e NAME` without a scope erases a universal variable (`set -Ux`) for good, in
# every fish of the user, and fish exports an exported universal even under a global that
# shadows it. So only the global is erased, and an exported universal is shadowed by an
# exported empty global (the one value fish lets this shell give its programs instead), with
# a warning: the SDKs take "" as no value or fail, never as another project's setting. An
# unexported universal reaches no program and is left alone.
_FISH_REMOVE: Final = (
    "set -e -g {name}; if set -q -U -x {name}; set -gx {name} ''; echo 'keyvault: warning:"
    " fish exports your universal {name} to every program; it is empty in this shell"
    " (set -e -U {name} removes it)' >&2; end;"
)
_POSIX: Final = Dialect(quote_posix, "export {name}={value};", "unset {name};", "{name}={value};")

SHELLS: Final[Mapping[str, Dialect]] = {
    "bash": _POSIX,
    "zsh": _POSIX,
    "sh": Dialect(quote_sh, "export {name}={value};", "unset {name};", "{name}={value};"),
    "fish": Dialect(quote_fish, "set -gx {name} {value};", _FISH_REMOVE, "set -g {name} {value};"),
    "powershell": Dialect(
        quote_powershell,
        "$env:{name} = {value}",
        "Remove-Item -LiteralPath Env:{name} -ErrorAction SilentlyContinue",
        "${name} = {value}",
    ),
    # cmd has no unexported variables; its `set` is the closest
    "cmd": Dialect(quote_cmd, 'set "{name}={value}"', 'set "{name}="', 'set "{name}={value}"'),
}


def dialect(shell: str) -> Dialect:
    """The table row for `shell`, or a usage error listing the choices."""
    try:
        return SHELLS[shell]
    except KeyError:
        raise UsageError(
            f"unknown shell {shell[:40]!r}", hint="choose one of: " + ", ".join(SHELLS)
        ) from None


def render_exports(values: Mapping[str, str], shell: str) -> str:
    """Statements that set every variable in `shell`, one per line.

    Raises InvalidValue naming the variable (never the value) when the shell cannot hold it.
    """
    rules = dialect(shell)
    return _assignments(rules, rules.assign, values, shell)


def render_shell_variables(values: Mapping[str, str], shell: str) -> str:
    """Statements that set variables of the shell itself, not exported (`Dialect.keep`)."""
    rules = dialect(shell)
    return _assignments(rules, rules.keep, values, shell)


def _assignments(rules: Dialect, template: str, values: Mapping[str, str], shell: str) -> str:
    lines = [
        template.format(name=name, value=_quote(rules, shell, name, value))
        for name, value in check_values(values).items()
    ]
    return "".join(line + "\n" for line in lines)


def render_unsets(names: Iterable[str], shell: str) -> str:
    """Statements that remove every variable in `shell` (`keyvault env --unset`)."""
    rules = dialect(shell)
    return "".join(rules.remove.format(name=name) + "\n" for name in check_names(names))


def _quote(rules: Dialect, shell: str, name: str, value: str) -> str:
    try:
        return rules.quote(value)
    except Unrepresentable as why:
        raise InvalidValue(
            f"{name} cannot be written for {shell}: {why}",
            hint="use `keyvault exec -- CMD` instead, which needs no quoting",
        ) from None


# --- formats for `keyvault env --format` --------------------------------------------------


def render_json(values: Mapping[str, str]) -> str:
    """A JSON object of name to value; ASCII only, so any terminal or pipe carries it."""
    import json  # noqa: PLC0415 - keyvault env's default output needs no json

    return json.dumps(check_values(values), indent=2, ensure_ascii=True) + "\n"


def _render_dotenv(values: Mapping[str, str]) -> str:
    from vault.export.dotenv import render_dotenv  # noqa: PLC0415 - off the default path

    return render_dotenv(values)


FORMATS: Final[Mapping[str, Callable[[Mapping[str, str]], str]]] = {
    "dotenv": _render_dotenv,
    "json": render_json,
}


def render_format(values: Mapping[str, str], fmt: str) -> str:
    """`keyvault env --format dotenv|json`."""
    try:
        render = FORMATS[fmt]
    except KeyError:
        raise UsageError(
            f"unknown format {fmt[:40]!r}", hint="choose one of: " + ", ".join(FORMATS)
        ) from None
    return render(values)


# --- which shell are we printing for? -----------------------------------------------------

_PROCESS_SHELLS: Final = {
    "bash": "bash",
    "zsh": "zsh",
    "fish": "fish",
    "sh": "sh",
    "dash": "sh",
    "ash": "sh",
    "ksh": "sh",
    "ksh93": "sh",
    "mksh": "sh",
    "pwsh": "powershell",
    "powershell": "powershell",
    "cmd": "cmd",
}


def shell_of(program: str | None) -> str | None:
    """Map a process name or path (`-zsh`, `/bin/bash`, `pwsh.exe`) to a SHELLS key."""
    if not program:
        return None
    base = program.strip().replace("\\", "/").rsplit("/", 1)[-1].lstrip("-").lower()
    return _PROCESS_SHELLS.get(base.removesuffix(".exe"))


def detect_shell(environ: Mapping[str, str], parent_name: str | None) -> str:
    """Pick the shell for `keyvault env` when `--shell` is not given.

    The parent process comes first because it is the shell that will eval our output, while
    $SHELL is only the login shell (a fish user may run bash for one script). Without
    either, PSModulePath marks Windows PowerShell, the default Windows terminal; otherwise
    bash. cmd is never guessed: it must be asked for.
    """
    return (
        shell_of(parent_name)
        or shell_of(environ.get("SHELL"))
        or ("powershell" if "PSModulePath" in environ else "bash")
    )


def parent_process_name(pid: int | None = None, *, proc: Path = Path("/proc")) -> str | None:
    """The name of process `pid` (default: our parent), or None when it cannot be read.

    Linux has /proc/PID/comm; macOS and the BSDs have `ps`; Windows has neither, and
    detect_shell then falls back on the environment.
    """
    pid = os.getppid() if pid is None else pid
    try:
        return (proc / str(pid) / "comm").read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        pass
    import shutil  # noqa: PLC0415 - only where /proc is missing (macOS, BSD)
    import subprocess  # noqa: PLC0415

    from vault.security.childenv import for_tool  # noqa: PLC0415

    ps = shutil.which("ps")
    if ps is None:
        return None
    try:
        done = subprocess.run(
            [ps, "-o", "comm=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
            env=for_tool(os.environ),  # ps needs no passphrase and no key
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None
