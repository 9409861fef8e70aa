"""`keyvault rotate` and `keyvault usage`: switch a project's key, mint one, see the spend."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from vault.cli.context import AppContext, pass_app, print_json, print_table, safe, warn
from vault.cli.health import deadline_options, deadlines, proxy_option
from vault.errors import UsageError
from vault.health.checking import CheckOptions
from vault.rotation.mint import MintReport
from vault.rotation.mint_records import MintOptions
from vault.rotation.rotate import DueReport, RotateOptions, Rotation
from vault.store.context import resolve_project

BAR_WIDTH = 30


@click.command("rotate")
@click.option("--project", default=None, help="Project (default: .keyvault.toml, then config).")
@click.option("--to", "to", metavar="NAME", default=None, help="Switch to this key.")
@click.option("--dry-run", is_flag=True, help="Show what would happen; change nothing.")
@click.option("--no-check", is_flag=True, help="Trust stored health instead of checking now.")
@click.option("--deep", is_flag=True, help="Check candidates with a 1-token chat (sees credit).")
@click.option("--retire", is_flag=True, help="Retire the old key instead of keeping it standby.")
@click.option("--due", is_flag=True, help="Rotate every project the policy marks due (cron).")
@click.option("--mint", is_flag=True, help="Create a fresh service-account key with an admin key.")
@click.option("--admin", metavar="NAME", default=None, help="Admin key to mint with.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    metavar="HOURS",
    help="Delete the old minted account after HOURS (default: [rotation] grace_hours, else at"
    " the next --finish).",
)
@click.option("--finish", is_flag=True, help="Complete interrupted mints and due deletions.")
@proxy_option
@deadline_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def rotate_cmd(
    app: AppContext,
    *,
    project: str | None,
    to: str | None,
    dry_run: bool,
    no_check: bool,
    deep: bool,
    retire: bool,
    due: bool,
    mint: bool,
    admin: str | None,
    grace: float | None,
    finish: bool,
    proxy: str | None,
    timeout: float | None,
    run_timeout: float | None,
    as_json: bool,
) -> int:
    """Replace a project's active key with its best healthy standby key.

    The old key becomes standby (or retired), the change is logged, and every .env file
    written with `keyvault dotenv` is updated. Exit 1 if nothing healthy was found or a
    .env file could not be updated.

    \b
    Example:
      keyvault rotate --project work --dry-run
      keyvault rotate --due            # from cron: only projects the policy marks due
      keyvault rotate --mint --project work --grace 24
    """
    modes = [m for m, on in (("--due", due), ("--finish", finish), ("--to", to)) if on]
    if len(modes) > 1 or (mint and to) or (finish and (mint or dry_run)):
        raise UsageError("these options do not combine: " + ", ".join(modes or ["--mint", "--to"]))
    if (due or finish) and project is not None:
        raise UsageError(f"{modes[0]} covers every project; drop --project")
    checking = dataclasses.replace(deadlines(app, timeout, run_timeout), deep=deep, proxy=proxy)
    rotate_options = RotateOptions(
        to=to, dry_run=dry_run, check=not no_check, retire=retire, check_options=checking
    )
    mint_options = MintOptions(
        admin=admin, grace_hours=grace, retire=retire, check_options=checking
    )
    if due:
        report = _due(app, rotate_options, mint_options, mint=mint, dry_run=dry_run)
        _emit(report.to_dict() if as_json else None, lambda: print_due(report))
        if as_json:
            print_due(report, failures_only=True)
        return 0 if report.ok else 1
    if finish:
        from vault.rotation import mint as minting  # noqa: PLC0415

        reports = minting.finish(app.kv, mint_options)
        _emit(
            [_mint_dict(r) for r in reports] if as_json else None,
            lambda: _print_finish(reports),
        )
        return 0 if all(r.ok for r in reports) else 1
    chosen = _project(app, project, to)
    if mint:
        return _mint(app, chosen, mint_options, dry_run=dry_run, as_json=as_json)
    from vault.rotation.rotate import rotate_project  # noqa: PLC0415

    rotation = rotate_project(app.kv, chosen, rotate_options)
    _emit(rotation.to_dict() if as_json else None, lambda: _print_rotation(rotation))
    return 0 if rotation.ok else 1


def _project(app: AppContext, option: str | None, to: str | None) -> str | None:
    if option is None and to is not None:
        return app.kv.read().find(to).project  # --to names the project too
    return resolve_project(option, Path.cwd(), app.kv.config)


def _emit(data: Any, human: Callable[[], None]) -> None:
    if data is not None:
        print_json(data)
    else:
        human()


def _due(
    app: AppContext,
    rotate_options: RotateOptions,
    mint_options: MintOptions,
    *,
    mint: bool,
    dry_run: bool,
) -> DueReport:
    from vault.rotation import mint as minting  # noqa: PLC0415
    from vault.rotation.rotate import rotate_due  # noqa: PLC0415

    if dry_run:  # a preview must not delete accounts either
        return rotate_due(app.kv, rotate_options)
    return minting.run_due(app.kv, rotate_options, mint_options, mint=mint)


def run_due_from_cli(
    app: AppContext, *, mint: bool, checking: CheckOptions | None = None
) -> DueReport:
    """For `check --rotate`: the policy on every project, trusting the check just stored."""
    from vault.rotation import mint as minting  # noqa: PLC0415

    checking = checking or CheckOptions()
    rotate_options = RotateOptions(check=False, check_options=checking)
    return minting.run_due(app.kv, rotate_options, MintOptions(check_options=checking), mint=mint)


def _mint(
    app: AppContext, project: str | None, options: MintOptions, *, dry_run: bool, as_json: bool
) -> int:
    from vault.rotation import mint as minting  # noqa: PLC0415

    if dry_run:
        lines = minting.preview(app.kv, project, options)
        _emit(
            lines if as_json else None,
            lambda: click.echo("\n".join(f"{x} (dry run)" for x in lines)),
        )
        return 0
    report = minting.mint_rotate(app.kv, project, options)
    _emit(_mint_dict(report) if as_json else None, lambda: _print_mint(report))
    return 0 if report.ok else 1


# --- printing -------------------------------------------------------------------------------


def _print_rotation(rotation: Rotation) -> None:
    where = rotation.project or "the default project"
    verb = "would rotate" if rotation.dry_run else "rotated"
    old = safe(rotation.old) if rotation.old else "(no active key)"
    tail = " (dry run: nothing changed)" if rotation.dry_run else ""
    click.echo(f"{verb} {safe(where)}: {old} -> {safe(rotation.new)} ({rotation.reason}){tail}")
    _print_dotenv(rotation)


def _print_dotenv(rotation: Rotation | MintReport) -> None:
    for outcome in rotation.dotenv:
        if outcome.ok:
            click.echo(f"  {outcome.detail}: {safe(outcome.path)}")
        else:
            warn(f"could not update {safe(outcome.path)}: {safe(outcome.detail)}")


def _print_mint(report: MintReport) -> None:
    if report.error is not None:
        warn(f"{safe(report.project or 'default project')}: {report.error.message}")
    for note in report.notes:
        click.echo(safe(note))
    if report.rotation is not None:
        _print_rotation(report.rotation)
    _print_dotenv(report)
    for note in report.deleted:
        click.echo(safe(note))


def _print_finish(reports: list[MintReport]) -> None:
    for report in reports:
        _print_mint(report)
    if not reports:
        click.echo("nothing to finish")


def _mint_dict(report: MintReport) -> dict[str, Any]:
    return {
        "project": report.project,
        "notes": report.notes,
        "deleted": report.deleted,
        "error": report.error.message if report.error else None,
        "rotation": report.rotation.to_dict() if report.rotation else None,
        "dotenv": [d.__dict__ for d in report.dotenv],
    }


def print_due(report: DueReport, *, failures_only: bool = False) -> None:
    """Rotations and deletions on stdout; failures always on stderr (cron mails those)."""
    for project, exc in report.failures:
        warn(f"{safe(project or 'default project')}: {exc.message}")
        if exc.hint:
            click.echo(f"keyvault: hint: {exc.hint}", err=True)
    if failures_only:
        return
    for rotation in report.rotations:
        _print_rotation(rotation)
    for note in report.finished:
        click.echo(safe(note))
    if not (report.rotations or report.failures or report.finished):
        click.echo("no project is due for rotation")


# --- usage ----------------------------------------------------------------------------------


@click.command("usage")
@click.option("--project", default=None, help="Only this project (default: every project).")
@click.option(
    "--days",
    type=click.IntRange(1, 180),
    default=30,
    show_default=True,
    help="How many days back to count.",
)
@click.option("--admin", metavar="NAME", default=None, help="Admin key to ask with.")
@deadline_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def usage_cmd(
    app: AppContext,
    *,
    project: str | None,
    days: int,
    admin: str | None,
    timeout: float | None,
    run_timeout: float | None,
    as_json: bool,
) -> None:
    """Show spend per project and per key from the Administration API (needs an admin key).

    \b
    Example:
      keyvault usage --days 7
    """
    from vault.rotation.usage import usage_report  # noqa: PLC0415

    report = usage_report(
        app.kv,
        project,
        days,
        every_project=project is None,
        admin=admin,
        request_timeout=timeout,
        run_timeout=run_timeout,
    )
    if as_json:
        print_json(report.to_dict())
        return
    click.echo(f"spend {report.start[:10]} .. {report.end[:10]}: ${report.total_usd:,.2f}")
    top = max((p.spend_usd for p in report.projects), default=0.0) or 1.0
    for p in report.projects:
        label = safe(p.vault_project or p.name or p.project_id)[:24].ljust(24)
        bar = "█" * max(1, round(BAR_WIDTH * p.spend_usd / top)) if p.spend_usd > 0 else ""
        click.echo(f"{label} {bar} ${p.spend_usd:,.2f}")
    if report.keys:
        click.echo("")
        print_table(
            ["key", "project", "spend", "credit", "left (est.)"],
            (
                [
                    k.name or k.api_key_id,
                    k.project_id,
                    _usd(k.spend_usd),
                    _usd(k.credit_usd),
                    _usd(k.remaining_usd),
                ]
                for k in report.keys
            ),
        )


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"
