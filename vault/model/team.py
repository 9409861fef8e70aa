"""The team secret: what proves that a vault.age was written by a member (docs/security.md).

age has no sender authentication: anyone holding the recipients' public keys can write a
vault.age every member decrypts. So the document carries a secret only members can read
(`Team`, vault/model/records.py); each machine pins the digest of the current one
(vault/store/trust.py) and refuses a vault whose chain lacks it. Removing a member appends a
fresh secret the removed member never saw. Pure: randomness and time are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from vault.errors import MergeRefused
from vault.model.records import Team, TeamSecret

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

Rand = Callable[[int], bytes]
KEY_BYTES: Final = 32
# domain separation: a pin is the digest of a team secret and of nothing else
_PIN_PERSON: Final = b"keyvault-pin"
_B64: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_LAST: Final = "AEIMQUYcgkosw048"  # the 43rd character of 32 bytes: its low bits are zero


def team_key_value(value: str) -> bool:
    """Canonical base64 of 32 bytes (`[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=`), checked with
    str methods: the binascii module is not otherwise loaded by `keyvault env`."""
    return (
        len(value) == 44
        and value[43] == "="
        and value[42] in _B64_LAST
        and not value[:42].strip(_B64)
    )


def secret_digest(key: str) -> str:
    """The pin of one team secret: BLAKE2b-128 of its text, personalised. It reveals nothing
    about the secret (a one-way digest of 256 random bits), so it may be shown and stored.

    BLAKE2b from CPython's built-in `_blake2`: `hashlib` loads OpenSSL (~2 ms), and this runs
    on every `keyvault env` (vault/session/runtime.py has the same reason)."""
    try:
        from _blake2 import blake2b  # noqa: PLC0415
    except ImportError:  # pragma: no cover - CPython always has it
        from hashlib import blake2b  # noqa: PLC0415

    return blake2b(key.encode("ascii"), digest_size=16, person=_PIN_PERSON).hexdigest()


def chain_digests(team: Team) -> list[str]:
    return [secret_digest(s.key) for s in team.secrets]


def new_secret(*, at: str, rand: Rand) -> TeamSecret:
    import base64  # noqa: PLC0415 - only when a secret is made (a save, never `env`)

    return TeamSecret(rand(8).hex(), base64.b64encode(rand(KEY_BYTES)).decode("ascii"), at)


def new_team(*, at: str, rand: Rand) -> Team:
    return Team(rand(8).hex(), (new_secret(at=at, rand=rand),))


def with_fresh_secret(team: Team, *, at: str, rand: Rand) -> Team:
    """`team` with a new current secret; its `added_at` never sorts before the chain's last,
    so the new one stays current after any later merge sorts the chain."""
    latest = max(at, team.current.added_at or "")
    return team._replace(secrets=(*team.secrets, new_secret(at=latest, rand=rand)))


def merge_teams(teams: Iterable[Team | None]) -> Team | None:
    """One chain from several versions of a team record: every secret once, ordered by time
    (then id), so the same versions give the same chain in any order. MergeRefused for two
    different vaults, or one secret id with two keys (a forged or damaged file)."""
    present = [t for t in teams if t is not None]
    if not present:
        return None
    ids = {t.vault_id for t in present}
    if len(ids) > 1:
        raise MergeRefused(
            f"these are two different vaults (ids {', '.join(sorted(ids))})",
            hint="a team vault merges only with its own copies: clone it instead",
        )
    found: dict[str, TeamSecret] = {}
    for team in present:
        for secret in team.secrets:
            known = found.setdefault(secret.id, secret)
            if known.key != secret.key:
                raise MergeRefused(f"team secret {secret.id} has two different values")
    chain = sorted(found.values(), key=lambda s: (s.added_at or "", s.id))
    extra: dict[str, object] = {}
    for team in present:  # a newer keyvault's fields: on a clash the larger value, any order
        for key, value in team.extra.items():
            if key not in extra or _canonical(value) > _canonical(extra[key]):
                extra[key] = value
    return Team(present[0].vault_id, tuple(chain), extra)


def _canonical(value: object) -> str:
    import json  # noqa: PLC0415

    return json.dumps(value, sort_keys=True, ensure_ascii=False)
