"""One resolved context per invocation, and what a project exports: every command reads these,
so `env`, `exec`, `get`, `hook-env`, `dotenv`, `ci`, `check` and `rotate` can never disagree.

    ctx = Context(project_option="work")       # or the CLI builds it from its flags
    exported = ctx.exported(ctx.kv.read())     # the entry and its OPENAI_* values

Each fact has one source, resolved once (the habit of llm's `get_key`: a hierarchy of
sources in one function):
- vault home: `--vault`, then `KEYVAULT_HOME`, then the platform data folder;
- project: `--project`, then the nearest `.keyvault.toml` upward from the working folder
  (one that is ours: owned by us or root, like git's safe.directory), then `default_project`
  in config.toml, else the default project (keys added without `--project`);
- proxy: `--proxy`, then `proxy` in config.toml, then the environment (`HTTPS_PROXY`, …);
- time: the clock passed in (tests pass a fixed one).
This module must stay cheap to import: `keyvault env` runs it on every shell start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path

from vault.errors import ConfigError
from vault.export import Exported, exported
from vault.model.clock import Clock, utc_now
from vault.model.document import VaultDoc
from vault.model.savedtext import decode_saved
from vault.model.tuples import NamedTuple
from vault.store.config import Config, Paths, load_config, resolve_home
from vault.store.folders import PROJECT_FILE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault.session.unlock import Unlocker
    from vault.store.keyvault import Keyvault


Warn = Callable[[str], None]


class ProjectChoice(NamedTuple):
    """The project a command means and where that came from (for messages and `status`)."""

    name: str | None  # None: the default project
    source: str  # "--project", the project file's path, "config.toml", or "default"


# --- project files ------------------------------------------------------------------------


def find_project_file(start: Path, *, warn: Warn | None = None) -> Path | None:
    """The nearest `.keyvault.toml` in `start` or a parent folder that is ours.

    A file another user owns is skipped with a warning: in a shared parent folder (the
    system temp folder, a team share) anyone could otherwise pick which key we export.
    """
    uid = getattr(os, "geteuid", lambda: None)()
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_FILE
        try:
            info = candidate.stat()
        except OSError:
            continue
        if not candidate.is_file():
            continue
        if uid is not None and info.st_uid not in (uid, 0):
            if warn is not None:
                warn(f"ignoring {candidate}: owned by uid {info.st_uid}, not by you")
            continue
        return candidate
    return None


def read_project_file(path: Path, *, warn: Warn | None = None) -> str | None:
    try:
        # a byte-order mark (Notepad, PowerShell) is not TOML's business; Windows
        # PowerShell 5 saves `"project = 'x'" > .keyvault.toml` as UTF-16
        text = decode_saved(path.read_bytes())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({_reason(exc)})") from None
    plain, project = plain_project_file(text)
    if plain:
        return project or None
    import tomllib  # noqa: PLC0415 - only for a project file beyond the plain form

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: cannot read ({_reason(exc)})") from None
    project = data.get("project")
    if project is not None and not isinstance(project, str):
        raise ConfigError(f"{path}: 'project' must be a string")
    unknown = sorted(key for key in data if key != "project")
    if unknown and warn is not None:
        # a typo (`projekt = "x"`) must not quietly mean "no project here"
        names = ", ".join(repr(key) for key in unknown)
        warn(f"{path}: ignoring {names}: a project file holds only 'project = \"NAME\"'")
    return project or None


def _reason(exc: Exception) -> str:
    return (exc.strerror or "") if isinstance(exc, OSError) else str(exc).splitlines()[0]


NOT_PLAIN: tuple[bool, str | None] = (False, None)


def plain_project_file(text: str) -> tuple[bool, str | None]:
    """(True, the project) for a file in the plain form: blank lines, `#` comments and one
    `project = "NAME"` (a basic string without escapes); NOT_PLAIN for anything else.

    Exactly what a TOML parser reads from such a file, without importing one: tomllib
    imports typing and datetime, ~9 ms on every `keyvault env` and hook run in a project
    folder. Anything beyond the plain form (an escape, another key, a table, a control
    character, a trailing comment) goes to tomllib, which decides or words the error.
    """
    project: str | None = None
    lines = text.split("\n")
    for number, raw_line in enumerate(lines, 1):
        # CRLF ends a line; a CR without its LF (at the very end) is TOML's error to word
        line = raw_line.removesuffix("\r") if number < len(lines) else raw_line
        if not line.replace("\t", " ").isprintable():  # a stray \r, a control, a BOM, …
            return NOT_PLAIN
        body = line.strip(" \t")
        if not body or body.startswith("#"):
            continue
        key, equals, value = body.partition("=")
        value = value.strip(" \t")
        quoted = len(value) >= 2 and value[0] == value[-1] == '"'
        if project is not None or key.rstrip(" \t") != "project" or not equals or not quoted:
            return NOT_PLAIN
        project = value[1:-1]
        if '"' in project or "\\" in project:
            return NOT_PLAIN
    return True, project


def current_folder() -> Path | None:
    """The working folder; None when it was deleted under the shell (`rm -rf` of the project
    from another terminal), where os.getcwd() fails with an error naming no file."""
    try:
        return Path.cwd()
    except OSError:
        return None


def resolve_project(
    option: str | None, cwd: Path | None, config: Config, *, warn: Warn | None = None
) -> ProjectChoice:
    """`--project` (empty means the default project), the project file, then config.toml."""
    if option is not None:
        return ProjectChoice(option or None, "--project")
    if cwd is None:
        # the folder's project file is unknowable: guessing the default could be the key of
        # another project than the one this shell was working in
        raise ConfigError(
            "the current folder no longer exists, so its project file cannot be looked up",
            hint="cd to a folder that exists, or name the project with --project",
        )
    found = find_project_file(cwd, warn=warn)
    if found is not None:
        project = read_project_file(found, warn=warn)
        if project:
            return ProjectChoice(project, str(found))
    if config.default_project:
        return ProjectChoice(config.default_project, "config.toml")
    return ProjectChoice(None, "default")


def folder_project(cwd: Path | None, *, warn: Warn | None = None) -> str | None:
    """The project a folder belongs to (its project file), for the directory hook; None in
    a folder deleted under the shell, which the hook leaves like any folder without one."""
    if cwd is None:
        return None
    found = find_project_file(cwd, warn=warn)
    return read_project_file(found, warn=warn) if found is not None else None


# --- the context --------------------------------------------------------------------------


def _stderr_warning(message: str) -> None:
    import sys  # noqa: PLC0415

    sys.stderr.write(f"keyvault: warning: {message}\n")


class Context:
    """What one invocation resolves once; every command of the CLI reads it."""

    def __init__(
        self,
        *,
        vault_home: str | None = None,
        project_option: str | None = None,
        proxy_option: str | None = None,
        timeout_option: float | None = None,
        run_timeout_option: float | None = None,
        cwd: Path | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock = utc_now,
        warn: Warn = _stderr_warning,
        interactive: bool | None = None,
    ) -> None:
        self.vault_home = vault_home
        self.project_option = project_option
        self.proxy_option = proxy_option
        self.timeout_option = timeout_option
        self.run_timeout_option = run_timeout_option
        self.cwd = cwd if cwd is not None else current_folder()
        self.environ = environ if environ is not None else os.environ
        self.clock = clock
        self.warn = warn
        self.interactive = interactive  # None: ask when a terminal is there

    @cached_property
    def paths(self) -> Paths:
        return Paths(resolve_home(self.vault_home, self.environ))

    @cached_property
    def config(self) -> Config:
        if self.paths.config.exists():
            self._refuse_pinned_checkout_config()
        return load_config(self.paths.config)

    def _refuse_pinned_checkout_config(self) -> None:
        from vault.store.trust import PIN_VARIABLE  # noqa: PLC0415 - only with a config.toml

        if self.environ.get(PIN_VARIABLE):
            # a CI runner reading a team vault's checkout: the pin vouches for vault.age
            # only, and config.toml (default_base_url, proxy) came with the same checkout
            raise ConfigError(
                f"{self.paths.config}: refusing a config.toml in a team vault pinned with"
                f" {PIN_VARIABLE}: no team secret vouches for it",
                hint="anyone who can push may have written it: remove it from the repository"
                " (check out only vault.age in CI: docs/ci.md)",
            )

    @cached_property
    def project_choice(self) -> ProjectChoice:
        return resolve_project(self.project_option, self.cwd, self.config, warn=self.warn)

    @property
    def project(self) -> str | None:
        return self.project_choice.name

    @cached_property
    def proxy(self) -> str | None:
        """`--proxy`, else `proxy` in config.toml; None lets the HTTP client read the
        environment (HTTPS_PROXY, ALL_PROXY, NO_PROXY)."""
        return self.proxy_option or self.config.proxy

    @property
    def request_timeout(self) -> float:
        """Seconds one request may take in all: `--timeout`, else config.toml."""
        return self.timeout_option or self.config.timeout

    @property
    def run_timeout(self) -> float:
        """Seconds all of this command's network work may take: `--run-timeout`, else
        config.toml."""
        return self.run_timeout_option or self.config.run_timeout

    @cached_property
    def run_ends(self) -> float:
        """When this command's network work must be over (time.monotonic()), fixed the first
        time anyone asks, so every step of the command shares one deadline."""
        import time  # noqa: PLC0415

        return time.monotonic() + self.run_timeout

    @cached_property
    def unlocker(self) -> Unlocker:
        from vault.session.client import Session  # noqa: PLC0415
        from vault.session.identity import UnlockSettings  # noqa: PLC0415
        from vault.session.unlock import Unlocker, ask_hidden, ask_if_terminal  # noqa: PLC0415

        ask = {None: ask_if_terminal, True: ask_hidden, False: None}[self.interactive]
        return Unlocker(
            settings=UnlockSettings.from_environ(self.environ),
            ask=ask,
            session=Session(self.paths.home),
            warn=self.warn,
        )

    @cached_property
    def kv(self) -> Keyvault:
        from vault.store.keyvault import Keyvault  # noqa: PLC0415
        from vault.store.trust import Trust  # noqa: PLC0415

        return Keyvault(
            self.paths,
            self.unlocker,
            clock=self.clock,
            config=self.config,
            trust=Trust(self.paths.home, self.environ),
        )

    def exported(self, doc: VaultDoc) -> Exported:
        """What this invocation's project exports."""
        return self.exports_of(doc, self.project)

    def exports_of(self, doc: VaultDoc, project: str | None) -> Exported:
        """What `project` exports, with this vault's settings (`default_base_url`)."""
        return exported(doc, project, default_base_url=self.config.default_base_url)
