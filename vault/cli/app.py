"""The click application: the `keyvault` group, its global options and lazy subcommands.

Reached through `vault.cli.main.main` for every form the fast dispatcher does not run
(help, completion, errors, every other command). Subcommands live one group per module and
are imported only when used (the table is `vault.cli.main.COMMANDS`).
"""

from __future__ import annotations

import importlib

import click

from vault import __version__
from vault.cli.main import COMMANDS


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--vault",
    "vault_home",
    metavar="PATH",
    envvar="KEYVAULT_HOME",
    help="Vault folder (default: the platform data folder; env KEYVAULT_HOME).",
)
@click.version_option(__version__, prog_name="keyvault")
def cli(vault_home: str | None) -> None:
    """keyvault: an encrypted vault for OpenAI API keys, with health checks and rotation.

    \b
    Example:
      keyvault init
      printf %s "$KEY" | keyvault add main-1 --project demo --phone +447911123456
      eval "$(keyvault env --project demo)"
    """
    # the subcommand builds its Context (vault/cli/context.py: pass_context) from --vault
