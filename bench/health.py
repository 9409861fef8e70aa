"""How fast `keyvault check` is against a sequential loop with the official SDK.

Starts the fake OpenAI server (tests/fake_openai.py) in its own process with injected latency
and N keys, checks all of them with `vault.health.check` at the default concurrency, then times
`openai.OpenAI(...).models.list()` per key on the same server for a sample of keys and
extrapolates to all N. Targets: check ≤ 3 s for 1,000 keys at 100 ms, and ≥ 30x the SDK loop.

    python bench/health.py [--keys 1000] [--latency 0.1] [--sdk-keys 50]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start_server(keys: int, latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_openai", "--keys", str(keys), "--latency", str(latency)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def stop_server(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()  # the server exits when its stdin closes
    proc.wait(10)


def time_check(keys: list[str], base_url: str, concurrency: int | None) -> float:
    from vault.health import DEFAULT_CONCURRENCY, ProbeTarget, check
    from vault.model.secret import Secret

    targets = [ProbeTarget(f"k{i}", Secret(k), base_url) for i, k in enumerate(keys)]
    started = time.perf_counter()
    results = check(targets, concurrency=concurrency or DEFAULT_CONCURRENCY)
    elapsed = time.perf_counter() - started
    statuses = Counter(r.status.value for r in results)
    print(f"keyvault check: {len(keys)} keys, concurrency {concurrency or DEFAULT_CONCURRENCY}")
    print(f"  wall time     {elapsed:8.3f} s   statuses {dict(statuses)}")
    return elapsed


def time_sdk(keys: list[str], base_url: str) -> float:
    import openai

    started = time.perf_counter()
    for key in keys:
        openai.OpenAI(api_key=key, base_url=base_url, max_retries=0).models.list()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per answer")
    parser.add_argument("--sdk-keys", type=int, default=50, help="keys to time with the SDK")
    parser.add_argument("--concurrency", type=int, default=None, help="default: the library's")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from tests.fake_openai_responses import make_key

    keys = [make_key(i) for i in range(args.keys)]
    proc, base_url = start_server(args.keys, args.latency)
    try:
        print(f"fake server {base_url}, {args.latency * 1000:.0f} ms injected latency")
        check_s = time_check(keys, base_url, args.concurrency)
        sample = keys[: max(1, min(args.sdk_keys, args.keys))]
        sdk_s = time_sdk(sample, base_url)
    finally:
        stop_server(proc)

    per_key = sdk_s / len(sample)
    extrapolated = per_key * args.keys
    ratio = extrapolated / check_s
    print(f"openai SDK sequential loop: {len(sample)} keys measured")
    print(f"  measured      {sdk_s:8.3f} s   ({per_key * 1000:.1f} ms per key)")
    print(f"  extrapolated  {extrapolated:8.3f} s   for {args.keys} keys")
    print(f"speed-up        {ratio:8.1f}x")
    print(f"target check <= 3 s: {'met' if check_s <= 3 else 'MISSED'}; ", end="")
    print(f"target >= 30x: {'met' if ratio >= 30 else 'MISSED'}")


if __name__ == "__main__":
    main()
