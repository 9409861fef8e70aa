"""The daily path: `keyvault env` and `get` against `pass show`, and the hook's cost per `cd`.

Prints, from one run with the commands interleaved (a, b, c, a, b, c, …, so a busy moment
of the machine weighs on each alike), the median wall time and CPU time of
  - `keyvault env` and `keyvault get` with an unlocked session (the console script), their
    output read through a pipe as `eval "$(keyvault env)"` does: answered from the export
    memo (vault/cli/memo.py) after the first run,
  - `keyvault env` writing to a file: a full run (the memo answers only a pipe), what the
    first `env` after a change of the vault costs,
  - `pass show` of one entry (a throwaway gpg key without passphrase, gpg-agent running),
  - the bare interpreter: `python -c pass`, `python -S -c pass` (no site: what the
    interpreter costs before any .pth file of site-packages runs), `python -c "import click"`,
  - `keyvault env` (memo and full run) and `python -c pass` again in a venv holding keyvault
    as a regular install, as pip and pipx install it (this venv's editable-install .pth
    preloads re, pathlib and enum for every interpreter start), finding the vault at its
    default home (no KEYVAULT_HOME),
and the ratios env/pass and env/python, for the regular install first. Then the bash hook's
cost per `cd` (with the hook, minus the same `cd` loop without it) in a tree without a
project file and inside a project, and how many keyvault processes the hook started meanwhile.

Targets (issue 16): env/pass ≤ 1.0, env/python ≤ 1.6; the hook ≤ 5 ms per cd and no process
while the project does not change.

    python bench/startup.py [--runs 40] [--cds 500]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, installed_like_env

PASSPHRASE = "bench passphrase"
ENV_ARGS = ["env", "--project", "bench", "--shell", "bash"]
PIPE, FILE = "pipe", "file"  # where a command's output goes
Command = tuple[list[str], dict[str, str], str]
OUTPUT_FILE = Path(tempfile.gettempdir(), f"keyvault-bench-{os.getpid()}.out")


def timed(argv: list[str], env: dict[str, str], sink: str = PIPE) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of `argv`, its output read through a
    pipe (as `$(…)` reads it) or written to a private file."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    if sink == PIPE:
        subprocess.run(argv, env=env, stdout=subprocess.PIPE, check=True)
    else:
        fd = os.open(OUTPUT_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            subprocess.run(argv, env=env, stdout=fd, check=True)
        finally:
            os.close(fd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def medians(commands: dict[str, Command], runs: int) -> dict[str, tuple[float, float]]:
    """Median wall and CPU milliseconds of each command, runs interleaved."""
    for argv, env, sink in commands.values():  # warm the caches, gpg-agent, the memo
        timed(argv, env, sink)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    order = list(commands)
    shuffle = random.Random(16).shuffle  # noqa: S311 - an order of runs, not a secret
    for _ in range(runs):
        # a new order each round: on two cores, whatever follows `pass show` shares them
        # with gpg-agent finishing its work, and that must not always be the same command
        shuffle(order)
        for name in order:
            argv, env, sink = commands[name]
            samples[name].append(timed(argv, env, sink))
    return {
        name: (
            statistics.median(s[0] for s in runs_of) * 1000,
            statistics.median(s[1] for s in runs_of) * 1000,
        )
        for name, runs_of in samples.items()
    }


def clean_install(tmp: Path) -> tuple[str, str]:
    """A venv holding keyvault as a regular (non-editable) install and nothing else: its
    interpreter and console script. A development venv's editable-install finder (a .pth
    file) imports re, pathlib and enum at every start, which flatters env/python; the daily
    path needs no dependency, so this venv can run it."""
    venv = tmp / "clean-venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shutil.copytree(REPO / "vault", Path(site) / "vault", ignore=shutil.ignore_patterns("*.pyc"))
    subprocess.run([str(python), "-m", "compileall", "-q", str(Path(site) / "vault")], check=True)
    script = venv / "bin" / "keyvault"  # what pip writes for [project.scripts]
    script.write_text(
        f"#!{python}\nimport sys\nfrom vault.cli.main import main\n"
        "if __name__ == '__main__':\n    sys.exit(main())\n"
    )
    script.chmod(0o755)
    return str(python), str(script)


def keyvault_argv() -> list[str]:
    # the console script next to this interpreter, not a version-manager shim on PATH (a
    # pyenv shim alone costs more than the whole command)
    script = Path(sys.executable).parent / "keyvault"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vault"]


def setup_vault(tmp: Path) -> dict[str, str]:
    runtime = Path(tempfile.mkdtemp(prefix="kvb-", dir="/tmp"))
    env = installed_like_env(
        {
            # the default home under XDG_DATA_HOME, so the regular install finds it without
            # KEYVAULT_HOME, as most users run it
            "KEYVAULT_HOME": str(tmp / "data" / "keyvault"),
            "XDG_DATA_HOME": str(tmp / "data"),
            "XDG_RUNTIME_DIR": str(runtime),
            "KEYVAULT_PASSPHRASE": PASSPHRASE,
        }
    )
    for name in ("KEYVAULT_IDENTITY", "KEYVAULT_IDENTITY_FILE", "KEYVAULT_PASSPHRASE_FILE"):
        env.pop(name, None)
    kv = keyvault_argv()
    quiet = {"env": env, "check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([*kv, "init", "--work-factor", "12"], **quiet)
    key = "sk-proj-" + "b" * 74 + "T3Blbk" + "FJ" + "c" * 74
    subprocess.run([*kv, "add", "bench", "--project", "bench"], input=key.encode(), **quiet)
    subprocess.run([*kv, "unlock", "--ttl", "10m"], **quiet)
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
            *("gpg", "--batch", "--passphrase", "", "--quick-gen-key"),
            *("bench <bench@example.invalid>", "default", "default", "never"),
        ],
        **quiet,
    )
    subprocess.run(["pass", "init", "bench@example.invalid"], **quiet)
    subprocess.run(["pass", "insert", "-m", "bench/key"], input=b"sk-bench\n", **quiet)
    return env


# --- the hook in bash ---------------------------------------------------------------------

HOOK_LOOP = r"""
eval "$(keyvault hook bash)"
cd "$B"; _keyvault_hook  # the first visit (a project folder: keyvault runs once)
: > "$HOOK_LOG"
hooked() {
  local i; for ((i = 0; i < CDS; i++)); do cd "$A"; _keyvault_hook; cd "$B"; _keyvault_hook; done
}
bare() { local i; for ((i = 0; i < CDS; i++)); do cd "$A"; :; cd "$B"; :; done; }
for round in 1 2 3 4 5; do
  t0=$EPOCHREALTIME; hooked; t1=$EPOCHREALTIME; bare; t2=$EPOCHREALTIME
  echo "$t0 $t1 $t2"
done
echo "calls $(grep -c . "$HOOK_LOG")"
"""


def hook_cost(tmp: Path, kv_env: dict[str, str], where: str, cds: int) -> tuple[float, float, int]:
    """Median milliseconds per `cd` with the hook and without it, and keyvault's starts."""
    bash = shutil.which("bash")
    if bash is None:
        raise SystemExit("bash is needed for the hook figures")
    root = tmp / where
    if where == "project":
        root.mkdir()
        (root / ".keyvault.toml").write_text('project = "bench"\n')
    first, second = root / "src" / "app" / "models", root / "docs" / "guide"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    shim_dir = tmp / f"shim-{where}"
    shim_dir.mkdir()
    log = tmp / f"calls-{where}.log"
    shim = shim_dir / "keyvault"
    shim.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec {" ".join(keyvault_argv())} "$@"\n')
    shim.chmod(0o755)
    env = {**kv_env, "PATH": f"{shim_dir}:{kv_env['PATH']}", "HOOK_LOG": str(log)}
    env.update(A=str(first), B=str(second), CDS=str(cds))
    done = subprocess.run(
        [bash, "--norc", "-c", HOOK_LOOP], env=env, capture_output=True, text=True, check=True
    )
    lines = done.stdout.split("\n")
    rounds = [tuple(map(float, line.split())) for line in lines if line.count(" ") == 2]
    hooked = statistics.median(t1 - t0 for t0, t1, _ in rounds) / (2 * cds) * 1000
    bare = statistics.median(t2 - t1 for _, t1, t2 in rounds) / (2 * cds) * 1000
    calls = int(next(line for line in lines if line.startswith("calls")).split()[1])
    return hooked, bare, calls


def report(figures: dict[str, tuple[float, float]], runs: int) -> None:
    print(f"runs per command: {runs}, interleaved; median wall and CPU (user+sys) time")
    labels = {
        "python -S": "python -S -c pass (no site)",
        "python": "python -c pass (interpreter)",
        "click": "python -c 'import click'",
        "pass": "pass show (gpg-agent)",
        "env": "keyvault env (session, memo)",
        "env full": "keyvault env (session, full run)",
        "get": "keyvault get (session, memo)",
        "python clean": "regular install: python -c pass",
        "env clean": "regular install: env (memo)",
        "env clean full": "regular install: env (full run)",
    }
    for name, label in labels.items():
        if name in figures:
            wall, cpu = figures[name]
            print(f"  {label:34s} {wall:7.1f} ms   cpu {cpu:6.1f} ms")
    mine = figures.get("pass")
    for title, python, env, full in (
        ("regular install", "python clean", "env clean", "env clean full"),
        ("this (editable) venv", "python", "env", "env full"),
    ):
        print(f"{title}:")
        for what, name in (("env", env), ("env, full run", full)):
            ratios = f"{what + '/python':22s} = {_ratio(figures[name], figures[python])}"
            if mine is not None:
                ratios += f"   {what + '/pass':20s} = {_ratio(figures[name], mine)}"
            print(f"  {ratios}")
    print("targets: env/python ≤ 1.60, env/pass ≤ 1.00" + ("" if mine else "; pass not installed"))
    site = figures["python"][0] - figures["python -S"][0]
    print(f"site-packages start-up here (python minus python -S): {site:.1f} ms of every run")


def _ratio(mine: tuple[float, float], other: tuple[float, float]) -> str:
    return f"{mine[0] / other[0]:.2f} (cpu {mine[1] / other[1]:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--cds", type=int, default=500, help="cd pairs per hook round")
    args = parser.parse_args()
    pass_env: dict[str, str] | None = None
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        kv_env = setup_vault(tmp)
        kv = keyvault_argv()
        try:
            commands: dict[str, Command] = {
                "env": ([*kv, *ENV_ARGS], kv_env, PIPE),
                "env full": ([*kv, *ENV_ARGS], kv_env, FILE),
                "get": ([*kv, "get", "bench"], kv_env, PIPE),
                "python": ([sys.executable, "-c", "pass"], kv_env, PIPE),
                "python -S": ([sys.executable, "-S", "-c", "pass"], kv_env, PIPE),
                "click": ([sys.executable, "-c", "import click"], kv_env, PIPE),
            }
            clean_python, clean_keyvault = clean_install(tmp)
            # the regular install finds the vault at its default home (XDG_DATA_HOME)
            clean_env = {
                k: v for k, v in kv_env.items() if k not in ("PYTHONPATH", "KEYVAULT_HOME")
            }
            commands["python clean"] = ([clean_python, "-c", "pass"], clean_env, PIPE)
            commands["env clean"] = ([clean_keyvault, *ENV_ARGS], clean_env, PIPE)
            commands["env clean full"] = ([clean_keyvault, *ENV_ARGS], clean_env, FILE)
            pass_env = setup_pass(tmp)
            if pass_env:
                commands["pass"] = (["pass", "show", "bench/key"], pass_env, PIPE)
            figures = medians(commands, args.runs)
            places = ("plain", "project")
            hooks = {where: hook_cost(tmp, kv_env, where, args.cds) for where in places}
        finally:
            subprocess.run([*kv, "lock"], env=kv_env, stdout=subprocess.DEVNULL, check=False)
            OUTPUT_FILE.unlink(missing_ok=True)
            if pass_env:
                subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=pass_env, check=False)
    report(figures, args.runs)
    print(f"bash hook, per cd (median of 5 rounds of {2 * args.cds} cds; target ≤ 5 ms):")
    for where, (hooked, bare, calls) in hooks.items():
        place = "no project file" if where == "plain" else "inside a project"
        print(
            f"  {place:17s} {hooked - bare:6.3f} ms hook ({hooked:.3f} with the cd itself)"
            f"   keyvault started: {calls}"
        )


if __name__ == "__main__":
    main()
