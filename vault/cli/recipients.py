"""`keyvault recipients list|add|rm|new-ci`: who else can open the vault."""

from __future__ import annotations

import click

from vault.cli.context import pass_context, print_json, print_table
from vault.cli.options import json_option
from vault.cli.report import safe, warn_if_output_is_shared
from vault.store import recipients as lib
from vault.store.context import Context


@click.group("recipients")
def recipients_cmd() -> None:
    """Manage who can open the vault: CI identities and teammates (age public keys).

    \b
    Example:
      keyvault recipients new-ci github-actions
      keyvault recipients list
    """


@recipients_cmd.command("list")
@json_option
@pass_context
def recipients_list(app: Context, as_json: bool) -> None:
    """List the vault's recipients.

    \b
    Example:
      keyvault recipients list
    """
    rows = lib.list_recipients(app.kv.read())
    if as_json:
        print_json([{"name": r.name, "recipient": r.recipient} for r in rows])
        return
    print_table(["name", "recipient"], ([r.name, r.recipient] for r in rows))


@recipients_cmd.command("add")
@click.argument("name")
@click.argument("public_key", metavar="AGE_PUBLIC_KEY")
@pass_context
def recipients_add(app: Context, name: str, public_key: str) -> None:
    """Seal the vault to one more age public key (age1…).

    \b
    Example:
      keyvault recipients add alice age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
    """
    added = lib.add_recipient(app.kv, name, public_key)
    click.echo(f"added recipient {added.name} ({added.recipient})")
    if (app.paths.home / ".git").exists():
        click.echo("share it with the team: keyvault sync")


@recipients_cmd.command("rm")
@click.argument("name")
@pass_context
def recipients_rm(app: Context, name: str) -> None:
    """Remove a member: re-encrypt the vault (and its backup) without them.

    The team secret is rotated, so nothing they write is accepted any more. Keys they could
    already read are not revoked by this: the keys and what to run for each are printed.

    \b
    Example:
      keyvault recipients rm old-ci
    """
    from vault.rotation.members import remove_member  # noqa: PLC0415

    exposed = remove_member(app.kv, name)
    click.echo(f"removed {safe(exposed.member.name)}; the vault was re-encrypted without them")
    click.echo("the team secret was rotated: a vault they write is refused from now on")
    if exposed.keys:
        click.echo(f"they could read {len(exposed.keys)} key(s):")
        for entry in exposed.keys:
            where = f" ({safe(entry.project)})" if entry.project else ""
            click.echo(f"  {safe(entry.name)}{where} {entry.secret.masked} {entry.status.value}")
        click.echo("replace them:")
        for step in exposed.steps:
            click.echo(f"  {safe(step)}")
    if (app.paths.home / ".git").exists():
        click.echo("then share the removal: keyvault sync")


@recipients_cmd.command("new-ci")
@click.argument("name")
@pass_context
def recipients_new_ci(app: Context, name: str) -> None:
    """Create an identity for a CI job, add it, and print its secret once.

    Store the printed AGE-SECRET-KEY-1… as a CI secret named KEYVAULT_IDENTITY.

    \b
    Example:
      keyvault recipients new-ci github-actions | gh secret set KEYVAULT_IDENTITY
    """
    recipient, identity = lib.new_ci_identity(app.kv, name)
    click.echo(f"added recipient {recipient.name} ({recipient.recipient})", err=True)
    click.echo("store this as the CI secret KEYVAULT_IDENTITY; it is not shown again:", err=True)
    warn_if_output_is_shared("the CI identity")
    click.echo(identity.to_string())
