"""`keyvault list/cards/phones/log`: looking at the inventory."""

from __future__ import annotations

from collections.abc import Mapping

import click

from vault.cli.context import (
    pass_context,
    print_json,
    print_json_array,
    print_table,
    terminal_width,
)
from vault.cli.options import entry_names, json_option, project_option, utc_option, utc_wanted
from vault.model import codec
from vault.model.clock import human
from vault.model.document import Entry, PhoneUsage, Status, stored_form
from vault.model.records import Event
from vault.model.views import HEALTH_CHOICES, SORTS, ListQuery, card_totals, count_line
from vault.store import inventory
from vault.store.context import Context

EMPTY_VAULT = (
    "no keys yet: add one with `keyvault add NAME`, or bring your .env files, llm keys,"
    " pass store or spreadsheet in with `keyvault import`"
)


@click.command("list")
@project_option("Only this project.")
@click.option(
    "--status", type=click.Choice([s.value for s in Status]), default=None, help="Only this status."
)
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Only keys with this tag.")
@click.option("--phone", default=None, metavar="PHONE", help="Only keys this phone verified.")
@click.option("--card", default=None, metavar="TEXT", help="Only keys whose card label has TEXT.")
@click.option(
    "--health",
    type=click.Choice(HEALTH_CHOICES),
    default=None,
    metavar="VERDICT",
    help="Only this health verdict: " + ", ".join(HEALTH_CHOICES) + ".",
)
@click.option("--sort", type=click.Choice(sorted(SORTS)), default=None, help="Sort order.")
@click.option("--wide", is_flag=True, help="Every column, however wide.")
@utc_option
@json_option
@pass_context
def list_cmd(
    app: Context,
    *,
    status: str | None,
    tags: tuple[str, ...],
    phone: str | None,
    card: str | None,
    health: str | None,
    sort: str | None,
    wide: bool,
    as_json: bool,
) -> None:
    """List the keys, masked; fits 80 columns unless --wide.

    \b
    Example:
      keyvault list --project work --sort credit
      keyvault list --health quota_exhausted --json | jq -r '.[].name'
    """
    query = ListQuery(app.project_option, status, tags, phone, card, health, sort)
    doc = app.kv.read()
    entries = inventory.list_entries(doc, query)
    if as_json:
        print_json_array(codec.entry_json(e) for e in entries)
        return
    if not doc.entries:
        click.echo(EMPTY_VAULT)
        return
    if not entries:
        click.echo(f"no keys match ({len(doc.entries)} in the vault)")
        return
    if wide:
        print_table(WIDE_COLUMNS, (_wide_row(e) for e in entries))
    else:
        rows = (_narrow_row(e) for e in entries)
        print_table(NARROW_COLUMNS, rows, width=terminal_width(), flexible=(0, 1))
    click.echo(count_line(entries, len(doc.entries)))


NARROW_COLUMNS = ["name", "project", "status", "key", "credit", "health"]
WIDE_COLUMNS = [
    "name", "project", "status", "key", "phone", "card", "created", "credit", "health",
    "tags", "base url",
]  # fmt: skip


def _narrow_row(e: Entry) -> list[object]:
    health = e.health.status.value if e.health is not None else "unchecked"
    return [e.name, e.project, e.status, e.secret.masked, _money(e.credit_usd), health]


def _wide_row(e: Entry) -> list[object]:
    return [
        e.name,
        e.project,
        e.status,
        e.secret.masked,
        e.phone,
        e.card,
        e.created,
        _money(e.credit_usd),
        _health(e),
        ",".join(e.tags) or None,
        e.base_url,
    ]


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _health(entry: Entry) -> str:
    if entry.health is None:
        return "unchecked"
    return f"{entry.health.status} {human(entry.health.checked_at, utc=utc_wanted())[:10]}"


@click.command("cards")
@json_option
@pass_context
def cards_cmd(app: Context, as_json: bool) -> None:
    """Show keys, credit left and recorded spend per card, and per project on each card.

    Spend is what balance checks (`keyvault check --balance`) saw the credit drop by.

    \b
    Example:
      keyvault cards
    """
    rows = card_totals(app.kv.read())
    if as_json:
        print_json([r._asdict() for r in rows])
        return
    if not rows:
        click.echo(EMPTY_VAULT)
        return
    print_table(
        ["card", "project", "keys", "active", "credit", "spend"],
        (
            [
                (r.card or "(no card)") if r.project is None else "",
                "(all)" if r.project is None else r.project or "(default)",
                r.keys,
                r.active,
                _money(r.credit_usd),
                _money(r.spend_usd),
            ]
            for r in rows
        ),
        width=terminal_width(),
        flexible=(0, 1),
    )


@click.group("phones", invoke_without_command=True)
@json_option
@click.pass_context
def phones_cmd(click_ctx: click.Context, as_json: bool) -> None:
    """Show verification slots per phone (each phone verifies a limited number of keys).

    Removed keys still use their phone's slot: OpenAI counts verifications, not live keys.

    \b
    Example:
      keyvault phones
      keyvault phones add +447911123456 --note 'spare SIM'
    """
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(_show_phones, as_json=as_json)


@pass_context
def _show_phones(app: Context, as_json: bool) -> None:
    rows = inventory.phones(app.kv.read(), app.config.phone_slots)
    if as_json:
        print_json([_phone_json(r) for r in rows])
        return
    if not rows:
        click.echo("no phones yet: `keyvault phones add +<country><number>` records a spare")
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


def _phone_json(usage: PhoneUsage) -> dict[str, object]:
    return {
        "phone": usage.phone,
        "used": usage.used,
        "slots": usage.slots,
        "free": usage.free,
        "over": usage.over,
        "entries": list(usage.entries),
        "removed": list(usage.removed),
        "note": usage.note,
    }


@phones_cmd.command("add")
@click.argument("number", nargs=-1, required=True)
@click.option("--note", default=None, help="Free text (whose SIM, which shop).")
@pass_context
def phones_add_cmd(app: Context, number: tuple[str, ...], note: str | None) -> None:
    """Record a spare phone before it verifies a key, so slot hints can offer it.

    The number may be written in groups, quoted or not.

    \b
    Example:
      keyvault phones add 0044 7911 123456 --note 'spare SIM'
    """
    # `0044 7911 123456` as typed is three words: the number is all of them
    phone = inventory.add_phone(app.kv, " ".join(number), note=note)
    click.echo(f"added phone {phone} (free slots: {app.config.phone_slots})")


@click.command("log")
@click.argument("name", required=False, shell_complete=entry_names)
@utc_option
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
                human(e.at, utc=utc_wanted()),
                e.action,
                e.name,
                detail_text(_detail(e)),
            ]
            for e in events
        ),
    )


def _detail(event: Event) -> dict[str, object]:
    # the project of an entry's event, or of a project's own (a .env file registered to it)
    return {"project": event.project, **event.detail}


def detail_text(detail: Mapping[str, object]) -> str:
    """An event's detail for people, as `show` prints values: `project: demo; fields: note,
    secret` (a list is its items, never a Python repr; None is left out)."""
    return "; ".join(f"{k}: {_detail_value(v)}" for k, v in detail.items() if v is not None)


def _detail_value(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_detail_value(v) for v in value)
    if isinstance(value, Mapping):  # a newer keyvault's detail: shown, never as a repr
        return ", ".join(f"{k} {_detail_value(v)}" for k, v in value.items())
    return str(value)


def _events_of(history: list[Event], name: str | None) -> list[Event]:
    """Events naming `name`, plus every event of the entries that bore it (renames)."""
    if name is None:
        return history
    name = stored_form(name)
    ids = {e.entry for e in history if e.name == name} - {None}
    return [e for e in history if e.name == name or e.entry in ids]
