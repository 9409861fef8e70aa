"""Rough edges of the everyday commands, found by trying them as a stranger would: how `log`
reads, one form for times, `unlock` options that contradict each other, keys pasted from
Windows, following and forgetting `.env` files, `doctor` on a broken config.toml, and what
the `import` plan says about keys that another row displaced. Real processes, real files."""

from __future__ import annotations

import json
import re

from tests.helpers import Cli, make_key


def test_log_details_read_as_words_not_python(vault_cli: Cli) -> None:
    cli = vault_cli
    cli.add("a", make_key(), "--project", "p")
    cli.ok("edit", "a", "--note", "n", "--tag", "x")
    text = cli.ok("log", "a").out
    edit = next(line for line in text.splitlines() if " edit " in line)
    assert edit.endswith("project: p; fields: note, tags"), edit
    assert "[" not in text and "'" not in text and "=" not in text
    assert "project: p; status: active" in text  # the add event, in the same form
    events = json.loads(cli.ok("log", "a", "--json").out)
    assert events[-1]["fields"] == ["note", "tags"]  # JSON keeps the list


def test_utc_times_read_as_local_times_do_where_the_zone_is_utc(vault_cli: Cli) -> None:
    """`--utc` used to print `15:01Z` while a machine set to UTC printed `15:01 UTC`: the
    same instant in two spellings. Now `--utc` from Shanghai prints what local time prints
    in London in winter, for every command that shows times."""
    cli = vault_cli
    cli.add("a", make_key(), "--project", "p")
    for command in (["log"], ["show", "a"]):
        asked = cli.ok(*command, "--utc", env={"TZ": "Asia/Shanghai"}).out
        local = cli.ok(*command, env={"TZ": "UTC"}).out
        assert asked == local
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", asked), asked
        assert not re.search(r"\d\d:\d\dZ", asked)
        shanghai = cli.ok(*command, env={"TZ": "Asia/Shanghai"}).out
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CST", shanghai)  # local by default


def test_unlock_refuses_an_idle_timeout_longer_than_the_session(vault_cli: Cli) -> None:
    cli = vault_cli
    for args in (["--ttl", "1h", "--idle", "2h"], ["--idle", "9h"]):  # 9h > the default 8h
        result = cli("unlock", *args)
        assert result.code == 2, result.err
        assert "is longer than --ttl" in result.err.splitlines()[0]
        assert "locked" in cli.ok("status").out  # nothing started
    started = cli.ok("unlock", "--ttl", "1h", "--idle", "1h")  # equal: harmless, accepted
    try:
        assert started.out.startswith("unlocked until")
    finally:
        cli.ok("lock")
