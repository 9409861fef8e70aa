"""`keyvault usage`: spend per project, per day and per key from the Administration API."""

from __future__ import annotations

import os
import sys

import click

from vault.cli.context import pass_context, print_json, print_table
from vault.cli.options import deadline_options, json_option, project_option, proxy_option
from vault.cli.report import safe
from vault.store.context import Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault.rotation.usage import UsageReport

BAR_WIDTH = 30


@click.command("usage")
@project_option("Only this project (default: every project).")
@click.option(
    "--days",
    type=click.IntRange(1, 180),
    default=30,
    show_default=True,
    help="How many days back to count.",
)
@click.option("--admin", metavar="NAME", default=None, help="Admin key to ask with.")
@proxy_option
@deadline_options
@json_option
@pass_context
def usage_cmd(app: Context, days: int, admin: str | None, as_json: bool) -> None:
    """Show spend per project, a bar chart per day, and spend per key (needs an admin key).

    Bars are coloured on a terminal unless NO_COLOR is set.

    \b
    Example:
      keyvault usage --days 7
    """
    from vault.rotation.usage import usage_report  # noqa: PLC0415

    project = app.project_option
    report = usage_report(
        app.kv,
        project,
        days,
        every_project=project is None,
        admin=admin,
        proxy=app.proxy,
        request_timeout=app.request_timeout,
        run_timeout=app.run_timeout,
    )
    if as_json:
        print_json(report.to_dict())
        return
    click.echo(f"spend {report.start[:10]} .. {report.end[:10]} UTC: ${report.total_usd:,.2f}")
    top = max((p.spend_usd for p in report.projects), default=0.0) or 1.0
    for p in report.projects:
        label = safe(report.project_label(p.project_id))[:24].ljust(24)
        click.echo(f"{label} {_bar(p.spend_usd, top)} ${p.spend_usd:,.2f}")
    _print_days(report)
    if report.keys:
        click.echo("")
        print_table(
            ["key", "project", "spend", "credit", "left (est.)"],
            (
                [
                    k.name or k.api_key_id,
                    report.project_label(k.project_id),
                    _usd(k.spend_usd),
                    _usd(k.credit_usd),
                    _usd(k.remaining_usd),
                ]
                for k in report.keys
            ),
        )


def _print_days(report: UsageReport) -> None:
    if not report.daily:
        return
    click.echo("")
    click.echo("per day (UTC):")
    top = max(d.spend_usd for d in report.daily) or 1.0
    for day in report.daily:
        click.echo(
            f"{day.day[5:]}  {_bar(day.spend_usd, top).ljust(BAR_WIDTH)} ${day.spend_usd:,.2f}"
        )


def _bar(value: float, top: float, *, pad: bool = False) -> str:
    """A bar of `█` scaled to `top` (`#` where the terminal cannot show `█`), coloured only
    on a terminal and never with NO_COLOR (https://no-color.org); `pad` fills it to the full
    width with spaces so the amounts line up."""
    block = "█" if _encodes("█") else "#"
    bar = block * max(1, round(BAR_WIDTH * value / top)) if value > 0 else ""
    filler = " " * (BAR_WIDTH - len(bar)) if pad else ""
    if bar and not os.environ.get("NO_COLOR") and sys.stdout.isatty():
        bar = click.style(bar, fg="green")
    return bar + filler


def _encodes(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"
