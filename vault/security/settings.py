"""config.toml as `doctor` reads it: every mistake in it, and the settings that are right.

Every other command stops at the first mistake (vault/store/config.py), before anything is
changed. `doctor` is the command people run to find out what is wrong, so it reports each
mistake as a failed check and goes on checking the rest of the vault with the settings that
are right (a bad `proxy` must not hide a world-readable vault file).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vault.errors import ConfigError
from vault.store.config import Config
from vault.store.files import read_regular_file


def every_mistake(path: Path, load: Callable[[], Config]) -> tuple[Config, list[ConfigError]]:
    """`load()` (the command's own reading of config.toml), and when it refuses the file:
    one ConfigError per setting that is wrong, and a Config of the settings that are right.

    A file that cannot be read or is not TOML is one mistake, and every default applies. A
    file refused as a whole though each setting in it is right (a pinned CI checkout's
    config.toml, which nobody vouches for) is that one mistake, and none of it is used.
    Then the `[health]` and `[rotation]` policies are checked, one mistake per section (and
    per project), as `check` and `rotate` would find them."""
    mistakes: list[ConfigError] = []
    try:
        config = load()
    except ConfigError as refused:
        config, mistakes = _setting_by_setting(path, refused)
    return config, mistakes + _policy_mistakes(config)


def _setting_by_setting(path: Path, refused: ConfigError) -> tuple[Config, list[ConfigError]]:
    raw = _settings(path)
    if raw is None:
        return Config(), [refused]
    right: dict[str, Any] = {}
    mistakes: list[ConfigError] = []
    for name, value in raw.items():
        try:
            Config.from_mapping({name: value}, source=str(path))
        except ConfigError as exc:
            mistakes.append(exc)
        else:
            right[name] = value
    if not mistakes:  # refused for what the file is, not for what it says
        return Config(), [refused]
    return Config.from_mapping(right, source=str(path)), mistakes


def _settings(path: Path) -> dict[str, Any] | None:
    """The file's settings as TOML says; None when it cannot be read or is not TOML."""
    try:
        return tomllib.loads(read_regular_file(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _policy_mistakes(config: Config) -> list[ConfigError]:
    from vault.health.policy import health_policy  # noqa: PLC0415
    from vault.rotation.policy import rotation_policy  # noqa: PLC0415

    projects = config.rotation.get("projects", {})
    named = list(projects) if isinstance(projects, dict) else []
    checks: list[Callable[[], object]] = [lambda: health_policy(config)]
    checks += [functools.partial(rotation_policy, config, project) for project in named]
    checks.append(functools.partial(rotation_policy, config, None))
    mistakes: list[ConfigError] = []
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            if exc.message not in {m.message for m in mistakes}:
                mistakes.append(exc)
    return mistakes
