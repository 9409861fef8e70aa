"""`keyvault import` at scale: 3,000 CSV rows, timed through the real CLI.

Prints the median wall and CPU time of `import rows.csv` (a fresh process, as a user runs
it) into an empty vault and into a 10,000-key vault (the vault of bench/inventory.py).
The rows name 200 projects and phones two keys apiece, so every rule of `add` is at work
on every row: duplicate keys, unique names, phone slots, the first key of a project active.
Before the batch index (vault/model/batch.py) an import was O(rows × (vault + rows)): here
4.1 s into an empty vault and 49 s into a 10,000-key one; with it 0.6 s and 0.9 s.

    python bench/importing.py [--rows 3000] [--keys 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import installed_like_env  # noqa: E402
from inventory import build, fake_key, timed  # noqa: E402


def write_rows(path: Path, count: int) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["name", "key", "project", "phone", "note"])
        for i in range(count):
            project = f"import-{i % 200}"
            writer.writerow([f"row {i}", fake_key(), project, f"+4479222{i // 2:05d}", "bench"])


def time_import(tmp: Path, keys: int, rows: Path, runs: int) -> list[tuple[float, float, int]]:
    """Each run imports into a fresh copy of the same vault."""
    template = tmp / f"vault-{keys}"
    identity = build(template, keys)
    env = installed_like_env(
        {"KEYVAULT_IDENTITY": identity.to_string(), "XDG_RUNTIME_DIR": str(tmp)}
    )
    env.pop("KEYVAULT_PASSPHRASE", None)
    samples = []
    for run in range(runs):
        home = tmp / f"run-{keys}-{run}"
        shutil.copytree(template, home)
        env["KEYVAULT_HOME"] = str(home)
        samples.append(timed([sys.executable, "-m", "vault", "import", str(rows)], env))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        rows = tmp / "rows.csv"
        write_rows(rows, args.rows)
        for keys in (0, args.keys):
            runs = time_import(tmp, keys, rows, args.runs)
            print(
                f"import {args.rows} rows into {keys:6d} keys:"
                f" median {statistics.median(r[0] for r in runs) * 1000:7.1f} ms"
                f"   cpu {statistics.median(r[1] for r in runs) * 1000:7.1f} ms"
                f"   peak RSS {max(r[2] for r in runs) / 1024:6.1f} MiB"
            )


if __name__ == "__main__":
    main()
