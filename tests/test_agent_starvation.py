"""Issue 13 item 7: same-uid clients that announce large requests and trickle them cannot
starve the unlock agent, make it allocate what they announce, or make other commands fail
with a wrong message. A real agent (`keyvault unlock`), real slow client processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Cli, make_key
from vault.session import runtime

pytestmark = [
    pytest.mark.skipif(not runtime.supported(), reason="sessions need unix sockets"),
    pytest.mark.slow,
]

SLOW_CLIENTS = 8  # the agent's MAX_CLIENTS: every slot taken
ANNOUNCED = 32 << 20  # each claims a 32 MiB body

# announces a request body of ANNOUNCED bytes, then sends one byte every 1.5 s, reconnecting
# whenever the agent drops it, for `seconds`
SLOW_CLIENT = """
import socket, struct, sys, time
path, announced, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + seconds
while time.monotonic() < end:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        header = b'{"op": "decrypt"}'
        s.sendall(struct.pack("!II", len(header), announced) + header)
        while time.monotonic() < end:
            s.sendall(b"x")
            time.sleep(1.5)
    except OSError:
        pass
    finally:
        s.close()
"""


def agent_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.fixture
def unlocked(vault_cli: Cli, runtime_dir: Path) -> Iterator[tuple[Cli, int, str]]:
    """An unlocked vault; a runner without the passphrase; the agent's pid; its socket."""
    vault_cli.add("main", make_key(), "--project", "demo")
    vault_cli.ok("unlock", "--ttl", "10m")
    pid = int(vault_cli.ok("status", "--json").out.split('"agent_pid": ')[1].split()[0])
    path = runtime.socket_path(vault_cli.home, runtime_dir / "keyvault")
    runner = Cli(vault_cli.home, {**vault_cli.env, "KEYVAULT_PASSPHRASE": ""})
    yield runner, pid, path
    os.kill(pid, signal.SIGCONT)
    vault_cli("lock")


def test_slow_clients_neither_starve_the_agent_nor_grow_it(
    unlocked: tuple[Cli, int, str],
) -> None:
    runner, pid, path = unlocked
    before = agent_peak_kib(pid)
    attackers = [
        subprocess.Popen([sys.executable, "-c", SLOW_CLIENT, path, str(ANNOUNCED), "30"])
        for _ in range(SLOW_CLIENTS)
    ]
    try:
        time.sleep(1.0)  # every slot is taken
        started = time.monotonic()
        listed = runner("list", timeout=25)
        elapsed = time.monotonic() - started
        grown_mib = (agent_peak_kib(pid) - before) / 1024
    finally:
        for attacker in attackers:
            attacker.kill()
            attacker.wait()
    assert listed.code == 0, listed.err
    assert "main" in listed.out
    assert elapsed < 12, f"waited {elapsed:.1f} s for the agent"
    # on main each announced body was allocated up front: 8 x 32 MiB
    assert grown_mib < 32, f"the agent grew by {grown_mib:.0f} MiB"


def test_an_agent_that_does_not_answer_is_named_as_such(unlocked: tuple[Cli, int, str]) -> None:
    """A stopped agent: the command says the session did not answer, not that it needs the
    passphrase even while unlocked, and gives up after one reply timeout, not two."""
    runner, pid, _ = unlocked
    os.kill(pid, signal.SIGSTOP)
    started = time.monotonic()
    result = runner("list", timeout=40)
    elapsed = time.monotonic() - started
    assert result.code == 3
    assert "the unlock session did not answer in time" in result.err
    assert "even while unlocked" not in result.err
    assert elapsed < 25
