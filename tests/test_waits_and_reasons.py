"""The pieces behind bounded waits and short reasons, in process: the total retry budget of one
key, the runner's in-turn mode, the new policy settings, and the time phrases people read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI
from vault.errors import ConfigError
from vault.health import HealthResult, ProbeTarget, Status, check
from vault.health.policy import health_policy
from vault.model.clock import ago, short_time
from vault.model.secret import Secret
from vault.rotation.policy import Verify, rotation_policy
from vault.store.config import Config

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def probe(server: FakeOpenAI, keys: list[str], **kw: Any) -> list[HealthResult]:
    targets = [ProbeTarget(f"k{i}", Secret(k), server.base_url) for i, k in enumerate(keys)]
    kw.setdefault("sleep", Sleeps())
    return check(targets, clock=lambda: NOW, rand=lambda: 0.0, **kw)


def test_one_key_waits_at_most_the_budget_in_all(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("rate_limited", retry_after="8")
    sleeps, heard = Sleeps(), list[tuple[str, float]]()
    result = probe(
        fake_openai,
        [key],
        sleep=sleeps,
        max_retries=5,
        max_retry_wait=20,
        on_wait=lambda name, s: heard.append((name, s)),
    )[0]
    assert sleeps.waits == [8.0, 8.0]  # a third wait would make 24 s > 20 s
    assert heard == [("k0", 8.0), ("k0", 8.0)]
    assert (result.status, result.attempts, result.retry_after_s) == (Status.RATE_LIMITED, 3, 8)
    assert result.retry_at == "2026-03-01T12:00:08Z"  # from the last answer


def test_the_budget_spans_both_probes_of_a_deep_check(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("rate_limited", retry_after="6", times=1)
    chat_limited = fake_openai.add_key(
        "rate_limited", retry_after="6", endpoints=frozenset({"chat"})
    )
    sleeps = Sleeps()
    results = probe(fake_openai, [key, chat_limited], deep=True, sleep=sleeps, max_retry_wait=10)
    assert results[0].status is Status.OK  # waited 6 s on /models, then both probes passed
    assert results[1].status is Status.RATE_LIMITED and results[1].probe == "chat"
    assert sorted(sleeps.waits) == [6.0, 6.0]  # one each: a second 6 s would pass 10 s


def test_zero_budget_never_waits(fake_openai: FakeOpenAI) -> None:
    sleeps = Sleeps()
    key = fake_openai.add_key("rate_limited", retry_after="1", times=1)
    result = probe(fake_openai, [key], sleep=sleeps, max_retry_wait=0)[0]
    assert (result.status, sleeps.waits) == (Status.RATE_LIMITED, [])


def test_in_turn_draws_the_next_target_only_after_a_result(fake_openai: FakeOpenAI) -> None:
    keys = [fake_openai.add_key("invalid"), fake_openai.add_key("ok"), fake_openai.add_key("ok")]
    seen: list[str] = []

    def until_one_passes() -> Iterator[ProbeTarget]:
        for i, key in enumerate(keys):
            yield ProbeTarget(f"k{i}", Secret(key), fake_openai.base_url)
            if seen[-1] == "ok":
                return

    results = check(
        until_one_passes(), in_turn=True, on_result=lambda r: seen.append(r.status.value)
    )
    assert [r.status for r in results] == [Status.INVALID, Status.OK]
    assert fake_openai.count(keys[2]) == 0  # never asked: the second key passed


def test_policy_settings_for_verify_and_max_wait() -> None:
    assert rotation_policy(Config(), None).verify is Verify.CHAT
    models = Config(rotation={"verify": "models", "projects": {"w": {"verify": "chat"}}})
    assert rotation_policy(models, None).verify is Verify.MODELS
    assert rotation_policy(models, "w").verify is Verify.CHAT
    for bad in ("none", "deep", 1):
        with pytest.raises(ConfigError, match=r"rotation\.verify must be one of: chat, models"):
            rotation_policy(Config(rotation={"verify": bad}), None)
    assert health_policy(Config()).max_wait == 20
    assert health_policy(Config(health={"max_wait": 0})).max_wait == 0
    with pytest.raises(ConfigError, match=r"health\.max_wait"):
        health_policy(Config(health={"max_wait": -1}))


def test_time_phrases() -> None:
    assert ago("2026-03-01T11:59:30Z", NOW) == "just now"
    assert ago("2026-03-01T11:55:00Z", NOW) == "5 min ago"
    assert ago("2026-03-01T09:59:00Z", NOW) == "2 h ago"
    assert ago("2026-02-26T12:00:00Z", NOW) == "3 d ago"
    assert ago(None, NOW) == "at an unknown time"
    assert short_time(NOW + dt.timedelta(minutes=21), NOW, utc=True) == "12:21 UTC"
    assert short_time(NOW + dt.timedelta(days=1), NOW, utc=True) == "2026-03-02 12:00 UTC"
