"""`keyvault add/show/get/edit/rm`: putting keys in, reading them, changing them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from vault.cli import everyday
from vault.cli.context import (
    pass_context,
    print_json,
    print_synced,
    read_secret_input,
)
from vault.cli.options import entry_names, json_option, project_option, utc_option
from vault.cli.report import safe, warn, warn_if_output_is_shared
from vault.errors import Cancelled, UsageError
from vault.model import codec
from vault.model.document import Entry, Status
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


def metadata_options(tag_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for flag, (dest, help_text) in reversed(METADATA_OPTIONS.items()):
            option = click.option(flag, dest, default=None, metavar="VALUE", help=help_text)
            command = option(command)
        return click.option("--tag", "tags", multiple=True, metavar="TAG", help=tag_help)(command)

    return decorate


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and k in _FIELDS}


_FIELDS = {dest for dest, _ in METADATA_OPTIONS.values()}


@click.command("add")
@click.argument("name")
@metadata_options("Tag (repeatable, or comma-separated).")
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
    if values["tags"]:
        fields["tags"] = list(values["tags"])
    if "project" not in fields and app.project is not None:
        fields["project"] = app.project
    if activate is False:
        fields["status"] = Status.STANDBY.value
    # the vault opens (and the passphrase is retried) and the fields are checked before the
    # key is asked for: a typo never costs a pasted key
    inventory.precheck_add(app.kv, app.kv.read(reusable=True), name, fields)
    secret = read_secret_input()
    added = inventory.add_key(app.kv, name, secret, fields, activate=bool(activate))
    for message in added.warnings:
        warn(message)
    e = added.entry
    where = e.project or "the default project"
    click.echo(
        f"added {safe(e.name)} ({e.secret.masked}) to {safe(where)} as {e.status}"
        + _displacing(added.displaced)
    )
    print_synced(added.synced)


@click.command("show")
@click.argument("name", shell_complete=entry_names)
@json_option
@click.option("--reveal", is_flag=True, help="Include the secret itself.")
@utc_option
@pass_context
def show_cmd(app: Context, name: str, as_json: bool, reveal: bool) -> None:
    """Show one key's metadata (the secret only with --reveal).

    \b
    Example:
      keyvault show work-1 --json
    """
    entry = app.kv.read().find(name)
    data = codec.entry_json(entry, reveal=reveal)
    if reveal:
        warn_if_output_is_shared("the key")
    if as_json:
        print_json(data)
        return
    from vault.cli import display  # noqa: PLC0415 - the health display only for this command

    data.pop("health", None)
    data.pop("credit_at", None), data.pop("credit_source", None)  # shown with the credit
    data["credit_usd"] = display.credit(entry)
    for stamp in ("added_at", "updated_at"):
        data[stamp] = display.when(data[stamp])
    width = max(len(k) for k in data)
    for key, value in data.items():
        shown = (", ".join(value) or None) if isinstance(value, list) else value  # none: `-`
        click.echo(f"{key.ljust(width)}  {safe(shown)}")
    for line in display.health_lines(entry.health, base_url=entry.effective_base_url):
        click.echo(f"{'health'.ljust(width)}  {safe(line)}")


@click.command("get")
@click.argument("name", required=False, shell_complete=entry_names)
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
@click.argument("name", shell_complete=entry_names)
@metadata_options("Add a tag (repeatable; '' removes every tag first).")
@click.option("--untag", "untags", multiple=True, metavar="TAG", help="Remove a tag (repeatable).")
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
    *,
    tags: tuple[str, ...],
    untags: tuple[str, ...],
    **values: Any,
) -> None:
    """Change a key's metadata; an empty value ('') clears a field.

    \b
    Example:
      keyvault edit work-1 --credit 12.5 --note 'recharged 2026-11-20'
      keyvault edit work-1 --tag ci --untag old
    """
    fields = _given(values)
    if new_name is not None:
        fields["name"] = new_name
    if status is not None:
        fields["status"] = status
    if "" in tags:
        fields["tags"] = ""
    before = app.kv.read(reusable=True).find(name)  # a typo fails before any prompt
    secret = read_secret_input("new key: ") if new_secret else None
    edited = inventory.edit_key(
        app.kv,
        name,
        fields,
        secret=secret,
        add_tags=[t for t in tags if t],
        remove_tags=untags,
        on_warning=warn,
    )
    if not edited.changed:
        click.echo(f"unchanged {safe(edited.entry.name)}: it already had those values")
        return
    after = edited.entry
    left = before.status is Status.ACTIVE and (
        after.status is not Status.ACTIVE or after.project != before.project
    )
    click.echo(
        f"updated {safe(after.name)}"
        + _displacing(edited.displaced)
        + (_left_without_key(before.project) if left else "")
    )
    print_synced(app.kv.synced)


def _displacing(previous: Entry | None) -> str:
    """`; main-1 is standby now` when the key took the place of its project's active key:
    what `env` exports changed, so say from which key."""
    return f"; {safe(previous.name)} is {previous.status} now" if previous is not None else ""


def _left_without_key(project: str | None) -> str:
    """The project's active key went (removed, set aside, moved): `env` there fails now."""
    where = safe(project) if project else "the default project"
    flag = f" --project {safe(project)}" if project else " --project ''"  # '' is the default
    return f"; {where} has no active key now (`keyvault rotate{flag}` picks one)"


def _confirmed(question: str) -> bool:
    """A [y/N] answer; Ctrl-D (no answer at all) is the default, no, not an interruption."""
    try:
        return click.confirm(question, err=True)
    except click.Abort as exc:
        if not isinstance(exc.__context__, EOFError):
            raise
        click.echo(err=True)
        return False


@click.command("rm")
@click.argument("name", shell_complete=entry_names)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def rm_cmd(app: Context, name: str, yes: bool) -> None:
    """Remove a key from the vault (the previous vault stays in vault.age.bak).

    Its phone keeps counting the verification: OpenAI still does.

    \b
    Example:
      keyvault rm old-key --yes
    """
    app.kv.read(reusable=True).find(name)
    if not yes:
        if not terminal_available():
            raise UsageError(f"removing {name!r} needs confirmation", hint="add --yes")
        if not _confirmed(f"remove {name}?"):
            raise Cancelled(f"cancelled: {name!r} was not removed")
    entry = inventory.remove_key(app.kv, name)
    left = entry.status is Status.ACTIVE
    click.echo(f"removed {safe(entry.name)}" + (_left_without_key(entry.project) if left else ""))
    print_synced(app.kv.synced)
