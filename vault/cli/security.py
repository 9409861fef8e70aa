"""`keyvault scan` and `keyvault doctor`: find leaked keys, and the settings that leak them."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import click

from vault.cli.context import pass_context, print_json
from vault.cli.options import json_option
from vault.cli.report import safe, warn
from vault.errors import (
    AuthError,
    ConfigError,
    DamagedFile,
    DamagedIdentity,
    NoPassphraseSource,
    StorageError,
    UsageError,
    VaultNotFound,
)
from vault.model.document import VaultDoc
from vault.security import scan, scan_history
from vault.security.checks import needs_fixing
from vault.security.doctor import Doctor, run_git
from vault.store.config import Config
from vault.store.context import Context

IDENTITY_NAME = "your age identity"  # how a leaked AGE-SECRET-KEY of this vault is reported


@click.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--git",
    "history",
    is_flag=True,
    help="Also scan every commit of the git repository holding the first PATH.",
)
@click.option(
    "--no-vault", is_flag=True, help="Do not unlock the vault: only look for OpenAI-shaped keys."
)
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip matching paths (repeatable).")
@click.option(
    "--max-commits",
    type=click.IntRange(min=1),
    default=scan_history.MAX_COMMITS,
    show_default=True,
    help="With --git, scan at most this many commits (newest first).",
)
@json_option
@pass_context
def scan_cmd(
    app: Context,
    *,
    paths: tuple[Path, ...],
    history: bool,
    no_vault: bool,
    exclude: tuple[str, ...],
    max_commits: int,
    as_json: bool,
) -> int:
    """Find keys from the vault (and unknown OpenAI keys) in files; exit 1 when any is found.

    Prints path:line, the entry's name and the masked key, never the key. Binary files,
    files over 2 MiB and symlinks are skipped. A line holding `keyvault-scan: allow`
    silences an unknown-key report (a stored key is always reported).

    \b
    Example:
      keyvault scan . --git
      keyvault scan --no-vault src/ config/
    """
    roots = list(paths) or [Path()]
    missing = [p for p in roots if not p.exists() and not p.is_symlink()]
    if missing:  # a typo must not pass as "nothing found"
        raise UsageError(f"{missing[0]}: no such file or folder")
    matcher = scan.Matcher([]) if no_vault else _vault_matcher(app)
    report = scan.scan_paths(roots, matcher, exclude=exclude)
    if history:
        top = scan_history.git_toplevel(roots[0].absolute())
        if top is None:
            raise UsageError(f"{roots[0]} is not inside a git work tree", hint="drop --git")
        commits = scan_history.scan_git(top, matcher, max_commits=max_commits)
        report.findings += commits.findings
        report.commits, report.commits_capped = commits.commits, commits.commits_capped
    _print_scan(report, as_json)
    return 1 if report.findings else 0


def _vault_matcher(app: Context) -> scan.Matcher:
    """Every stored key (any status: a retired key in a file is still a leak), and the
    identities of the vault's recipients, recognised by their public keys."""
    try:
        doc = app.kv.read()
    except (VaultNotFound, NoPassphraseSource) as exc:
        hint = "or run `keyvault scan --no-vault` to look for OpenAI-shaped keys only"
        raise type(exc)(exc.message, hint=f"{exc.hint}; {hint}" if exc.hint else hint) from None
    mine = app.kv.unlocker.recipient(app.paths)
    identities = {
        r.recipient: IDENTITY_NAME if r.recipient == mine else f"age identity of {r.name}"
        for r in doc.recipients
    }
    secrets = [(entry.name, entry.secret) for entry in doc.entries]
    return scan.Matcher(secrets, identities=identities)


def _print_scan(report: scan.ScanReport, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "findings": [f.to_dict() for f in report.findings],
                "files": report.files,
                "skipped": report.skipped,
                "commits": report.commits,
                "commits_capped": report.commits_capped,
            }
        )
        return
    for finding in report.findings:
        click.echo(f"{safe(finding.location())}: {safe(finding.name)} ({finding.masked})")
    if report.commits_capped:
        warn(f"only the newest {report.commits} commits were scanned; raise --max-commits")
    click.echo(
        f"keyvault: scanned {report.files} files ({report.skipped} skipped)"
        + (f" and {report.commits} commits" if report.commits else "")
        + f": {len(report.findings)} found",
        err=True,
    )


@click.command("doctor")
@json_option
@pass_context
def doctor_cmd(app: Context, as_json: bool) -> int:
    """Check permissions, backups, the passphrase's cost, sessions, git and .env files.

    Exits 0 when all is well and 1 when something needs fixing; each problem comes with
    the command that fixes it.

    \b
    Example:
      keyvault doctor
    """
    config, config_problems = _settings(app)  # before _opener and app.kv, which read it
    opener, why, damage = _opener(app)
    checks = Doctor(
        paths=app.paths,
        opener=opener,
        unlock_error=why,
        identity_damage=damage,
        session_status=_session_status(app),
        environ=app.environ,
        git=run_git,
        default_base_url=config.default_base_url,
        trust=app.kv.trust,
        phone_slots=config.phone_slots,
        config_problems=config_problems,
    ).run()
    bad = needs_fixing(checks)
    if as_json:
        print_json({"ok": not bad, "checks": [c.to_dict() for c in checks]})
        return 1 if bad else 0
    for check in checks:
        label = check.level.upper() if check.level in ("warn", "fail") else str(check.level)
        click.echo(f"{label:<5} {check.area:<12} {safe(check.message)}")
        if check.fix and check.level in ("warn", "fail"):
            click.echo(f"{'':<18} fix: {safe(check.fix)}")
    problems = sum(c.level in ("warn", "fail") for c in checks)
    click.echo(f"{problems} problem(s) to fix" if bad else "all good")
    return 1 if bad else 0


def _opener(
    app: Context,
) -> tuple[Callable[[bytes], VaultDoc] | None, str | None, str | None]:
    """Unlock once (session, env or prompt); doctor goes on without the vault if it cannot.
    Also returns what was found wrong inside identity.age, when opening it found damage."""
    if not app.paths.identity.exists():
        return None, "no identity.age", None
    try:
        app.kv.unlocker.recipient(app.paths)  # a session, or the identity (env or prompt)
    except DamagedIdentity as exc:
        return None, "identity.age is damaged", exc.message
    except (AuthError, DamagedFile, VaultNotFound, StorageError) as exc:
        return None, exc.message, None
    return app.kv.open, None, None


def _session_status(app: Context) -> Callable[[], object | None] | None:
    try:
        from vault.session import client as session  # noqa: PLC0415
        from vault.session.runtime import supported  # noqa: PLC0415
    except ImportError:
        return None
    if not supported() or os.name != "posix":
        return None
    return functools.partial(session.status, vault_home=app.paths.home)


def _settings(app: Context) -> tuple[Config, list[ConfigError]]:
    """config.toml with every mistake in it, its sections checked as the commands that use
    them would (a typo in `[health]` otherwise stops only `check`). Where every other command
    stops, doctor reports each mistake as a failed check and goes on with the settings that
    are right: the context (and the vault it opens) uses those from here on."""
    from vault.security.settings import every_mistake  # noqa: PLC0415

    config, mistakes = every_mistake(app.paths.config, lambda: app.config)
    app.config = config  # Context.config is a cached_property: doctor's reading replaces it
    return config, mistakes
