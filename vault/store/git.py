"""The one way keyvault runs git: hardened against the repository it looks at.

keyvault runs git inside folders it does not control: `scan --git` walks any repository,
`dotenv` and `doctor` ask whether a file is tracked. A repository's own `.git/config` (or a
file it includes) can make git run programs: core.fsmonitor, core.hooksPath, core.sshCommand
and remote.*.uploadpack (through a lazy fetch in a partial clone), core.pager and pager.*,
diff.external and diff.*.command, diff.*.textconv, filter.*, credential.helper,
core.askPass, gpg.program (log.showSignature). Every git call goes through `run` or
`stream`, which:

- give git an environment without KEYVAULT_* and OPENAI_* (a program git runs must not see
  the passphrase or a key) and without the variables that name programs (GIT_SSH_COMMAND,
  GIT_EXTERNAL_DIFF, GIT_ASKPASS, GIT_CONFIG_PARAMETERS …);
- override the settings above on the command line, which wins over every config file;
- forbid every transport (GIT_ALLOW_PROTOCOL empty overrides protocol.*.allow in any config,
  and GIT_NO_LAZY_FETCH for git >= 2.44), so no fetch, ssh or remote helper can start;
- add --no-ext-diff and --no-textconv to the commands that print diffs, and --no-pager;
- run only the read-only subcommands in SUBCOMMANDS: filters (filter.*.clean/smudge/process)
  run only when git converts work-tree files (add, status, checkout, diff against the work
  tree), which none of these do. Adding a subcommand means reviewing it against this list.

safe.directory is left alone: git refuses a repository owned by someone else, and so do we.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Final

from vault.security.childenv import for_tool

GIT_TIMEOUT: Final = 30.0  # seconds for one quick query (rev-parse, ls-files, check-ignore)

# read-only queries keyvault makes; see the module docstring before adding one
SUBCOMMANDS: Final = frozenset({"rev-parse", "ls-files", "check-ignore", "log"})
DIFF_SUBCOMMANDS: Final = frozenset({"log"})

# `-c` settings: the command line beats .git/config, includes and the user's files
OVERRIDES: Final = (
    "core.fsmonitor=false",
    f"core.hooksPath={os.devnull}",
    "core.pager=cat",
    "core.askPass=",  # empty: no askpass program (git then falls back to no prompt)
    "credential.helper=",  # an empty value clears every configured helper
    "protocol.allow=never",
    "log.showSignature=false",  # no gpg.program for signed commits
    "submodule.recurse=false",
    "safe.bareRepository=explicit",  # an embedded bare repository brings its own config
    "gc.auto=0",
    "maintenance.auto=false",
    "core.quotePath=false",  # not a safety setting: paths printed as they are, for `scan`
)
ENV_SET: Final = {
    "GIT_ALLOW_PROTOCOL": "",  # an empty allow-list: no transport at all, whatever config says
    "GIT_NO_LAZY_FETCH": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",  # queries never write the index
    "GIT_PAGER": "cat",
    "PAGER": "cat",
}
# variables of the user's environment that name a program for git to run, or inject config
ENV_DROPPED: Final = frozenset(
    {
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_PROXY_COMMAND",
        "GIT_EXTERNAL_DIFF",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "GIT_EDITOR",
        "GIT_SEQUENCE_EDITOR",
        "GIT_EXEC_PATH",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
    }
)


def git_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git call gets (see the module docstring)."""
    base = for_tool(os.environ if environ is None else environ)
    kept = {
        k: v
        for k, v in base.items()
        if k.upper() not in ENV_DROPPED and not k.upper().startswith("GIT_CONFIG_")
    }
    return kept | ENV_SET


def git_argv(folder: Path, args: Sequence[str], *, git: str = "git") -> list[str]:
    """`git -C folder -c … --no-pager SUBCOMMAND [diff guards] ARGS`; ValueError for a
    subcommand not reviewed (SUBCOMMANDS)."""
    if not args or args[0] not in SUBCOMMANDS:
        raise ValueError(f"git {args[0] if args else ''}: not a reviewed subcommand")
    overrides = [item for setting in OVERRIDES for item in ("-c", setting)]
    guards = ["--no-ext-diff", "--no-textconv"] if args[0] in DIFF_SUBCOMMANDS else []
    return [git, "-C", str(folder), *overrides, "--no-pager", args[0], *guards, *args[1:]]


def run(
    folder: Path, *args: str, git: str = "git", timeout: float = GIT_TIMEOUT
) -> subprocess.CompletedProcess[bytes] | None:
    """Run a git query in `folder` and capture its output; None when git cannot run (not
    installed, timed out)."""
    try:
        return subprocess.run(
            git_argv(folder, args, git=git),
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=git_environment(),
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None


def returncode(folder: Path, *args: str, git: str = "git") -> int | None:
    """The exit code of a git query, None when git cannot run."""
    done = run(folder, *args, git=git)
    return None if done is None else done.returncode


def stream(
    folder: Path, *args: str, stderr: IO[bytes] | int, git: str = "git"
) -> subprocess.Popen[bytes]:
    """Start a long git query whose stdout the caller reads as it comes (`scan --git`).
    Raises OSError when git cannot start."""
    return subprocess.Popen(
        git_argv(folder, args, git=git),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=git_environment(),
    )
