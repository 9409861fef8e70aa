"""The click application: the `keyvault` group, its global options and lazy subcommands.

Reached through `vault.cli.main.main` for every form the fast dispatcher does not run
(help, completion, errors, every other command). Subcommands live one group per module and
are imported only when used (the table is `COMMANDS`).
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from vault import __version__
from vault.cli.options import VAULT_OPTION
from vault.cli.report import silence_stdout
from vault.errors import UsageError

# command name → "module:attribute"; the table is the whole command surface
COMMANDS = {
    "init": "vault.cli.setup:init_cmd",
    "passwd": "vault.cli.setup:passwd_cmd",
    "identity": "vault.cli.setup:identity_cmd",
    "add": "vault.cli.inventory:add_cmd",
    "import": "vault.cli.imports:import_cmd",
    "list": "vault.cli.views:list_cmd",
    "cards": "vault.cli.views:cards_cmd",
    "show": "vault.cli.inventory:show_cmd",
    "get": "vault.cli.inventory:get_cmd",
    "edit": "vault.cli.inventory:edit_cmd",
    "rm": "vault.cli.inventory:rm_cmd",
    "phones": "vault.cli.views:phones_cmd",
    "log": "vault.cli.views:log_cmd",
    "env": "vault.cli.export:env_cmd",
    "exec": "vault.cli.export:exec_cmd",
    "dotenv": "vault.cli.export:dotenv_cmd",
    "ci": "vault.cli.export:ci_cmd",
    "recipients": "vault.cli.recipients:recipients_cmd",
    "unlock": "vault.cli.session:unlock_cmd",
    "lock": "vault.cli.session:lock_cmd",
    "status": "vault.cli.session:status_cmd",
    "hook": "vault.cli.session:hook_cmd",
    "hook-env": "vault.cli.session:hook_env_cmd",
    "completion": "vault.cli.session:completion_cmd",
    "check": "vault.cli.health:check_cmd",
    "rotate": "vault.cli.rotate:rotate_cmd",
    "usage": "vault.cli.usage:usage_cmd",
    "scan": "vault.cli.security:scan_cmd",
    "doctor": "vault.cli.security:doctor_cmd",
    "team": "vault.cli.team:team_cmd",
    "clone": "vault.cli.team:clone_cmd",
    "sync": "vault.cli.team:sync_cmd",
    "trust": "vault.cli.team:trust_cmd",
    "merge-driver": "vault.cli.team:merge_driver_cmd",
    "textconv": "vault.cli.team:textconv_cmd",
}


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
        _accept_vault_option(command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # `keyvault list --json | head -1`: the reader took what it wanted and left. That
            # is success (also under `set -o pipefail`); caught here, before click's own
            # handler turns it into exit 1
            silence_stdout()
            raise click.exceptions.Exit(0) from None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and name not in COMMANDS and not name.startswith("-") and not ctx.resilient_parsing:
            from vault.model.document import did_you_mean  # noqa: PLC0415 - error path only

            close = did_you_mean(name, sorted(COMMANDS))
            raise UsageError(
                f"no such command {name!r}",
                hint=close if close and close.startswith("did") else "see `keyvault --help`",
            )
        return super().resolve_command(ctx, args)


def _accept_vault_option(command: click.Command) -> None:
    """`--vault` after the subcommand too (`keyvault list --vault ~/work-keys`): it feeds the
    same Context as the global option (vault/cli/context.py: pass_context)."""
    if not any(p.name == VAULT_OPTION.name for p in command.params):
        command.params.append(VAULT_OPTION)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _accept_vault_option(sub)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--vault",
    "vault_home",
    metavar="PATH",
    envvar="KEYVAULT_HOME",
    help="Vault folder (default: the platform data folder; env KEYVAULT_HOME); also accepted"
    " after the subcommand.",
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
