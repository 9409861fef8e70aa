"""Inventory at scale: a 10,000-key vault, timed through the real CLI.

Prints the median wall and CPU time of `list --json`, `get NAME` and `add` (each a fresh
process, as a user runs them) and the peak RSS of each; beside them, the floor of re-sealing
the same file with the stock `age` binary (decrypt + encrypt, no Python), so the ratio
add/floor shows what is keyvault's own. The identity is given as KEYVAULT_IDENTITY so
the passphrase KDF (not the point here) does not dominate.

Targets (issue 2): list --json ≤ 0.5 s, add ≤ 0.5 s, peak RSS ≤ 80 MiB.

    python bench/inventory.py [--keys 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from subprocess import PIPE

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import installed_like_env  # noqa: E402

from vault import age  # noqa: E402
from vault.model.document import Entry, Status, VaultDoc  # noqa: E402
from vault.model.records import Recipient  # noqa: E402
from vault.model.secret import Secret  # noqa: E402
from vault.session.identity import UnlockSettings  # noqa: E402
from vault.session.unlock import Unlocker  # noqa: E402
from vault.store.config import Paths  # noqa: E402
from vault.store.keyvault import Keyvault  # noqa: E402


def fake_key() -> str:
    return (
        "sk-proj-"
        + secrets.token_urlsafe(55)[:74]
        + "T3Blbk"
        + "FJ"
        + secrets.token_urlsafe(55)[:74]
    )


def build(home: Path, count: int) -> age.X25519Identity:
    identity = age.X25519Identity.generate()
    kv = Keyvault(Paths(home), Unlocker(UnlockSettings(identity=Secret(identity.to_string()))))
    home.mkdir(mode=0o700, parents=True)
    doc = VaultDoc(generation=1, recipients=[Recipient("owner", identity.recipient().to_string())])
    for i in range(count):
        doc.entries.append(
            Entry(
                id=secrets.token_hex(8),
                name=f"key-{i:05d}",
                secret=Secret(fake_key()),
                project=f"project-{i % 200}",
                created="2026-01-01",
                phone=f"+4479111{i // 2:05d}",
                card="WildCard ****1234",
                credit_usd=20.0,
                status=Status.ACTIVE if i < 200 else Status.STANDBY,
                note="bench entry",
                added_at="2026-01-01T00:00:00Z",
                updated_at="2026-01-01T00:00:00Z",
            )
        )
    kv.paths.vault.write_bytes(kv.seal(doc))
    return identity


def timed(argv: list[str], env: dict[str, str], stdin: str = "") -> tuple[float, float, int]:
    """Wall and CPU (user + system) seconds and the child's own peak RSS in KiB (wait4's
    rusage, not a max over all children)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(stdin.encode())
    proc.stdin.close()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[3:]} failed: {err.decode()[:300]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def age_reseal(vault: Path, identity_file: Path, recipient: str, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of the floor: the stock age binary decrypting the vault and
    sealing the same plaintext again (age -d | age -r), with no Python at all."""
    age = shutil.which("age")
    assert age is not None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    decrypt = subprocess.Popen([age, "-d", "-i", str(identity_file), str(vault)], stdout=PIPE)
    encrypt = subprocess.Popen([age, "-r", recipient, "-o", str(out)], stdin=decrypt.stdout)
    assert decrypt.stdout is not None
    decrypt.stdout.close()
    if encrypt.wait() or decrypt.wait():
        raise SystemExit("age could not re-seal the vault")
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "kv"
        identity = build(home, args.keys)
        size = (home / "vault.age").stat().st_size
        identity_file = Path(tmp) / "identity.txt"
        identity_file.write_text(identity.to_string() + "\n")
        env = installed_like_env(
            {
                "KEYVAULT_HOME": str(home),
                "KEYVAULT_IDENTITY": identity.to_string(),
                "XDG_RUNTIME_DIR": tmp,
            }
        )
        env.pop("KEYVAULT_PASSPHRASE", None)
        base = [sys.executable, "-m", "vault"]
        cases = {
            "list --json": lambda i: ([*base, "list", "--json"], ""),
            "get NAME": lambda i: ([*base, "get", f"key-{i:05d}"], ""),
            "add": lambda i: ([*base, "add", f"new-{i}", "--project", "bench"], fake_key()),
        }
        samples: dict[str, list[tuple[float, float, int]]] = {label: [] for label in cases}
        floor: list[tuple[float, float]] = []
        recipient = identity.recipient().to_string()
        for i in range(args.runs):  # interleaved: a busy moment weighs on every case alike
            for label, make in cases.items():
                argv, stdin = make(i)
                samples[label].append(timed(argv, env, stdin))
            floor.append(age_reseal(home / "vault.age", identity_file, recipient, home / "x"))
    print(
        f"vault: {args.keys} keys, {size / 1e6:.1f} MB sealed; {args.runs} runs each, interleaved"
    )
    for label, runs in samples.items():
        print(
            f"{label:12s} median {statistics.median(r[0] for r in runs) * 1000:7.1f} ms"
            f"   cpu {statistics.median(r[1] for r in runs) * 1000:7.1f} ms"
            f"   max {max(r[0] for r in runs) * 1000:7.1f} ms"
            f"   peak RSS {max(r[2] for r in runs) / 1024:6.1f} MiB"
        )
    wall, cpu = (statistics.median(f[k] for f in floor) * 1000 for k in (0, 1))
    add_wall = statistics.median(r[0] for r in samples["add"]) * 1000
    add_cpu = statistics.median(r[1] for r in samples["add"]) * 1000
    print(f"age re-seal  median {wall:7.1f} ms   cpu {cpu:7.1f} ms   (age -d | age -r: the floor)")
    print(f"add/floor = {add_wall / wall:.1f} (cpu {add_cpu / cpu:.1f}); add target ≤ 500 ms")


if __name__ == "__main__":
    main()
