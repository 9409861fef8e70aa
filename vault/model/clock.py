"""Time as the vault stores it and as people read it: one place for both.

The document stores UTC instants as RFC 3339 with a `Z` and whole seconds
(`2026-11-30T15:01:18Z`); human output shows local time unless the user asks for UTC.
Pure: the current time is always passed in (a `Clock`), never read here except by `utc_now`,
the default clock.
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime as dt
else:
    # CPython's C module: importing `datetime` first runs its whole pure-Python version and
    # then replaces it with these same types (~1 ms here, on every `keyvault env`, which
    # checks the vault's times at load). Other interpreters have only `datetime`.
    try:
        import _datetime as dt
    except ImportError:  # pragma: no cover - CPython always has it
        import datetime as dt

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The default clock: now, as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    """`moment` as the document stores it: UTC, whole seconds, `Z` (naive means UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_date(moment: dt.datetime) -> dt.date:
    """The day `moment` falls on where the user is (`created` defaults to it: a key added at
    02:00 in Shanghai was created that day, not the day before in UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone().date()


def iso_epoch(epoch: float) -> str:
    """Seconds since the epoch, in the stored form."""
    return iso(dt.datetime.fromtimestamp(epoch, dt.UTC))


def parse_time(text: object) -> dt.datetime | None:
    """A stored time or date as an aware UTC datetime; None when absent or not a time."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def is_time(text: object) -> bool:
    """Whether `text` is a stored time (or a date): what the document reader accepts.

    `parse_time(text) is not None`, without building the aware datetime: the reader asks
    this of every time in the vault (40,000 times for a 10,000-key vault).
    """
    if not isinstance(text, str) or not text:
        return False
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def human(moment: dt.datetime | str | None, *, utc: bool = False, seconds: bool = False) -> str:
    """A time for people: local time with its zone (`2026-11-30 16:01 CET`), or UTC with
    `utc=True` (`2026-11-30 15:01 UTC`, as local time reads where the zone is UTC); `-` for
    None or a value that is not a time."""
    when = parse_time(moment) if isinstance(moment, str) else moment
    if when is None:
        return "-"
    return _with_zone(when, "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M", utc=utc)


def time_of_day(moment: dt.datetime, *, utc: bool = False, seconds: bool = False) -> str:
    """A time without its date, for a wait within the day: `15:21` local, `15:21 UTC` with
    `utc=True` (a local time needs no zone: it is the user's own clock)."""
    shape = "%H:%M:%S" if seconds else "%H:%M"
    return _with_zone(moment, shape, utc=True) if utc else moment.astimezone().strftime(shape)


def _with_zone(moment: dt.datetime, shape: str, *, utc: bool) -> str:
    """The one way a zone is written: after the time, by name (`CET`, `UTC`; `+0530` when
    the zone has no name), never a bare `Z`, which is for the stored form."""
    when = moment.astimezone(dt.UTC if utc else None)
    return f"{when.strftime(shape)} {when.tzname() or when.strftime('%z')}"


def short_time(moment: dt.datetime, now: dt.datetime, *, utc: bool = False) -> str:
    """A time for a one-line reason: `15:21` on the same day as `now` (`15:21 UTC` in UTC),
    otherwise the full `human()` form with its date and zone."""
    zone = dt.UTC if utc else None
    if moment.astimezone(zone).date() != now.astimezone(zone).date():
        return human(moment, utc=utc)
    return time_of_day(moment, utc=utc)


# (unit, seconds), largest first: `ago` names an age in the largest unit it fills
_AGES = (("d", 86400), ("h", 3600), ("min", 60))


def ago(moment: dt.datetime | str | None, now: dt.datetime) -> str:
    """How long before `now` a stored time was, for people: `just now`, `5 min ago`, `2 h ago`,
    `3 d ago`; `at an unknown time` for None or a value that is not a time."""
    when = parse_time(moment) if isinstance(moment, str) else moment
    if when is None:
        return "at an unknown time"
    seconds = (now - when).total_seconds()
    for unit, size in _AGES:
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"
