"""Check many keys at once: shared lanes of HTTP clients (lanes.py), results in input order.

Default concurrency is 64, not 16: 1,000 keys at 100 ms each need ≥ 6.25 s at 16 in flight,
but ~1.6 s at 64 (docs/health.md, bench/health.py).

Time is bounded twice (fetch.Limits): each request by `request_timeout`, and each key's whole
check (waiting for a lane, retries and their sleeps included) by the run's deadline; a key
still unfinished then gets a `run_deadline` result under its own name.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from vault.errors import EXIT_CHECK_FAILED, InvalidValue
from vault.health.fetch import Limits, deadline_failure
from vault.health.lanes import Lanes
from vault.health.model import DEFAULT_MAX_WAIT, HealthResult, ProbeTarget
from vault.health.probe import ProbePlan, probe_target
from vault.health.transport import RetryPolicy, Session
from vault.model.clock import iso

DEFAULT_CONCURRENCY: Final = 64
DEFAULT_TIMEOUT: Final = 10.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def check_targets(
    targets: Iterable[ProbeTarget],
    *,
    deep: bool = False,
    model: str = "gpt-4o-mini",
    balance: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    max_retries: int = 2,
    max_retry_wait: float = DEFAULT_MAX_WAIT,
    transport: httpx.AsyncBaseTransport | None = None,
    proxy: str | None = None,
    verify: ssl.SSLContext | str | bool = True,
    http2: bool | None = None,
    clock: Callable[[], datetime] = _utcnow,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
    on_result: Callable[[HealthResult], None] | None = None,
    on_wait: Callable[[str, float], None] | None = None,
    in_turn: bool = False,
    limits: Limits | None = None,
) -> list[HealthResult]:
    """Probe every target, at most `concurrency` requests in flight; one result per target, in
    input order. `on_result` sees each result as soon as it is known (for progress output),
    `on_wait(name, seconds)` each retry wait before it starts; `max_retry_wait` bounds one
    key's waiting in total. `timeout` bounds each network operation, `limits` each request
    and the whole run.

    `in_turn=True` probes one target at a time and draws the next from `targets` only after
    `on_result` saw the previous result, so a generator can stop at the first key that passes
    (rotation verifies candidates this way: it pays for no more requests than it needs)."""
    if concurrency < 1:
        raise InvalidValue("concurrency must be at least 1")
    if timeout <= 0 or max_retries < 0 or max_retry_wait < 0:
        raise InvalidValue("timeout must be positive and retry limits not negative")
    todo: Iterable[ProbeTarget] = targets if in_turn else list(targets)
    if not in_turn and not todo:
        return []
    plan = ProbePlan(deep=deep, model=model, balance=balance, clock=clock)
    policy = RetryPolicy(max_retries, max_retry_wait, sleep, rand, on_wait)
    limits = limits or Limits()
    lanes = Lanes(
        concurrency, timeout=timeout, transport=transport, proxy=proxy, verify=verify, http2=http2
    )

    async def one(target: ProbeTarget) -> HealthResult:
        try:
            async with _until(limits.run_ends):
                result = await probe_target(Session(lanes, target, policy, limits=limits), plan)
        except TimeoutError:  # waiting for a lane or sleeping before a retry, out of time
            late = deadline_failure(limits, run=True)
            result = HealthResult.from_verdict(target.name, iso(clock()), late, probe="models")
        if on_result is not None:
            on_result(result)
        return result

    try:
        if in_turn:
            return [await one(t) for t in todo]  # lazily: each target after the last result
        return list(await asyncio.gather(*(one(t) for t in todo)))
    finally:
        await lanes.aclose()


def _until(run_ends: float | None) -> contextlib.AbstractAsyncContextManager[object]:
    """asyncio's timeout at a `time.monotonic()` deadline (the loop's clock), or none."""
    if run_ends is None:
        return contextlib.nullcontext()
    return asyncio.timeout(max(run_ends - time.monotonic(), 0.0))


def check(targets: Iterable[ProbeTarget], **kw: Any) -> list[HealthResult]:
    """`check_targets` for synchronous callers (the CLI); not for use inside a running loop."""
    return asyncio.run(check_targets(targets, **kw))


def exit_code(results: Iterable[HealthResult]) -> int:
    """0 when every checked key is ok, else the `check` exit code (5)."""
    return 0 if all(r.ok for r in results) else EXIT_CHECK_FAILED
