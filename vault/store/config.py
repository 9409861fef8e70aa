"""Where keyvault keeps its files, and `config.toml`.

The vault home holds `identity.age`, `vault.age`, `vault.age.bak`, `vault.lock` and
`config.toml`. It is, in order: `--vault PATH`, `$KEYVAULT_HOME`, or the user data folder
(`$XDG_DATA_HOME/keyvault` or `~/.local/share/keyvault` on Linux,
`~/Library/Application Support/keyvault` on macOS, `%LOCALAPPDATA%\\keyvault` on Windows):
vault/store/folders.py.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from vault.errors import ConfigError
from vault.model.tuples import NamedTuple
from vault.store.folders import vault_home

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PHONE_SLOTS = 2  # OpenAI lets one phone number verify two keys
DEFAULT_LOCK_TIMEOUT = 10.0  # seconds a change waits for another keyvault to finish its save
MAX_LOCK_TIMEOUT = 3600.0
# network deadlines (seconds): one request from first byte sent to last received, and the
# whole network part of one command; a relay that trickles must not hold a cron job forever
DEFAULT_TIMEOUT = 30.0
DEFAULT_RUN_TIMEOUT = 600.0
MAX_NETWORK_TIMEOUT = 86400.0
CONFIG_NAME = "config.toml"


# NamedTuple, not a dataclass: dataclasses cost milliseconds at import on the hot path
class Paths(NamedTuple):
    """The files of one vault home."""

    home: Path

    @property
    def vault(self) -> Path:
        return self.home / "vault.age"

    @property
    def backup(self) -> Path:
        return self.home / "vault.age.bak"

    @property
    def identity(self) -> Path:
        return self.home / "identity.age"

    @property
    def lock(self) -> Path:
        return self.home / "vault.lock"

    @property
    def config(self) -> Path:
        return self.home / CONFIG_NAME


def resolve_home(option: str | None, environ: Mapping[str, str]) -> Path:
    """The vault home (vault/store/folders.py owns the rule)."""
    return Path(vault_home(option, environ))


class Config(NamedTuple):
    """Settings from `config.toml`; every field has a safe default."""

    phone_slots: int = DEFAULT_PHONE_SLOTS
    default_project: str | None = None
    proxy: str | None = None
    scrypt_log_n: int | None = None
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    default_base_url: str | None = None  # for keys stored without one (relay users)
    timeout: float = DEFAULT_TIMEOUT
    run_timeout: float = DEFAULT_RUN_TIMEOUT
    health: Mapping[str, Any] = MappingProxyType({})
    rotation: Mapping[str, Any] = MappingProxyType({})

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], *, source: str = CONFIG_NAME) -> Config:
        known = set(cls._fields)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown setting {unknown[0]!r}")
        config = cls(**dict(raw))
        config.validate(source)
        return config

    def validate(self, source: str) -> None:
        checks = (
            (_is_whole(self.phone_slots, 1, 100), "phone_slots"),
            (
                self.default_project is None or _is_project_name(self.default_project),
                "default_project",
            ),
            (self.proxy is None or is_proxy_url(self.proxy), "proxy"),
            (self.scrypt_log_n is None or _is_whole(self.scrypt_log_n, 10, 22), "scrypt_log_n"),
            (
                isinstance(self.lock_timeout, int | float)
                and not isinstance(self.lock_timeout, bool)
                and 0 <= self.lock_timeout <= MAX_LOCK_TIMEOUT,
                "lock_timeout",
            ),
            (
                self.default_base_url is None or _is_base_url(self.default_base_url),
                "default_base_url",
            ),
            (is_network_timeout(self.timeout), "timeout"),
            (is_network_timeout(self.run_timeout), "run_timeout"),
            (isinstance(self.health, Mapping), "health"),
            (isinstance(self.rotation, Mapping), "rotation"),
        )
        for ok, name in checks:
            if not ok:
                hint = PROXY_HINT if name == "proxy" else None
                raise ConfigError(f"{source}: bad value for {name}", hint=hint)


def _is_whole(value: object, low: int, high: int) -> bool:
    """An integer from `low` to `high`; not a bool (`phone_slots = true` is a mistake, not 1)."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_project_name(value: object) -> bool:
    """A project name as `--project` takes it: `default_project = ""` or one holding a control
    character would name a project no key can join."""
    if not isinstance(value, str):
        return False
    from vault.errors import InvalidValue  # noqa: PLC0415
    from vault.model.typed import check_label  # noqa: PLC0415 - only when it is set

    try:
        return check_label(value, "project") == value
    except InvalidValue:
        return False


def is_network_timeout(value: object) -> bool:
    """A number of seconds above 0 and at most a day (not a bool, which is an int)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 < value <= MAX_NETWORK_TIMEOUT
    )


PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
PROXY_HINT = (
    "a proxy is http://HOST:PORT, https://HOST:PORT, socks5://HOST:PORT or socks5h://HOST:PORT"
)


def is_proxy_url(value: object) -> bool:
    """True for a URL that httpx can use as a proxy (the scheme, a host, a valid port)."""
    if not isinstance(value, str):
        return False
    from urllib.parse import urlsplit  # noqa: PLC0415 - only when a proxy is configured

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        return False
    return parts.scheme.lower() in PROXY_SCHEMES and bool(parts.hostname)


def _is_base_url(value: object) -> bool:
    """An https base URL (http only on loopback), as `--base-url` takes it, written in full."""
    if not isinstance(value, str):
        return False
    from vault.errors import InvalidValue  # noqa: PLC0415
    from vault.model.validate import check_base_url  # noqa: PLC0415 - only when it is set

    try:
        return check_base_url(value) == value
    except InvalidValue:
        return False


def load_config(path: Path) -> Config:
    """Read `config.toml`; a missing file means all defaults."""
    from vault.store.files import read_regular_file  # noqa: PLC0415 - not needed without one

    try:
        data = read_regular_file(path)
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    import tomllib  # noqa: PLC0415 - not needed when there is no config file

    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return Config.from_mapping(raw, source=str(path))


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and parents) as 0700 whatever the umask; refuse a symlinked home."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create folder ({exc.strerror})") from None
    if path.is_symlink():
        raise ConfigError(
            f"{path}: vault home is a symlink", hint="point --vault at the real folder"
        )


def refuse_shared_home(path: Path) -> None:
    """A vault home others may write to is refused before a vault is made in it: anyone
    could swap identity.age for one whose passphrase they chose, or delete the vault.
    (`doctor` fails such a home too; `init` made its files there without a word.)"""
    if sys.platform == "win32":  # no POSIX modes: folder ACLs decide
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o022:
        raise ConfigError(
            f"{path}: others can write to this folder (mode {mode:04o}); refusing to create a"
            " vault in it",
            hint=f"chmod 700 {path}",
        )
