"""What `env`, `get`, `exec` and `hook-env` do once their options are parsed.

Two parsers call these: the click commands (vault/cli/export.py, inventory.py, session.py)
and the fast dispatcher (vault/cli/fast.py), which runs the everyday forms without importing
click. Both hand over the same values and both build the `Context` through `command_context`,
so a change here (or in the library functions these call) applies to both, and
tests/cli/test_fast_path.py proves they print the same bytes. Nothing here imports click;
output goes straight to `sys.stdout`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from vault.cli.output import stdout, write_bytes, write_text
from vault.cli.report import safe, warn, warn_if_output_is_shared
from vault.errors import KeyvaultError, UsageError
from vault.export import EXEC_MARKER, OPENAI_VARIABLES
from vault.store.context import Context, folder_project

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault.export.hook import HookChange


def command_context(
    vault_home: str | None,
    project_option: str | None = None,
    proxy_option: str | None = None,
    *,
    timeout_option: float | None = None,
    run_timeout_option: float | None = None,
) -> Context:
    """The invocation's Context from `--vault` and the command's options: the one place a
    Context is built from the command line, for click and the fast path alike."""
    return Context(
        vault_home=vault_home,
        project_option=project_option,
        proxy_option=proxy_option,
        timeout_option=timeout_option,
        run_timeout_option=run_timeout_option,
        warn=warn,
    )


def env(app: Context, shell: str | None, fmt: str | None, unset: bool) -> None:
    """`keyvault env`: unset what the project does not set, then export what it does."""
    from vault.export import shells  # noqa: PLC0415

    if fmt and (shell or unset):
        raise UsageError("--format cannot be combined with --shell or --unset")
    if not fmt:
        shell = shell or shells.detect_shell(os.environ, shells.parent_process_name())
        if not unset and stdout().isatty():
            how = "keyvault env | source" if shell == "fish" else 'eval "$(keyvault env)"'
            warn(f"these lines are for your shell to run, not to read: {how}")
    if unset:
        write_text(shells.render_unsets(OPENAI_VARIABLES, shell or "bash"))
        return
    chosen = app.exported(app.kv.read())
    warn_if_output_is_shared("the key", "or let keyvault keep it: keyvault dotenv FILE (0600)")
    if fmt:
        text = shells.render_format(chosen.values, fmt)
    else:
        shell = shell or "bash"
        text = shells.render_unsets(chosen.unset, shell) + shells.render_exports(
            chosen.values, shell
        )
    write_text(text)


def get(app: Context, name: str | None) -> None:
    """`keyvault get`: a raw key on stdout, by name or a project's active key."""
    if name and app.project_option is not None:
        raise UsageError("give a NAME or --project, not both")
    doc = app.kv.read()
    entry = doc.find(name) if name else app.exported(doc).entry
    warn_if_output_is_shared("the key")
    write_bytes(entry.secret.reveal().encode("utf-8") + b"\n")


def exec_(app: Context, pristine: bool, command: Sequence[str], *, masking: bool = True) -> None:
    """`keyvault exec`: run COMMAND with the project's variables, without the others; with
    `masking`, the project's keys in its output are replaced (vault/export/masking.py)."""
    from vault.export.process import exec_with_env, refuse_nesting  # noqa: PLC0415

    refuse_nesting(os.environ)  # before the vault opens: a nested one has nothing to open it
    doc = app.kv.read()
    chosen = app.exported(doc)
    inherited = {k: v for k, v in os.environ.items() if k not in chosen.unset}
    mask: tuple[str, ...] = ()
    if masking:
        from vault.export.masking import project_secrets  # noqa: PLC0415

        mask = tuple(project_secrets(doc.in_project(chosen.entry.project)))
    exec_with_env(list(command), chosen.values, pristine=pristine, environ=inherited, mask=mask)


def hook_env(app: Context, shell: str) -> None:
    """`keyvault hook-env`: export on entering a project folder, restore on leaving, and
    tell the hook which socket to watch for the session (vault/export/hook_scripts.py)."""
    from vault.export.hook_scripts import (  # noqa: PLC0415
        CONFIG_VARIABLE,
        SOCKET_VARIABLE,
        VAULT_VARIABLE,
    )
    from vault.export.shells import (  # noqa: PLC0415
        render_exports,
        render_shell_variables,
        render_unsets,
    )
    from vault.session.runtime import watched_socket_path  # noqa: PLC0415

    change = _hook_change(app)
    watch = {
        SOCKET_VARIABLE: watched_socket_path(app.paths.home),
        VAULT_VARIABLE: str(app.paths.vault.absolute()),  # the shell will leave this folder
        CONFIG_VARIABLE: str(app.paths.config.absolute()),
    }
    writable, unwritable = _writable(change.set)
    text = render_unsets([*change.unset, *unwritable], shell) + render_exports(writable, shell)
    write_text(text + render_shell_variables(watch, shell))


def _writable(values: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The values a shell can be given, and the names of those it cannot (unset instead).

    The user's own value comes back from the environment, where it may hold bytes that are
    not UTF-8: refusing it failed the whole `hook-env`, and leaving a project then kept the
    project's key. Unset, with a warning naming the variable, it is at least not another
    project's."""
    from vault.export import check_value  # noqa: PLC0415

    writable: dict[str, str] = {}
    unwritable: list[str] = []
    for name, value in values.items():
        try:
            writable[name] = check_value(name, value)
        except KeyvaultError as exc:
            warn(f"{exc.message}: it is unset rather than given back")
            unwritable.append(name)
    return writable, unwritable


def _hook_change(app: Context) -> HookChange:
    from vault.export.hook import HookChange, hook_change  # noqa: PLC0415

    if app.environ.get(EXEC_MARKER) == "1":
        # a shell that `keyvault exec --project B -- bash` started: exec chose the project for
        # its whole process tree, and a project folder must not swap B's key for its own
        return HookChange({}, [])
    try:
        project = folder_project(app.cwd, warn=warn)
    except KeyvaultError as exc:
        # a project file edited into something unreadable no longer names the project
        # whose key the shell holds: leave it (once, the hook runs again when it changes)
        warn(f"not exporting a project here: {exc.message}")
        return hook_change(app.environ, None, None)
    values = _unlocked_values(app, project) if project else None
    return hook_change(app.environ, project, values)


def _unlocked_values(app: Context, project: str) -> dict[str, str] | None:
    """The project's variables if the vault opens without asking anyone; else None."""
    from vault.session.unlock import Unlocker  # noqa: PLC0415
    from vault.store.keyvault import Keyvault  # noqa: PLC0415

    quiet = Unlocker(
        settings=app.unlocker.settings,
        ask=None,
        session=app.unlocker.session,
        warn=app.unlocker.warn,
    )
    try:
        kv = Keyvault(app.paths, quiet, trust=app.kv.trust)
        return app.exports_of(kv.read(), project).values
    except KeyvaultError as exc:
        warn(f"not exporting project {safe(project)}: {exc.message}")
        return None
