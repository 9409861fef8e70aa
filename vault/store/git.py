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
- override the settings above on the command line, which wins over every config file (but
  for remote.*.uploadpack/receivepack, where git takes the first value: here no transport
  runs at all, and the vault profile below passes --upload-pack/--receive-pack instead);
- forbid every transport (GIT_ALLOW_PROTOCOL empty overrides protocol.*.allow in any config,
  and GIT_NO_LAZY_FETCH for git >= 2.44), so no fetch, ssh or remote helper can start;
- add --no-ext-diff and --no-textconv to the commands that print diffs, and --no-pager;
- run only the read-only subcommands in SUBCOMMANDS: filters (filter.*.clean/smudge/process)
  run only when git converts work-tree files (add, status, checkout, diff against the work
  tree), which none of these do. Adding a subcommand means reviewing it against this list.

safe.directory is left alone: git refuses a repository owned by someone else, and so do we.

A second, explicit profile, `VAULT_REPO`, runs git in the vault's own repository (a shared
team vault: `init --git`, `clone`, `sync`; vault/store/repo.py). It writes (add, commit,
update-ref, reset) and reaches the remote (fetch, push, clone over ssh, https or a local
path: GIT_ALLOW_PROTOCOL allows exactly those), and it keeps every other guard: no hooks,
no fsmonitor, no pager, no editor, no signing program, no KEYVAULT_* or OPENAI_* in git's
environment, no GIT_* variable of the caller's but the ones that choose ssh, askpass and the
commit author (a GIT_DIR or GIT_INDEX_FILE left by a hook would point us elsewhere), and
`merge.keyvault.driver` set on the command line so no config can choose the program that
merges vault.age (it is `exit 1`: `sync` merges vault.age itself, in process, with the
identity it holds; vault/store/repo.py). The user's own credential helper, askpass and ssh
settings (core.sshCommand, GIT_SSH_COMMAND) stay: this is their repository, that is how they
reach its remote, and a clone never brings a config (only a local program can write one).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Final, NamedTuple

from vault.security.childenv import for_tool

GIT_TIMEOUT: Final = 30.0  # seconds for one quick query (rev-parse, ls-files, check-ignore)
TIMED_OUT: Final = 124  # run_remote's exit code for a remote that did not answer (as timeout(1))

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


class Profile(NamedTuple):
    """What one kind of git call may do: its subcommands, `-c` overrides and environment."""

    name: str
    subcommands: frozenset[str]
    guards: Mapping[str, tuple[str, ...]]  # options added right after a subcommand
    overrides: tuple[str, ...]
    env_set: Mapping[str, str]

    def environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        base = for_tool(os.environ if environ is None else environ)
        if self is READ_ONLY:
            kept = {
                k: v
                for k, v in base.items()
                if k.upper() not in ENV_DROPPED and not k.upper().startswith("GIT_CONFIG_")
            }
        else:
            kept = {
                k: v
                for k, v in base.items()
                if not k.upper().startswith("GIT_") or k.upper() in VAULT_ENV_KEPT
            }
        return kept | dict(self.env_set)


_NO_DIFF_PROGRAMS: Final = ("--no-ext-diff", "--no-textconv")
READ_ONLY: Final = Profile(
    "read-only", SUBCOMMANDS, dict.fromkeys(DIFF_SUBCOMMANDS, _NO_DIFF_PROGRAMS), OVERRIDES, ENV_SET
)

# the vault's own repository (vault/store/repo.py); each subcommand reviewed for what it runs
VAULT_SUBCOMMANDS: Final = frozenset(
    {
        *("init", "clone", "config", "remote", "fetch", "push"),
        *("rev-parse", "rev-list", "symbolic-ref", "merge-base", "ls-files", "ls-tree"),
        "for-each-ref",
        *("status", "cat-file", "log", "diff"),
        *("add", "commit", "update-index", "hash-object", "mktree", "merge-tree"),
        *("commit-tree", "update-ref", "reset", "checkout"),
    }
)
VAULT_OVERRIDES: Final = (
    "core.fsmonitor=false",
    f"core.hooksPath={os.devnull}",
    "core.pager=cat",
    "core.editor=:",
    "sequence.editor=:",
    "log.showSignature=false",
    "commit.gpgSign=false",
    "submodule.recurse=false",
    "safe.bareRepository=explicit",
    "gc.auto=0",
    "maintenance.auto=false",
    "core.quotePath=false",
    "diff.external=",
    "core.alternateRefsCommand=",
    # `sync` resolves vault.age itself (vault/store/repo.py): a conflict is what it wants
    "merge.keyvault.driver=exit 1",
    "merge.keyvault.name=resolved by keyvault sync",
)
VAULT_ENV_SET: Final = {
    "GIT_ALLOW_PROTOCOL": "file:ssh:https",  # beats protocol.*.allow in any config
    "GIT_NO_LAZY_FETCH": "1",
    "GIT_TERMINAL_PROMPT": "0",  # cron: fail, never wait for a password nobody types
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "GIT_EDITOR": ":",
    "GIT_MERGE_AUTOEDIT": "no",
}
# the caller's GIT_* variables that choose how to reach the remote and who commits
VAULT_ENV_KEPT: Final = frozenset(
    {
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_SSH_VARIANT",
        "GIT_ASKPASS",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    }
)
# The program git starts for a local-path remote comes from remote.*.uploadpack and
# .receivepack, and for those git takes the FIRST value it finds: a `-c` cannot override one
# in .git/config. The command-line options can (for ssh, they name the server's program).
VAULT_GUARDS: Final = {
    "log": _NO_DIFF_PROGRAMS,
    "diff": _NO_DIFF_PROGRAMS,
    "fetch": ("--upload-pack=git-upload-pack",),
    "clone": ("--upload-pack=git-upload-pack",),
    "push": ("--receive-pack=git-receive-pack",),
}
VAULT_REPO: Final = Profile(
    "vault repository", VAULT_SUBCOMMANDS, VAULT_GUARDS, VAULT_OVERRIDES, VAULT_ENV_SET
)


def git_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every read-only git call gets (see the module docstring)."""
    return READ_ONLY.environment(environ)


def git_argv(
    folder: Path,
    args: Sequence[str],
    *,
    git: str = "git",
    profile: Profile = READ_ONLY,
    config: Sequence[str] = (),
) -> list[str]:
    """`git -C folder -c … --no-pager SUBCOMMAND [diff guards] ARGS`; ValueError for a
    subcommand the profile has not reviewed. `config` adds `-c` settings after the
    profile's (the vault profile only: the read-only one takes none)."""
    if not args or args[0] not in profile.subcommands:
        raise ValueError(f"git {args[0] if args else ''}: not a reviewed subcommand")
    if config and profile is READ_ONLY:
        raise ValueError("the read-only git profile takes no extra settings")
    settings = (*profile.overrides, *config)
    overrides = [item for setting in settings for item in ("-c", setting)]
    guards = profile.guards.get(args[0], ())
    return [git, "-C", str(folder), *overrides, "--no-pager", args[0], *guards, *args[1:]]


def run(
    folder: Path,
    *args: str,
    git: str = "git",
    timeout: float = GIT_TIMEOUT,
    profile: Profile = READ_ONLY,
    config: Sequence[str] = (),
    stdin: bytes | None = None,
    environ: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes] | None:
    """Run git in `folder` and capture its output; None when git cannot run (not
    installed, timed out)."""
    try:
        return subprocess.run(
            git_argv(folder, args, git=git, profile=profile, config=config),
            capture_output=True,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            env=profile.environment(environ),
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None


def run_remote(
    folder: Path,
    *args: str,
    git: str = "git",
    timeout: float,
    config: Sequence[str] = (),
    stdin: bytes | None = None,
    environ: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes] | None:
    """`run` for the vault repository's calls that may reach a remote (fetch, push, clone):
    a remote that never answers gives exit TIMED_OUT and "no answer within N s" on stderr
    (None only when git cannot start). Without a terminal (cron) git runs in a session of
    its own and the whole session is killed on timeout: killing git alone would leave the
    ssh it started waiting on the remote forever. With a terminal it stays in the user's
    session, where ssh can ask for a passphrase and Ctrl-C reaches it."""
    alone = sys.platform != "win32" and not _terminal()
    try:
        child = subprocess.Popen(
            git_argv(folder, args, git=git, profile=VAULT_REPO, config=config),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=VAULT_REPO.environment(environ),
            start_new_session=alone,
        )
    except OSError:
        return None
    with child:
        try:
            out, err = child.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(child, group=alone)
            why = f"fatal: no answer within {timeout:.0f} s".encode()
            return subprocess.CompletedProcess(child.args, TIMED_OUT, b"", why)
        except BaseException:  # Ctrl-C, SIGTERM: leave no git (nor its ssh) behind
            _stop(child, group=alone)
            raise
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def _stop(child: subprocess.Popen[bytes], *, group: bool) -> None:
    if group:
        with contextlib.suppress(OSError):
            os.killpg(child.pid, signal.SIGKILL)
    child.kill()
    child.wait()  # not communicate(): an ssh left behind may hold the pipes open


def _terminal() -> bool:
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


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
