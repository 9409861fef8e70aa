"""Whether this machine believes a vault.age: the team pin and the highest generation seen.

age has no sender authentication, so a vault.age that decrypts proves nothing about who
wrote it. Every open checks the document against this machine's pin (docs/security.md):

1. no pin yet: accept and pin (trust on first use; nothing is printed);
2. another vault id than the pinned one: refused (ForeignVault);
3. the pinned team secret is not in the document's chain: refused (ForgedVault): it was
   written by someone with only the public keys, or by a member removed since;
4. a lower generation than the pinned one: refused (RolledBack) until the user accepts it
   (`keyvault trust --accept-rollback`);
5. otherwise accepted, and the pin follows a higher generation or a newer current secret.

The pin lives outside the vault home (which may be a git repository anyone can push to):
`$XDG_STATE_HOME/keyvault/trust/<digest of the home's real path>.json` (0600), holding the
vault id, the digest of the current team secret (never the secret) and the generation.
`KEYVAULT_TEAM_PIN=<vault id>:<digest>` (from `keyvault trust`) adds a pin from the
environment, for CI runners that start with no state. This runs on every `keyvault env`:
cheap modules only, and the file is written only when something changed.
"""

# the folder is built from environment strings, as platformdirs does (not imported here:
# ~2 ms on every `keyvault env`)
# ruff: noqa: PTH103
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from vault.errors import ForeignVault, ForgedVault, InvalidValue, RolledBack, StorageError
from vault.model.document import VaultDoc
from vault.model.team import chain_digests, secret_digest
from vault.model.tuples import NamedTuple
from vault.store.files import read_file, write_file_atomic
from vault.store.folders import state_folder

PIN_VARIABLE = "KEYVAULT_TEAM_PIN"
FORGED_HINT = (
    "do not use it: ask your team; restore the previous version (`git log -- vault.age` in"
    " the vault home, or vault.age.bak); if the vault was re-created on purpose,"
    " `keyvault trust --reset`"
)


class Pin(NamedTuple):
    """What this machine believes about one vault: its id, the digest of a team secret any
    genuine version must hold, and the highest generation accepted."""

    vault_id: str
    secret: str  # secret_digest() of a team secret: a one-way digest, safe to show
    generation: int = 0

    @property
    def text(self) -> str:
        """The form `keyvault trust` prints and KEYVAULT_TEAM_PIN / `--expect` take."""
        return f"{self.vault_id}:{self.secret}"


def parse_pin(text: str) -> Pin:
    vault_id, colon, digest = text.strip().partition(":")
    hexdigits = "0123456789abcdef"
    if (
        not colon
        or len(vault_id) != 16
        or len(digest) != 32
        or (vault_id + digest).strip(hexdigits)
    ):
        raise InvalidValue(
            "a team pin is <vault id>:<digest> (16 and 32 hex digits)",
            hint="copy it from `keyvault trust` on a machine that has the vault",
        )
    return Pin(vault_id, digest)


def pin_of(doc: VaultDoc) -> Pin | None:
    """The pin a machine that accepts `doc` keeps (None: a vault without a team record)."""
    if doc.team is None:
        return None
    return Pin(doc.team.vault_id, secret_digest(doc.team.current.key), doc.generation)


class Trust:
    """The pin of one vault home on this machine (see the module docstring)."""

    def __init__(self, home: Path, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        real = os.path.realpath(home).encode("utf-8", "surrogateescape")
        name = secret_digest_of_path(real)
        self.path = Path(state_folder(self.environ), "trust", f"{name}.json")

    # --- reading and checking --------------------------------------------------------------

    def pinned(self) -> Pin | None:
        """This machine's pin, None when there is none (or it cannot be read)."""
        try:
            raw = json.loads(read_file(self.path))
            return Pin(str(raw["vault_id"]), str(raw["secret"]), int(raw["generation"]))
        except (OSError, StorageError, ValueError, KeyError, TypeError):
            return None

    def environment_pin(self) -> Pin | None:
        text = self.environ.get(PIN_VARIABLE)
        return parse_pin(text) if text else None

    def check_member(self, doc: VaultDoc, pin: Pin | None = None) -> None:
        """Refuse a document not written by a member (ForgedVault, ForeignVault); the
        generation is not looked at (a merge's inputs are older than what it makes)."""
        for expected in (self.environment_pin(), pin if pin is not None else self.pinned()):
            if expected is not None:
                _check_member(doc, expected)

    def check(self, doc: VaultDoc) -> Pin | None:
        """`check_member`, then refuse a rollback; returns the pin it checked against."""
        return self.check_against(doc, self.pinned())

    def check_against(self, doc: VaultDoc, pin: Pin | None) -> Pin | None:
        """`check` with the pin as it was read (by a reader: before it read vault.age)."""
        self.check_member(doc, pin)
        if pin is not None and doc.generation < pin.generation:
            raise RolledBack(
                f"vault.age is older than the one this machine last saw (generation"
                f" {doc.generation} < {pin.generation})",
                hint="restore the newer copy (git log, vault.age.bak); if you restored this"
                " one on purpose, `keyvault trust --accept-rollback`",
            )
        return pin

    def accept(
        self, doc: VaultDoc, pinned: Pin | None, *, hold: Callable[[], bool] = lambda: False
    ) -> None:
        """Check `doc` against `pinned`, the pin read before the file `doc` came from, and
        let the pin follow it (written only when it changed, and not when `hold()` says the
        file may yet be thrown away).

        Before, not after: a save writes vault.age, then the pin. A pin read after the file
        may be a concurrent save's, newer than the file this reader got, and the reader
        would take its own slightly older copy for a rollback."""
        self.remember(doc, self.check_against(doc, pinned), hold=hold)

    # --- writing ---------------------------------------------------------------------------

    def remember(
        self,
        doc: VaultDoc,
        known: Pin | None = None,
        *,
        strict: bool = False,
        hold: Callable[[], bool] = lambda: False,
    ) -> None:
        """Pin `doc` (just accepted or written here) unless the pin already says as much. A
        failed write is silent on the everyday path (the open still succeeds) unless
        `strict`; `keyvault doctor` reports a pin it cannot keep."""
        new = pin_of(doc)
        if new is None or new == (known if known is not None else self.pinned()) or hold():
            return
        current = self.pinned()  # again: another keyvault may have pinned a newer version
        if current is not None and current.vault_id == new.vault_id and doc.team is not None:
            if current.secret not in chain_digests(doc.team):
                return  # pinned from a version newer than this one: keep it
            new = new._replace(generation=max(new.generation, current.generation))
            if new == current:
                return
        self.write(new, strict=strict)

    def write(self, pin: Pin, *, strict: bool = True) -> None:
        body = {"vault_id": pin.vault_id, "secret": pin.secret, "generation": pin.generation}
        try:
            os.makedirs(self.path.parent, mode=0o700, exist_ok=True)
            write_file_atomic(self.path, json.dumps(body).encode())
        except (OSError, StorageError):
            if strict:
                raise StorageError(f"cannot write the trust pin {self.path}") from None

    def reset(self) -> bool:
        """Forget the pin (the next open trusts what it finds); True when there was one."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def accept_rollback(self, doc: VaultDoc) -> Pin:
        """Accept `doc` though it is older than the pin: still a member's version."""
        pin = self.pinned()
        self.check_member(doc, pin)
        new = pin_of(doc)
        if new is None:
            raise ForgedVault("vault.age has no team record", hint="`keyvault trust --reset`")
        self.write(new)
        return new


def _check_member(doc: VaultDoc, pin: Pin) -> None:
    if doc.team is None:
        raise ForgedVault(
            "vault.age was not written by a member of this vault: it has no team secret",
            hint=FORGED_HINT,
        )
    if doc.team.vault_id != pin.vault_id:
        raise ForeignVault(
            f"vault.age belongs to another vault (id {doc.team.vault_id}, this machine"
            f" knows {pin.vault_id})",
            hint="point --vault at the right folder; if this vault replaced the old one on"
            " purpose, `keyvault trust --reset`",
        )
    if pin.secret not in chain_digests(doc.team):
        raise ForgedVault(
            "vault.age was not written by a member of this vault: it lacks the vault's team secret",
            hint=FORGED_HINT,
        )


def secret_digest_of_path(real: bytes) -> str:
    try:
        from _blake2 import blake2b  # noqa: PLC0415
    except ImportError:  # pragma: no cover - CPython always has it
        from hashlib import blake2b  # noqa: PLC0415

    return blake2b(real, digest_size=16, person=b"keyvault-home").hexdigest()
