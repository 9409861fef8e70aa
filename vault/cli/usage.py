"""`keyvault usage`: spend per project and per key from the Administration API."""

from __future__ import annotations

import click

from vault.cli.context import pass_context, print_json, print_table
from vault.cli.options import json_option, project_option, proxy_option
from vault.cli.report import safe
from vault.store.context import Context

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
@json_option
@pass_context
def usage_cmd(app: Context, days: int, admin: str | None, as_json: bool) -> None:
    """Show spend per project and per key from the Administration API (needs an admin key).

    \b
    Example:
      keyvault usage --days 7
    """
    from vault.rotation.usage import usage_report  # noqa: PLC0415

    project = app.project_option
    report = usage_report(
        app.kv, project, days, every_project=project is None, admin=admin, proxy=app.proxy
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
