"""Write a golden vault with the current code: `python tests/golden/make_golden.py tests/golden/v1`.

Run it once per released format version and commit the result; never regenerate an existing
version (that would defeat the point: the tests prove today's code still opens old files).
tests/test_document.py hard-codes what the vault must contain, so keep the two in step.

The identity is a test-only key protecting fake secrets; the passphrase of identity.age is
GOLDEN_PASSPHRASE (scrypt log2 N = 10).
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from vault.model.secret import Secret  # noqa: E402
from vault.session.identity import UnlockSettings, identity_text  # noqa: E402
from vault.session.unlock import Unlocker  # noqa: E402
from vault.store import inventory  # noqa: E402
from vault.store.config import Paths  # noqa: E402
from vault.store.keyvault import Keyvault  # noqa: E402

GOLDEN_PASSPHRASE = "golden passphrase, test only"
START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def main(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} exists; golden vaults are never regenerated")
    minutes = itertools.count()
    ids = itertools.count(1)

    def clock() -> dt.datetime:  # one minute per call: a readable, stable history
        return START + dt.timedelta(minutes=next(minutes))

    def rand(size: int) -> bytes:
        return next(ids).to_bytes(size, "big")

    unlocker = Unlocker(UnlockSettings(passphrase=Secret(GOLDEN_PASSPHRASE)))
    kv = Keyvault(Paths(out), unlocker, clock=clock)
    identity = kv.init(Secret(GOLDEN_PASSPHRASE), log_n=10)
    (out / "identity.txt").write_bytes(identity_text(identity, now=START))

    def add(name: str, secret: str, **fields: object) -> None:
        inventory.add_key(kv, name, Secret(secret), fields, rand=rand)

    add(
        "golden-main",
        "sk-golden-" + "x" * 30,
        project="work",
        phone="+44 7911 123456",
        created="2025-03-04",
        card="WildCard ****1234",
        credit_usd="20.5",
        org_id="org-golden123",
        project_id="proj_golden123",
        base_url="https://relay.example.com/v1/",
        tags=["ci", "main"],
        note="golden note\nsecond line",
        priority="5",
    )
    add(
        "golden-spare",
        "golden-relay-" + "y" * 20,
        provider="relay",
        project="work",
        phone="+447911123456",
        created="2025-06-07",
    )
    add("golden-admin", "sk-admin-golden-" + "z" * 30, project="ops", created="2025-01-02")
    add("golden-tmp", "sk-golden-old-" + "w" * 26, created="2024-12-31")
    add("golden-gone", "sk-golden-gone-" + "v" * 25)
    inventory.edit_key(kv, "golden-main", {"credit_usd": "12.25"})
    inventory.edit_key(kv, "golden-tmp", {"name": "golden-old", "status": "retired"})
    inventory.remove_key(kv, "golden-gone")
    (out / "vault.age.bak").unlink()
    print(f"wrote {out}: identity.txt, identity.age, vault.age")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "v1")
