"""`keyvault env/exec/dotenv/ci`: hand the active key to shells, processes, files and CI.

Every one of them exports what `Context.exported` says (vault/export/__init__.py): the same
entry and the same OPENAI_* set, and each clears the OPENAI_* variables the entry does not
set, so a key never leaves with another project's base URL, organization or project id.
`env` and `exec` are only their options here: what they do is in vault/cli/everyday.py,
which the fast dispatcher (vault/cli/fast.py) runs without click for their everyday forms.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from vault.cli import everyday, fast
from vault.cli.context import pass_context, print_table
from vault.cli.options import project_option
from vault.cli.report import safe, warn
from vault.errors import UsageError
from vault.store.context import Context


@click.command("env")
@project_option()
@click.option(
    "--shell",
    type=click.Choice(fast.SHELL_CHOICES),
    default=None,
    help="Shell syntax (default: detected from the parent process, then $SHELL).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(fast.FORMAT_CHOICES),
    default=None,
    help="Print a .env or JSON document instead of shell statements.",
)
@click.option("--unset", is_flag=True, help="Print the statements that remove the variables.")
@pass_context
def env_cmd(app: Context, shell: str | None, fmt: str | None, unset: bool) -> None:
    """Print statements that export the project's active key (OPENAI_API_KEY, …).

    OPENAI_* variables the key does not use (a base URL, say) are unset, so nothing from a
    previous project stays behind.

    \b
    Example:
      eval "$(keyvault env --project work)"          # bash, zsh
      keyvault env --shell fish | source              # fish
      keyvault env --shell powershell | Invoke-Expression
    """
    everyday.env(app, shell, fmt, unset)


# The options end at CMD: `keyvault exec gcloud --project x` gives `--project x` to gcloud,
# never to keyvault (which would export another project's key to it).
@click.command(
    "exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@project_option()
@click.option(
    "--pristine",
    is_flag=True,
    help="Start CMD from an empty environment (plus PATH, HOME, LANG, TERM).",
)
@click.option(
    "--no-masking",
    is_flag=True,
    help="Let CMD write straight to the terminal; its output is then not searched for keys.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_context
def exec_cmd(app: Context, pristine: bool, no_masking: bool, command: tuple[str, ...]) -> None:
    """Run CMD with the project's active key in its environment (never in argv).

    OPENAI_* variables the key does not use are removed from what CMD inherits. The
    project's keys in CMD's output are replaced by <concealed by keyvault>; CMD then writes
    to a pipe, not the terminal (no colours): --no-masking gives it the terminal back.

    \b
    Example:
      keyvault exec --project work -- python app.py
    """
    everyday.exec_(app, pristine, command, masking=not no_masking)


@click.command("dotenv")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@project_option()
@click.option(
    "--forget",
    is_flag=True,
    help="Stop rewriting PATH when the project's key changes (the file is left as it is).",
)
@click.option("--list", "list_", is_flag=True, help="List the .env files keyvault rewrites.")
@pass_context
def dotenv_cmd(app: Context, path: Path | None, forget: bool, list_: bool) -> None:
    """Write or update the OPENAI_* lines of a .env file, keeping every other line.

    The file is registered to the project (one project per file): every later change of
    that project's key (rotate, edit, add --activate, rm) rewrites it too, until
    `--forget` stops that.

    \b
    Example:
      keyvault dotenv .env --project work
      keyvault dotenv --list
      keyvault dotenv --forget .env
    """
    if list_ or path is None:
        if path is not None or forget or not list_:
            raise UsageError(
                "give a PATH, or --list alone",
                hint="keyvault dotenv .env, keyvault dotenv --forget .env, keyvault dotenv --list",
            )
        _list_dotenv(app)
    elif forget:
        _forget_dotenv(app, path)
    else:
        _write_dotenv(app, path)


def _write_dotenv(app: Context, path: Path) -> None:
    from vault.export.dotenv import git_tracking_warning, update_dotenv_file  # noqa: PLC0415
    from vault.store.inventory import remember_dotenv  # noqa: PLC0415

    exported = app.exported(app.kv.read())
    result = update_dotenv_file(path, exported.values)
    for message in result.warnings:
        warn(message)
    tracked = git_tracking_warning(path)
    if tracked:
        warn(tracked)
    remember_dotenv(app.kv, app.project, path)
    verb = "created" if result.created else ("updated" if result.changed else "unchanged")
    entry = exported.entry
    click.echo(f"{verb} {path} with {entry.name} ({entry.secret.masked})")


def _forget_dotenv(app: Context, path: Path) -> None:
    from vault.store.inventory import forget_dotenv  # noqa: PLC0415

    target = forget_dotenv(app.kv, path)
    project = target.project or "the default project"
    click.echo(
        f"no longer following {safe(target.path)} ({safe(project)}); the file is unchanged:"
        " delete its OPENAI_* lines yourself if it should not hold the key"
    )


def _list_dotenv(app: Context) -> None:
    from vault.model.clock import human  # noqa: PLC0415

    targets = sorted(app.kv.read().exports, key=lambda t: (t.project or "", t.path))
    if app.project_option is not None:  # --project given: only that project's files
        targets = [t for t in targets if t.project == app.project]
    if not targets:
        click.echo("no .env files are followed: `keyvault dotenv PATH` writes one and follows it")
        return
    rows = ([t.project or "(default)", t.path, human(t.added_at)] for t in targets)
    print_table(["project", "path", "since"], rows)


@click.group("ci")
def ci_cmd() -> None:
    """Hand the active key to a CI job (GitHub Actions, GitLab CI) without leaking it.

    \b
    Example:
      keyvault ci github --project work      # in a GitHub Actions step
      keyvault ci gitlab --project work      # in a GitLab CI job
    """


@ci_cmd.command("github")
@project_option()
@pass_context
def ci_github(app: Context) -> None:
    """Mask the key in the log, then append the variables to $GITHUB_ENV.

    \b
    Example (a workflow step):
      - run: keyvault ci github --project work
        env: {KEYVAULT_IDENTITY: "${{ secrets.KEYVAULT_IDENTITY }}"}
    """
    from vault.export.ci import github_env  # noqa: PLC0415

    exported = app.exported(app.kv.read())
    github_env(
        exported.values,
        ["OPENAI_API_KEY"],
        github_env_path=os.environ.get("GITHUB_ENV"),
        out=sys.stdout,
        unset=exported.unset,
        environ=os.environ,
    )


@ci_cmd.command("gitlab")
@project_option()
@click.option(
    "--output",
    default="keyvault.env",
    show_default=True,
    metavar="PATH",
    help="The dotenv report file to write.",
)
@pass_context
def ci_gitlab(app: Context, output: str) -> None:
    """Write a GitLab dotenv report (artifacts:reports:dotenv) with the variables.

    \b
    Example (.gitlab-ci.yml):
      script: [keyvault ci gitlab --project work]
      artifacts: {reports: {dotenv: keyvault.env}}
    """
    from vault.export.ci import gitlab_dotenv  # noqa: PLC0415

    exported = app.exported(app.kv.read())
    warnings = gitlab_dotenv(exported.values, output, unset=exported.unset, environ=os.environ)
    for message in warnings:
        warn(message)
    click.echo(f"wrote {output}")
