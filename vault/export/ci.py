"""Handing variables to later CI steps: GitHub Actions and GitLab CI (`keyvault ci`).

Both systems pass variables on through a file the runner parses, so every value is checked
against that parser's rules first and refused, with nothing written, when it would not
survive. The variables reach every later step, so names that make a step run other code
are refused too (see DANGEROUS_NAMES).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Final, TextIO

from vault.errors import InvalidValue, PolicyViolation, StorageError, UsageError
from vault.export import NEW_FILE_MODE, check_values, write_atomically

# Names that let whoever sets them run code in, or redirect, every later step. A trailing
# `*` makes the row a prefix. Matched case-insensitively: Windows runners ignore case.
DANGEROUS_NAMES: Final[Mapping[str, str]] = {
    "PATH": "it decides which program every later command runs (use $GITHUB_PATH)",
    "LD_*": "LD_PRELOAD and LD_LIBRARY_PATH load code into every later process",
    "DYLD_*": "the macOS loader variables load code into every later process",
    "BASH_ENV": "bash runs this file before every non-interactive script",
    "ENV": "sh and bash in posix mode run this file at startup",
    "NODE_OPTIONS": "--require runs code in every javascript action; github refuses it too",
    "PYTHONPATH": "it puts modules first on python's import path",
    "PYTHONSTARTUP": "python runs this file at startup",
    "PYTHONHOME": "it swaps python's standard library",
    "PERL5OPT": "-M loads perl modules into every perl run",
    "PERL5LIB": "it puts modules first on perl's include path",
    "RUBYOPT": "-r loads ruby code into every ruby run",
    "RUBYLIB": "it puts files first on ruby's load path",
    "JAVA_TOOL_OPTIONS": "-javaagent loads code into every jvm",
    "_JAVA_OPTIONS": "-javaagent loads code into every jvm",
    "JDK_JAVA_OPTIONS": "-javaagent loads code into every java launch",
    "PROMPT_COMMAND": "bash runs it before each prompt",
    "SHELLOPTS": "it turns on bash options at startup, xtrace among them",
    "BASHOPTS": "it turns on bash options at startup",
    "PS4": "bash expands it, command substitutions included, under xtrace",
    "IFS": "it changes how every later shell script splits words",
    "GIT_*": "GIT_SSH_COMMAND, GIT_EXEC_PATH and GIT_CONFIG_* run commands",
    "GITHUB_*": "the github runner owns these",
    "RUNNER_*": "the github runner owns these",
    "ACTIONS_*": "the github runner keeps its tokens and settings here",
    "CI_*": "gitlab owns these",
    "GITLAB_*": "gitlab owns these",
}


def refuse_dangerous_names(names: Collection[str]) -> None:
    """Raise PolicyViolation if any name is in DANGEROUS_NAMES."""
    for name in names:
        reason = _danger(name.upper())
        if reason is not None:
            raise PolicyViolation(f"refusing to export {name} to later ci steps: {reason}")


def _danger(name: str) -> str | None:
    for pattern, reason in DANGEROUS_NAMES.items():
        if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return reason
    return None


def refuse_leftovers(unset: Collection[str], environ: Mapping[str, str], how: str) -> None:
    """PolicyViolation when the job already holds an OPENAI_* variable the project does not
    set (`unset`): from the workflow's own env, or an earlier `keyvault ci` of another
    project. Neither file format can remove a variable, so later steps would send this key
    to that base URL, organization or project."""
    for name in unset:
        if environ.get(name):
            raise PolicyViolation(
                f"{name} is set in this job and the project does not set it: later steps "
                "would send the key there; nothing was written",
                hint=f"{how}, or use `keyvault exec`, which removes it",
            )


# --- GitHub Actions -----------------------------------------------------------------------


def mask_command(value: str) -> str:
    """A `::add-mask::` workflow command; the runner decodes %25, %0D and %0A in its data."""
    data = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::add-mask::{data}\n"


def _mask_lines(value: str) -> list[str]:
    """The whole value, then each line of it: the runner masks log lines one at a time, so a
    multi-line secret is only hidden line by line (GitHub's own advice)."""
    if not value:
        return []
    parts = [value, *(line for line in re.split(r"\r\n|\r|\n", value) if line != value)]
    return [mask_command(part) for part in dict.fromkeys(part for part in parts if part)]


def new_delimiter() -> str:
    """The heredoc delimiter GitHub's own toolkit uses: unguessable, so a value cannot end
    the heredoc early and append variables of its own."""
    return f"ghadelimiter_{uuid.uuid4()}"


def github_env(
    values: Mapping[str, str],
    secrets: Collection[str],
    *,
    github_env_path: str | os.PathLike[str] | None,
    out: TextIO,
    delimiter: Callable[[], str] = new_delimiter,
    unset: Collection[str] = (),
    environ: Mapping[str, str] | None = None,
) -> None:
    """Mask the secret values, then append every variable to the $GITHUB_ENV file.

    The masks go to `out` (the step's stdout) before anything reaches the file, because the
    runner logs the values of $GITHUB_ENV when step debugging is on. Each variable is
    written as `NAME<<DELIM`, value, `DELIM`, which is the only form that carries any value;
    a value that contains DELIM aborts the whole call with nothing written or printed, and
    so does an `unset` variable (one the project does not set) that `environ` holds, since
    $GITHUB_ENV cannot remove it (refuse_leftovers).
    """
    if not github_env_path:
        raise UsageError(
            "GITHUB_ENV is not set", hint="run `keyvault ci github` inside a github actions job"
        )
    checked = check_values(values)
    refuse_dangerous_names(checked)
    refuse_leftovers(unset, environ or {}, "remove it from the workflow's env")
    end = delimiter()
    for name, value in checked.items():
        _check_github_value(name, value, end)
    block = "".join(f"{name}<<{end}\n{value}\n{end}\n" for name, value in checked.items())
    for name in secrets:
        out.writelines(_mask_lines(checked.get(name, "")))
    out.flush()
    target = Path(github_env_path)
    if _ends_mid_line(target):  # an earlier step's last line lacks its LF: ours must not join it
        block = "\n" + block
    _append(target, block.encode("utf-8"))


def _check_github_value(name: str, value: str, end: str) -> None:
    if end in value:
        raise InvalidValue(
            f"the value of {name} contains the heredoc delimiter; nothing was written",
            hint="run the command again: the delimiter is random",
        )
    if "\r" in value:
        # Runners do not agree on CR: a Windows runner reads CR LF as one line break (the CR
        # is lost, and a CR before our LF ends the value early), the log masker splits lines
        # at CR. No OpenAI value holds one, so a CR is refused rather than guessed at.
        raise InvalidValue(f"the value of {name} contains a carriage return; nothing was written")


def _ends_mid_line(path: Path) -> bool:
    """True when the file exists, is not empty and its last byte is not LF."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        return False  # absent (created by _append) or unreadable (_append reports it)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return False
        os.lseek(fd, size - 1, os.SEEK_SET)  # not pread: Windows runners have none
        return os.read(fd, 1) != b"\n"
    finally:
        os.close(fd)


def _append(path: Path, data: bytes) -> None:
    """Append in one write, so a reader never sees half a heredoc."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0), NEW_FILE_MODE)
        try:
            written = os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as err:
        raise StorageError(f"cannot append to {path}: {err.strerror}") from None
    if written != len(data):
        raise StorageError(f"cannot append to {path}: short write (disk full?)")


# --- GitLab CI ----------------------------------------------------------------------------

# GitLab reads a dotenv report line by line with /^(.*?)=(.*)$/ and strips both sides
# (Ci::ParseDotenvArtifactService); it refuses files of 5 KiB or more (the dotenv_size
# plan limit, 5120 on every plan) and more variables than the plan allows (20 on the oldest
# plans, 50 on free, 150 on ultimate).
GITLAB_DOTENV_MAX_BYTES: Final = 5120
GITLAB_DOTENV_MAX_VARIABLES: Final = 20
# Masked CI/CD variables must match this (GitLab docs, "mask a CI/CD variable").
GITLAB_MASKABLE: Final = re.compile(r"[a-zA-Z0-9_+=/@:.~-]{8,}")


def gitlab_dotenv(
    values: Mapping[str, str],
    report_path: str | os.PathLike[str],
    *,
    secrets: Collection[str] = ("OPENAI_API_KEY",),
    unset: Collection[str] = (),
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Write a GitLab dotenv report (`artifacts:reports:dotenv`) and return warnings.

    `KEY=value` per line, no quotes (GitLab keeps quotes as part of the value). Refused:
    line breaks, leading or trailing blanks (GitLab strips them), `$` (GitLab expands
    variable references in dotenv values), files over GitLab's limits, and an `unset`
    variable that `environ` holds: the pipeline's variables reach the later job too, and a
    report cannot remove one (refuse_leftovers).
    """
    checked = check_values(values)
    refuse_dangerous_names(checked)
    refuse_leftovers(unset, environ or {}, "remove it from the pipeline's variables")
    for name, value in checked.items():
        _check_gitlab_value(name, value)
    if len(checked) > GITLAB_DOTENV_MAX_VARIABLES:
        raise InvalidValue(f"gitlab accepts at most {GITLAB_DOTENV_MAX_VARIABLES} variables")
    report = "".join(f"{name}={value}\n" for name, value in checked.items()).encode("utf-8")
    if len(report) >= GITLAB_DOTENV_MAX_BYTES:
        raise InvalidValue(
            f"the dotenv report would reach gitlab's limit of {GITLAB_DOTENV_MAX_BYTES} bytes"
        )
    write_atomically(Path(report_path), report)
    return _gitlab_warnings(checked, secrets)


_GITLAB_REFUSED: Final = (
    (re.compile(r"[\r\n]"), "contains a line break, which gitlab dotenv reports cannot carry"),
    (re.compile(r"^\s|\s$"), "starts or ends with a blank, which gitlab strips"),
    (re.compile(r"\$"), "contains $, which gitlab expands as a variable reference"),
)


def _check_gitlab_value(name: str, value: str) -> None:
    for pattern, reason in _GITLAB_REFUSED:
        if pattern.search(value):
            raise InvalidValue(f"the value of {name} {reason}")


def _gitlab_warnings(values: Mapping[str, str], secrets: Collection[str]) -> list[str]:
    unmaskable = [
        f"{name} cannot be a masked gitlab variable: a masked value needs 8 or more "
        "characters from a-z A-Z 0-9 _ + = / @ : . ~ -"
        for name in secrets
        if name in values and not GITLAB_MASKABLE.fullmatch(values[name])
    ]
    always = (
        "a dotenv report is a job artifact that anyone with access to the pipeline can "
        "download, and gitlab does not mask its values in job logs; prefer a masked, "
        "protected ci/cd variable for the key"
    )
    return [*unmaskable, always]
