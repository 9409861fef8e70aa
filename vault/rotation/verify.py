"""Verify before switching: ask the API about candidates one at a time, best first, and stop at
the first that serves a real request.

    verification = verify_in_turn(ranked.tryable, Verify.CHAT, CheckOptions(), clock=kv.clock)
    verification.chosen      # the first key that passed, or None
    verification.skipped     # [("work-2", "quota_exhausted (chat probe: code=insufficient_quota)")]

Why one at a time: the chat probe costs a fraction of a cent per key, and a rotation needs one
good key, not a verdict on all of them. Two requests per key with `Verify.CHAT` (`GET /models`,
then the 1-token chat completion that proves credit and model access), one with
`Verify.MODELS`, none with `Verify.NONE` (the stored results are trusted).

A key that gets no HTTP answer (network_error) says nothing about the key; the other candidates
behind the same base URL are then not tried (they would fail the same way, each after its
retries), and when no candidate got an answer, `unreachable` tells the caller that the network
failed, not the keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from vault.errors import NetworkUnavailable
from vault.health.checking import CheckOptions, Probed, probe_settings, probe_target_of
from vault.health.model import HealthResult, ProbeTarget
from vault.model.clock import Clock
from vault.model.document import Entry
from vault.model.health import NOT_THE_KEY, HealthStatus
from vault.rotation.policy import Verify

# Seconds one candidate may wait for retries while it is verified: enough for a reset
# connection's backoff (0.5 s + 1 s), not for a rate limit's 20 s, since the next candidate
# can serve now.
VERIFY_MAX_WAIT: Final = 2.0


@dataclass
class Verification:
    """What verifying the candidates found and cost."""

    mode: Verify
    probed: Probed
    chosen: Entry | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why), in turn

    @property
    def requests(self) -> int:
        """HTTP requests made, retries included."""
        return sum(r.attempts for r in self.probed.results.values())

    @property
    def chats(self) -> int:
        """Chat completions among them (each ~10 input + 1 output token)."""
        return sum(1 for r in self.probed.results.values() if r.probe == "chat")

    def unreachable_error(self, where: str) -> NetworkUnavailable:
        """The error for `unreachable`: says so, key by key, with a hint about the network."""
        return NetworkUnavailable(
            f"could not check any candidate in {where}: the network or the API failed,"
            " not the keys; nothing was changed",
            details=tuple(f"{name}: {why}" for name, why in self.skipped),
            hint="check the network and the proxy (--proxy, proxy in config.toml, HTTPS_PROXY,"
            " ALL_PROXY) and the base URL, then try again",
        )

    @property
    def unreachable(self) -> bool:
        """No key passed and none got an answer that says anything about the key itself."""
        results = self.probed.results.values()
        return (
            self.chosen is None and bool(results) and all(r.status in NOT_THE_KEY for r in results)
        )


def failure_reason(result: HealthResult) -> str:
    """One short line: the verdict and the evidence that decided it."""
    return f"{result.status} ({result.probe} probe: {result.evidence or 'no evidence'})"


def trust_stored(entries: Sequence[Entry]) -> Verification:
    """`--no-check`: the first candidate is taken as it is; nothing is sent."""
    verification = Verification(Verify.NONE, Probed())
    verification.chosen = entries[0] if entries else None
    return verification


def verify_in_turn(
    entries: Sequence[Entry], mode: Verify, options: CheckOptions, *, clock: Clock
) -> Verification:
    """Probe `entries` in order until one passes. Never raises KeyboardInterrupt: the results
    so far come back with `probed.interrupted` set."""
    if mode is Verify.NONE:
        return trust_stored(entries)
    probed = Probed(secrets={e.id: e.secret for e in entries}, order=[e.id for e in entries])
    verification = Verification(mode, probed)
    if not entries:
        return verification
    names = {e.id: e.name for e in entries}

    def collect(result: HealthResult) -> None:
        probed.results[result.name] = dataclasses.replace(result, name=names[result.name])

    from vault.health import check  # noqa: PLC0415 - httpx only when something is checked

    try:
        check(
            _in_turn(entries, verification, options.default_base_url),
            deep=mode is Verify.CHAT,
            on_result=collect,
            in_turn=True,
            **probe_settings(options, options.proxy, clock, names),
        )
    except KeyboardInterrupt:
        probed.interrupted = True
    return verification


def _in_turn(
    entries: Sequence[Entry], verification: Verification, default_base_url: str | None
) -> Iterator[ProbeTarget]:
    """The targets, one at a time: each result is in before the next is drawn (runner's
    `in_turn`), so this can stop at the first pass and skip endpoints that did not answer."""
    silent: set[str] = set()
    for entry in entries:
        endpoint = entry.base_url or default_base_url or entry.effective_base_url
        if endpoint in silent:
            why = f"not tried: {_host(endpoint)} did not answer for an earlier key"
            verification.skipped.append((entry.name, why))
            continue
        yield probe_target_of(entry, default_base_url)
        result = verification.probed.results.get(entry.id)
        if result is None:  # interrupted
            return
        if result.ok:
            verification.chosen = entry
            return
        verification.skipped.append((entry.name, failure_reason(result)))
        if result.status is HealthStatus.NETWORK_ERROR:
            silent.add(endpoint)


def _host(url: str) -> str:
    try:
        parts = urlsplit(url)
        return parts.netloc.rpartition("@")[2] or url  # never the credentials of a URL
    except ValueError:
        return "the base url"
