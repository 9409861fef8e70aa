"""The `keyvault` command: global options, lazy subcommands, and the one place errors print.

Subcommands live one group per module and are imported only when used, so `keyvault env`
never pays for the health checker's imports.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from vault import __version__
from vault.cli.options import VAULT_OPTION
from vault.errors import EXIT_USAGE, KeyvaultError, UsageError

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
            _silence_stdout()
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


def harden_process() -> None:
    """Private files whatever the umask; no core dumps that could hold a secret."""
    os.umask(0o077)
    try:
        import resource  # noqa: PLC0415 - POSIX only

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    if sys.platform.startswith("linux"):
        _linux_not_dumpable()


def _linux_not_dumpable() -> None:
    # PR_SET_DUMPABLE 0 also stops other processes of the same user reading /proc/PID/mem
    # without ptrace rights.
    try:
        import ctypes  # noqa: PLC0415

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


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


def main(argv: list[str] | None = None) -> None:
    """Entry point: harden the process, run the CLI, exit with its code."""
    harden_process()
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:  # noqa: PLR0911 - one exit code per failure
    """Run one command and return its exit code, turning every expected failure into a
    one-line message (tests call this in-process; `main` is the process entry point)."""
    try:
        code = cli.main(args=argv, prog_name="keyvault", standalone_mode=False)
        sys.stdout.flush()  # here, where a reader that left (`| head -1`) can be caught
    except KeyvaultError as exc:
        report(exc)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("keyvault: error: interrupted", err=True)
        return 130
    except click.exceptions.NoArgsIsHelpError as exc:
        # bare `keyvault`: the help is what the user wants to see, on stdout
        click.echo(exc.ctx.get_help())
        return 0
    except click.ClickException as exc:
        message = exc.format_message()
        usage = getattr(exc, "ctx", None)
        click.echo(f"keyvault: error: {_house_style(_shown(message))}", err=True)
        if usage is not None:
            click.echo(f"keyvault: hint: see `{usage.command_path} --help`", err=True)
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except BrokenPipeError:
        # the last buffered output met a reader that left (see LazyGroup.invoke)
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        click.echo("keyvault: error: interrupted", err=True)
        return 130
    except OSError as exc:
        # e.g. `keyvault get NAME > /dev/full`: the library raised nothing, the output failed;
        # an error that names a file is about that file, not the output
        reason = (exc.strerror or type(exc).__name__).lower()
        what = (
            f"{exc.filename}: {reason}" if exc.filename else f"cannot write the output ({reason})"
        )
        click.echo(f"keyvault: error: {what}", err=True)
        return 1
    # commands return an exit code when success is not simply 0 (`check` exits 5)
    return code if isinstance(code, int) else 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the output still buffered is dropped, not an error."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def report(exc: KeyvaultError) -> None:
    click.echo(f"keyvault: error: {_shown(exc.message)}", err=True)
    for detail in exc.details:
        click.echo(f"keyvault:   {_shown(detail)}", err=True)
    if exc.hint:
        click.echo(f"keyvault: hint: {_shown(exc.hint)}", err=True)


def _shown(text: Any) -> str:
    """One line, with anything key-shaped masked: messages quote what the user typed (a
    name, a project), and a key pasted there must not reach a terminal or a CI log."""
    from vault.model.shapes import hide_secrets  # noqa: PLC0415 - only when reporting

    return hide_secrets(_first_line(text))


def _house_style(message: str) -> str:
    """Click's messages ("No such option '-q'.") in our style: lower case, no final period."""
    if message[:2].istitle():  # "No…" but not an acronym or a quoted NAME
        message = message[0].lower() + message[1:]
    return message.removesuffix(".")


def _first_line(text: Any) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else "unknown error"
