"""A date a person reads or types is a day where they are, not a UTC day.

UTC+14 and UTC-12 are 26 hours apart, so at every instant they are on different dates: a
`created` that follows the TZ of the process proves the local day is used, whatever the
hour the suite runs at.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.helpers import Cli, make_key

# POSIX TZ strings (no tz database needed): the sign is the offset TO UTC
ZONES = {"KIR-14": dt.timedelta(hours=14), "BIT+12": dt.timedelta(hours=-12)}


def _local_days(offset: dt.timedelta) -> set[str]:
    now = dt.datetime.now(dt.UTC)
    zone = dt.timezone(offset)
    # the command runs between these two instants: either day may be right at midnight
    return {
        (now + delta).astimezone(zone).date().isoformat()
        for delta in (dt.timedelta(), dt.timedelta(minutes=2))
    }


@pytest.mark.parametrize("tz", ZONES)
def test_created_defaults_to_the_local_day(vault_cli: Cli, tz: str) -> None:
    vault_cli.ok("add", "k", "--project", "p", input=make_key(), env={"TZ": tz})
    shown = json.loads(vault_cli.ok("show", "k", "--json").out)
    assert shown["created"] in _local_days(ZONES[tz])


def test_today_where_the_user_is_is_not_in_the_future(vault_cli: Cli) -> None:
    """At any instant, UTC+14 is already on a day UTC has not reached."""
    ahead = max(_local_days(ZONES["KIR-14"]))
    vault_cli.ok("add", "k", "--created", ahead, input=make_key(), env={"TZ": "KIR-14"})
    assert json.loads(vault_cli.ok("show", "k", "--json").out)["created"] == ahead
