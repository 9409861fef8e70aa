"""`keyvault rotate`: policies, --to, --dry-run, the helpful error, .env files; real processes
against the local fake OpenAI server."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import NOW, Cli, actives, add, by_name, files, open_vault, write_config
from vault.errors import ConfigError
from vault.export.dotenv import update_dotenv_file
from vault.model import codec
from vault.model.document import Entry, Status, VaultDoc
from vault.model.health import HealthRecord, HealthStatus
from vault.model.secret import Secret
from vault.rotation.candidates import Ranked, rank
from vault.rotation.policy import RotationPolicy, Verify, project_due, rotation_policy
from vault.store.config import Config
from vault.store.inventory import remember_dotenv

PHONE = "+447911123456"


def history(doc: VaultDoc, action: str) -> list[dict[str, object]]:
    return [codec.event_json(e) for e in doc.history if e.action == action]


@pytest.mark.slow
def test_check_rotate_applies_each_policy_trigger(fake_openai: FakeOpenAI, cli: Cli) -> None:
    write_config(
        cli.home,
        "[rotation]\nmin_credit_usd = 5.0\n\n[rotation.projects.aged]\nmax_age_days = 30\n",
    )
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    add(kv, "dead-1", fake_openai.add_key("invalid"), project="dead", base_url=url)
    add(kv, "dead-2", fake_openai.add_key("ok"), project="dead", base_url=url)
    add(kv, "aged-1", fake_openai.add_key("ok"), project="aged", base_url=url, created="2020-01-01")
    add(kv, "aged-2", fake_openai.add_key("ok"), project="aged", base_url=url)
    add(kv, "poor-1", fake_openai.add_key("ok"), project="poor", base_url=url, credit_usd=1)
    add(kv, "poor-2", fake_openai.add_key("ok"), project="poor", base_url=url, credit_usd=50)
    add(kv, "fine-1", fake_openai.add_key("ok"), project="fine", base_url=url, credit_usd=100)
    add(kv, "fine-2", fake_openai.add_key("ok"), project="fine", base_url=url)
    add(kv, "bare-1", fake_openai.add_key("ok"), project="bare", base_url=url, status="standby")

    result = cli("check", "--all", "--rotate")
    assert result.code == 5, result.err  # dead-1 is not ok; the rotations still happened
    doc = open_vault(cli.home).read()
    reasons = {e["project"]: e["reason"] for e in history(doc, "rotate")}
    assert reasons["dead"] == "status invalid"
    assert str(reasons["aged"]).startswith("age ") and str(reasons["aged"]).endswith(">= 30")
    assert reasons["poor"] == "credit $1.00 < $5.00"
    assert reasons["bare"] == "no active key"
    assert "fine" not in reasons
    assert {p: actives(doc, p) for p in ("dead", "aged", "poor", "fine", "bare")} == {
        "dead": ["dead-2"],
        "aged": ["aged-2"],
        "poor": ["poor-2"],
        "fine": ["fine-1"],
        "bare": ["bare-1"],
    }
    assert "rotated dead: dead-1 -> dead-2 (status invalid)" in result.out
    again = cli("rotate", "--due")
    assert again.code == 0, again.err
    assert "no project is due for rotation" in again.out


def test_rotate_due_reports_each_failure_and_exits_1(fake_openai: FakeOpenAI, cli: Cli) -> None:
    kv = open_vault(cli.home)
    add(kv, "only", fake_openai.add_key("invalid"), project="solo", base_url=fake_openai.base_url)
    assert cli("check", "only").code == 5
    result = cli("rotate", "--due", "--json")
    assert result.code == 1
    report = json.loads(result.out)
    assert report["rotations"] == []
    assert report["failures"][0]["project"] == "solo"
    assert report["failures"][0]["error"] == "no healthy standby key in project 'solo'"


def test_cooldown_keeps_a_rate_limited_key_out(fake_openai: FakeOpenAI, cli: Cli) -> None:
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    add(kv, "main", fake_openai.add_key("invalid"), project="p", base_url=url)
    add(
        kv,
        "fast",
        fake_openai.add_key("rate_limited", retry_after="30"),
        project="p",
        base_url=url,
        priority=9,
    )
    add(kv, "slow", fake_openai.add_key("ok"), project="p", base_url=url, priority=1)
    assert cli("check", "--all").code == 5
    requests_before = fake_openai.stats.by_path["models"]
    result = cli("rotate", "--project", "p")
    assert result.code == 0, result.err
    assert "main -> slow" in result.out  # not "fast", despite its priority
    # only the standby keys out of cooldown were probed: slow, not fast
    assert fake_openai.stats.by_path["models"] - requests_before == 1


@pytest.mark.slow
def test_to_switches_to_the_named_key(fake_openai: FakeOpenAI, cli: Cli) -> None:
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    add(kv, "a", fake_openai.add_key("ok"), project="p", base_url=url)
    add(kv, "b", fake_openai.add_key("ok"), project="p", base_url=url, priority=5)
    add(kv, "c", fake_openai.add_key("ok"), project="p", base_url=url)
    add(kv, "broken", fake_openai.add_key("invalid"), project="p", base_url=url)
    add(kv, "other", fake_openai.add_key("ok"), project="q", base_url=url)
    add(kv, "org-admin", fake_openai.admin.add_admin_key(), base_url=url)
    result = cli("rotate", "--to", "c", "--retire")  # the project comes from the key
    assert result.code == 0, result.err
    doc = open_vault(cli.home).read()
    assert actives(doc, "p") == ["c"]
    assert by_name(doc)["a"].status is Status.RETIRED
    refused = cli("rotate", "--to", "broken")
    assert refused.code == 1
    assert "'broken' failed its check: invalid (models probe: code=invalid_api_key)" in refused.err
    assert "--no-check" in refused.err
    forced = cli("rotate", "--to", "broken", "--no-check")
    assert forced.code == 0, forced.err
    assert cli("rotate", "--to", "other", "--project", "p").code == 2
    admin = cli("rotate", "--to", "org-admin")
    assert admin.code == 1
    assert "admin key" in admin.err
    doc = open_vault(cli.home).read()
    assert actives(doc, "p") == ["broken"]
    assert actives(doc, None) == []


@pytest.mark.slow
def test_dry_run_leaves_every_file_byte_identical(
    fake_openai: FakeOpenAI, cli: Cli, tmp_path: Path
) -> None:
    kv = open_vault(cli.home)
    add(kv, "a", fake_openai.add_key("invalid"), project="p", base_url=fake_openai.base_url)
    add(kv, "b", fake_openai.add_key("ok"), project="p", base_url=fake_openai.base_url)
    env_file = tmp_path / "app" / ".env"
    env_file.parent.mkdir()
    assert cli("dotenv", str(env_file), "--project", "p").code == 0
    assert cli("check", "--all").code == 5
    before = {**files(cli.home), **files(env_file.parent)}
    for args in (("rotate", "--project", "p", "--dry-run"), ("rotate", "--due", "--dry-run")):
        result = cli(*args)
        assert result.code == 0, result.err
        assert "would rotate p: a -> b" in result.out
        assert f"would update: {env_file}" in result.out
    assert {**files(cli.home), **files(env_file.parent)} == before


def test_no_healthy_candidate_says_what_to_do_next(fake_openai: FakeOpenAI, cli: Cli) -> None:
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    add(
        kv,
        "main",
        fake_openai.add_key("quota"),
        project="p",
        base_url=url,
        phone=PHONE,
        card="WildCard ****1234",
    )
    add(
        kv, "busy", fake_openai.add_key("rate_limited", retry_after="30"), project="p", base_url=url
    )
    add(kv, "gone", fake_openai.add_key("invalid"), project="p", base_url=url)
    assert cli("check", "--all").code == 5
    result = cli("rotate", "--project", "p")
    assert result.code == 1
    lines = result.err.splitlines()
    assert lines[0] == "keyvault: error: no healthy standby key in project 'p'"
    # one reason per key: the rate-limited one says until when (local time), the dead one
    # its stored verdict, which is not re-checked (no request spent on a revoked key)
    assert lines[1].startswith("keyvault:   busy: cooling down until ")
    assert lines[2] == "keyvault:   gone: invalid just now"
    hint = lines[3]
    assert hint.startswith("keyvault: hint: ")
    assert f"phones with a free verification slot: {PHONE} (1 free)" in hint
    assert "cards on file: WildCard ****1234" in hint
    assert "add a key: keyvault add NAME --project p" in hint
    assert len(lines) == 4
    doc = open_vault(cli.home).read()
    assert actives(doc, "p") == ["main"]  # nothing switched
    health = by_name(doc)["gone"].health
    assert health is not None and health.consecutive_failures == 1


def test_every_dotenv_target_is_updated_and_failures_reported(
    fake_openai: FakeOpenAI, cli: Cli, tmp_path: Path
) -> None:
    kv = open_vault(cli.home)
    old_key, new_key = fake_openai.add_key("ok"), fake_openai.add_key("ok")
    add(kv, "old", old_key, project="p", base_url=fake_openai.base_url)
    add(kv, "new", new_key, project="p", base_url=fake_openai.base_url)
    paths = {name: tmp_path / name / ".env" for name in ("web", "worker", "linked", "deleted")}
    for path in paths.values():
        path.parent.mkdir()
        path.write_text("KEEP=me\n")
        update_dotenv_file(path, {"OPENAI_API_KEY": old_key})
        remember_dotenv(kv, "p", path)
    paths["linked"].unlink()
    paths["linked"].symlink_to(tmp_path / "elsewhere.env")  # refused, never followed
    paths["deleted"].unlink()
    result = cli("rotate", "--project", "p", "--no-check")
    assert result.code == 1  # the rotation happened, but one file could not follow
    assert f"updated: {paths['web']}" in result.out
    assert f"updated: {paths['worker']}" in result.out
    assert f"missing (skipped): {paths['deleted']}" in result.out
    assert f"could not update {paths['linked']}" in result.err
    for name in ("web", "worker"):
        text = paths[name].read_text()
        assert text.startswith("KEEP=me\n")
        assert f"OPENAI_API_KEY={new_key}" in text
        assert old_key not in text
    assert not paths["deleted"].exists()
    assert not (tmp_path / "elsewhere.env").exists()
    assert actives(open_vault(cli.home).read(), "p") == ["new"]


def test_rotation_is_recorded_with_its_reason(fake_openai: FakeOpenAI, cli: Cli) -> None:
    kv = open_vault(cli.home)
    add(kv, "a", fake_openai.add_key("ok"), project="p", base_url=fake_openai.base_url)
    add(kv, "b", fake_openai.add_key("ok"), project="p", base_url=fake_openai.base_url)
    result = cli("rotate", "--project", "p", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["new"] == "b"
    event = history(open_vault(cli.home).read(), "rotate")[-1]
    assert event["from"] == "a"
    assert event["name"] == "b"
    assert event["reason"] == "manual"
    assert event["old_status"] == "standby"


def _entry(name: str, **fields: object) -> Entry:
    values: dict[str, object] = {
        "project": "p",
        "status": Status.STANDBY,
        "health": HealthRecord(HealthStatus.OK, "2026-03-01T11:00:00Z"),
        **fields,
    }
    return Entry(
        id=name.encode().hex()[:16].ljust(16, "0"),
        name=name,
        secret=Secret(f"sk-{name}-" + "x" * 30),
        **values,
    )  # type: ignore[arg-type]


def test_candidates_rank_by_priority_then_credit_then_age() -> None:
    def ranked(*entries: Entry, verify: Verify = Verify.NONE) -> Ranked:
        return rank(VaultDoc(entries=list(entries)), "p", RotationPolicy(), NOW, verify=verify)

    def pick(*entries: Entry) -> str:
        return ranked(*entries).tryable[0].name

    assert pick(_entry("low", priority=1), _entry("high", priority=2)) == "high"
    assert pick(_entry("poor", credit_usd=3.0), _entry("rich", credit_usd=9.0)) == "rich"
    assert pick(_entry("unknown"), _entry("known", credit_usd=1.0)) == "known"
    assert pick(_entry("young", created="2026-01-01"), _entry("old", created="2025-01-01")) == "old"
    sick = _entry("sick", priority=9)
    sick.health = HealthRecord(HealthStatus.INVALID, "2026-03-01T11:00:00Z")
    assert pick(sick, _entry("well")) == "well"
    assert ranked(sick, _entry("well")).reasons == [("sick", "invalid 1 h ago")]
    flaky = _entry("flaky", priority=9)
    flaky.health = HealthRecord(HealthStatus.NETWORK_ERROR, "2026-03-01T11:00:00Z")
    assert pick(flaky, _entry("well")) == "well"  # trusting stored results: not ok, not taken
    assert ranked(flaky, _entry("well"), verify=Verify.CHAT).tryable[0].name == "flaky"
    unchecked = _entry("unchecked", priority=9)
    unchecked.health = None
    assert pick(unchecked, _entry("checked")) == "unchecked"  # trusted, or verified first
    dead = ranked(_entry("dead", status=Status.DISABLED))
    assert dead.tryable == [] and dead.reasons == [("dead", "disabled")]


def test_policy_settings_merge_and_refuse_typos() -> None:
    config = Config(
        rotation={
            "max_age_days": 90,
            "cooldown_minutes": 5,
            "projects": {"w": {"max_age_days": 7, "project_id": "proj_abc123"}},
        }
    )
    assert rotation_policy(config, "w").max_age_days == 7
    assert rotation_policy(config, "w").cooldown_minutes == 5
    assert rotation_policy(config, "w").project_id == "proj_abc123"
    assert rotation_policy(config, "other").max_age_days == 90
    bad = [
        {"max_age": 3},
        {"on_status": ["brokenn"]},
        {"min_credit_usd": "lots"},
        {"projects": {"w": {"project_id": "abc"}}},
    ]
    for raw in bad:
        with pytest.raises(ConfigError):
            rotation_policy(Config(rotation=raw), "w")


def test_due_is_judged_by_status_age_and_credit() -> None:
    policy = RotationPolicy(max_age_days=30, min_credit_usd=2.0)
    fresh = _entry("fresh", created="2026-02-20")
    fresh.status = Status.ACTIVE
    doc = VaultDoc(entries=[fresh])
    assert project_due(doc, "p", policy, NOW) is None
    assert project_due(doc, "p", policy, NOW + dt.timedelta(days=30)) == "age 39 days >= 30"
    fresh.credit_usd = 1.5
    assert project_due(doc, "p", policy, NOW) == "credit $1.50 < $2.00"
    fresh.health = HealthRecord(HealthStatus.FORBIDDEN, "2026-03-01T11:00:00Z")
    assert project_due(doc, "p", policy, NOW) == "status forbidden"
    assert project_due(doc, "empty", policy, NOW) is None  # no keys at all: nothing to do


def test_bad_policy_in_config_is_a_clear_error(fake_openai: FakeOpenAI, cli: Cli) -> None:
    write_config(cli.home, "[rotation]\nmax_age = 3\n")
    kv = open_vault(cli.home)
    add(kv, "a", fake_openai.add_key("ok"), project="p", base_url=fake_openai.base_url)
    result = cli("rotate", "--due")
    assert result.code == 1
    assert "unknown setting rotation.max_age" in result.err
