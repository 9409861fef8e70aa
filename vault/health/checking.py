"""Check vault entries and store the results: the library call behind `keyvault check`.

    entries = select_entries(kv.read(), names=[], project="work", everything=False)
    report = run_checks(kv, entries, CheckOptions(deep=True))

The network runs outside the vault lock, for as long as it takes; the results are then merged
by entry id in ONE `kv.transact`. An entry removed meanwhile loses its result; an entry whose
secret was replaced meanwhile keeps its new (unchecked) state; a renamed one is found by id.
A Ctrl-C keeps every result that finished: `on_result` collects them as they arrive and the
save runs on the way out, then the report says `interrupted`.

Each stored `entry.health` is a `HealthRecord` (vault/model/health.py): the evidence plus
`consecutive_failures` (hard failures in a row), `last_ok_at`, and `disabled_by_policy` when
the `[health] disable_after` policy disabled the key (only those keys are re-enabled by a
later passing check; a key the user disabled stays disabled). History gets one `check` event
per status change, not per check, so a daily cron job does not grow the vault.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from vault.errors import EXIT_CHECK_FAILED, AdminApiError, UsageError
from vault.health.model import DEFAULT_MAX_WAIT, HealthResult, ProbeTarget
from vault.health.policy import HealthPolicy, health_policy
from vault.model.clock import Clock, iso
from vault.model.document import Entry, Kind, Status, VaultDoc
from vault.model.entry import CREDIT_RELAY
from vault.model.health import DEEP_ONLY, HealthRecord
from vault.model.health import HealthStatus as Health
from vault.model.records import Action
from vault.model.secret import Secret
from vault.store.config import DEFAULT_RUN_TIMEOUT, DEFAULT_TIMEOUT
from vault.store.keyvault import Keyvault

if TYPE_CHECKING:
    from vault.health.fetch import Limits


@dataclass(frozen=True)
class CheckOptions:
    """How to check; `transport`/`admin_transport` are httpx transports for tests (Any here so
    that importing this module does not import httpx)."""

    deep: bool = False
    balance: bool = False
    concurrency: int = 64
    model: str = "gpt-4o-mini"
    timeout: float = 10.0  # each network operation (connect, one read, one write)
    request_timeout: float = DEFAULT_TIMEOUT  # each request in total
    run_timeout: float | None = DEFAULT_RUN_TIMEOUT  # the whole command's network work
    run_ends: float | None = None  # time.monotonic() when it ends; None: run_timeout from now
    max_retry_wait: float = DEFAULT_MAX_WAIT  # s one key may wait for retries, in all
    proxy: str | None = None  # the invocation's proxy (Context.proxy); None: the environment
    default_base_url: str | None = None  # config.toml's, for keys stored without a base URL
    transport: Any = None
    admin_transport: Any = None
    on_result: Callable[[HealthResult], None] | None = None
    on_wait: Callable[[str, float], None] | None = None  # (entry name, seconds) per retry wait


@dataclass
class Checked:
    """One stored result; `action` is what the policy did (disabled, enabled) or why the
    result was dropped (removed, replaced)."""

    entry_id: str
    name: str
    project: str | None
    result: HealthResult
    previous: str | None
    action: str | None = None
    last_ok_at: str | None = None
    active: bool = False  # the project's active key (what its .env files hold)
    credit: CreditChange | None = None  # --balance replaced the recorded credit

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "project": self.project,
            "active": self.active,
            "previous": self.previous,
            "action": self.action,
            "last_ok_at": self.last_ok_at,
            **self.result.to_dict(),
            "credit": self.credit._asdict() if self.credit else None,
            "entry": self.entry_id,
        }


class CreditChange(NamedTuple):
    """A recorded credit that a relay's balance replaced, and where the old figure came from."""

    previous: float | None
    previous_source: str | None
    previous_at: str | None
    credit_usd: float


@dataclass
class CheckReport:
    checked: list[Checked] = field(default_factory=list)
    planned: int = 0
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        """0 when every checked key is ok, else 5 (README.md's exit codes)."""
        return 0 if all(c.result.ok for c in self.checked) else EXIT_CHECK_FAILED


@dataclass
class Probed:
    """Raw results by entry id, with the secret each was checked with."""

    results: dict[str, HealthResult] = field(default_factory=dict)
    secrets: dict[str, Secret] = field(default_factory=dict)
    interrupted: bool = False
    order: list[str] = field(default_factory=list)  # entry ids as given: a stable report

    def in_order(self) -> list[tuple[str, HealthResult]]:
        """The results in the order the entries were given, not the order they finished."""
        rank = {entry_id: i for i, entry_id in enumerate(self.order)}
        return sorted(self.results.items(), key=lambda item: rank.get(item[0], len(rank)))


# --- choosing -------------------------------------------------------------------------------


def select_entries(
    doc: VaultDoc,
    *,
    names: Sequence[str] = (),
    project: str | None = None,
    everything: bool = False,
) -> list[Entry]:
    """NAMEs as given (any status), else a project's or every key except retired ones."""
    if names and (project is not None or everything):
        raise UsageError("give NAMEs, --project or --all, not several")
    if names:
        return [doc.find(name) for name in dict.fromkeys(names)]
    return [
        e
        for e in doc.entries
        if e.status is not Status.RETIRED
        and (everything or project is None or e.project == project)
    ]


# --- probing (network, no vault access) ----------------------------------------------------


def probe_entries(
    entries: Iterable[Entry], options: CheckOptions, *, proxy: str | None, clock: Clock
) -> Probed:
    """Check API keys with the model probe and admin keys against the Administration API.
    Never raises KeyboardInterrupt: it returns what finished with `interrupted` set."""
    todo = list(entries)
    probed = Probed(secrets={e.id: e.secret for e in todo}, order=[e.id for e in todo])
    names = {e.id: e.name for e in todo}
    limits = run_limits(options)  # one deadline for everything checked, admin keys included

    def collect(result: HealthResult) -> None:
        shown = dataclasses.replace(result, name=names[result.name])
        probed.results[result.name] = shown
        if options.on_result is not None:
            options.on_result(shown)

    try:
        api = [e for e in todo if e.kind is not Kind.ADMIN]
        if api:
            from vault.health import check  # noqa: PLC0415 - httpx only when something is checked

            check(
                [probe_target_of(e, options.default_base_url) for e in api],
                deep=options.deep,
                balance=options.balance,
                on_result=collect,
                **probe_settings(options, proxy, clock, names, limits),
            )
        for entry in (e for e in todo if e.kind is Kind.ADMIN):
            collect(_ping_admin(entry, options, limits, proxy, clock))
    except KeyboardInterrupt:
        probed.interrupted = True
    return probed


def probe_target_of(entry: Entry, default_base_url: str | None = None) -> ProbeTarget:
    """The target for an entry, named by its id so results map back even after a rename; a
    key stored without a base URL goes where its exports send it (config's default, else
    OpenAI)."""
    base_url = entry.base_url or default_base_url or entry.effective_base_url
    return dataclasses.replace(ProbeTarget.from_entry(entry), name=entry.id, base_url=base_url)


def probe_settings(
    options: CheckOptions,
    proxy: str | None,
    clock: Clock,
    names: Mapping[str, str],
    limits: Limits | None = None,
) -> dict[str, Any]:
    """The runner's settings for these options (everything but what to probe): shared by
    `check` and by rotation's verification, so both honour the same limits and deadlines."""
    on_wait = options.on_wait
    return {
        "limits": limits if limits is not None else run_limits(options),
        "model": options.model,
        "concurrency": options.concurrency,
        "timeout": options.timeout,
        "max_retry_wait": options.max_retry_wait,
        "transport": options.transport,
        "proxy": proxy,
        "clock": clock,
        "on_wait": None if on_wait is None else lambda i, s: on_wait(names.get(i, i), s),
    }


def run_limits(options: CheckOptions) -> Limits:
    """The time bounds of `options`: each request, and the command's run (its `run_ends`
    when the caller fixed one for several steps, else `run_timeout` from now)."""
    from vault.health.fetch import Limits  # noqa: PLC0415 - httpx only when something is checked

    if options.run_ends is not None:
        return Limits(options.request_timeout, options.run_timeout, options.run_ends)
    return Limits.starting_now(options.request_timeout, options.run_timeout)


def _ping_admin(
    entry: Entry, options: CheckOptions, limits: Limits, proxy: str | None, clock: Clock
) -> HealthResult:
    from vault.health.admin import AdminClient  # noqa: PLC0415

    try:
        with AdminClient(
            entry.secret,
            base_url=entry.effective_base_url,
            proxy=proxy,
            transport=options.admin_transport,
            timeout=options.timeout,
            limits=limits,
        ) as api:
            return api.ping(entry.id, clock)
    except AdminApiError as exc:
        stamp = iso(clock())
        return HealthResult(
            entry.id, Health.UNEXPECTED, stamp, message=exc.message, evidence="refused"
        )


# --- merging (inside the one transaction) --------------------------------------------------


def merge_results(doc: VaultDoc, probed: Probed, policy: HealthPolicy, now: str) -> list[Checked]:
    """Store each result on its entry (found by id), apply the disable policy; the document
    records status changes in history. Results for removed or re-keyed entries are reported,
    not stored."""
    out: list[Checked] = []
    for entry_id, raw in probed.in_order():
        entry = doc.by_id(entry_id)
        if entry is None or entry.secret != probed.secrets.get(entry_id):
            why = "removed" if entry is None else "replaced"
            out.append(Checked(entry_id, raw.name, None, raw, None, f"dropped: {why}"))
            continue
        previous = entry.health.status.value if entry.health else None
        credit_before = (entry.credit_usd, entry.credit_source, entry.credit_at)
        result = _keep_deep_verdict(raw, entry.health)
        action = _store(doc, entry, result, policy, now)
        last_ok = entry.health.last_ok_at if entry.health else None
        credit = None
        if entry.credit_usd is not None and entry.credit_usd != credit_before[0]:
            credit = CreditChange(*credit_before, entry.credit_usd)
        active = entry.status is Status.ACTIVE
        checked = Checked(entry.id, entry.name, entry.project, result, previous, action, last_ok)
        out.append(dataclasses.replace(checked, active=active, credit=credit))
    return out


def _keep_deep_verdict(result: HealthResult, before: HealthRecord | None) -> HealthResult:
    """A shallow "ok" does not clear what only a deep check can see; the next --deep does."""
    if not result.ok or result.probe != "models" or before is None:
        return result
    if before.status not in DEEP_ONLY or before.probe not in ("chat", "balance"):
        return result
    evidence = (
        f"models ok; {before.status} from an earlier {before.probe} probe stands"
        " (check with --deep)"
    )
    probe: Any = before.probe
    return dataclasses.replace(result, status=before.status, probe=probe, evidence=evidence)


POLICY_REASONS: Mapping[str, str] = {
    "disabled": "{n} hard failures in a row (last: {s})",
    "enabled": "check passed after a policy disable",
}


def _store(
    doc: VaultDoc, entry: Entry, result: HealthResult, policy: HealthPolicy, now: str
) -> str | None:
    before = entry.health
    failures = before.consecutive_failures if before else 0
    if result.ok:
        failures = 0
    elif result.status in policy.hard:
        failures += 1  # soft failures (network, rate limit) say nothing about the key itself
    was_disabled = bool(before and before.disabled_by_policy and entry.status is Status.DISABLED)
    record = health_record(
        result,
        consecutive_failures=failures,
        last_ok_at=result.checked_at if result.ok else (before.last_ok_at if before else None),
        disabled_by_policy=was_disabled,
    )
    doc.store_health(entry, record, at=now)
    action = None
    if (
        policy.disable_after is not None
        and failures >= policy.disable_after
        and entry.status is Status.STANDBY
    ):
        action = "disabled"
        reason = POLICY_REASONS[action].format(n=policy.disable_after, s=result.status.value)
        doc.set_status(entry, Status.DISABLED, at=now, action=Action.DISABLE, why=reason)
        entry.health = record._replace(disabled_by_policy=True)
    elif result.ok and was_disabled:
        action = "enabled"
        why = POLICY_REASONS[action]
        doc.set_status(entry, Status.STANDBY, at=now, action=Action.ENABLE, why=why)
        entry.health = record._replace(disabled_by_policy=False)
    if result.balance_usd is not None:
        doc.set_credit(entry, round(result.balance_usd, 6), at=now, source=CREDIT_RELAY)
    return action


def health_record(result: HealthResult, **bookkeeping: Any) -> HealthRecord:
    """The stored form of a check's result (the evidence, never the secret)."""
    fields = {k: v for k, v in result.to_dict().items() if k in HealthRecord._fields}
    fields["status"] = result.status
    return HealthRecord(**{**fields, **bookkeeping})


# --- the whole command ---------------------------------------------------------------------


def run_checks(kv: Keyvault, entries: Sequence[Entry], options: CheckOptions) -> CheckReport:
    """Check `entries` and store every finished result in one atomic save."""
    policy = health_policy(kv.config)
    probed = probe_entries(entries, options, proxy=options.proxy, clock=kv.clock)
    report = CheckReport(planned=len(entries), interrupted=probed.interrupted)
    if probed.results:
        now = kv.now_iso()
        with interrupts_deferred():
            report.checked = kv.transact(lambda doc: merge_results(doc, probed, policy, now))
    return report


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that arrives during a save until the save is done, then raise it: the
    results already paid for in network time are not thrown away by a second Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
