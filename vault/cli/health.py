"""`keyvault check`: probe keys, store the results, print a table; exit 5 if any is not ok."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from vault.cli.context import pass_context, print_json, print_table
from vault.cli.options import json_option, project_option, proxy_option
from vault.cli.report import safe, warn
from vault.health.checking import Checked, CheckOptions, CheckReport, run_checks, select_entries
from vault.health.model import HealthResult
from vault.store.context import Context

PROGRESS_MIN = 4  # fewer keys finish before a bar would be worth drawing
EXIT_INTERRUPTED = 130


@click.command("check")
@click.argument("names", nargs=-1)
@project_option("Check this project's keys.")
@click.option("--all", "everything", is_flag=True, help="Check every key (the default).")
@click.option("--deep", is_flag=True, help="Also send a 1-token chat completion (detects credit).")
@click.option(
    "--balance", is_flag=True, help="Also read a relay's remaining credit into credit_usd."
)
@click.option("--model", default="gpt-4o-mini", show_default=True, help="Model for --deep.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    default=64,
    show_default=True,
    help="Requests in flight at once.",
)
@proxy_option
@click.option("--rotate", is_flag=True, help="Then rotate every project the policy marks due.")
@json_option
@pass_context
def check_cmd(
    app: Context,
    *,
    names: tuple[str, ...],
    everything: bool,
    deep: bool,
    balance: bool,
    model: str,
    concurrency: int,
    rotate: bool,
    as_json: bool,
) -> int:
    """Check keys against the API and store the results; exit 5 if any key is not ok.

    Retired keys are skipped unless named. Admin keys are checked against the
    Administration API instead of the model API.

    \b
    Example:
      keyvault check --project work --deep
      keyvault check --all --rotate --json   # from cron
    """
    doc = app.kv.read()
    doc.require_project(app.project_option)
    entries = select_entries(doc, names=names, project=app.project_option, everything=everything)
    options = CheckOptions(
        deep=deep,
        balance=balance,
        model=model,
        concurrency=concurrency,
        proxy=app.proxy,
        on_result=_progress(len(entries)),
    )
    report = run_checks(app.kv, entries, options)
    _clear_progress(len(entries))
    due = None
    if rotate and not report.interrupted:
        from vault.cli.rotate import print_due, run_due_from_cli  # noqa: PLC0415

        due = run_due_from_cli(app, mint=False)
    if as_json:
        checked = [c.to_dict() for c in report.checked]
        print_json({"checked": checked, "rotate": due.to_dict()} if due else checked)
    else:
        _print_table(report)
    _print_problems(report)  # stderr, also with --json: what cron mails
    if due is not None:
        print_due(due, failures_only=as_json)
    if report.interrupted:
        warn(f"interrupted: saved {len(report.checked)} of {report.planned} results")
        return EXIT_INTERRUPTED
    return max(report.exit_code, 0 if due is None or due.ok else 1)


def _print_table(report: CheckReport) -> None:
    print_table(
        ["name", "project", "status", "latency", "models", "tier", "last ok"],
        (
            [
                c.name,
                c.project,
                c.result.status,
                _ms(c.result.latency_ms),
                c.result.models,
                _tier(c.result),
                _last_ok(c),
            ]
            for c in report.checked
        ),
    )


def _print_problems(report: CheckReport) -> None:
    for c in report.checked:
        if c.action:
            click.echo(f"{safe(c.name)}: {c.action}", err=True)
        if not c.result.ok and c.result.message:  # a server's words: neutralise control chars
            click.echo(f"{safe(c.name)}: {c.result.status}: {safe(c.result.message)}", err=True)


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def _tier(result: HealthResult) -> str:
    """Rate limits as the tier a user recognises: requests and tokens per minute."""
    limits = result.ratelimit or {}
    rpm, tpm = limits.get("limit_requests"), limits.get("limit_tokens")
    if rpm is None and tpm is None:
        return "-"
    return f"{_count(rpm)} rpm / {_count(tpm)} tpm"


def _count(value: float | None) -> str:
    if value is None:
        return "?"
    return (
        f"{value / 1e6:g}M"
        if value >= 1e6
        else (f"{value / 1e3:g}k" if value >= 1e4 else f"{value:g}")
    )


def _last_ok(checked: Checked) -> str:
    stamp = checked.last_ok_at
    return stamp[:16].replace("T", " ") if stamp else "never"


def _progress(total: int) -> Callable[[HealthResult], None] | None:
    """A bar on stderr, only for a person watching (a terminal) and more than a few keys."""
    if total < PROGRESS_MIN or not sys.stderr.isatty():
        return None
    done = [0]

    def tick(result: HealthResult) -> None:
        done[0] += 1
        filled = round(30 * done[0] / total)
        sys.stderr.write(f"\rchecking {done[0]}/{total} [{'#' * filled}{'.' * (30 - filled)}]")
        sys.stderr.flush()

    return tick


def _clear_progress(total: int) -> None:
    if total >= PROGRESS_MIN and sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 60 + "\r")
        sys.stderr.flush()
