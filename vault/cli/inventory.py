"""`keyvault add/list/show/get/edit/rm/phones/log`: the key inventory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from vault.cli.context import (
    AppContext,
    pass_app,
    print_json,
    print_json_array,
    print_table,
    read_secret_input,
    safe,
    terminal_available,
    warn,
)
from vault.errors import UsageError
from vault.model.document import Entry, Status, iter_entries
from vault.store import inventory

STATUSES = click.Choice([s.value for s in Status])

# option name → (entry field, help); shared by `add` and `edit` so they never drift apart
METADATA_OPTIONS: dict[str, tuple[str, str]] = {
    "--project": ("project", "Project (one active key per project)."),
    "--phone": ("phone", "Phone that verified the key, with country code (+44…)."),
    "--created": ("created", "Date the key was made at the provider (YYYY-MM-DD)."),
    "--card": ("card", "Card label, e.g. 'WildCard ****1234' (never the full number)."),
    "--credit": ("credit_usd", "Credit left, in US dollars."),
    "--org-id": ("org_id", "OpenAI organization id (org-…)."),
    "--project-id": ("project_id", "OpenAI project id (proj_…)."),
    "--base-url": ("base_url", "API base URL for relays and proxies (…/v1)."),
    "--note": ("note", "Free text."),
    "--priority": ("priority", "Higher is chosen first by rotation."),
    "--provider": ("provider", "Provider name (default openai; others skip OpenAI key checks)."),
}


def metadata_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for flag, (dest, help_text) in reversed(METADATA_OPTIONS.items()):
        command = click.option(flag, dest, default=None, metavar="VALUE", help=help_text)(command)
    return click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")(command)


def _given(values: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in values.items() if v is not None and k in _FIELDS}
    if values.get("tags"):
        out["tags"] = list(values["tags"])
    return out


_FIELDS = {dest for dest, _ in METADATA_OPTIONS.values()}


@click.command("add")
@click.argument("name")
@metadata_options
@click.option(
    "--activate/--standby",
    default=None,
    help="Make it the project's active key (default: only if the project has none).",
)
@pass_app
def add_cmd(app: AppContext, /, name: str, activate: bool | None, **values: Any) -> None:
    """Store a new key; the key is read from a hidden prompt or standard input, never argv.

    \b
    Example:
      printf %s "$KEY" | keyvault add work-1 --project work --phone +447911123456 \\
          --card 'WildCard ****1234' --credit 20
    """
    fields = _given(values)
    if activate is False:
        fields["status"] = Status.STANDBY.value
    secret = read_secret_input()
    added = inventory.add_key(app.kv, name, secret, fields, activate=bool(activate))
    for message in added.warnings:
        warn(message)
    e = added.entry
    click.echo(
        f"added {e.name} ({e.secret.masked}) to {e.project or 'the default project'} as {e.status}"
    )


@click.command("list")
@click.option("--project", default=None, help="Only this project.")
@click.option("--status", type=STATUSES, default=None, help="Only this status.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (keys masked).")
@pass_app
def list_cmd(app: AppContext, project: str | None, status: str | None, as_json: bool) -> None:
    """List the keys, masked.

    \b
    Example:
      keyvault list --project work --json | jq -r '.[].name'
    """
    entries = iter_entries(app.kv.read(), project=project, status=status)
    if as_json:
        print_json_array(e.to_dict() for e in entries)
        return
    print_table(
        ["name", "project", "status", "key", "phone", "created", "credit", "health"],
        (
            [
                e.name,
                e.project,
                e.status,
                e.secret.masked,
                e.phone,
                e.created,
                _money(e.credit_usd),
                _health(e),
            ]
            for e in entries
        ),
    )


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _health(entry: Entry) -> str:
    if not entry.health:
        return "unchecked"
    return f"{entry.health.get('status', '?')} {str(entry.health.get('checked_at', ''))[:10]}"


@click.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--reveal", is_flag=True, help="Include the secret itself.")
@pass_app
def show_cmd(app: AppContext, name: str, as_json: bool, reveal: bool) -> None:
    """Show one key's metadata (the secret only with --reveal).

    \b
    Example:
      keyvault show work-1 --json
    """
    data = app.kv.read().find(name).to_dict(reveal=reveal)
    if as_json:
        print_json(data)
        return
    width = max(len(k) for k in data)
    for key, value in data.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        click.echo(f"{key.ljust(width)}  {safe(shown)}")


@click.command("get")
@click.argument("name", required=False)
@click.option("--project", default=None, help="The active key of this project.")
@pass_app
def get_cmd(app: AppContext, name: str | None, project: str | None) -> None:
    """Print a raw key on stdout, for pipes (by name, or a project's active key).

    \b
    Example:
      curl -H "Authorization: Bearer $(keyvault get --project work)" https://api.openai.com/v1/models
    """
    if name and project:
        raise UsageError("give a NAME or --project, not both")
    doc = app.kv.read()
    entry = doc.find(name) if name else doc.active(project or app.kv.config.default_project)
    click.echo(entry.secret.reveal())


@click.command("edit")
@click.argument("name")
@metadata_options
@click.option("--name", "new_name", default=None, help="Rename the entry.")
@click.option(
    "--status",
    type=STATUSES,
    default=None,
    help="New status (active makes it the project's only active key).",
)
@click.option(
    "--secret",
    "new_secret",
    is_flag=True,
    help="Replace the key itself (read from prompt or stdin).",
)
@pass_app
def edit_cmd(
    app: AppContext,
    /,
    name: str,
    new_name: str | None,
    status: str | None,
    new_secret: bool,
    **values: Any,
) -> None:
    """Change a key's metadata; an empty value ('') clears a field.

    \b
    Example:
      keyvault edit work-1 --credit 12.5 --note 'recharged 2026-11-20'
    """
    fields = _given(values)
    if new_name is not None:
        fields["name"] = new_name
    if status is not None:
        fields["status"] = status
    secret = read_secret_input("new key: ") if new_secret else None
    entry = inventory.edit_key(app.kv, name, fields, secret=secret, on_warning=warn)
    click.echo(f"updated {entry.name}")


@click.command("rm")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def rm_cmd(app: AppContext, name: str, yes: bool) -> None:
    """Remove a key from the vault (the previous vault stays in vault.age.bak).

    \b
    Example:
      keyvault rm old-key --yes
    """
    if not yes:
        if not terminal_available():
            raise UsageError(f"removing {name!r} needs confirmation", hint="add --yes")
        app.kv.read().find(name)
        click.confirm(f"remove {name}?", abort=True, err=True)
    entry = inventory.remove_key(app.kv, name)
    click.echo(f"removed {entry.name}")


@click.command("phones")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def phones_cmd(app: AppContext, as_json: bool) -> None:
    """Show verification slots per phone (each phone verifies a limited number of keys).

    \b
    Example:
      keyvault phones
    """
    rows = inventory.phones(app.kv.read(), app.kv.config.phone_slots)
    if as_json:
        print_json(
            [
                {
                    "phone": r.phone,
                    "used": r.used,
                    "slots": r.slots,
                    "free": r.free,
                    "entries": list(r.entries),
                }
                for r in rows
            ]
        )
        return
    print_table(
        ["phone", "used", "free", "keys"],
        ([r.phone, f"{r.used}/{r.slots}", r.free, ", ".join(r.entries)] for r in rows),
    )


@click.command("log")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def log_cmd(app: AppContext, name: str | None, as_json: bool) -> None:
    """Show the vault's history, oldest first (optionally for one entry).

    \b
    Example:
      keyvault log work-1
    """
    events = _events_of(app.kv.read().history, name)
    if as_json:
        print_json(events)
        return
    skip = {"at", "action", "name", "entry"}
    print_table(
        ["at", "action", "name", "detail"],
        (
            [
                e.get("at"),
                e.get("action"),
                e.get("name"),
                " ".join(f"{k}={v}" for k, v in e.items() if k not in skip and v is not None),
            ]
            for e in events
        ),
    )


def _events_of(history: list[dict[str, Any]], name: str | None) -> list[dict[str, Any]]:
    """Events naming `name`, plus every event of the entries that bore it (renames)."""
    if name is None:
        return history
    ids = {e.get("entry") for e in history if e.get("name") == name} - {None}
    return [e for e in history if e.get("name") == name or e.get("entry") in ids]
