"""`keyvault team init`, `clone`, `sync`, `trust`, and the two commands git runs for
vault.age (`merge-driver`, `textconv`, hidden): a vault shared over git (docs/team.md)."""

from __future__ import annotations

from pathlib import Path

import click

from vault.cli.context import ask_new_passphrase, pass_context, print_synced
from vault.cli.everyday import command_context
from vault.cli.options import work_factor_option
from vault.cli.report import safe, warn
from vault.errors import KeyvaultError, MergeRefused, NotTrusted, UsageError
from vault.session.identity import check_new_passphrase
from vault.store.context import Context
from vault.store.repo import VaultRepo, without_credentials
from vault.store.sync import SyncReport, sync
from vault.store.team import clone, create_identity, refuse_clone_into, team_init
from vault.store.trust import parse_pin, pin_of


@click.group("team")
def team_cmd() -> None:
    """Share this vault with other machines and people over git.

    \b
    Example:
      keyvault team init --remote git@github.com:acme/keys.git
      keyvault sync
    """


@team_cmd.command("init")
@click.option("--remote", metavar="URL", default=None, help="An empty git repository to push to.")
@pass_context
def team_init_cmd(app: Context, remote: str | None) -> None:
    """Turn this vault into a team vault: a git repository that `keyvault sync` shares.

    \b
    Example:
      keyvault team init --remote git@github.com:acme/keys.git
    """
    pushed = team_init(app.kv, VaultRepo(app.paths.home), remote=remote)
    click.echo(f"{app.paths.home} is a team vault (git repository)")
    where = f"pushed to {safe(without_credentials(remote))}" if remote else ""
    click.echo(where if pushed else "add a remote: keyvault team init --remote URL")
    click.echo("teammates join with: keyvault clone URL")


@click.command("clone")
@click.argument("url")
@work_factor_option("scrypt cost for a new identity's passphrase (default 18).")
@pass_context
def clone_cmd(app: Context, url: str, work_factor: int | None) -> None:
    """Join a team vault: clone it, make your identity, print your public key.

    A member then adds you (`keyvault recipients add NAME KEY` and `keyvault sync`), and
    your `keyvault sync` brings you a vault you can open.

    \b
    Example:
      keyvault clone git@github.com:acme/keys.git
      keyvault --vault ~/work-keys clone /srv/git/keys.git
    """
    refuse_clone_into(app.paths.home)  # before asking anything
    passphrase = ask_new_passphrase()
    check_new_passphrase(passphrase)
    made: list[str] = []

    def make_identity(folder: Path) -> None:  # in the clone, before it becomes the home
        identity = create_identity(app.kv, passphrase, log_n=work_factor, home=folder)
        made.append(identity.recipient().to_string())

    clone(url, app.paths.home, before_use=make_identity)
    click.echo(f"cloned into {app.paths.home}")
    public = made[0]
    click.echo(f"your public key: {public}")
    click.echo(f"ask a member to run: keyvault recipients add NAME {public} && keyvault sync")
    click.echo("then run: keyvault sync")


@click.command("sync")
@click.option("--offline", is_flag=True, help="Only commit this machine's changes; no network.")
@pass_context
def sync_cmd(app: Context, offline: bool) -> None:
    """Share changes: commit them, fetch, merge vault.age (no manual conflict), push.

    Never prompts without a terminal: from cron, unlock with KEYVAULT_IDENTITY_FILE or
    KEYVAULT_PASSPHRASE_FILE. Exits 1 when the remote could not be reached (your changes are
    committed here and go out with the next sync).

    \b
    Example:
      keyvault sync
      */15 * * * * KEYVAULT_IDENTITY_FILE=~/.ci-key keyvault sync
    """
    report = sync(
        app.kv, VaultRepo(app.paths.home, environ=app.environ), at=app.kv.now_iso(), offline=offline
    )
    # a clone killed before it printed the key leaves no other way to learn it
    public = None if report.member else app.kv.unlocker.recipient(app.paths)
    _print_report(report, offline=offline, public=public)


def _print_report(report: SyncReport, *, offline: bool, public: str | None = None) -> None:
    _section(f"committed here ({len(report.committed)})", report.committed)
    _section(f"in: from {report.upstream}", report.incoming)
    _section(
        f"merged: {len(report.conflicts)} conflict(s) resolved", [str(c) for c in report.conflicts]
    )
    if report.pushed:
        _section(f"out: pushed to {report.upstream}", report.outgoing or ["(no change to keys)"])
    print_synced(report.synced)
    if not report.member:
        warn(
            "your identity cannot open this vault yet: ask a member to add your public key"
            f" ({public}), then sync again"
        )
    elif offline:
        click.echo("offline: nothing fetched or pushed")
    elif not (report.incoming or report.pushed or report.committed):
        click.echo(f"up to date with {report.upstream}")


def _section(title: str, lines: list[str]) -> None:
    if lines:
        click.echo(title)
        for line in lines:
            click.echo(f"  {safe(line)}")


@click.command("trust")
@click.option(
    "--accept-rollback",
    is_flag=True,
    help="Accept vault.age though it is older than one seen here: it becomes the newest.",
)
@click.option(
    "--reset", is_flag=True, help="Forget this machine's pin; the next open trusts what it finds."
)
@click.option(
    "--expect",
    "expected",
    metavar="PIN",
    default=None,
    help="Pin a vault before its first open (a new machine).",
)
@pass_context
def trust_cmd(app: Context, accept_rollback: bool, reset: bool, expected: str | None) -> None:
    """Show or change what this machine trusts about vault.age (team pin, generation).

    Every open refuses a vault.age not written by a member (it lacks the team secret this
    machine pinned) or older than one seen here. The pin printed here can be given to a new
    machine (`--expect`) or a CI job (KEYVAULT_TEAM_PIN).

    \b
    Example:
      keyvault trust
      keyvault trust --accept-rollback
    """
    if sum((accept_rollback, reset, expected is not None)) > 1:
        raise UsageError("give one of --accept-rollback, --reset, --expect")
    trust = app.kv.trust
    if reset:
        click.echo("pin forgotten" if trust.reset() else "no pin to forget")
        return
    if expected is not None:
        trust.write(parse_pin(expected))
        click.echo("pinned: the next open refuses a vault without that team secret")
        return
    if accept_rollback:
        doc = app.kv.accept_rollback()
        click.echo(f"accepted vault.age: it is now generation {doc.generation}")
        return
    _show_trust(app)


def _show_trust(app: Context) -> None:
    trust = app.kv.trust
    try:
        doc = app.kv.read()
    except NotTrusted as exc:
        warn(f"vault.age is refused: {exc.message}")
        doc = None
    pinned = trust.pinned()
    current = pin_of(doc) if doc is not None else pinned
    click.echo(f"vault       {app.paths.home}")
    if current is None:
        click.echo("pin         none (this vault has no team record yet: its next save adds one)")
        return
    click.echo(f"vault id    {current.vault_id}")
    click.echo(f"pin         {current.text}")
    highest = pinned.generation if pinned else current.generation
    click.echo(f"generation  {highest} (the highest accepted here)")
    click.echo(f"state file  {trust.path}")
    click.echo("a new machine: keyvault trust --expect PIN; CI: KEYVAULT_TEAM_PIN=PIN")


# --- what git runs ----------------------------------------------------------------------------


@click.command("merge-driver", hidden=True)
@click.argument("base", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("ours", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("theirs", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("path", default="vault.age")
def merge_driver_cmd(base: Path, ours: Path, theirs: Path, path: str) -> None:
    """git's merge driver for vault.age (installed in .git/config by init, clone, sync).

    \b
    Example:
      git config merge.keyvault.driver "python3 -P -m vault merge-driver %O %A %B %P"
    """
    from vault.store.merging import LOCKED_HINT, merge_files  # noqa: PLC0415

    # git runs drivers at the top of the work tree: the vault home is where the file is
    app = command_context(str((Path.cwd() / path).parent))
    try:
        merged = merge_files(app.kv, base, ours, theirs, at=app.kv.now_iso())
    except KeyvaultError as exc:
        hint = exc.hint if exc.hint else LOCKED_HINT
        raise MergeRefused(f"cannot merge vault.age: {exc.message}", hint=hint) from None
    click.echo(f"keyvault: merged vault.age (generation {merged.doc.generation})", err=True)
    for conflict in merged.conflicts:
        click.echo(f"keyvault:   {safe(conflict)}", err=True)


@click.command("textconv", hidden=True)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def textconv_cmd(file: Path) -> None:
    """git's textconv for vault.age: entries line by line, secrets masked; never prompts.

    \b
    Example:
      git config diff.keyvault.textconv "python3 -P -m vault textconv"
    """
    from hashlib import blake2b  # noqa: PLC0415

    from vault.model.textview import text_view  # noqa: PLC0415
    from vault.store.context import Context as Resolved  # noqa: PLC0415

    app = Resolved(vault_home=str(Path.cwd()), interactive=False)
    data = b""
    try:
        data = file.read_bytes()
        lines = text_view(app.kv.open(data))
    except (KeyvaultError, OSError) as exc:
        reason = exc.message if isinstance(exc, KeyvaultError) else "unreadable"
        # which version this is: two versions that say the same would show no change at all
        version = f"{len(data)} bytes, digest {blake2b(data, digest_size=6).hexdigest()}"
        lines = [f"(encrypted: unlock to see) {version}", f"  {safe(reason)}"]
    click.echo("\n".join(safe(line) for line in lines))
