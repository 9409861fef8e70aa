"""`keyvault init`, `passwd` and `identity`: creating and guarding the owner's identity."""

from __future__ import annotations

from pathlib import Path

import click

from vault.cli.context import ask_new_passphrase, pass_context
from vault.cli.options import work_factor_option
from vault.cli.report import safe, warn_if_output_is_shared
from vault.errors import UsageError
from vault.model.validate import check_name
from vault.session.identity import check_new_passphrase
from vault.store.context import Context
from vault.store.files import write_new_private


@click.command("init")
@work_factor_option("scrypt cost for the passphrase (default 18, ~0.5 s).")
@click.option(
    "--name",
    "owner",
    metavar="NAME",
    default="owner",
    help="Your name as a member (default: owner); teammates see it in `recipients list`.",
)
@click.option("--git", "as_team", is_flag=True, help="Make it a team vault (a git repository).")
@click.option(
    "--remote", metavar="URL", default=None, help="With --git: an empty repository to push to."
)
@pass_context
def init_cmd(
    app: Context, work_factor: int | None, owner: str, as_team: bool, remote: str | None
) -> None:
    """Create a new identity and an empty vault (the passphrase is asked twice).

    \b
    Example:
      keyvault init
      KEYVAULT_HOME=~/work-keys keyvault init
      keyvault init --name alice --git --remote git@github.com:acme/keys.git
    """
    if remote is not None and not as_team:
        raise UsageError("--remote needs --git")
    check_name(owner, "member name")
    app.kv.refuse_overwrite()  # before asking anything
    passphrase = ask_new_passphrase()
    check_new_passphrase(passphrase)
    finishing = app.kv.interrupted_init() is not None
    identity = app.kv.init(passphrase, log_n=work_factor, owner=owner)
    click.echo(f"created {app.paths.vault}")
    if finishing:
        click.echo("finished an interrupted init: the identity.age already here opens it")
    click.echo(f"your public key: {identity.recipient().to_string()}")
    click.echo("recover without keyvault: age -d -i identity.age vault.age")
    if as_team:
        from vault.store.repo import VaultRepo, without_credentials  # noqa: PLC0415
        from vault.store.team import team_init  # noqa: PLC0415

        pushed = team_init(app.kv, VaultRepo(app.paths.home), remote=remote, new_vault=True)
        where = f"pushed to {safe(without_credentials(remote))}" if remote else ""
        click.echo("a team vault: " + (where if pushed else "no remote yet"))
        click.echo("teammates join with: keyvault clone URL")


@click.command("passwd")
@work_factor_option("scrypt cost for the new passphrase (default 18).")
@pass_context
def passwd_cmd(app: Context, work_factor: int | None) -> None:
    """Change the passphrase that protects your identity (the vault is not rewritten).

    \b
    Example:
      keyvault passwd
    """
    app.kv.unlocker.identity(app.paths)  # prove the current passphrase first
    new = ask_new_passphrase(env_prefix="KEYVAULT_NEW_PASSPHRASE")
    app.kv.change_passphrase(new, log_n=work_factor)
    click.echo("passphrase changed")


@click.group("identity")
def identity_cmd() -> None:
    """Show or export the identity that opens the vault.

    \b
    Example:
      keyvault identity public
    """


@identity_cmd.command("public")
@pass_context
def identity_public(app: Context) -> None:
    """Print the vault's recipients (public keys; safe to share).

    \b
    Example:
      keyvault identity public
    """
    for recipient in app.kv.read().recipients:
        click.echo(f"{recipient.recipient}  {safe(recipient.name)}")


@identity_cmd.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write it to FILE, created 0600 (an existing FILE is refused).",
)
@pass_context
def identity_export(app: Context, output: Path | None) -> None:
    """Print your secret identity (AGE-SECRET-KEY-1…) for `age -d -i`; keep it safe.

    \b
    Example:
      keyvault identity export -o key.txt && age -d -i key.txt ~/.local/share/keyvault/vault.age
    """
    identity = app.kv.unlocker.identity(app.paths)
    if output is not None:
        write_new_private(output, (identity.to_string() + "\n").encode())
        click.echo(f"wrote {safe(output)} (0600)")
        return
    warn_if_output_is_shared("your secret identity", "next time, use --output FILE")
    click.echo(identity.to_string())
