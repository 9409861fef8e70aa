"""`keyvault unlock/lock/status`, shell completion and the directory hook."""

from __future__ import annotations

import click

from vault.cli import everyday, fast
from vault.cli.context import pass_context, print_json
from vault.cli.options import json_option
from vault.errors import UsageError, VaultNotFound
from vault.model.clock import human, iso_epoch
from vault.session.unlock import Unlocker
from vault.store.context import Context
from vault.store.keyvault import Keyvault


@click.command("unlock")
@click.option(
    "--ttl",
    default="8h",
    show_default=True,
    help="How long the session lasts (8h, 30m, 1h30m, 2d).",
)
@click.option("--idle", default=None, help="End the session after this long unused.")
@pass_context
def unlock_cmd(app: Context, ttl: str, idle: str | None) -> None:
    """Ask the passphrase once; later commands need none until the session ends.

    \b
    Example:
      keyvault unlock --ttl 8h --idle 1h
    """
    from vault.session import client as session  # noqa: PLC0415

    ttl_seconds = session.parse_duration(ttl)
    idle_seconds = session.parse_duration(idle) if idle is not None else None  # '' is a typo
    if idle_seconds is not None and idle_seconds > ttl_seconds:
        # the session ends at --ttl however busy it is: a longer --idle would never fire, and
        # whoever typed it expected the session to last while used (it does not)
        raise UsageError(
            f"--idle {idle} is longer than --ttl {ttl}: the session ends after --ttl however"
            " often it is used",
            hint=f"--idle ends an unused session before --ttl does: give one shorter than {ttl},"
            " or a longer --ttl",
        )
    # never extend a session from itself: the passphrase (or an identity) must be given again
    fresh = Unlocker(
        settings=app.unlocker.settings, ask=app.unlocker.ask, session=None, warn=app.unlocker.warn
    )
    kv = Keyvault(app.paths, fresh)
    kv.read()  # prove the identity opens this vault before caching it
    identity = fresh.identity(app.paths)
    info = session.start(
        identity.to_string(), vault_home=app.paths.home, ttl=ttl_seconds, idle=idle_seconds
    )
    unused = f", or after {idle.strip()} unused" if idle is not None else ""
    click.echo(f"unlocked until {_local(info.expires_at)}{unused}")


@click.command("lock")
@pass_context
def lock_cmd(app: Context) -> None:
    """End the unlocked session now.

    \b
    Example:
      keyvault lock
    """
    from vault.session import client as session  # noqa: PLC0415

    ended = session.end(vault_home=app.paths.home)
    click.echo("locked" if ended else "no session was running")


@click.command("status")
@json_option
@pass_context
def status_cmd(app: Context, as_json: bool) -> None:
    """Show whether the vault is unlocked, and until when.

    \b
    Example:
      keyvault status
    """
    from vault.session import client as session  # noqa: PLC0415

    if not app.kv.exists():
        raise VaultNotFound(f"no vault in {app.paths.home}", hint="create one with `keyvault init`")
    info = session.status(vault_home=app.paths.home)
    data = {
        "vault": str(app.paths.home),
        "unlocked": info is not None,
        "expires_at": _when(info.expires_at) if info else None,
        "idle_expires_at": _when(info.idle_expires_at) if info and info.idle_expires_at else None,
        "agent_pid": info.pid if info else None,
    }
    if as_json:
        print_json(data)
        return
    if info is None:
        click.echo(f"locked ({app.paths.home})")
        return
    idle = f", or after idle until {_local(info.idle_expires_at)}" if info.idle_expires_at else ""
    click.echo(f"unlocked until {_local(info.expires_at)}{idle} ({app.paths.home})")


def _when(epoch: float) -> str:
    return iso_epoch(epoch)


def _local(epoch: float) -> str:
    return human(iso_epoch(epoch), seconds=True)


# --- shell integration ----------------------------------------------------------------------


@click.command("hook")
@click.argument("shell", type=click.Choice(fast.HOOK_SHELL_CHOICES))
def hook_cmd(shell: str) -> None:
    """Print a shell hook that exports a project's key when you enter its folder.

    A folder belongs to a project when it (or a parent) has a .keyvault.toml with
    `project = "NAME"`. Leaving the folder gives you back your own OPENAI_* variables. The
    hook works only while the vault is unlocked and never prompts. A change of folder costs
    no process: keyvault runs only when the project file, the vault or the session changed.

    \b
    Example (in ~/.bashrc, ~/.zshrc, or ~/.config/fish/config.fish):
      eval "$(keyvault hook bash)"
      keyvault hook fish | source
    """
    from vault.export.hook_scripts import HOOK_SCRIPTS  # noqa: PLC0415

    click.echo(HOOK_SCRIPTS[shell], nl=False)


@click.command("hook-env", hidden=True)
@click.option("--shell", type=click.Choice(fast.HOOK_SHELL_CHOICES), required=True)
@pass_context
def hook_env_cmd(app: Context, shell: str) -> None:
    """Statements for the hook: export on entering a project folder, restore on leaving."""
    everyday.hook_env(app, shell)


COMPLETION_SHELLS = ("bash", "zsh", "fish")  # the shells click's completion supports


COMPLETION_INSTALL = {
    "bash": "keyvault completion bash > ~/.local/share/bash-completion/completions/keyvault",
    "zsh": 'keyvault completion zsh > "${fpath[1]}/_keyvault"',
    "fish": "keyvault completion fish > ~/.config/fish/completions/keyvault.fish",
}


@click.command("completion")
@click.argument("shell", type=click.Choice(COMPLETION_SHELLS), required=False)
def completion_cmd(shell: str | None) -> None:
    """Print the shell completion script (commands, options, entry and project names).

    Names complete only while the vault is unlocked (`keyvault unlock`); when it is locked,
    completion offers no names and never asks for the passphrase.

    \b
    Example:
      keyvault completion bash > ~/.local/share/bash-completion/completions/keyvault
      keyvault completion fish > ~/.config/fish/completions/keyvault.fish
    """
    from click.shell_completion import get_completion_class  # noqa: PLC0415

    from vault.cli.app import cli  # noqa: PLC0415

    if shell is None:
        # on stderr and failing: `eval "$(keyvault completion)"` must not run these lines
        for name, line in COMPLETION_INSTALL.items():
            click.echo(f"  {name.ljust(5)} {line}", err=True)
        raise UsageError("name a shell: bash, zsh or fish (install lines above)")
    completion = get_completion_class(shell)
    if completion is None:  # pragma: no cover - click ships all three
        raise click.UsageError(f"no completion for {shell}")
    click.echo(completion(cli, {}, "keyvault", "_KEYVAULT_COMPLETE").source())
