"""`keyvault exec` output masking: the stream replacer on its own, then the real command
through the CLI (split writes, both streams, exit codes, signals, stdin, --no-masking)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli.terminal import in_terminal
from tests.helpers import Cli, make_key
from vault.export.masking import MASK, StreamMasker

KEY = make_key().encode()
OTHER = make_key().encode()


def masked(text: bytes, *secrets: bytes) -> bytes:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def run_chunks(chunks: list[bytes], *secrets: bytes) -> bytes:
    masker = StreamMasker(secrets)
    return b"".join(masker.feed(c) for c in chunks) + masker.close()


def test_a_key_split_at_every_point_is_masked() -> None:
    text = b"key=" + KEY + b" and again:" + KEY + b"\n"
    for cut in range(len(text) + 1):
        assert run_chunks([text[:cut], text[cut:]], KEY) == masked(text, KEY)
    assert run_chunks([bytes([b]) for b in text], KEY) == masked(text, KEY)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.sampled_from([b"x", b"sk-", b"sk-proj-", b"\n", KEY, OTHER, KEY[:30]])),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_any_stream_cut_anywhere_comes_out_masked(parts: list[bytes], cuts: list[int]) -> None:
    text = b"".join(parts)
    points = sorted({min(c, len(text)) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    out = run_chunks(chunks, KEY, OTHER)
    assert KEY not in out and OTHER not in out
    if not text.endswith(KEY[:30]):
        assert out == masked(text, KEY, OTHER)


def test_a_held_tail_is_let_out_only_when_it_shows_nothing_secret() -> None:
    masker = StreamMasker([KEY])
    assert masker.feed(b"Continue? yes") == b"Continue? ye"  # "s" could start the key
    assert masker.idle() == b"s"  # nothing came: a public prefix is no secret
    assert masker.feed(KEY[:20]) == b""
    assert masker.idle() == b""  # 20 characters of the key are: held
    assert masker.close() == MASK  # the stream ended on a cut key: masked, not leaked
    public = StreamMasker([KEY])
    assert public.feed(b"prefix sk-proj-") == b"prefix "
    assert public.close() == b"sk-proj-"


def test_a_key_inside_another_is_masked_whole() -> None:
    inner = KEY[:40]
    assert run_chunks([b"[" + KEY + b"]"], KEY, inner) == b"[" + MASK + b"]"


# --- through the CLI ----------------------------------------------------------------------

slow = pytest.mark.slow  # each a real keyvault exec and its command


@pytest.fixture
def project(vault_cli: Cli) -> Cli:
    vault_cli.add("main", KEY.decode(), "--project", "work")
    vault_cli.add("spare", OTHER.decode(), "--project", "work")
    return vault_cli


def kv_exec(cli: Cli, *command: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "vault", "exec", "--project", "work", *command],
        capture_output=True,
        env=cli.env,
        timeout=60,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


@slow
def test_both_streams_are_masked_even_when_written_in_pieces(project: Cli) -> None:
    script = (
        'printf "%s" "$OPENAI_API_KEY" | head -c 25; sleep 0.3;'
        ' printf "%s\\n" "$OPENAI_API_KEY" | tail -c +26;'
        ' echo "err: $OPENAI_API_KEY" >&2; echo "spare: $1"; exit 7'
    )
    done = kv_exec(project, "--", "sh", "-c", script, "sh", OTHER.decode())
    assert done.returncode == 7
    assert done.stdout == MASK + b"\n" + b"spare: " + MASK + b"\n"
    assert done.stderr == b"err: " + MASK + b"\n"


@slow
def test_no_masking_gives_the_command_the_terminal(project: Cli) -> None:
    shown = kv_exec(project, "--no-masking", "--", "sh", "-c", 'echo "$OPENAI_API_KEY"')
    assert shown.stdout == KEY + b"\n"
    probe = "[ -t 1 ] && echo stdout-is-a-terminal || echo stdout-is-a-pipe"
    masked_run = in_terminal(["exec", "--project", "work", "--", "sh", "-c", probe], project.env)
    assert masked_run.wait() == 0 and "stdout-is-a-pipe" in masked_run.text  # what it costs
    direct = in_terminal(
        ["exec", "--project", "work", "--no-masking", "--", "sh", "-c", probe], project.env
    )
    assert direct.wait() == 0 and "stdout-is-a-terminal" in direct.text


@slow
def test_stdin_reaches_the_command(project: Cli) -> None:
    done = kv_exec(project, "--", "sh", "-c", 'read line; echo "got $line"', input=b"hello\n")
    assert done.returncode == 0 and done.stdout == b"got hello\n"


@slow
def test_a_killing_signal_is_passed_on(project: Cli) -> None:
    done = kv_exec(project, "--", "sh", "-c", "kill -TERM $$")
    assert done.returncode == -signal.SIGTERM
    assert kv_exec(project, "--", "nonexistent-command-xyz").returncode == 127


@slow
def test_sigterm_to_keyvault_reaches_the_command(project: Cli) -> None:
    script = 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done'
    proc = subprocess.Popen(
        [sys.executable, "-m", "vault", "exec", "--project", "work", "--", "sh", "-c", script],
        stdout=subprocess.PIPE,
        env=project.env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert out == b"got-term\n" and proc.returncode == 3


@slow
def test_a_reader_that_leaves_ends_the_command(project: Cli) -> None:
    command = f'{sys.executable} -m vault exec --project work -- sh -c "yes \\$OPENAI_API_KEY"'
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", f"{command} | head -2"],
        capture_output=True,
        env=project.env,
        timeout=60,
        check=False,
    )
    assert done.stdout == MASK + b"\n" + MASK + b"\n"
    assert time.monotonic() - started < 30


@slow
def test_nested_exec_is_still_refused(project: Cli) -> None:
    inner = f"{sys.executable} -m vault exec --project work -- true"
    done = kv_exec(project, "--", "sh", "-c", inner)
    assert done.returncode == 1
    assert b"refusing to run keyvault exec inside keyvault exec" in done.stderr
