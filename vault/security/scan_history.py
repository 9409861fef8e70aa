"""`keyvault scan --git`: every line any commit of the repository added, through the matcher.

Streams `git log -p --all --cc -U0` (merge resolutions included) and keeps the new-file line
numbers, so a key deleted long ago is still reported at the place it was added. git runs
through vault/store/git.py, hardened against a hostile repository: no external diff,
textconv, pager, gpg, fsmonitor, hook or transport (a partial clone's lazy fetch) can run,
and git never sees the passphrase.
"""

from __future__ import annotations

import codecs
import re
import tempfile
import time
from pathlib import Path

from vault.errors import StorageError
from vault.security.scan import Finding, Matcher, ScanReport
from vault.store import git as hardened_git

MAX_COMMITS = 10_000  # `--git` default bound; enough for years of a project's history
GIT_TIMEOUT = 300.0  # seconds for the whole history walk
_HUNK = re.compile(r"(@+) .*?\+(\d+)(?:,\d+)? @+")

# The output we parse; the runner adds what keeps a hostile repository from running programs.
_LOG_ARGS = (
    "log",
    "--all",
    "-p",
    "--cc",
    "--unified=0",
    "--no-color",
    "--no-show-signature",
    "--no-relative",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--format=commit %H",
)


def scan_git(
    repo: Path,
    matcher: Matcher,
    *,
    max_commits: int = MAX_COMMITS,
    git: str = "git",
    timeout: float = GIT_TIMEOUT,
) -> ScanReport:
    """Every line added by any commit reachable from any ref (merge resolutions included).

    Streams `git log -p`, so memory stays flat; stops at `max_commits` (newest first) and
    fails after `timeout` seconds rather than hang a pre-push hook.
    """
    args = [*_LOG_ARGS, f"--max-count={max_commits + 1}"]
    parser = _DiffParser(matcher)
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile() as errors:
        try:
            proc = hardened_git.stream(repo, *args, stderr=errors, git=git)
        except OSError as exc:
            raise StorageError(f"cannot run git ({exc.strerror or exc})") from None
        with proc:
            for raw in proc.stdout or ():
                parser.feed(raw.decode("utf-8", "replace").rstrip("\n"))
                if time.monotonic() > deadline:
                    proc.kill()
                    raise StorageError(f"git history scan took longer than {timeout:.0f} s")
        errors.seek(0)
        reason = errors.read(2000).decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        first = reason.splitlines()[0] if reason else f"exit {proc.returncode}"
        raise StorageError(f"git log failed in {repo}: {first}")
    capped = parser.commits > max_commits
    findings = [f for f in parser.findings if not capped or f.commit != parser.last_commit]
    return ScanReport(findings, commits=min(parser.commits, max_commits), commits_capped=capped)


class _DiffParser:
    """Reads `git log -p --cc -U0` line by line, keeping the new-file line numbers."""

    def __init__(self, matcher: Matcher) -> None:
        self.matcher = matcher
        self.findings: list[Finding] = []
        self.commits = 0
        self.last_commit: str | None = None
        self.path: str | None = None
        self.width = 0  # prefix columns in a hunk: 1, or the parent count of a merge
        self.line = 0

    def feed(self, text: str) -> None:
        prefix = text[: self.width]
        if self.width and len(prefix) == self.width and not prefix.strip("+- "):
            self._content(text, prefix)
            return
        self.width = 0
        if text.startswith("commit "):
            self.commits += 1
            self.last_commit, self.path = text[7:].strip(), None
        elif text.startswith("+++ "):
            self.path = _diff_path(text[4:])
        elif text.startswith("@@") and (hunk := _HUNK.match(text)):
            self.width, self.line = len(hunk.group(1)) - 1, int(hunk.group(2))

    def _content(self, text: str, prefix: str) -> None:
        if "-" in prefix:
            return  # a removed line is not in the new file
        if "+" in prefix and self.path is not None and self.commits:
            for name, masked, known in self.matcher.match_line(text[self.width :]):
                self.findings.append(
                    Finding(self.path, self.line, name, masked, known, self.last_commit)
                )
        self.line += 1


def _diff_path(raw: str) -> str | None:
    """`b/path` or a C-quoted `"b/p\\303\\251"` from a diff header; None for /dev/null."""
    raw = raw.removesuffix("\t")  # git adds a tab after a name holding a space, for patch(1)
    if raw == "/dev/null":
        return None
    if raw.startswith('"') and raw.endswith('"'):
        # git quotes like C (\", \t, octal bytes): a subset of Python bytes escapes
        raw = codecs.escape_decode(raw[1:-1].encode("utf-8"))[0].decode("utf-8", "replace")
    return raw.removeprefix("b/")


def git_toplevel(start: Path, git: str = "git") -> Path | None:
    """The work tree holding `start`, or None outside git (or without git)."""
    folder = start if start.is_dir() else start.parent
    done = hardened_git.run(folder, "rev-parse", "--show-toplevel", git=git)
    if done is None:
        return None
    top = done.stdout.decode("utf-8", "replace").strip()
    return Path(top) if done.returncode == 0 and top else None
