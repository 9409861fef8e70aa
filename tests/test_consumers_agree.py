"""After every change, every consumer of a project's key agrees (issue 12).

A hypothesis state machine drives the real command line (in-process, see tests/inprocess.py)
through random sequences of add / edit (base URL, org, project id, status, secret) / rm /
rotate / dotenv (registering and re-pointing files) / recipients over three projects. After
each step, for every project, the truth is the vault's own answer (`export_state`), and:
- `env` evaluated in real bash, zsh and fish that already hold stale OPENAI_* values,
- `exec` (a real exec, in a forked child) started with stale OPENAI_* values,
- `get --project`,
- `hook-env` evaluated in real bash, entering the project's folder,
- `ci gitlab` and `ci github` (the report and $GITHUB_ENV files),
- every `.env` file registered to the project (read back with python-dotenv),
give exactly the same key and the same OPENAI_* set: a variable the entry lacks is unset
(`env`, `exec`, hook) or absent (files), never left over from another project.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import dotenv
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.helpers import make_key
from tests.inprocess import Ran, exec_env, run_cli
from vault import age
from vault.export import OPENAI_VARIABLES, export_state
from vault.model.secret import Secret
from vault.session.identity import UnlockSettings
from vault.session.unlock import Unlocker
from vault.store.config import Paths
from vault.store.keyvault import Keyvault

PROJECTS = ("alpha", "beta", "gamma")
STALE = {name: f"stale-{name.lower()}" for name in OPENAI_VARIABLES}
UNSET = "<unset>"
SHELLS = {
    "bash": ["bash", "--norc", "--noprofile"],
    "zsh": ["zsh", "-f"],
    "fish": ["fish", "--no-config"],
}
PRINT_POSIX = "".join(f"printf '%s=%s\\n' {n} \"${{{n}-{UNSET}}}\"\n" for n in OPENAI_VARIABLES)
PRINT_FISH = "".join(
    f"if set -q {n}; printf '%s=%s\\n' {n} ${n}; else; printf '%s=%s\\n' {n} '{UNSET}'; end\n"
    for n in OPENAI_VARIABLES
)


class Shell:
    """A real shell: evaluate keyvault's output in it, read the variables back. A fresh
    process each time (fish reads all of a piped stdin before it runs any of it)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def evaluate(self, script_path: Path) -> dict[str, str]:
        """Start from stale OPENAI_* values, source the file, return what is set."""
        if self.kind == "fish":
            stale = "".join(f"set -gx {n} {v}\n" for n, v in STALE.items())
            script = f"{stale}source {script_path}\n{PRINT_FISH}"
        else:
            stale = "".join(f"export {n}={v}\n" for n, v in STALE.items())
            script = f"{stale}. {script_path}\n{PRINT_POSIX}"
        done = subprocess.run(
            [*SHELLS[self.kind], "-c", script],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir()},
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, (self.kind, done.stderr)
        found = dict(line.partition("=")[::2] for line in done.stdout.splitlines())
        return {n: v for n, v in found.items() if v != UNSET}


def parse_github_env(text: str) -> dict[str, str]:
    values, lines = {}, iter(text.splitlines())
    for line in lines:
        name, _, end = line.partition("<<")
        values[name] = "\n".join(itertools.takewhile(lambda v, end=end: v != end, lines))
    return values


class ConsumersAgree(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="kvagree-"))
        self.home = self.root / "kv"
        missing = [kind for kind in SHELLS if shutil.which(kind) is None]
        if missing:  # CI installs them: proving the shells agree is the point
            pytest.fail(f"{', '.join(missing)} needed to prove the shells agree")
        self.shells = {kind: Shell(kind) for kind in SHELLS}
        self.names: list[str] = []
        self.seen: dict[str, dict[str, str] | str | None] = {}  # what the shells last saw
        self.counter = itertools.count(1)
        self.files = [self.root / f"app{i}" / ".env" for i in range(3)]
        for path in self.files:
            path.parent.mkdir()
        for project in PROJECTS:
            folder = self.root / project
            folder.mkdir()
            (folder / ".keyvault.toml").write_text(f'project = "{project}"\n')

    def create_vault(self) -> None:
        identity = Keyvault(
            Paths(self.home), Unlocker(UnlockSettings(passphrase=Secret("agree-passphrase")))
        ).init(Secret("agree-passphrase"), log_n=10)
        self.identity = identity.to_string()
        self.kv = Keyvault(
            Paths(self.home), Unlocker(UnlockSettings(identity=Secret(self.identity)))
        )
        self.env = {
            "KEYVAULT_HOME": str(self.home),
            "KEYVAULT_IDENTITY": self.identity,
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.root),
            "XDG_RUNTIME_DIR": str(self.root),
        }

    @initialize(data=st.data())
    def seed(self, data: st.DataObject) -> None:
        """A key in every project and every file registered, so that every step has
        something to change; the rules then add, move and remove from there."""
        self.create_vault()
        for project in PROJECTS:
            self.add(project, *(data.draw(st.booleans()) for _ in range(3)), activate=False)
        for index in range(len(self.files)):
            self.register_dotenv(index, data.draw(st.sampled_from(PROJECTS)))

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def cli(self, *args: str, stdin: str = "", cwd: Path | None = None, **env: str) -> Ran:
        ran = run_cli(args, env={**self.env, **env}, cwd=cwd or self.root, stdin=stdin)
        assert ran.raised is None, f"{args} raised {ran.raised!r}"
        assert "Traceback" not in ran.err
        return ran

    # --- changes ----------------------------------------------------------------------------

    @rule(
        project=st.sampled_from(PROJECTS),
        base=st.booleans(),
        org=st.booleans(),
        pid=st.booleans(),
        activate=st.booleans(),
    )
    def add(self, project: str, base: bool, org: bool, pid: bool, activate: bool) -> None:
        name = f"k{next(self.counter)}"
        args = ["add", name, "--project", project]
        args += ["--base-url", f"https://relay-{name}.example.com/v1"] if base else []
        args += ["--org-id", f"org-{name}xyzabc"] if org else []
        args += ["--project-id", f"proj_{name}xyzabc"] if pid else []
        args += ["--activate"] if activate else []
        assert self.cli(*args, stdin=make_key()).code == 0
        self.names.append(name)

    @rule(data=st.data(), field=st.sampled_from(["--base-url", "--org-id", "--project-id"]))
    def edit_exported_field(self, data: st.DataObject, field: str) -> None:
        if not self.names:
            return
        name = data.draw(st.sampled_from(self.names))
        other = {
            "--base-url": "https://other.example.com/v1",
            "--org-id": "org-changed1",
            "--project-id": "proj_changed1",
        }
        value = data.draw(st.sampled_from(["", other[field]]))
        assert self.cli("edit", name, field, value).code == 0

    @rule(data=st.data(), status=st.sampled_from(["active", "standby", "disabled"]))
    def edit_status(self, data: st.DataObject, status: str) -> None:
        if self.names:
            name = data.draw(st.sampled_from(self.names))
            assert self.cli("edit", name, "--status", status).code == 0

    @rule(data=st.data())
    def edit_secret(self, data: st.DataObject) -> None:
        if self.names:
            name = data.draw(st.sampled_from(self.names))
            assert self.cli("edit", name, "--secret", stdin=make_key()).code == 0

    @rule(data=st.data())
    def move_to_another_project(self, data: st.DataObject) -> None:
        if self.names:
            name = data.draw(st.sampled_from(self.names))
            project = data.draw(st.sampled_from(PROJECTS))
            assert self.cli("edit", name, "--project", project).code == 0

    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        if self.names:
            name = data.draw(st.sampled_from(self.names))
            assert self.cli("rm", name, "--yes").code == 0
            self.names.remove(name)

    @rule(project=st.sampled_from(PROJECTS))
    def rotate(self, project: str) -> None:
        ran = self.cli("rotate", "--project", project, "--no-check")
        assert ran.code in (0, 1), ran.err  # 1: nothing to rotate to, or a file could not follow

    @rule(index=st.integers(0, 2), project=st.sampled_from(PROJECTS))
    def register_dotenv(self, index: int, project: str) -> None:
        ran = self.cli("dotenv", str(self.files[index]), "--project", project)
        assert ran.code in (0, 1), ran.err  # 1: the project has no active key yet

    @rule()
    def add_recipient(self) -> None:
        public = age.X25519Identity.generate().recipient().to_string()
        assert self.cli("recipients", "add", f"r{next(self.counter)}", public).code == 0

    # --- the invariant ----------------------------------------------------------------------

    @invariant()
    def every_consumer_agrees(self) -> None:
        if not hasattr(self, "kv"):
            return
        doc = self.kv.read()
        exporting = sum(export_state(doc, p) is not None for p in PROJECTS)
        event(f"{exporting} projects exporting, {len(doc.exports)} .env files registered")
        for project in PROJECTS:
            expected = export_state(doc, project)
            self.check_get(project, expected)
            self.check_ci(project, expected)
            if self.seen.get(project, "never") != expected:  # real shells and exec: on change
                self.check_shells_and_exec(project, expected)
                self.check_hook(project, expected)
                self.seen[project] = expected
            for target in doc.export_targets(project):
                path = Path(target.path)
                if path.exists():
                    found = {k: v for k, v in dotenv.dotenv_values(path).items() if k in STALE}
                    assert found == (expected or {}), (project, target.path)

    def check_get(self, project: str, expected: dict[str, str] | None) -> None:
        got = self.cli("get", "--project", project)
        if expected is None:
            assert got.code == 1
            assert self.cli("env", "--project", project, "--shell", "bash").code == 1
        else:
            assert got.out == expected["OPENAI_API_KEY"] + "\n"

    def check_shells_and_exec(self, project: str, expected: dict[str, str] | None) -> None:
        if expected is None:
            return
        for kind, shell in self.shells.items():
            env = self.cli("env", "--project", project, "--shell", kind)
            assert env.code == 0, env.err
            script = self.root / f"env.{kind}"
            script.write_text(env.out)
            assert shell.evaluate(script) == expected, (kind, project)
        # --no-masking: the child prints its environment, and masking would hide the key
        child = exec_env(
            ["exec", "--no-masking", "--project", project], env={**self.env, **STALE}, cwd=self.root
        )
        assert isinstance(child, dict), child
        assert {k: v for k, v in child.items() if k in STALE} == expected

    def check_hook(self, project: str, expected: dict[str, str] | None) -> None:
        folder = self.root / project
        hook = self.cli("hook-env", "--shell", "bash", cwd=folder, **STALE)
        assert hook.code == 0, hook.err
        script = self.root / "hook.bash"
        script.write_text(hook.out)
        # entering: the project's set; with nothing to export, the user's own values stay
        assert self.shells["bash"].evaluate(script) == (expected if expected else STALE)

    def check_ci(self, project: str, expected: dict[str, str] | None) -> None:
        report = self.root / "keyvault.env"
        report.unlink(missing_ok=True)
        gitlab = self.cli("ci", "gitlab", "--project", project, "--output", str(report))
        github_file = self.root / "github_env"
        github_file.write_text("")
        github = self.cli("ci", "github", "--project", project, GITHUB_ENV=str(github_file))
        if expected is None:
            assert (gitlab.code, github.code) == (1, 1)
            return
        assert gitlab.code == 0 and github.code == 0, (gitlab.err, github.err)
        assert dict(dotenv.dotenv_values(report)) == expected
        assert parse_github_env(github_file.read_text()) == expected
        assert re.search(rf"::add-mask::{re.escape(expected['OPENAI_API_KEY'])}", github.out)


ConsumersAgree.TestCase.settings = settings(
    max_examples=14,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestConsumersAgree = pytest.mark.slow(pytest.mark.timeout(1200)(ConsumersAgree.TestCase))


def test_the_state_machine_runs_at_least_300_steps() -> None:
    configured: Any = ConsumersAgree.TestCase.settings
    assert configured.max_examples * configured.stateful_step_count >= 300
