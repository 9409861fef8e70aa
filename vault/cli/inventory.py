"""`keyvault add/list/show/get/edit/rm/phones/log`: the key inventory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from vault.cli import everyday
from vault.cli.context import (
    pass_context,
    print_json,
    print_json_array,
    print_synced,
    print_table,
    read_secret_input,
)
from vault.cli.options import json_option, project_option
from vault.cli.report import safe, warn
from vault.errors import UsageError
from vault.model import codec
from vault.model.clock import human
from vault.model.document import Entry, Status, iter_entries
from vault.model.records import Event
from vault.session.unlock import terminal_available
from vault.store import inventory
from vault.store.context import Context

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
@pass_context
def add_cmd(app: Context, /, name: str, activate: bool | None, **values: Any) -> None:
    """Store a new key; the key is read from a hidden prompt or standard input, never argv.

    Without --project the key joins the project this folder resolves to (.keyvault.toml,
    then default_project in config.toml), as `env` and `get` would.

    \b
    Example:
      printf %s "$KEY" | keyvault add work-1 --project work --phone +447911123456 \\
          --card 'WildCard ****1234' --credit 20
    """
    fields = _given(values)
    if "project" not in fields and app.project is not None:
        fields["project"] = app.project
    if activate is False:
        fields["status"] = Status.STANDBY.value
    secret = read_secret_input()
    added = inventory.add_key(app.kv, name, secret, fields, activate=bool(activate))
    for message in added.warnings:
        warn(message)
    e = added.entry
    where = e.project or "the default project"
    click.echo(f"added {safe(e.name)} ({e.secret.masked}) to {safe(where)} as {e.status}")
    print_synced(added.synced)


@click.command("list")
@project_option("Only this project.")
@click.option("--status", type=STATUSES, default=None, help="Only this status.")
@json_option
@pass_context
def list_cmd(app: Context, status: str | None, as_json: bool) -> None:
    """List the keys, masked.

    \b
    Example:
      keyvault list --project work --json | jq -r '.[].name'
    """
    doc = app.kv.read()
    doc.require_project(app.project_option)
    entries = iter_entries(doc, project=app.project_option, status=status)
    if as_json:
        print_json_array(codec.entry_json(e) for e in entries)
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
    if entry.health is None:
        return "unchecked"
    return f"{entry.health.status} {entry.health.checked_at[:10]}"


@click.command("show")
@click.argument("name")
@json_option
@click.option("--reveal", is_flag=True, help="Include the secret itself.")
@pass_context
def show_cmd(app: Context, name: str, as_json: bool, reveal: bool) -> None:
    """Show one key's metadata (the secret only with --reveal).

    \b
    Example:
      keyvault show work-1 --json
    """
    entry = app.kv.read().find(name)
    data = codec.entry_json(entry, reveal=reveal)
    if as_json:
        print_json(data)
        return
    data.pop("health", None)
    width = max(len(k) for k in data)
    for key, value in data.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        click.echo(f"{key.ljust(width)}  {safe(shown)}")
    for line in _health_lines(entry):
        click.echo(f"{'health'.ljust(width)}  {safe(line)}")


def _health_lines(entry: Entry) -> list[str]:
    health = entry.health
    if health is None:
        return ["never checked"]
    from vault.model.health import ADVICE  # noqa: PLC0415

    lines = [f"{health.status} ({health.probe} probe, {human(health.checked_at)})"]
    if not health.ok:
        lines.append(ADVICE[health.status])
    if health.message:
        lines.append(f"server said: {health.message[:200]}")
    if health.last_ok_at and not health.ok:
        lines.append(f"last ok {human(health.last_ok_at)}")
    return lines


@click.command("get")
@click.argument("name", required=False)
@project_option("The active key of this project (default: .keyvault.toml, then config.toml).")
@pass_context
def get_cmd(app: Context, name: str | None) -> None:
    """Print a raw key on stdout, for pipes (by name, or a project's active key).

    \b
    Example:
      curl -H "Authorization: Bearer $(keyvault get --project work)" https://api.openai.com/v1/models
    """
    everyday.get(app, name)


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
@pass_context
def edit_cmd(
    app: Context,
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
    app.kv.read().find(name)  # a typo fails before any prompt
    secret = read_secret_input("new key: ") if new_secret else None
    entry = inventory.edit_key(app.kv, name, fields, secret=secret, on_warning=warn)
    click.echo(f"updated {safe(entry.name)}")
    print_synced(app.kv.synced)


@click.command("rm")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def rm_cmd(app: Context, name: str, yes: bool) -> None:
    """Remove a key from the vault (the previous vault stays in vault.age.bak).

    Its phone keeps counting the verification: OpenAI still does.

    \b
    Example:
      keyvault rm old-key --yes
    """
    app.kv.read().find(name)
    if not yes:
        if not terminal_available():
            raise UsageError(f"removing {name!r} needs confirmation", hint="add --yes")
        click.confirm(f"remove {name}?", abort=True, err=True)
    entry = inventory.remove_key(app.kv, name)
    click.echo(f"removed {safe(entry.name)}")
    print_synced(app.kv.synced)


@click.command("phones")
@json_option
@pass_context
def phones_cmd(app: Context, as_json: bool) -> None:
    """Show verification slots per phone (each phone verifies a limited number of keys).

    Removed keys still use their phone's slot: OpenAI counts verifications, not live keys.

    \b
    Example:
      keyvault phones
    """
    rows = inventory.phones(app.kv.read(), app.config.phone_slots)
    if as_json:
        print_json(
            [
                {
                    "phone": r.phone,
                    "used": r.used,
                    "slots": r.slots,
                    "free": r.free,
                    "over": r.over,
                    "entries": list(r.entries),
                    "removed": list(r.removed),
                    "note": r.note,
                }
                for r in rows
            ]
        )
        return
    print_table(
        ["phone", "used", "free", "keys"],
        (
            [
                r.phone,
                f"{r.used}/{r.slots}" + (f" OVER by {r.over}" if r.over else ""),
                r.free,
                ", ".join([*r.entries, *(f"{n} (removed)" for n in r.removed)]) or "(spare)",
            ]
            for r in rows
        ),
    )


@click.command("log")
@click.argument("name", required=False)
@json_option
@pass_context
def log_cmd(app: Context, name: str | None, as_json: bool) -> None:
    """Show the vault's history, oldest first (optionally for one entry).

    \b
    Example:
      keyvault log work-1
    """
    doc = app.kv.read()
    events = _events_of(doc.history, name)
    if name is not None and not events:
        doc.find(name)  # EntryNotFound with "did you mean"
    if as_json:
        print_json([codec.event_json(e) for e in events])
        return
    print_table(
        ["at", "action", "name", "detail"],
        (
            [
                human(e.at),
                e.action,
                e.name,
                " ".join(f"{k}={v}" for k, v in _detail(e).items() if v is not None),
            ]
            for e in events
        ),
    )


def _detail(event: Event) -> dict[str, object]:
    shown: dict[str, object] = {"project": event.project} if event.entry else {}
    return {**shown, **event.detail}


def _events_of(history: list[Event], name: str | None) -> list[Event]:
    """Events naming `name`, plus every event of the entries that bore it (renames)."""
    if name is None:
        return history
    ids = {e.entry for e in history if e.name == name} - {None}
    return [e for e in history if e.name == name or e.entry in ids]
