"""Which project a command means, and the variables its active key exports.

The project is, in order: `--project`, the `project` of the nearest `.keyvault.toml` found
upward from the working directory (like `.git` or direnv's `.envrc`), `default_project` in
config.toml, else the default project (keys added without `--project`).
"""

from __future__ import annotations

from pathlib import Path

from vault.errors import ConfigError, PolicyViolation
from vault.model.document import Entry, Kind, VaultDoc
from vault.store.config import Config

PROJECT_FILE = ".keyvault.toml"


def find_project_file(start: Path) -> Path | None:
    """The nearest `.keyvault.toml` in `start` or a parent folder."""
    for folder in (start, *start.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def read_project_file(path: Path) -> str | None:
    import tomllib  # noqa: PLC0415 - only when a project file exists

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    project = data.get("project")
    if project is not None and not isinstance(project, str):
        raise ConfigError(f"{path}: 'project' must be a string")
    return project


def resolve_project(option: str | None, cwd: Path, config: Config) -> str | None:
    if option is not None:
        return option or None
    found = find_project_file(cwd)
    if found is not None:
        project = read_project_file(found)
        if project:
            return project
    return config.default_project


def export_values(entry: Entry) -> dict[str, str]:
    """OPENAI_* variables for an entry; an admin key is never exported."""
    if entry.kind is Kind.ADMIN:
        raise PolicyViolation(f"{entry.name!r} is an admin key and is never exported")
    from vault.export import openai_values  # noqa: PLC0415

    return openai_values(
        entry.secret.reveal(),
        base_url=entry.base_url,
        org_id=entry.org_id,
        project_id=entry.project_id,
    )


def active_export(doc: VaultDoc, project: str | None) -> tuple[Entry, dict[str, str]]:
    entry = doc.active(project)
    return entry, export_values(entry)
