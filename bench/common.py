"""What every bench script shares: measure keyvault as it is installed, with bytecode."""

from __future__ import annotations

import compileall
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def installed_like_env(extra: dict[str, str]) -> dict[str, str]:
    """Write keyvault's bytecode as `pip install` does and return an environment that uses it.

    With PYTHONDONTWRITEBYTECODE set (as on some CI machines) and an editable install, every
    run would otherwise recompile keyvault from source while click and cryptography load
    their installed .pyc files.
    """
    compileall.compile_dir(REPO / "vault", quiet=1)
    env = {**os.environ, "PYTHONPATH": str(REPO), **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env
