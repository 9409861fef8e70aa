"""`keyvault check`: probe keys, store the results, print a table; exit 5 if any is not ok."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable

import click

from vault.cli import display
from vault.cli.context import check_options, pass_context, print_json, print_table
from vault.cli.options import (
    deadline_options,
    entry_names,
    json_option,
    project_option,
    proxy_option,
    utc_option,
)
from vault.cli.report import safe, warn
from vault.health.checking import (
    CheckReport,
    CreditChange,
    run_checks,
    select_entries,
)
from vault.health.model import HealthResult
from vault.health.policy import health_policy
from vault.model.document import Entry
from vault.store.context import Context

PROGRESS_MIN = 4  # fewer keys finish before a bar would be worth drawing
EXIT_INTERRUPTED = 130
ACTIVE_MARK = "*"


@click.command("check")
@click.argument("names", nargs=-1, shell_complete=entry_names)
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
@click.option(
    "--max-wait",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Most time one key may wait for retries (Retry-After); a key still rate-limited then"
    " is reported rate_limited with its retry time (default: [health] max_wait, else 20).",
)
@proxy_option
@deadline_options
@click.option("--rotate", is_flag=True, help="Then rotate every project the policy marks due.")
@utc_option
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
    max_wait: float | None,
    rotate: bool,
    as_json: bool,
) -> int:
    """Check keys against the API and store the results; exit 5 if any key is not ok.

    Retired keys are skipped unless named. Admin keys are checked against the
    Administration API instead of the model API. Each key that is not ok gets its
    evidence on stderr, and each status a line of advice.

    \b
    Example:
      keyvault check --project work --deep
      keyvault check --all --rotate --json   # from cron
    """
    doc = app.kv.read()
    doc.require_project(app.project_option)
    entries = select_entries(doc, names=names, project=app.project_option, everything=everything)
    progress = Progress(len(entries))
    options = check_options(
        app,
        deep=deep,
        balance=balance,
        model=model,
        concurrency=concurrency,
        max_retry_wait=max_wait if max_wait is not None else health_policy(app.config).max_wait,
        on_result=progress.tick if progress.shown else None,
        on_wait=progress.waiting if progress.shown else None,
    )
    report = run_checks(app.kv, entries, options)
    progress.clear()
    due = None
    if rotate and not report.interrupted:
        from vault.cli.rotate import print_due, run_due_from_cli  # noqa: PLC0415

        every_key_deep = deep and not names and app.project_option is None
        due = run_due_from_cli(app, mint=False, checked_deep=every_key_deep)
    if as_json:
        checked = [c.to_dict() for c in report.checked]
        print_json({"checked": checked, "rotate": due.to_dict()} if due else checked)
    else:
        _print_report(report)
    _print_problems(report, {e.id: e for e in entries})  # stderr, also with --json: cron mails it
    if due is not None:
        print_due(due, failures_only=as_json)
    if report.interrupted:
        warn(f"interrupted: saved {len(report.checked)} of {report.planned} results")
        return EXIT_INTERRUPTED
    return max(report.exit_code, 0 if due is None or due.ok else 1)


def _print_report(report: CheckReport) -> None:
    print_table(
        ["", "name", "project", "status", "latency", "models", "tier", "last ok"],
        (
            [
                ACTIVE_MARK if c.active else "",
                c.name,
                c.project,
                c.result.status,
                _ms(c.result.latency_ms),
                c.result.models,
                _tier(c.result),
                display.when(c.last_ok_at) if c.last_ok_at else "never",
            ]
            for c in report.checked
        ),
    )
    for c in report.checked:
        if c.credit is not None:
            click.echo(f"{safe(c.name)}: {_credit_change(c.credit)}")
    if report.checked:
        legend = f"; {ACTIVE_MARK} marks a project's active key" if _any_active(report) else ""
        click.echo(display.summary(c.result.status for c in report.checked) + legend)


def _any_active(report: CheckReport) -> bool:
    return any(c.active for c in report.checked)


def _credit_change(change: CreditChange) -> str:
    was = "unknown" if change.previous is None else f"${change.previous:,.2f}"
    if change.previous is not None and change.previous_source is not None:
        source = display.CREDIT_SOURCES.get(change.previous_source, change.previous_source)
        was += f" ({source} {display.when(change.previous_at)})"
    return f"credit {was} -> ${change.credit_usd:,.2f}, read from the relay now"


def _print_problems(report: CheckReport, entries: dict[str, Entry]) -> None:
    """Each key that is not ok with its evidence, then one line of advice per status."""
    for c in report.checked:
        if c.action:
            click.echo(f"{safe(c.name)}: {c.action}", err=True)
        if not c.result.ok:
            entry = entries.get(c.entry_id)
            where = entry.effective_base_url if entry is not None else None
            line = display.evidence_line(c.result, where)
            click.echo(f"{safe(c.name)}: {c.result.status}: {line}", err=True)
    advice = display.advice_lines(c.result.status for c in report.checked)
    if advice:
        click.echo("what to do:", err=True)
        for line in advice:
            click.echo(f"  {line}", err=True)


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


class Progress:
    """A bar on stderr, only for a person watching (a terminal) and more than a few keys; it
    says which keys it is waiting for, and until when, while a rate limit holds them."""

    def __init__(self, total: int, *, clock: Callable[[], dt.datetime] = dt.datetime.now) -> None:
        self.total, self.done, self.clock = total, 0, clock
        self.shown = total >= PROGRESS_MIN and sys.stderr.isatty()
        self.waits: dict[str, dt.datetime] = {}  # name → until

    def tick(self, result: HealthResult) -> None:
        self.done += 1
        self.waits.pop(result.name, None)
        self._draw()

    def waiting(self, name: str, seconds: float) -> None:
        self.waits[name] = self.clock().astimezone() + dt.timedelta(seconds=seconds)
        self._draw()

    def note(self) -> str:
        now = self.clock().astimezone()
        live = {n: u for n, u in self.waits.items() if u > now}
        if not live:
            return ""
        names = sorted(live, key=lambda n: live[n])
        shown = ", ".join(safe(n) for n in names[:3]) + (
            f" +{len(names) - 3} more" if len(names) > 3 else ""
        )
        return f" waiting for {shown} until {display.clock_time(max(live.values()))}"

    def _draw(self) -> None:
        filled = round(30 * self.done / self.total)
        bar = f"checking {self.done}/{self.total} [{'#' * filled}{'.' * (30 - filled)}]"
        sys.stderr.write(f"\r\x1b[K{bar}{self.note()}")
        sys.stderr.flush()

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
