"""Pin the test toolchain: the newest releases, only once the whole suite passes with them.

    python3 tools/pins.py bump     # resolve, test, rewrite constraints.txt if green
    python3 tools/pins.py newest   # resolve and test the same way; never writes anything

Both build a throwaway virtualenv, install `.[test]` there without constraints.txt (so pip
takes the newest releases that pyproject.toml's ranges allow), and run `python -m pytest`
with it from this checkout. `bump` then writes that virtualenv's `pip freeze` to
constraints.txt and prints what changed; on a red suite it writes nothing and exits non-zero.
Run it with the oldest Python we support (3.11), so that no pin needs a newer one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPO / "constraints.txt"
HEADER = """\
# Exact versions the test suite runs with, everything `.[test]` pulls in included:
#     python3 -m pip install -c constraints.txt -e '.[test]'
# Written by `python3 tools/pins.py bump` on {date} (Python {python}, {system}), after the
# whole suite passed against them. Do not edit by hand: see docs/development.md.
"""


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> int:
    print("+", " ".join(argv), flush=True)
    return subprocess.run(argv, cwd=cwd, env=env, check=False).returncode


def resolve_and_test(venv: Path) -> tuple[int, list[str]]:
    """Install the newest `.[test]` into `venv`, run the suite; (pytest's exit, the freeze)."""
    if run([sys.executable, "-m", "venv", str(venv)]) != 0:
        sys.exit("could not create a virtualenv (on Debian: apt-get install python3-venv)")
    python = str(venv / "bin" / "python")
    if run([python, "-m", "pip", "install", "-q", "-e", f"{REPO}[test]"]) != 0:
        sys.exit("pip could not install .[test] with the newest releases")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    code = run([python, "-m", "pytest", "-q"], cwd=REPO, env=env)
    freeze = subprocess.run(
        [python, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    pins = [line for line in freeze if "==" in line and not line.startswith("keyvault==")]
    return code, sorted(pins, key=lambda pin: pin.split("==")[0].lower())


def write_pins(pins: list[str]) -> None:
    """Rewrite constraints.txt and print the versions that changed."""
    before = CONSTRAINTS.read_text(encoding="utf-8") if CONSTRAINTS.exists() else ""
    old = {line for line in before.splitlines() if line and not line.startswith("#")}
    header = HEADER.format(
        date=dt.date.today().isoformat(),
        python=platform.python_version(),
        system=f"{platform.system()} {platform.machine()}",
    )
    CONSTRAINTS.write_text(header + "".join(pin + "\n" for pin in pins), encoding="utf-8")
    changes = [f"- {pin}" for pin in sorted(old - set(pins))]
    changes += [f"+ {pin}" for pin in sorted(set(pins) - old)]
    print("\n".join(["constraints.txt:", *changes]) if changes else "constraints.txt: unchanged")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["bump", "newest"])
    parser.add_argument("--keep", action="store_true", help="keep the throwaway virtualenv")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="keyvault-pins-"))
    try:
        code, pins = resolve_and_test(workdir / "venv")
        print("\n".join(["newest releases:", *pins]))
        if code != 0:
            sys.exit(f"the suite failed (pytest exit {code}) with these releases: pins unchanged")
        if args.action == "bump":
            write_pins(pins)
    finally:
        if args.keep:
            print(f"virtualenv kept in {workdir / 'venv'}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
