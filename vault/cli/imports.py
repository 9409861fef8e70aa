"""`keyvault import`: bring keys in from .env files, llm, pass, a spreadsheet or a relay."""

from __future__ import annotations

import click

from vault.cli.context import pass_context, print_json, print_synced, print_table
from vault.cli.options import json_option, project_option
from vault.cli.report import safe, warn
from vault.errors import SourceError
from vault.store.context import Context
from vault.store.importing import (
    Imported,
    ImportOptions,
    ImportPlan,
    import_keys,
    read_sources,
)
from vault.store.sources import KINDS


@click.command("import")
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option(
    "--from",
    "kind",
    type=click.Choice(KINDS),
    default=None,
    help="What the sources are (default: guessed from each file). With pass, SOURCE is a"
    " folder of the store (default: all of it).",
)
@project_option(
    "Project for keys whose source names none (default: the .env file's folder,"
    " then .keyvault.toml, then config.toml)."
)
@click.option("--dry-run", is_flag=True, help="Show what would be added and skipped; save nothing.")
@json_option
@pass_context
def import_cmd(
    app: Context, sources: tuple[str, ...], kind: str | None, dry_run: bool, as_json: bool
) -> None:
    """Import keys: .env files, llm's keys.json, a pass folder, a CSV/JSON inventory, or a
    one-api/new-api database. Every key is checked as `add` checks it; one save for all.

    Keys already in the vault, keys of other providers and rows that break a rule (a full
    phone, a card number) are skipped, each with its reason; secrets are never on argv.

    \b
    Example:
      keyvault import ~/code/*/.env --dry-run
      keyvault import "$(llm keys path)"
      keyvault import --from pass openai
      keyvault import keys.csv /opt/one-api/one-api.db
    """
    options = ImportOptions(app.project_option, app.project, dry_run)
    options.validate()
    readings = read_sources(sources, kind)
    plan = import_keys(app.kv, readings, options)
    if as_json:
        print_json(plan.to_dict())
    else:
        _print_plan(plan)
    if not plan.added and not plan.skipped:
        raise SourceError(
            "found no keys to import" + (" (see the lines above)" if plan.not_keys else ""),
            hint="a .env file needs OPENAI_API_KEY=…; a CSV needs a key column",
        )


def _print_plan(plan: ImportPlan) -> None:
    for note in plan.notes:
        warn(note)
    verb = "would add" if plan.dry_run else "added"
    click.echo(
        f"{verb} {len(plan.added)}, skipped {len(plan.skipped)},"
        f" {len(plan.not_keys)} not keys"
        + (" (dry run: nothing was saved)" if plan.dry_run else "")
    )
    if plan.added:
        print_table(
            ["name", "project", "status", "key", "from"],
            (
                [a.entry.name, a.entry.project, _status(a), a.entry.secret.masked, a.where]
                for a in plan.added
            ),
        )
    if plan.displaced:
        click.echo("no longer active (a row of this import became its project's active key):")
        for d in plan.displaced:
            row = f", {d.where}" if d.where else ", in the vault before"
            by = f"{d.by} is active now" if d.by else "no key is active now"
            project = d.project or "the default project"
            click.echo(f"  {safe(d.name)} ({safe(project)}{safe(row)}): {safe(by)}")
    for title, rows in (
        ("skipped:", [(s.where, s.reason) for s in plan.skipped]),
        ("not keys:", [(n.where, n.reason) for n in plan.not_keys]),
    ):
        if rows:
            click.echo(title)
            for where, reason in rows:
                click.echo(f"  {safe(where)}: {safe(reason)}")
    for added in plan.added:
        for message in added.warnings:
            warn(f"{safe(added.entry.name)}: {message}")
    print_synced(plan.synced)


def _status(added: Imported) -> str:
    """What happened to the row: `active`, or `active -> standby` when a later row took
    its place (the vault holds the key as standby)."""
    if added.added_as is added.entry.status:
        return str(added.entry.status)
    return f"{added.added_as} -> {added.entry.status}"
