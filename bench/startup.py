"""Hot-path startup: `keyvault env` with an unlocked session against the floor and `pass`.

Prints, in one run, the median wall time of
  1. `keyvault env` with an unlocked session (the console script, as users run it),
  2. the floor: `python -c "import click; from cryptography...aead import ChaCha20Poly1305"`,
  3. `pass show` for one entry (Debian pass, an unprotected gpg key, a running gpg-agent),
and the ratios. Targets (issue 6): env ≤ 1.3× the floor and ≤ 100 ms median. For context it
also prints the bare interpreter start (`python -c pass`), which every Python command pays
(site-packages `.pth` files can make it most of the total).

    python bench/startup.py [--runs 40]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PASSPHRASE = "bench passphrase"
FLOOR = "import click; from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305"


Command = tuple[list[str], dict[str, str]]


def median_ms(commands: dict[str, Command], runs: int) -> dict[str, float]:
    """Median wall time of each command, runs interleaved (a, b, c, a, b, c, …) so that a
    busy moment of the machine weighs on every command alike, not on whichever ran then."""
    for argv, env in commands.values():  # warm caches
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (argv, env) in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def keyvault_argv() -> list[str]:
    # the console script next to this interpreter, not a version-manager shim on PATH (a
    # pyenv shim alone costs more than the whole command)
    script = Path(sys.executable).parent / "keyvault"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vault"]


def setup_vault(tmp: Path) -> dict[str, str]:
    runtime = Path(tempfile.mkdtemp(prefix="kvb-", dir="/tmp"))
    env = {
        **os.environ,
        "KEYVAULT_HOME": str(tmp / "kv"),
        "XDG_RUNTIME_DIR": str(runtime),
        "KEYVAULT_PASSPHRASE": PASSPHRASE,
        "PYTHONPATH": str(REPO),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in ("KEYVAULT_IDENTITY", "KEYVAULT_IDENTITY_FILE", "KEYVAULT_PASSPHRASE_FILE"):
        env.pop(name, None)
    kv = keyvault_argv()
    subprocess.run(
        [*kv, "init", "--work-factor", "12"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    key = "sk-proj-" + "b" * 74 + "T3Blbk" + "FJ" + "c" * 74
    subprocess.run(
        [*kv, "add", "bench", "--project", "bench"],
        input=key.encode(),
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run([*kv, "unlock", "--ttl", "10m"], env=env, check=True, stdout=subprocess.DEVNULL)
    del env["KEYVAULT_PASSPHRASE"]  # from here on only the session opens the vault
    return env


def setup_pass(tmp: Path) -> dict[str, str] | None:
    if not (shutil.which("pass") and shutil.which("gpg")):
        return None
    gnupg = tmp / "gnupg"
    gnupg.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(gnupg), "PASSWORD_STORE_DIR": str(tmp / "store")}
    quiet = {"env": env, "check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "bench <bench@example.invalid>",
            "default",
            "default",
            "never",
        ],
        **quiet,
    )
    subprocess.run(["pass", "init", "bench@example.invalid"], **quiet)
    subprocess.run(["pass", "insert", "-m", "bench/key"], input=b"sk-bench\n", **quiet)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        kv_env = setup_vault(tmp)
        try:
            commands: dict[str, Command] = {
                "env": ([*keyvault_argv(), "env", "--project", "bench", "--shell", "bash"], kv_env),
                "floor": ([sys.executable, "-c", FLOOR], kv_env),
                "python": ([sys.executable, "-c", "pass"], kv_env),
            }
            pass_env = setup_pass(tmp)
            if pass_env:
                commands["pass"] = (["pass", "show", "bench/key"], pass_env)
            medians = median_ms(commands, args.runs)
            env_ms, floor_ms, pass_ms = medians["env"], medians["floor"], medians.get("pass")
        finally:
            subprocess.run(
                [*keyvault_argv(), "lock"], env=kv_env, stdout=subprocess.DEVNULL, check=False
            )
            if "pass_env" in locals() and pass_env:
                subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=pass_env, check=False)
    print(f"runs per command: {args.runs} (median wall time)")
    print(f"python -c pass (interpreter start) {medians['python']:7.1f} ms")
    print(f"keyvault env (unlocked session)  {env_ms:7.1f} ms")
    ratio = env_ms / floor_ms
    print(f"floor (click + ChaCha20Poly1305)  {floor_ms:7.1f} ms   env/floor = {ratio:.2f}", end="")
    print("  (target ≤ 1.30)")
    if pass_ms is not None:
        versus = env_ms / pass_ms
        print(f"pass show (gpg-agent running)     {pass_ms:7.1f} ms   env/pass  = {versus:.2f}")
    else:
        print("pass show: pass or gpg not installed")


if __name__ == "__main__":
    main()
