"""One exception hierarchy for the whole library.

Each class says when it is raised. The CLI turns any `KeyvaultError` into
`keyvault: error: <message>` (+ `keyvault: hint: <hint>`) and exits with the class's
`exit_code`; nothing else in the code prints errors. Messages are lower case, one line, with
no final period, and never contain a secret.
"""

from __future__ import annotations

# Exit codes, documented in README.md and docs/cli.md, and relied on by scripts.
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_DAMAGED = 4
EXIT_CHECK_FAILED = 5


class KeyvaultError(Exception):
    """Base of every error keyvault raises on purpose."""

    exit_code = EXIT_ERROR

    def __init__(
        self, message: str, *, hint: str | None = None, details: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details  # one short line each, printed between the error and the hint

    def __str__(self) -> str:
        return self.message


# --- usage and input (exit 2) -------------------------------------------------------------


class UsageError(KeyvaultError):
    """raised when the command line itself is wrong: missing or conflicting options"""

    exit_code = EXIT_USAGE


class InvalidValue(UsageError):
    """raised when a value given by the user is malformed: a phone, a date, a key, a card"""


# --- inventory (exit 1) -------------------------------------------------------------------


class EntryNotFound(KeyvaultError):
    """raised when no entry has the given name"""


class DuplicateName(KeyvaultError):
    """raised when an entry with that name already exists"""


class DuplicateKey(KeyvaultError):
    """raised when the same secret is already stored under another name"""


class PhoneFull(KeyvaultError):
    """raised when a phone already verified its maximum number of keys"""


class Cancelled(KeyvaultError):
    """raised when the user declined a confirmation or gave nothing at a prompt (Ctrl-D)"""


class PolicyViolation(KeyvaultError):
    """raised when a change would break an invariant: two active keys, an admin key exported"""


class NoActiveKey(KeyvaultError):
    """raised when a project has no active key to export or use"""


class ConfigError(KeyvaultError):
    """raised when config.toml or .keyvault.toml cannot be read or holds a bad value"""


# --- storage (exit 1) ---------------------------------------------------------------------


class StorageError(KeyvaultError):
    """raised when a vault file cannot be read or written (permissions, disk full, I/O)"""


class LockTimeout(StorageError):
    """raised when another keyvault process holds the vault lock for too long"""


class ConcurrentModification(StorageError):
    """raised when the vault changed between reading and saving it outside the lock"""


class VaultNotFound(StorageError):
    """raised when there is no vault yet (run `keyvault init`)"""


class VaultExists(StorageError):
    """raised when `init` would overwrite an existing vault or identity"""


class GitError(StorageError):
    """raised when git fails in the vault's own repository (`init --git`, `clone`, `sync`), or
    the repository is in a state keyvault will not touch (a merge or rebase in progress,
    identity.age tracked)"""


class SyncPending(GitError):
    """raised when `sync` committed locally but could not reach the remote: nothing is lost,
    the push happens at the next sync"""


class MergeRefused(KeyvaultError):
    """raised when two versions of a vault cannot be merged: two different vaults, a forged or
    rolled-back side, or a file keyvault cannot open"""


class SourceError(KeyvaultError):
    """raised when `import` cannot read a source: a missing or unreadable file, a database
    without one-api's channel table, `pass` or `gpg` failing or not installed"""


# --- authentication (exit 3) --------------------------------------------------------------


class AuthError(KeyvaultError):
    """base of errors that mean "you could not be let in"; exit 3"""

    exit_code = EXIT_AUTH


class WrongPassphrase(AuthError):
    """raised when the passphrase or identity does not open the file

    Deliberately vague: age cannot tell a wrong passphrase from a damaged scrypt stanza.
    """


class NotARecipient(WrongPassphrase):
    """raised when the identity opened fine but vault.age is not sealed to it (another
    vault's file, or a team vault this member was removed from or not yet added to)"""


class NoMatchingIdentity(AuthError):
    """raised when none of the given identities or passphrases unwraps an age file's key"""


class NoPassphraseSource(AuthError):
    """raised when the vault is locked and there is no way to ask (no terminal, no env vars)"""


class NothingTyped(NoPassphraseSource):
    """raised when a hidden prompt got end-of-file (Ctrl-D) instead of an answer"""


class SessionError(AuthError):
    """raised when a cached session exists but cannot be used"""


# --- damaged or unsupported files (exit 4) ------------------------------------------------


class DamagedFile(KeyvaultError):
    """base of errors that mean "this file is not what it should be"; exit 4"""

    exit_code = EXIT_DAMAGED


class DamagedIdentity(DamagedFile):
    """raised when identity.age itself is damaged (it opens no vault, whatever vault.age holds)

    Not an AgeFormatError on purpose: code that names vault.age in an age error must not
    catch it, and restoring vault.age from its backup would not help.
    """


class AgeFormatError(DamagedFile):
    """raised when bytes are not a well-formed age v1 file (header syntax, MAC, payload)"""


class WorkFactorTooHigh(AgeFormatError):
    """raised when a scrypt stanza asks for a work factor above the cap we accept on read"""


class UnsupportedFormat(DamagedFile):
    """raised when the decrypted document has a format version this keyvault does not know"""


class DamagedVault(DamagedFile):
    """raised when the decrypted document is not a valid keyvault document"""


class UnreadableChange(KeyvaultError):
    """raised before a save that would write a vault.age keyvault itself refuses to read (a
    value that slipped past the input checks); nothing is saved"""


class NotTrusted(DamagedFile):
    """base of the authenticity refusals (vault/store/trust.py): the file decrypts and parses,
    but this machine has reason not to believe it; exit 4"""


class ForgedVault(NotTrusted):
    """raised when vault.age lacks the team secret this machine pinned: it was written by
    someone holding only public keys, or by a member removed since"""


class ForeignVault(NotTrusted):
    """raised when vault.age belongs to another vault (its team id is not the pinned one)"""


class RolledBack(NotTrusted):
    """raised when vault.age is older (a lower generation) than one this machine accepted"""


class AgeHeaderError(AgeFormatError):
    """raised when an age header is malformed: syntax, a bad stanza, a missing payload nonce"""


class AgeHeaderMacError(AgeFormatError):
    """raised when an age header's MAC does not match: the header was changed after writing"""


class AgePayloadError(AgeFormatError):
    """raised when an age payload fails authentication, is truncated or has trailing data"""


# --- running a command for `keyvault exec` (shell conventions: 127, 126) ------------------


class CommandNotFound(KeyvaultError):
    """raised when `keyvault exec` cannot find the command on PATH; exit 127 like a shell"""

    exit_code = 127


class CommandNotExecutable(KeyvaultError):
    """raised when `keyvault exec` finds the command but the system refuses to run it; exit 126"""

    exit_code = 126


# --- health checks, rotation and the Administration API (exit 1) --------------------------


class NoHealthyCandidate(KeyvaultError):
    """raised when a rotation finds no healthy key to switch to; `details` say why, key by key,
    and the hint says where a new key can come from"""


class NetworkUnavailable(KeyvaultError):
    """raised when a rotation could not reach the API for any candidate (network, proxy or the
    API itself down): nothing was changed, and nothing is known about the keys"""


class NoAdminKey(KeyvaultError):
    """raised when minting or `keyvault usage` needs an admin key (`sk-admin-…`) and none fits"""


class AdminApiError(KeyvaultError):
    """raised when the OpenAI Administration API refuses or fails a request"""
