"""The fast dispatcher (vault/cli/fast.py) against the click commands it stands in for.

- Its option table is the click commands' own: the test reads every option of `env`, `get`,
  `exec` and `hook-env` from click and compares names, arity, choices and requirements.
- For generated command lines (valid and not: typos, missing values, `--opt=value`, `--`,
  help, bad choices, extra arguments), `main(argv)` and `main(argv, fast_path=False)` print
  byte-identical stdout and stderr and exit with the same code, in a vault with projects, a
  project folder, an unlocked session and without one.
- `python -X importtime` lists every module the fast path loads: no click, no cryptography
  with a session, no httpx, and nothing outside the list below.

Each command runs in a child forked from one warm process (the `RUNNER` script), so that a
few hundred command lines take seconds; the child gets its own working folder, environment,
stdout and stderr, and `exec` really replaces it.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import REPO, Cli, make_key
from vault.cli import fast
from vault.cli.app import cli
from vault.export.hook_scripts import HOOK_SCRIPTS
from vault.export.shells import FORMATS, SHELLS

FAST_COMMANDS = ("env", "get", "exec", "hook-env")

# --- the option tables --------------------------------------------------------------------


def click_command(name: str) -> click.Command:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    return command


def click_options(command: click.Command) -> dict[str, click.Option]:
    """Every option of `command` by each of its names, except click's own --help."""
    found: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                found[name] = param
    return found


@pytest.mark.parametrize("name", FAST_COMMANDS)
def test_fast_table_is_the_click_commands_table(name: str) -> None:
    command = click_command(name)
    options = click_options(command)
    spec = fast.commands()[name]
    assert set(spec.options) == set(options), "an option the fast path does not know"
    for flag, option in options.items():
        mine = spec.options[flag]
        assert flag.startswith("--"), f"{flag}: a short option must be added to fast.py"
        assert mine.flag == option.is_flag, flag
        assert not option.multiple and option.nargs == 1, flag
        choices = tuple(option.type.choices) if isinstance(option.type, click.Choice) else None
        assert mine.choices == choices, flag
        assert (mine.dest in spec.required) == option.required, flag
        assert option.envvar is None, f"{flag}: an environment variable the fast path ignores"
    interspersed = command.context_settings.get(
        "allow_interspersed_args", command.allow_interspersed_args
    )
    assert spec.interspersed == interspersed, "options after an argument"
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if not arguments:
        assert (spec.least, spec.most) == (0, 0)
    else:
        (argument,) = arguments
        most = None if argument.nargs == -1 else argument.nargs
        assert (spec.least, spec.most) == (int(argument.required), most)


def test_fast_root_options_are_the_groups() -> None:
    options = click_options(cli)
    assert set(options) == {"--vault", "--version"}  # --version is click's: handed over
    assert set(fast.ROOT_OPTIONS) == {"--vault"}
    assert options["--vault"].envvar == "KEYVAULT_HOME"  # the Context reads it on both paths


def test_choices_name_what_the_renderers_know() -> None:
    assert set(fast.SHELL_CHOICES) == set(SHELLS)
    assert set(fast.FORMAT_CHOICES) == set(FORMATS)
    assert set(fast.HOOK_SHELL_CHOICES) == set(HOOK_SCRIPTS)


EVERYDAY = [
    ["env"],
    ["env", "--project", "work", "--shell", "fish"],
    ["env", "--shell=zsh", "--project=work"],
    ["env", "--format", "json"],
    ["env", "--unset", "--shell", "bash"],
    ["--vault", "/v", "env", "--project", "work"],
    ["--vault=/v", "get", "main"],
    ["get", "--project", "work"],
    ["get", "--", "-odd-name"],
    ["exec", "--", "python", "app.py", "--project", "x"],
    ["exec", "--project", "work", "--pristine", "--", "node", "server.js"],
    ["exec", "make"],
    ["hook-env", "--shell", "bash"],
    ["env", "--vault", "/v"],  # --vault after the command, as click's hidden option takes it
    ["exec", "--no-masking", "--", "env"],
    ["exec", "ls", "-la"],  # everything after the command is the command's
    ["exec", "gcloud", "--project", "x", "--", "y"],
]
HANDED_TO_CLICK = [
    [],
    ["--help"],
    ["-h"],
    ["--version"],
    ["--", "env"],
    ["list"],
    ["env", "--help"],
    ["env", "-h"],
    ["env", "--shell", "tcsh"],
    ["env", "--shell"],
    ["env", "--unset=yes"],
    ["env", "extra"],
    ["env", "--projct", "work"],
    ["get", "a", "b"],
    ["exec"],
    ["exec", "--"],
    ["hook-env"],
    ["hook-env", "--shell", "sh"],
    ["--vault"],
]


@pytest.mark.parametrize("argv", EVERYDAY, ids=" ".join)
def test_everyday_forms_run_without_click(argv: list[str]) -> None:
    assert fast.dispatch(argv, {}) is not None


@pytest.mark.parametrize("argv", HANDED_TO_CLICK, ids=" ".join)
def test_anything_else_is_handed_to_click(argv: list[str]) -> None:
    assert fast.dispatch(argv, {}) is None


def test_completion_is_clicks() -> None:
    assert fast.dispatch(["env"], {"_KEYVAULT_COMPLETE": "bash_complete"}) is None


# --- both paths, byte for byte ------------------------------------------------------------

# Reads one request per line ({"argv", "fast", "cwd", "env"}), forks, runs `main` in the
# child with stdout/stderr in temporary files, answers {"out", "err", "code"} (base64).
RUNNER = r"""
import base64, json, os, sys, tempfile, traceback
import click, vault.cli.app, vault.cli.export, vault.cli.inventory, vault.cli.session
from vault.cli.main import main
answers = os.fdopen(os.dup(1), "w")
for line in sys.stdin:
    request = json.loads(line)
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # the requests are not for CMD
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            main(request["argv"], fast_path=request["fast"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush(); sys.stderr.flush()
            finally:
                os._exit(code)
    _, status = os.waitpid(pid, 0)
    reply = {"code": os.waitstatus_to_exitcode(status)}
    for name, handle in (("out", out), ("err", err)):
        handle.seek(0)
        reply[name] = base64.b64encode(handle.read()).decode()
    answers.write(json.dumps(reply) + "\n")
    answers.flush()
"""


class Runner:
    """One warm interpreter that forks a child per command line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", RUNNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            start_new_session=True,  # no terminal: nothing may prompt
        )

    def run(self, argv: list[str], *, fast_path: bool, cwd: Path, env: dict[str, str]) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"argv": argv, "fast": fast_path, "cwd": str(cwd), "env": env}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        return (
            reply["code"],
            base64.b64decode(reply["out"]),
            base64.b64decode(reply["err"]),
        )

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


class Scene:
    """A vault with two projects (one with a relay base URL), a project folder, an empty
    folder, and environments: KEYVAULT_HOME or not, a session or none, a passphrase or none."""

    def __init__(self, vault_cli: Cli, tmp: Path) -> None:
        self.cli = vault_cli
        self.home = vault_cli.home
        vault_cli.add("main", make_key(), "--project", "work")
        vault_cli.add("spare", make_key(), "--project", "work", "--standby")
        vault_cli.add(
            "relay", make_key(), "--project", "relay", "--base-url", "https://relay.example/v1"
        )
        self.project_dir = tmp / "repo" / "src"
        self.project_dir.mkdir(parents=True)
        (tmp / "repo" / ".keyvault.toml").write_text('project = "relay"\n')
        self.plain_dir = tmp / "plain"
        self.plain_dir.mkdir()
        base = {k: v for k, v in vault_cli.env.items() if k != "KEYVAULT_PASSPHRASE"}
        # without KEYVAULT_HOME the platform folder is used: make it an empty one of ours
        base.update(HOME=str(tmp / "home"), XDG_DATA_HOME=str(tmp / "home" / "data"))
        base["SHELL"] = "/bin/zsh"
        base["OPENAI_ORG_ID"] = "org-mine"  # a user's own variable that env must unset
        self.envs = {
            "home": base,
            "no-home": {k: v for k, v in base.items() if k != "KEYVAULT_HOME"},
            "passphrase": {**base, "KEYVAULT_PASSPHRASE": vault_cli.env["KEYVAULT_PASSPHRASE"]},
            "hooked": {
                **base,
                "KEYVAULT_HOOK_PROJECT": "work",
                "KEYVAULT_HOOK_SAVED": '{"OPENAI_ORG_ID":"org-mine"}',
            },
        }


@pytest.fixture(scope="module")
def scene_and_runner(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Scene, Runner]]:
    from tests.helpers import CHEAP_LOG_N, PASSPHRASE, base_env

    tmp = tmp_path_factory.mktemp("drift")
    runtime = Path(tempfile.mkdtemp(prefix="kvfp-", dir="/tmp"))  # a short socket path
    env = base_env(tmp / "kv", runtime)
    env["KEYVAULT_PASSPHRASE"] = PASSPHRASE
    vault_cli = Cli(tmp / "kv", env)
    vault_cli.ok("init", "--work-factor", str(CHEAP_LOG_N))
    scene = Scene(vault_cli, tmp)
    vault_cli.ok("unlock", "--ttl", "10m")
    runner = Runner({**env, "PYTHONPATH": str(REPO)})
    yield scene, runner
    runner.close()
    vault_cli("lock")
    shutil.rmtree(runtime, ignore_errors=True)


PRINT_VARIABLES = [
    "sh",
    "-c",
    'printf "%s|%s|%s|%s" "${OPENAI_API_KEY-}" "${OPENAI_BASE_URL-unset}"'
    ' "${OPENAI_ORG_ID-unset}" "${KEYVAULT_EXEC-}"',
]
VALUES = ["work", "relay", "nope", "", "bash", "fish", "sh", "json", "dotenv", "tcsh", "-", "--"]


def option_forms(name: str) -> st.SearchStrategy[list[str]]:
    """One use of a click option of `name`, in the forms people type and some they mistype."""
    options = click_options(click_command(name))
    flags = sorted(f for f, o in options.items() if o.is_flag)
    valued = sorted(f for f, o in options.items() if not o.is_flag)
    values = st.sampled_from(VALUES)
    forms = []
    if flags:
        forms += [
            st.sampled_from(flags).map(lambda f: [f]),
            st.sampled_from(flags).map(lambda f: [f + "=1"]),  # a flag takes no value
        ]
    if valued:
        forms += [
            st.tuples(st.sampled_from(valued), values).map(list),
            st.tuples(st.sampled_from(valued), values).map(lambda fv: [f"{fv[0]}={fv[1]}"]),
            st.sampled_from(valued).map(lambda f: [f]),  # the value missing (at the end)
        ]
    forms.append(st.sampled_from(["-h", "--help", "--nope", "-x", "--shel"]).map(lambda f: [f]))
    return st.one_of(*forms)


@st.composite
def command_lines(draw: st.DrawFn) -> tuple[list[str], str, str]:
    name = draw(st.sampled_from(FAST_COMMANDS))
    root = draw(
        st.sampled_from(
            [[], [], [], ["--vault", "{home}"], ["--vault={home}"], ["--vault", "/nowhere"]]
        )
    )
    parts = draw(st.lists(option_forms(name), max_size=4))
    if name == "get":
        parts.append(draw(st.sampled_from([[], [], ["main"], ["relay"], ["nope"], ["a", "b"]])))
    words: list[str] = [word for part in parts for word in part]
    if name == "exec":
        words += draw(st.sampled_from([["--", *PRINT_VARIABLES], PRINT_VARIABLES, ["--"], []]))
        words += draw(st.sampled_from([[], [], ["--no-such-command-here"]]))
        words += [w for part in draw(st.lists(option_forms(name), max_size=2)) for w in part]
    env = draw(st.sampled_from(["home", "home", "no-home", "passphrase", "hooked"]))
    cwd = draw(st.sampled_from(["project", "plain"]))
    return [*root, name, *words], env, cwd


@pytest.mark.slow
@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(line=command_lines())
def test_fast_and_click_paths_print_the_same_bytes(
    scene_and_runner: tuple[Scene, Runner], line: tuple[list[str], str, str]
) -> None:
    scene, runner = scene_and_runner
    template, env_name, cwd_name = line
    argv = [word.replace("{home}", str(scene.home)) for word in template]
    env = scene.envs[env_name]
    cwd = scene.project_dir if cwd_name == "project" else scene.plain_dir
    fast_result = runner.run(argv, fast_path=True, cwd=cwd, env=env)
    click_result = runner.run(argv, fast_path=False, cwd=cwd, env=env)
    assert fast_result == click_result, (argv, env_name, cwd_name)
    assert b"Traceback" not in fast_result[2]


@pytest.mark.parametrize("argv", [*EVERYDAY[:5], ["get", "main"], ["hook-env", "--shell", "fish"]])
@pytest.mark.parametrize("env_name", ["home", "hooked", "no-home"])
def test_everyday_forms_print_the_same_bytes(
    scene_and_runner: tuple[Scene, Runner], argv: list[str], env_name: str
) -> None:
    """The forms of every day, in the project folder: the same bytes, and real output."""
    scene, runner = scene_and_runner
    env = scene.envs[env_name]
    fast_result = runner.run(argv, fast_path=True, cwd=scene.project_dir, env=env)
    click_result = runner.run(argv, fast_path=False, cwd=scene.project_dir, env=env)
    assert fast_result == click_result
    if env_name != "no-home":
        assert fast_result[0] == 0, fast_result[2]
        assert fast_result[1]


def test_exec_paths_agree_on_the_childs_environment(
    scene_and_runner: tuple[Scene, Runner],
) -> None:
    scene, runner = scene_and_runner
    argv = ["exec", "--no-masking", "--project", "relay", "--", *PRINT_VARIABLES]
    env = scene.envs["home"]
    fast_result = runner.run(argv, fast_path=True, cwd=scene.plain_dir, env=env)
    assert fast_result == runner.run(argv, fast_path=False, cwd=scene.plain_dir, env=env)
    key, base_url, org, marker = fast_result[1].decode().split("|")
    assert key.startswith("sk-") and base_url == "https://relay.example/v1"
    assert org == "unset" and marker == "1"  # the user's OPENAI_ORG_ID is not the relay's


# --- what the fast path imports -------------------------------------------------------------

# Beyond what the bare interpreter (with site) has loaded: the modules the fast path may
# import. Adding one to `keyvault env` is a decision; this list is where it is taken.
ALLOWED_VAULT = {
    "vault",
    # exec only: the child environment without unlock settings (issue 13), output masking
    # (issue 17; the command runs under keyvault, which reads its output)
    "vault.security",
    "vault.security.childenv",
    "vault.export.masking",
    "vault.cli",
    "vault.cli.everyday",
    "vault.cli.fast",
    "vault.cli.main",
    "vault.cli.report",
    # every run names a misspelt KEYVAULT_* variable (KEYVAULT_HOEM would open the default
    # vault); a table and one loop over os.environ, difflib only when one is found
    "vault.cli.variables",
    "vault.errors",
    "vault.export",
    "vault.export.hook",
    "vault.export.hook_scripts",
    "vault.export.process",
    "vault.export.shells",
    "vault.model",
    "vault.model.clock",
    "vault.model.codec",
    "vault.model.document",
    "vault.model.entry",
    "vault.model.fields",
    "vault.model.health",
    "vault.model.phones",
    "vault.model.records",
    # project, passphrase and identity files as Windows PowerShell 5 saves them (UTF-16);
    # twenty lines that import nothing
    "vault.model.savedtext",
    "vault.model.secret",
    # issue 15: every open checks the team secret against this machine's pin (_blake2 only)
    "vault.model.team",
    "vault.store.trust",
    "vault.model.tuples",
    "vault.model.urls",
    "vault.session",
    "vault.session.client",
    "vault.session.runtime",  # where the agent socket is (split from client by issue 13)
    "vault.session.identity",
    "vault.session.unlock",
    "vault.session.wire",
    "vault.store",
    "vault.store.config",
    "vault.store.context",
    "vault.store.files",
    "vault.store.folders",  # the vault home, in os.path (vault/store/folders.py)
    "vault.store.keyvault",
    "vault.cli.memo",  # the export memo of env and get (tests/cli/test_memo.py)
    "vault.cli.memo_entry",
    "vault.cli.memo_record",  # a full run recorded for the memo
    "vault.cli.output",
}
ALLOWED_OTHER = {
    # exec's masking: a child process, its pipes read in a thread, signals forwarded
    *("subprocess", "_posixsubprocess", "select", "selectors", "signal", "threading"),
    *("_weakrefset", "fcntl", "msvcrt", "locale", "_locale"),
    # JSON, the agent's socket and its framing, times, prctl, the collector switched off
    *("json", "json.decoder", "json.encoder", "json.scanner", "_json", "math", "_datetime"),
    *("_socket", "struct", "_struct", "_blake2", "resource", "_ctypes", "gc"),
    # what `python -m` loads (a plain .keyvault.toml needs no TOML parser: ~9 ms)
    *("collections.abc", "runpy"),
}
# typing: ~3 ms to import; the records use vault/model/tuples.py instead
FORBIDDEN = (
    "click",
    "cryptography",
    "httpx",
    "vault.age",
    "vault.health",
    "phonenumbers",
    "typing",
)


def imported_modules(argv: list[str], env: dict[str, str], cwd: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        start_new_session=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-800:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line and "cumulative" not in line
    }


@pytest.mark.parametrize(
    "args",
    [
        ("env", "--project", "work", "--shell", "bash"),
        ("get", "main"),
        ("exec", "--project", "work", "--", "true"),
        ("hook-env", "--shell", "bash"),
    ],
)
def test_fast_path_imports_only_the_allowed_modules(
    scene_and_runner: tuple[Scene, Runner], args: tuple[str, ...]
) -> None:
    scene, _ = scene_and_runner
    env = {**scene.envs["home"], "PYTHONPATH": str(REPO)}
    bare = imported_modules(["-c", "pass"], env, scene.project_dir)
    loaded = imported_modules(["-m", "vault", *args], env, scene.project_dir) - bare
    forbidden = sorted(m for m in loaded if m.startswith(FORBIDDEN))
    assert forbidden == []
    assert "vault.cli.fast" in loaded and "vault.session.client" in loaded  # the probe works
    unexpected = sorted(loaded - ALLOWED_VAULT - ALLOWED_OTHER)
    assert unexpected == [], f"new on the fast path (list them above if they must be): {unexpected}"
