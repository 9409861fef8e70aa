"""A state machine over add / rm / check / rotate / edit (and keys going bad at the server, and
the network going down): whatever the order, each project has at most one active key and it is
never an admin key; a verified rotation lands only on a key that serves a chat request; with
the network down, rotation changes nothing and says the network failed."""

from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.fake_openai import FakeOpenAI
from tests.helpers import add, open_vault
from vault.errors import KeyvaultError, NetworkUnavailable
from vault.health.checking import CheckOptions, run_checks, select_entries
from vault.model.document import Kind, Status
from vault.rotation.candidates import rank
from vault.rotation.policy import Verify, rotation_policy
from vault.rotation.rotate import RotateOptions, rotate_due, rotate_project
from vault.store.inventory import edit_key, remove_key

PROJECTS = st.sampled_from(["a", "b", None])
BEHAVIOURS = st.sampled_from(["ok", "ok", "invalid", "quota", "rate_limited", "region_blocked"])
STATUSES = st.sampled_from([s.value for s in Status])
FAST = CheckOptions(max_retry_wait=0, timeout=5)  # never sleep for a retry in this test


class RotationMachine(RuleBasedStateMachine):
    server: FakeOpenAI
    root: Path

    def __init__(self) -> None:
        super().__init__()
        self.kv = open_vault(Path(tempfile.mkdtemp(dir=self.root)) / "kv")
        self.keys: dict[str, str] = {}  # entry name → key, to flip its behaviour at the server
        self.serial = 0

    @initialize()
    def a_few_keys(self) -> None:
        """Start each run from a realistic vault, so short runs still rotate."""
        for project, behaviour, admin in (
            ("a", "ok", False),
            ("a", "invalid", False),
            ("a", "ok", False),
            ("b", "ok", False),
            (None, "", True),
        ):
            self.add_key(project, behaviour, admin, activate=False)

    def names(self) -> list[str]:
        return [e.name for e in self.kv.read().entries]

    @rule(project=PROJECTS, behaviour=BEHAVIOURS, admin=st.booleans(), activate=st.booleans())
    def add_key(self, project: str | None, behaviour: str, admin: bool, activate: bool) -> None:
        self.serial += 1
        name = f"k{self.serial}"
        key = self.server.admin.add_admin_key() if admin else self.server.add_key(behaviour)
        fields = {"project": project} if project else {}
        try:
            add(self.kv, name, key, activate=activate, base_url=self.server.base_url, **fields)
        except KeyvaultError:
            return  # refused (an admin key cannot be activated): nothing stored
        self.keys[name] = key

    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        names = self.names()
        if names:
            remove_key(self.kv, data.draw(st.sampled_from(names)))

    @rule(data=st.data(), status=STATUSES, project=PROJECTS, move=st.booleans())
    def edit(self, data: st.DataObject, status: str, project: str | None, move: bool) -> None:
        names = self.names()
        if not names:
            return
        changes = {"status": status, **({"project": project or ""} if move else {})}
        with contextlib.suppress(KeyvaultError):
            edit_key(self.kv, data.draw(st.sampled_from(names)), changes)

    @rule(data=st.data(), behaviour=BEHAVIOURS)
    def key_changes_at_server(self, data: st.DataObject, behaviour: str) -> None:
        live = [k for k in self.keys.values() if k in self.server.keys]
        if live:
            self.server.keys[data.draw(st.sampled_from(live))].behaviour = behaviour

    @rule()
    def check(self) -> None:
        run_checks(self.kv, select_entries(self.kv.read(), everything=True), FAST)

    @rule(project=PROJECTS, check=st.booleans(), retire=st.booleans())
    def rotate(self, project: str | None, check: bool, retire: bool) -> None:
        """Verify before switching: a checked rotation lands only on a key that serves a real
        chat request at that moment (every other behaviour fails the chat probe)."""
        at_server = {
            n: k.behaviour for n, key in self.keys.items() if (k := self.server.keys.get(key))
        }
        options = RotateOptions(
            verify=None if check else Verify.NONE, retire=retire, check_options=FAST
        )
        try:
            rotation = rotate_project(self.kv, project, options)
        except KeyvaultError:
            return
        if check:
            assert at_server[rotation.new] == "ok", rotation.new
            assert rotation.verify == Verify.CHAT and rotation.chats >= 1

    @rule(project=PROJECTS)
    def rotate_with_the_network_down(self, project: str | None) -> None:
        """No candidate can be reached: the error says so (never "no healthy key" when some
        key could have been tried) and the vault is exactly as it was."""
        before = self.kv.read()
        policy = rotation_policy(self.kv.config, project)
        tryable = rank(before, project, policy, self.kv.clock(), verify=Verify.CHAT).tryable
        self.server.stop()  # the real thing: nothing listens, connections are refused
        try:
            with pytest.raises(KeyvaultError) as caught:
                rotate_project(self.kv, project, RotateOptions(check_options=FAST))
        finally:
            self.server.start()  # the same port again
        assert isinstance(caught.value, NetworkUnavailable) == bool(tryable), caught.value
        assert self.kv.read() == before

    @rule()
    def rotate_what_is_due(self) -> None:
        rotate_due(self.kv, RotateOptions(check_options=FAST))

    @invariant()
    def one_active_key_per_project_never_an_admin_key(self) -> None:
        doc = self.kv.read()
        active = [e for e in doc.entries if e.status is Status.ACTIVE]
        assert all(e.kind is not Kind.ADMIN for e in active)
        assert max(Counter(e.project for e in active).values(), default=0) <= 1


@pytest.mark.slow
def test_rotation_state_machine(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    RotationMachine.server = fake_openai
    RotationMachine.root = tmp_path
    run_state_machine_as_test(
        RotationMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


@pytest.mark.parametrize(
    ("project", "message"),
    [("a", "no project named 'a'"), (None, "no healthy standby key in the default project")],
)
def test_rotating_an_empty_project_is_a_clear_error(
    project: str | None, message: str, tmp_path: Path
) -> None:
    kv = open_vault(tmp_path / "kv")
    with pytest.raises(KeyvaultError, match=message):
        rotate_project(kv, project, RotateOptions(check_options=FAST))
