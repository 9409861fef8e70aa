"""What opens the vault here: an identity from the environment, a session, or a passphrase.

`Unlocker` is asked by `vault.store.keyvault.Keyvault` for the plaintext of a sealed file; it
tries, in order, KEYVAULT_IDENTITY(_FILE), an unlocked session (the agent decrypts and never
hands out its key), KEYVAULT_PASSPHRASE(_FILE), then a prompt.
"""

from __future__ import annotations

import os
import sys

from vault.errors import NoPassphraseSource, NothingTyped, VaultNotFound, WrongPassphrase
from vault.model.savedtext import decode_saved
from vault.model.secret import Secret
from vault.session.identity import (
    PassphraseSource,
    UnlockSettings,
    Warn,
    open_identity,
    parse_identity_text,
    read_passphrase_file,
    warn_if_readable,
)
from vault.store.config import Paths
from vault.store.files import read_file

PASSPHRASE_TRIES = 3  # as sudo: a typo costs a retype, not the whole command

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    # `vault.age` loads cryptography: commands that a session unlocks never import it
    from vault import age

    class SessionLike(Protocol):
        """An unlocked session (`vault.session.client.Session`): decrypts with an identity
        it keeps. A protocol for the type checker only: importing typing costs ~3 ms."""

        def decrypt(self, sealed: bytes) -> bytes | None:
            """The plaintext, or None when there is no session to ask."""

        def recipient(self) -> str | None:
            """The session identity's public key, or None when there is no session."""


class Unlocker:
    """Finds what opens the vault, asking for a passphrase only as a last resort.

    Order: KEYVAULT_IDENTITY, KEYVAULT_IDENTITY_FILE, a cached session, KEYVAULT_PASSPHRASE,
    KEYVAULT_PASSPHRASE_FILE, then `ask` (a prompt on the terminal). With no terminal and none
    of these, it fails at once with NoPassphraseSource (exit 3), never waiting for input.

    A session decrypts for us but never gives its identity out, so `identity()` (for the
    commands that need the key itself: `passwd`, `identity export`) skips it.
    """

    def __init__(
        self,
        settings: UnlockSettings | None = None,
        ask: PassphraseSource | None = None,
        session: SessionLike | None = None,
        warn: Warn | None = None,
    ) -> None:
        self.settings = settings if settings is not None else UnlockSettings()
        self.ask = ask
        self.session = session
        self.warn = warn  # told when a passphrase or identity file is readable by others
        self._cached: age.X25519Identity | None = None

    def decrypt(self, paths: Paths, sealed: bytes) -> bytes:
        """The plaintext of an age file sealed to the vault's identity.

        Raises what `vault.age.decrypt` raises, and the unlock errors of `identity()`.
        """
        session = self._session_to_ask()
        if session is not None and (plain := session.decrypt(sealed)) is not None:
            return plain
        from vault import age  # noqa: PLC0415

        return age.decrypt(sealed, [self.identity(paths)])

    def recipient(self, paths: Paths) -> str:
        """The public key (age1…) of whatever unlocks the vault here."""
        session = self._session_to_ask()
        if session is not None and (found := session.recipient()) is not None:
            return found
        return self.identity(paths).recipient().to_string()

    def identity(self, paths: Paths) -> age.X25519Identity:
        """The identity itself, from the environment or the passphrase (never a session)."""
        if self._cached is None:
            self._cached = self._find(paths)
        return self._cached

    def _session_to_ask(self) -> SessionLike | None:
        """The session, unless an identity was given or has already been opened here."""
        s = self.settings
        if s.identity is not None or s.identity_file is not None or self._cached is not None:
            return None
        return self.session

    def _find(self, paths: Paths) -> age.X25519Identity:
        s = self.settings
        if s.identity is not None:
            return parse_identity_text(s.identity.reveal(), source="KEYVAULT_IDENTITY")
        if s.identity_file is not None:
            text = _read_text(s.identity_file)
            warn_if_readable(s.identity_file, "KEYVAULT_IDENTITY_FILE", self.warn)
            return parse_identity_text(text, source=str(s.identity_file))
        sealed = _read_identity_file(paths)
        prompt = "passphrase: "
        tries = PASSPHRASE_TRIES if self._typed() else 1
        for attempt in range(1, tries):
            try:
                return open_identity(sealed, self.passphrase(prompt))
            except WrongPassphrase:
                prompt = f"wrong passphrase, try again ({tries - attempt} left): "
        try:
            return open_identity(sealed, self.passphrase(prompt))
        except WrongPassphrase as exc:
            raise WrongPassphrase(exc.message, hint=self._passphrase_source_hint()) from None

    def _passphrase_source_hint(self) -> str:
        """Which passphrase did not open identity.age: with KEYVAULT_PASSPHRASE set, a
        KEYVAULT_PASSPHRASE_FILE beside it is never read, which nothing else would say."""
        s = self.settings
        if s.passphrase is not None:
            unread = " (KEYVAULT_PASSPHRASE_FILE is not read when it is set)"
            return "the passphrase in KEYVAULT_PASSPHRASE did not open identity.age" + (
                unread if s.passphrase_file is not None else ""
            )
        if s.passphrase_file is not None:
            return f"the passphrase in {s.passphrase_file} did not open identity.age"
        return "identity.age did not open with that passphrase"

    def _typed(self) -> bool:
        """Whether the passphrase comes from a person at the prompt (who gets more tries)."""
        s = self.settings
        return s.passphrase is None and s.passphrase_file is None and self._asker() is not None

    def _asker(self) -> PassphraseSource | None:
        """`ask`, with `ask_if_terminal` settled the first time a passphrase is wanted: a
        command the session or the environment unlocks never touches /dev/tty."""
        if self.ask is ask_if_terminal:
            self.ask = ask_hidden if terminal_available() else None
        return self.ask

    def passphrase(self, prompt: str = "passphrase: ") -> Secret:
        s = self.settings
        if s.passphrase is not None:
            return s.passphrase
        if s.passphrase_file is not None:
            return read_passphrase_file(s.passphrase_file, warn=self.warn)
        ask = self._asker()
        if ask is None:
            raise self._cannot_ask()
        return ask(prompt)

    def _cannot_ask(self) -> NoPassphraseSource:
        """Why there is no passphrase, told apart: a session that did not answer, a session
        that cannot serve this command, or no session at all."""
        session = self.session
        running = session is not None and not _unanswered(session) and session.recipient()
        if session is not None and _unanswered(session):  # recipient() may have timed out too
            return NoPassphraseSource(
                "the unlock session did not answer in time (its agent is busy or stuck),"
                " and there is no terminal to ask for the passphrase",
                hint="run the command again; if it persists, `keyvault lock` and"
                " `keyvault unlock` restart the agent",
            )
        if running:
            return NoPassphraseSource(
                "this command needs the passphrase even while unlocked (the session opens"
                " the vault but never hands out the identity), and there is no terminal",
                hint="run it in a terminal, or set KEYVAULT_PASSPHRASE_FILE or KEYVAULT_IDENTITY",
            )
        return NoPassphraseSource(
            "the vault is locked and there is no terminal to ask for the passphrase",
            hint="run `keyvault unlock` in a terminal, or set KEYVAULT_PASSPHRASE_FILE or"
            " KEYVAULT_IDENTITY for automation",
        )


def _unanswered(session: SessionLike) -> bool:
    """Whether the session's agent took our last request and gave no usable answer."""
    return bool(getattr(session, "unanswered", False))


def _read_text(path: os.PathLike[str]) -> str:
    try:
        with open(path, "rb") as handle:  # a byte-order mark is no part of it; UTF-16 is
            return decode_saved(handle.read())  # how Windows PowerShell 5 saves `>`
    except UnicodeDecodeError:
        # the decoder's message quotes a byte of the identity: say only what is wrong
        raise NoPassphraseSource(f"identity file {path} is not UTF-8 text") from None
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise NoPassphraseSource(f"cannot read identity file {path} ({reason})") from None


LOST_IDENTITY_HINT = (
    "vault.age is here but identity.age is not: restore it from your own backup, or open the"
    " vault with an exported identity"
    " (KEYVAULT_IDENTITY_FILE); if it is lost, a team vault's member joins"
    " again (`keyvault --vault NEW_FOLDER clone URL`, then a member runs `keyvault recipients"
    " rm` for the old key and `recipients add` for the new one)"
)


def _read_identity_file(paths: Paths) -> bytes:
    try:
        return read_file(paths.identity)
    except FileNotFoundError:
        hint = "run `keyvault init` to create a vault"
        if paths.vault.exists():  # `init` would refuse: the vault is there, its key is not
            hint = LOST_IDENTITY_HINT
        raise VaultNotFound(f"no identity at {paths.identity}", hint=hint) from None


def terminal_available() -> bool:
    """True when a human can be asked: a controlling terminal we can open."""
    if sys.platform == "win32":
        return sys.stdin.isatty()
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def ask_if_terminal(prompt: str) -> Secret:
    """As an Unlocker's `ask`: the terminal prompt when there is a terminal, told when the
    passphrase is first wanted (Unlocker._asker)."""
    return ask_hidden(prompt)


def ask_hidden(prompt: str) -> Secret:
    """Read a secret from the terminal without echo (never from stdin, never argv)."""
    if not terminal_available():
        raise NoPassphraseSource(
            "no terminal to ask for the passphrase",
            hint="set KEYVAULT_PASSPHRASE_FILE or KEYVAULT_IDENTITY for automation",
        )
    import getpass  # noqa: PLC0415

    try:
        return Secret(getpass.getpass(prompt))
    except EOFError:
        raise NothingTyped("no passphrase given") from None
