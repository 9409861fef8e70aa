"""`keyvault env/exec/dotenv/ci`: hand the active key to shells, processes, files and CI.

This is the hot path (`eval "$(keyvault env)"` runs in every new shell): it imports nothing
from the health checker or httpx.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from vault.cli.context import AppContext, pass_app, warn
from vault.errors import UsageError
from vault.export import OPENAI_VARIABLES
from vault.model.document import Entry
from vault.store.context import active_export, resolve_project

SHELL_CHOICES = ["bash", "zsh", "sh", "fish", "powershell", "cmd"]


def _active(app: AppContext, project: str | None) -> tuple[Entry, dict[str, str]]:
    chosen = resolve_project(project, Path.cwd(), app.kv.config)
    return active_export(app.kv.read(), chosen)


@click.command("env")
@click.option("--project", default=None, help="Project (default: .keyvault.toml, then config).")
@click.option(
    "--shell",
    type=click.Choice(SHELL_CHOICES),
    default=None,
    help="Shell syntax (default: detected from the parent process, then $SHELL).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dotenv", "json"]),
    default=None,
    help="Print a .env or JSON document instead of shell statements.",
)
@click.option("--unset", is_flag=True, help="Print the statements that remove the variables.")
@pass_app
def env_cmd(
    app: AppContext, project: str | None, shell: str | None, fmt: str | None, unset: bool
) -> None:
    """Print statements that export the project's active key (OPENAI_API_KEY, …).

    \b
    Example:
      eval "$(keyvault env --project work)"          # bash, zsh
      keyvault env --shell fish | source              # fish
      keyvault env --shell powershell | Invoke-Expression
    """
    from vault.export import shells  # noqa: PLC0415

    if fmt and (shell or unset):
        raise UsageError("--format cannot be combined with --shell or --unset")
    if not fmt:
        shell = shell or shells.detect_shell(os.environ, shells.parent_process_name())
    if unset:
        click.echo(shells.render_unsets(OPENAI_VARIABLES, shell or "bash"), nl=False)
        return
    _, values = _active(app, project)
    text = (
        shells.render_format(values, fmt) if fmt else shells.render_exports(values, shell or "bash")
    )
    sys.stdout.write(text)
    sys.stdout.flush()


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.option("--project", default=None, help="Project (default: .keyvault.toml, then config).")
@click.option(
    "--pristine",
    is_flag=True,
    help="Start CMD from an empty environment (plus PATH, HOME, LANG, TERM).",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_app
def exec_cmd(
    app: AppContext, project: str | None, pristine: bool, command: tuple[str, ...]
) -> None:
    """Run CMD with the project's active key in its environment (never in argv).

    \b
    Example:
      keyvault exec --project work -- python app.py
    """
    from vault.export.process import exec_with_env  # noqa: PLC0415

    _, values = _active(app, project)
    exec_with_env(list(command), values, pristine=pristine, environ=os.environ)


@click.command("dotenv")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--project", default=None, help="Project (default: .keyvault.toml, then config).")
@pass_app
def dotenv_cmd(app: AppContext, path: Path, project: str | None) -> None:
    """Write or update the OPENAI_* lines of a .env file, keeping every other line.

    The path is remembered, so `keyvault rotate` updates this file too.

    \b
    Example:
      keyvault dotenv .env --project work
    """
    from vault.export.dotenv import git_tracking_warning, update_dotenv_file  # noqa: PLC0415
    from vault.export.targets import remember_dotenv  # noqa: PLC0415

    chosen = resolve_project(project, Path.cwd(), app.kv.config)
    entry, values = active_export(app.kv.read(), chosen)
    result = update_dotenv_file(path, values)
    for message in result.warnings:
        warn(message)
    tracked = git_tracking_warning(path)
    if tracked:
        warn(tracked)
    remember_dotenv(app.kv, chosen, path.absolute())
    verb = "created" if result.created else ("updated" if result.changed else "unchanged")
    click.echo(f"{verb} {path} with {entry.name} ({entry.secret.masked})")


@click.group("ci")
def ci_cmd() -> None:
    """Hand the active key to a CI job (GitHub Actions, GitLab CI) without leaking it.

    \b
    Example:
      keyvault ci github --project work      # in a GitHub Actions step
      keyvault ci gitlab --project work      # in a GitLab CI job
    """


@ci_cmd.command("github")
@click.option("--project", default=None, help="Project (default: .keyvault.toml, then config).")
@pass_app
def ci_github(app: AppContext, project: str | None) -> None:
    """Mask the key in the log, then append the variables to $GITHUB_ENV.

    \b
    Example (a workflow step):
      - run: keyvault ci github --project work
        env: {KEYVAULT_IDENTITY: "${{ secrets.KEYVAULT_IDENTITY }}"}
    """
    from vault.export.ci import github_env  # noqa: PLC0415

    _, values = _active(app, project)
    github_env(
        values, ["OPENAI_API_KEY"], github_env_path=os.environ.get("GITHUB_ENV"), out=sys.stdout
    )


@ci_cmd.command("gitlab")
@click.option("--project", default=None, help="Project (default: .keyvault.toml, then config).")
@click.option(
    "--output",
    default="keyvault.env",
    show_default=True,
    metavar="PATH",
    help="The dotenv report file to write.",
)
@pass_app
def ci_gitlab(app: AppContext, project: str | None, output: str) -> None:
    """Write a GitLab dotenv report (artifacts:reports:dotenv) with the variables.

    \b
    Example (.gitlab-ci.yml):
      script: [keyvault ci gitlab --project work]
      artifacts: {reports: {dotenv: keyvault.env}}
    """
    from vault.export.ci import gitlab_dotenv  # noqa: PLC0415

    _, values = _active(app, project)
    for message in gitlab_dotenv(values, output):
        warn(message)
    click.echo(f"wrote {output}")
