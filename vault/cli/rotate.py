"""`keyvault rotate`: switch a project's key to a healthy standby one, or mint a fresh one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from vault.cli.context import check_options, pass_context, print_json, print_synced
from vault.cli.options import (
    deadline_options,
    entry_names,
    json_option,
    project_option,
    proxy_option,
    utc_option,
    utc_wanted,
)
from vault.cli.report import safe, warn
from vault.errors import UsageError
from vault.rotation.mint import MintReport
from vault.rotation.mint_admin import MintOptions
from vault.rotation.policy import Verify
from vault.rotation.rotate import DueReport, RotateOptions, Rotation
from vault.rotation.verify import VERIFY_MAX_WAIT
from vault.store.context import Context


@click.command("rotate")
@project_option()
@click.option(
    "--to",
    "to",
    metavar="NAME",
    default=None,
    shell_complete=entry_names,
    help="Switch to this key.",
)
@click.option("--dry-run", is_flag=True, help="Show what would happen; change nothing.")
@click.option(
    "--verify",
    type=click.Choice([Verify.CHAT.value, Verify.MODELS.value]),
    default=None,
    help="How to check a candidate before switching: chat (a 1-token completion: sees credit)"
    " or models (free, blind to credit). Default: [rotation] verify, else chat.",
)
@click.option("--no-check", is_flag=True, help="Trust stored health instead of checking now.")
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
@utc_option
@json_option
@pass_context
def rotate_cmd(
    app: Context,
    *,
    to: str | None,
    dry_run: bool,
    verify: str | None,
    no_check: bool,
    retire: bool,
    due: bool,
    mint: bool,
    admin: str | None,
    grace: float | None,
    finish: bool,
    as_json: bool,
) -> int:
    """Replace a project's active key with its best standby key that serves a real request.

    Candidates are tried best first with a 1-token chat completion (about 11 tokens of
    gpt-4o-mini each) until one passes; the output lists the keys skipped and the requests
    made. The old key becomes standby (or retired), the change is logged, and every .env
    file written with `keyvault dotenv` is updated. Exit 1 if no key qualifies (each says
    why), the network failed (nothing changes), or a .env file could not be updated.

    \b
    Example:
      keyvault rotate --project work --dry-run
      keyvault rotate --due            # from cron: only projects the policy marks due
      keyvault rotate --mint --project work --grace 24
    """
    modes = [m for m, on in (("--due", due), ("--finish", finish), ("--to", to)) if on]
    if len(modes) > 1 or (mint and to) or (finish and (mint or dry_run)):
        raise UsageError("these options do not combine: " + ", ".join(modes or ["--mint", "--to"]))
    if (due or finish) and app.project_option is not None:
        raise UsageError(f"{modes[0]} covers every project; drop --project")
    if no_check and verify is not None:
        raise UsageError("--verify and --no-check do not combine")
    mode = Verify.NONE if no_check else (Verify(verify) if verify else None)
    checking = check_options(app, max_retry_wait=VERIFY_MAX_WAIT)
    rotate_options = RotateOptions(
        to=to,
        dry_run=dry_run,
        verify=mode,
        retire=retire,
        utc=utc_wanted(),
        check_options=checking,
    )
    mint_options = MintOptions(
        admin=admin,
        grace_hours=grace,
        retire=retire,
        verify=mode,
        check_options=checking,
        proxy=app.proxy,
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
    chosen = _project(app, to)
    if mint:
        return _mint(app, chosen, mint_options, dry_run=dry_run, as_json=as_json)
    from vault.rotation.rotate import rotate_project  # noqa: PLC0415

    rotation = rotate_project(app.kv, chosen, rotate_options)
    _emit(rotation.to_dict() if as_json else None, lambda: _print_rotation(rotation))
    return 0 if rotation.ok else 1


def _project(app: Context, to: str | None) -> str | None:
    if app.project_option is None and to is not None:
        return app.kv.read().find(to).project  # --to names the project too
    return app.project


def _emit(data: Any, human: Callable[[], None]) -> None:
    if data is not None:
        print_json(data)
    else:
        human()


def _due(
    app: Context,
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


def run_due_from_cli(app: Context, *, mint: bool, checked_deep: bool) -> DueReport:
    """For `check --rotate`: the policy on every project. After `check --deep` the stored
    chat results are fresh and trusted; after a plain check the candidate is verified as
    `rotate` would (the free probe cannot see exhausted credit)."""
    from vault.rotation import mint as minting  # noqa: PLC0415

    checking = check_options(app, max_retry_wait=VERIFY_MAX_WAIT)
    options = RotateOptions(
        verify=Verify.NONE if checked_deep else None, utc=utc_wanted(), check_options=checking
    )
    return minting.run_due(
        app.kv, options, MintOptions(proxy=app.proxy, check_options=checking), mint=mint
    )


def _mint(
    app: Context, project: str | None, options: MintOptions, *, dry_run: bool, as_json: bool
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
    for name, why in rotation.skipped:
        click.echo(f"  skipped {safe(name)}: {safe(why)}")
    click.echo(f"  {_cost(rotation)}")
    _print_dotenv(rotation)


def _cost(rotation: Rotation) -> str:
    """What the verification did and cost, in requests."""
    if rotation.verify == Verify.NONE:
        return "not checked now (--no-check): stored results trusted, 0 requests"
    how = "a 1-token chat completion" if rotation.verify == Verify.CHAT else "GET /models"
    cost = f"{_count(rotation.requests, 'request')}"
    if rotation.chats:
        cost += f", {_count(rotation.chats, 'chat completion')} of ~11 tokens"
    return f"checked {safe(rotation.new)} with {how}: {cost}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _print_dotenv(rotation: Rotation | MintReport) -> None:
    print_synced(rotation.dotenv)


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
        "dotenv": [d.to_dict() for d in report.dotenv],
    }


def print_due(report: DueReport, *, failures_only: bool = False) -> None:
    """Rotations and deletions on stdout; failures always on stderr (cron mails those), each
    with its reasons, and each distinct hint once at the end."""
    for project, exc in report.failures:
        warn(f"{safe(project or 'default project')}: {exc.message}")
        for detail in exc.details:
            click.echo(f"keyvault:   {safe(detail)}", err=True)
    for hint in report.hints():
        click.echo(f"keyvault: hint: {safe(hint)}", err=True)
    if failures_only:
        return
    for rotation in report.rotations:
        _print_rotation(rotation)
    for note in report.finished:
        click.echo(safe(note))
    if not (report.rotations or report.failures or report.finished):
        click.echo("no project is due for rotation")
