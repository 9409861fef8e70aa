"""`keyvault check`: probe keys, store the results, print a table; exit 5 if any is not ok."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from vault.cli.context import AppContext, pass_app, print_json, print_table, safe, warn
from vault.health.checking import Checked, CheckOptions, CheckReport, run_checks, select_entries
from vault.health.model import HealthResult


def _proxy_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from vault.store.config import PROXY_HINT, is_proxy_url  # noqa: PLC0415

    if value is not None and not is_proxy_url(value):
        raise click.BadParameter(PROXY_HINT)  # never echo the URL: it may hold a password
    return value


proxy_option = click.option(
    "--proxy",
    metavar="URL",
    default=None,
    callback=_proxy_url,
    help="Proxy for the API (http://, https://, socks5://); default: proxy in config.toml,"
    " then HTTPS_PROXY/ALL_PROXY.",
)

F = TypeVar("F", bound=Callable[..., Any])
_SECONDS = click.FloatRange(min=0, max=86400, min_open=True)


def deadline_options(command: F) -> F:
    """`--timeout` (each request) and `--run-timeout` (the whole command's network work)."""
    command = click.option(
        "--run-timeout",
        type=_SECONDS,
        default=None,
        metavar="SECONDS",
        help="Give up on the network after this long in total (default: run_timeout in"
        " config.toml, else 600).",
    )(command)
    return click.option(
        "--timeout",
        type=_SECONDS,
        default=None,
        metavar="SECONDS",
        help="Give up on a request whose whole answer takes longer (default: timeout in"
        " config.toml, else 30).",
    )(command)


def deadlines(app: AppContext, timeout: float | None, run_timeout: float | None) -> CheckOptions:
    """CheckOptions with the deadlines: each option, else config.toml, else the defaults. The
    run's deadline starts now and covers every step of the command (checks, mints, rotations)."""
    config = app.kv.config
    run_seconds = run_timeout or config.run_timeout
    return CheckOptions(
        request_timeout=timeout or config.timeout,
        run_timeout=run_seconds,
        run_ends=time.monotonic() + run_seconds,
    )


PROGRESS_MIN = 4  # fewer keys finish before a bar would be worth drawing
EXIT_INTERRUPTED = 130


@click.command("check")
@click.argument("names", nargs=-1)
@click.option("--project", default=None, help="Check this project's keys.")
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
@deadline_options
@click.option("--rotate", is_flag=True, help="Then rotate every project the policy marks due.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (never the key).")
@pass_app
def check_cmd(
    app: AppContext,
    *,
    names: tuple[str, ...],
    project: str | None,
    everything: bool,
    deep: bool,
    balance: bool,
    model: str,
    concurrency: int,
    proxy: str | None,
    timeout: float | None,
    run_timeout: float | None,
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
    entries = select_entries(app.kv.read(), names=names, project=project, everything=everything)
    options = dataclasses.replace(
        deadlines(app, timeout, run_timeout),
        deep=deep,
        balance=balance,
        model=model,
        concurrency=concurrency,
        proxy=proxy,
        on_result=_progress(len(entries)),
    )
    report = run_checks(app.kv, entries, options)
    _clear_progress(len(entries))
    due = None
    if rotate and not report.interrupted:
        from vault.cli.rotate import print_due, run_due_from_cli  # noqa: PLC0415

        due = run_due_from_cli(app, mint=False, checking=options)
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
