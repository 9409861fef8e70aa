"""Throughput of `keyvault exec` output masking: bytes per second through StreamMasker, and a
real command's output through `keyvault exec` with and without masking.

    python bench/masking.py
"""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import installed_like_env
from vault.export.masking import StreamMasker

ALPHABET = string.ascii_letters + string.digits
CHUNK = 65536
MEGABYTES = 64


def fake_key() -> str:
    """A key of OpenAI's shape (prefix, 74 characters, the marker, 74 characters)."""
    halves = ["".join(secrets.choice(ALPHABET) for _ in range(74)) for _ in range(2)]
    return "sk-proj-" + halves[0] + "T3Blbk" + "FJ" + halves[1]


def masker_throughput(keys: list[str]) -> float:
    """MB/s of log-like text (many `s` characters, a key every 4 KiB) through the masker."""
    line = b"status=success items=123 session=abcdef message=processed successfully\n"
    block = (line * (4096 // len(line))) + keys[0].encode() + b"\n"
    data = block * (CHUNK // len(block) + 1)
    masker = StreamMasker(k.encode() for k in keys)
    started = time.perf_counter()
    for _ in range(MEGABYTES * 1024 * 1024 // len(data)):
        masker.feed(data)
    return MEGABYTES / (time.perf_counter() - started)


def exec_seconds(home: str, masking: bool) -> float:
    argv = [sys.executable, "-m", "vault", "exec", "--project", "bench"]
    argv += [] if masking else ["--no-masking"]
    argv += ["--", "head", "-c", str(MEGABYTES * 1024 * 1024), "/dev/zero"]
    env = installed_like_env({"KEYVAULT_HOME": home, "KEYVAULT_PASSPHRASE": "bench passphrase"})
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    keys = [fake_key() for _ in range(3)]
    print(f"StreamMasker, 3 keys, 64 KiB chunks: {masker_throughput(keys):,.0f} MB/s")
    with tempfile.TemporaryDirectory() as home:
        env = installed_like_env({"KEYVAULT_HOME": home, "KEYVAULT_PASSPHRASE": "bench passphrase"})
        run = [sys.executable, "-m", "vault"]
        subprocess.run(
            [*run, "init", "--work-factor", "10"], env=env, check=True, stdout=subprocess.DEVNULL
        )
        for key in keys:
            subprocess.run(
                [*run, "add", os.urandom(4).hex(), "--project", "bench"],
                env=env,
                input=key.encode(),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        plain, masked = exec_seconds(home, False), exec_seconds(home, True)
        print(
            f"keyvault exec, {MEGABYTES} MiB of output: --no-masking {plain:.2f} s,"
            f" masked {masked:.2f} s"
        )


if __name__ == "__main__":
    main()
