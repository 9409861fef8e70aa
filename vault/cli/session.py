"""`keyvault unlock/lock/status`, shell completion and the directory hook."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click

from vault.cli.context import AppContext, pass_app, print_json, safe, warn
from vault.session.unlock import Unlocker
from vault.store.keyvault import Keyvault


@click.command("unlock")
@click.option(
    "--ttl",
    default="8h",
    show_default=True,
    help="How long the session lasts (8h, 30m, 1h30m, 2d).",
)
@click.option("--idle", default=None, help="End the session after this long unused.")
@pass_app
def unlock_cmd(app: AppContext, ttl: str, idle: str | None) -> None:
    """Ask the passphrase once; later commands need none until the session ends.

    \b
    Example:
      keyvault unlock --ttl 8h --idle 1h
    """
    from vault.session import client as session  # noqa: PLC0415

    ttl_seconds = session.parse_duration(ttl)
    idle_seconds = session.parse_duration(idle) if idle else None
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
    click.echo(f"unlocked until {_when(info.expires_at)}")


@click.command("lock")
@pass_app
def lock_cmd(app: AppContext) -> None:
    """End the unlocked session now.

    \b
    Example:
      keyvault lock
    """
    from vault.session import client as session  # noqa: PLC0415

    ended = session.end(vault_home=app.paths.home)
    click.echo("locked" if ended else "no session was running")


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def status_cmd(app: AppContext, as_json: bool) -> None:
    """Show whether the vault is unlocked, and until when.

    \b
    Example:
      keyvault status
    """
    from vault.session import client as session  # noqa: PLC0415

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
    idle = f", or after idle until {data['idle_expires_at']}" if data["idle_expires_at"] else ""
    click.echo(f"unlocked until {data['expires_at']}{idle} ({app.paths.home})")


def _when(epoch: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


# --- shell integration ----------------------------------------------------------------------

HOOK_SHELLS = ["bash", "zsh", "fish"]

# Each hook runs `keyvault hook-env` only when the directory changed, so a prompt costs nothing.
HOOKS = {
    "bash": r"""_keyvault_hook() {
  local rc=$?
  if [ "${_KEYVAULT_PWD-}" != "$PWD" ]; then
    _KEYVAULT_PWD=$PWD
    eval "$(command keyvault hook-env --shell bash)"
  fi
  return $rc
}
case ";${PROMPT_COMMAND-};" in
  *";_keyvault_hook;"*) ;;
  *) PROMPT_COMMAND="_keyvault_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}" ;;
esac
""",
    "zsh": r"""_keyvault_hook() {
  if [[ "${_KEYVAULT_PWD-}" != "$PWD" ]]; then
    _KEYVAULT_PWD=$PWD
    eval "$(command keyvault hook-env --shell zsh)"
  fi
}
typeset -ag precmd_functions
if (( ! ${precmd_functions[(I)_keyvault_hook]} )); then
  precmd_functions=(_keyvault_hook $precmd_functions)
fi
""",
    "fish": r"""function _keyvault_hook --on-variable PWD
  command keyvault hook-env --shell fish | source
end
_keyvault_hook
""",
}


@click.command("hook")
@click.argument("shell", type=click.Choice(HOOK_SHELLS))
def hook_cmd(shell: str) -> None:
    """Print a shell hook that exports a project's key when you enter its folder.

    A folder belongs to a project when it (or a parent) has a .keyvault.toml with
    `project = "NAME"`. The hook works only while the vault is unlocked and never prompts.

    \b
    Example (in ~/.bashrc, ~/.zshrc, or ~/.config/fish/config.fish):
      eval "$(keyvault hook bash)"
      keyvault hook fish | source
    """
    click.echo(HOOKS[shell], nl=False)


@click.command("hook-env", hidden=True)
@click.option("--shell", type=click.Choice(HOOK_SHELLS), required=True)
@pass_app
def hook_env_cmd(app: AppContext, shell: str) -> None:
    """Statements for the hook: export on entering a project folder, unset on leaving."""
    from vault.export import OPENAI_VARIABLES  # noqa: PLC0415
    from vault.export.shells import render_exports, render_unsets  # noqa: PLC0415
    from vault.store.context import find_project_file, read_project_file  # noqa: PLC0415

    current = os.environ.get("KEYVAULT_HOOK_PROJECT")
    found = find_project_file(Path.cwd())
    project = read_project_file(found) if found else None
    if project == current:
        return
    out = []
    if current:
        out.append(render_unsets([*OPENAI_VARIABLES, "KEYVAULT_HOOK_PROJECT"], shell))
    if project:
        values = _unlocked_values(app, project)
        if values is not None:
            out.append(render_exports({**values, "KEYVAULT_HOOK_PROJECT": project}, shell))
    click.echo("".join(out), nl=False)


def _unlocked_values(app: AppContext, project: str) -> dict[str, str] | None:
    """The project's variables if the vault opens without asking anyone; else None."""
    from vault.errors import KeyvaultError  # noqa: PLC0415
    from vault.store.context import export_values  # noqa: PLC0415

    quiet = Unlocker(
        settings=app.unlocker.settings,
        ask=None,
        session=app.unlocker.session,
        warn=app.unlocker.warn,
    )
    try:
        entry = Keyvault(app.paths, quiet).read().active(project)
        return export_values(entry)
    except KeyvaultError as exc:
        warn(f"not exporting project {safe(project)}: {exc.message}")
        return None


@click.command("completion")
@click.argument("shell", type=click.Choice(HOOK_SHELLS))
def completion_cmd(shell: str) -> None:
    """Print the shell completion script.

    \b
    Example:
      keyvault completion bash > ~/.local/share/bash-completion/completions/keyvault
      keyvault completion fish > ~/.config/fish/completions/keyvault.fish
    """
    from click.shell_completion import get_completion_class  # noqa: PLC0415

    from vault.cli.main import cli  # noqa: PLC0415

    completion = get_completion_class(shell)
    if completion is None:  # pragma: no cover - click ships all three
        raise click.UsageError(f"no completion for {shell}")
    click.echo(completion(cli, {}, "keyvault", "_KEYVAULT_COMPLETE").source())
