"""Find the vault's secrets, and OpenAI-shaped keys it does not hold, in files and git history.

Used by `keyvault scan` (and as a pre-commit hook). Secrets are compared by keyed hash: each
run draws a random HMAC key, fingerprints the vault's secrets once, then hashes candidate
tokens of the scanned text, so the scanner holds no plaintext secret and prints only the entry
name and the masked form. A stored secret is found where it stands as a token: delimited by
whitespace, quotes, or characters outside its own alphabet (`KEY=sk-…`, `"sk-…"`, `?key=sk-…`),
and inside base64 runs, which are decoded one level deep (Kubernetes Secrets, docker configs).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hmac
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from vault.errors import KeyvaultError
from vault.model.secret import Secret, mask

MAX_FILE_BYTES = 2 * 1024 * 1024  # keys live in config and source files, not in 2 MiB blobs
SNIFF_BYTES = 8192  # a NUL byte here means binary, as git decides
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn"})  # history has its own scan (--git)
# on a line, silences an unknown-key report there (never a stored secret)
ALLOW_PRAGMA = "keyvault-scan: allow"
UNKNOWN_KEY = "unknown key"
UNKNOWN_IDENTITY = "unknown identity"

_TOKENS = (
    re.compile(r"[A-Za-z0-9_-]+"),  # the OpenAI key alphabet: finds keys glued to punctuation
    re.compile(r"[A-Za-z0-9_.~+/=-]+"),  # base64 and URL-safe secrets of other providers
    re.compile(r"[^\s\"'`]+"),  # anything between whitespace and quotes
    re.compile(r"[\x21-\x7e]+"),  # any printable run: secrets holding quote characters
)
_ASSIGNMENT = re.compile(r"[=:]")
# docs/openai-api.md's offline check, `sk-` + 20 or more of [A-Za-z0-9_-], as a whole word
_OPENAI_SHAPE = re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}")
_AGE_IDENTITY = re.compile(r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}")
# a base64 run (standard or URL-safe alphabet) long enough to hold a key: Kubernetes Secrets,
# `docker config`, CI variable dumps and `.env` files pasted through `base64` carry keys so
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
BASE64_NOTE = " (base64)"


@dataclass(frozen=True)
class Finding:
    """One secret at one place; `name` is the entry's name, or "unknown key"."""

    path: str
    line: int
    name: str
    masked: str
    known: bool
    commit: str | None = None

    def location(self) -> str:
        where = f"{self.path}:{self.line}"
        return f"{self.commit[:12]}:{where}" if self.commit else where

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ScanReport:
    findings: list[Finding]
    files: int = 0
    skipped: int = 0  # binary, too large, symlinks, unreadable
    commits: int = 0
    commits_capped: bool = False


class Matcher:
    """Recognises the vault's secrets by HMAC under a per-run random key, and age identities
    by their public key: `identities` maps a recipient (age1…) to the name to report, so a
    leaked identity is named without the scanner ever holding one."""

    def __init__(
        self,
        secrets: Iterable[tuple[str, Secret]],
        *,
        identities: Mapping[str, str] | None = None,
        key: bytes | None = None,
    ) -> None:
        self._identities = dict(identities or {})
        self._key = key if key is not None else os.urandom(32)
        self._known: dict[bytes, tuple[str, str]] = {}
        self._lengths: set[int] = set()
        for name, secret in secrets:
            value = secret.reveal().encode("utf-8")
            self._known[self._digest(value)] = (name, secret.masked)
            self._lengths.add(len(value))

    def _digest(self, token: bytes) -> bytes:
        return hmac.digest(self._key, token, "sha256")

    def __len__(self) -> int:
        return len(self._known)

    def match_line(
        self, text: str, *, decode: bool = True, allowed: bool = False
    ) -> list[tuple[str, str, bool]]:
        """(name, masked, known) for each distinct secret on the line, stored ones first.

        With `decode`, base64 runs on the line are decoded and searched too (one level deep),
        and what is found there is named with " (base64)". `allowed`: the line around it
        carries the allow pragma.
        """
        hits: dict[str, tuple[str, str, bool]] = {}
        for token in self._candidates(text):
            known = self._known.get(self._digest(token.encode("utf-8")))
            if known is not None:
                hits.setdefault(known[0], (known[0], known[1], True))
        allowed = allowed or ALLOW_PRAGMA in text
        if not allowed:
            for pattern, label in ((_OPENAI_SHAPE, UNKNOWN_KEY), (_AGE_IDENTITY, UNKNOWN_IDENTITY)):
                for match in pattern.finditer(text):
                    token = match.group()
                    stored = self._known.get(self._digest(token.encode("utf-8")))
                    owner = self._identity_owner(token) if label == UNKNOWN_IDENTITY else None
                    if owner is not None:
                        hits.setdefault(owner, (owner, mask(token), True))
                    elif stored is None:
                        hits.setdefault(f"?{token}", (label, mask(token), False))
        if decode:
            for decoded in _base64_texts(text):
                for line in decoded.splitlines():
                    found = self.match_line(line, decode=False, allowed=allowed)
                    for name, masked, in_vault in found:
                        hits.setdefault(
                            f"b64:{name}:{masked}", (name + BASE64_NOTE, masked, in_vault)
                        )
        return list(hits.values())

    def _identity_owner(self, token: str) -> str | None:
        """The name given for this age identity's recipient, if it is one of ours."""
        if not self._identities:
            return None
        from vault import age  # noqa: PLC0415

        try:
            public = age.X25519Identity.parse(token).recipient().to_string()
        except KeyvaultError:
            return None
        return self._identities.get(public)

    def _candidates(self, text: str) -> set[str]:
        """Tokens of a length some secret has: only those are worth a hash."""
        tokens: set[str] = set()
        for pattern in _TOKENS:
            for match in pattern.finditer(text):
                token = match.group()
                tokens.add(token)
                parts = _ASSIGNMENT.split(token, maxsplit=1)
                if len(parts) == 2:
                    tokens.add(parts[1])
        return {t for t in tokens if len(t.encode("utf-8")) in self._lengths}


def _base64_texts(text: str) -> Iterator[str]:
    """The text inside each base64 run of `text` that decodes to UTF-8 (keys are text)."""
    for match in _BASE64_RUN.finditer(text):
        run = match.group().rstrip("=")
        if len(run) % 4 == 1:
            continue  # not a whole number of bytes
        urlsafe = "-" in run or "_" in run
        if urlsafe and ("+" in run or "/" in run):
            continue  # two alphabets at once: not base64
        padded = run + "=" * (-len(run) % 4)
        try:
            raw = base64.b64decode(padded, altchars=b"-_" if urlsafe else None, validate=True)
            yield raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue


def scan_text(text: str, path: str, matcher: Matcher, commit: str | None = None) -> list[Finding]:
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        for name, masked, known in matcher.match_line(line):
            found.append(Finding(path, number, name, masked, known, commit))
    return found


# --- files --------------------------------------------------------------------------------


def scan_paths(
    paths: Sequence[Path],
    matcher: Matcher,
    *,
    exclude: Sequence[str] = (),
    max_bytes: int = MAX_FILE_BYTES,
) -> ScanReport:
    """Scan files and folders; symlinks are never followed, so nothing outside is read."""
    report = ScanReport([])
    for path in iter_files(paths, exclude):
        text = read_text(path, max_bytes)
        if text is None:
            report.skipped += 1
            continue
        report.files += 1
        report.findings += scan_text(text, str(path), matcher)
    return report


def iter_files(paths: Sequence[Path], exclude: Sequence[str] = ()) -> Iterator[Path]:
    for root in paths:
        if _excluded(root, exclude):
            continue
        if root.is_dir() and not root.is_symlink():
            yield from _walk(root, exclude)
        else:
            yield root  # read_text refuses a symlink or anything but a regular file


def _walk(root: Path, exclude: Sequence[str]) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(
            d for d in dirs if d not in SKIPPED_DIRS and not _excluded(Path(folder, d), exclude)
        )
        for name in sorted(files):
            path = Path(folder, name)
            if not _excluded(path, exclude):
                yield path


def _excluded(path: Path, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(path.name, p) or fnmatch.fnmatch(str(path), p) for p in patterns)


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """The file's text, or None for a symlink, a non-regular, binary or too large file."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None  # a symlink (ELOOP), vanished or unreadable file: nothing to report
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None  # a FIFO would block; huge files are not where keys are typed
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes or b"\0" in data[:SNIFF_BYTES]:
        return None
    return data.decode("utf-8", "replace")
