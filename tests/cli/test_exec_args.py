"""`keyvault exec`: the options end where the command begins, on both parsers.

`keyvault exec gcloud --project other` must give `--project other` to gcloud. Before, click
(and the fast path, which copies click) read options anywhere on the line, so that word went
to keyvault: the command got another project's key, and lost its own argument.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import Cli, make_key

WORK = make_key()
OTHER = make_key()
# the child prints its key and its arguments, one per line
SHOW = ["sh", "-c", 'printf "%s\\n" "$OPENAI_API_KEY" "$@"', "sh"]
PARSERS = {
    "fast": "from vault.cli.main import main; main()",
    "click": "import sys; from vault.cli.main import main; main(sys.argv[1:], fast_path=False)",
}


@pytest.fixture
def two_projects(vault_cli: Cli) -> Cli:
    vault_cli.add("w", WORK, "--project", "work")
    vault_cli.add("o", OTHER, "--project", "other")
    return vault_cli


def kv_exec(cli: Cli, parser: str, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PARSERS[parser], "exec", *words],
        capture_output=True,
        text=True,
        env=cli.env,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    "tail",
    [
        ["--project", "other"],
        ["--project=other", "--pristine"],
        ["--no-masking", "--vault", "/elsewhere"],
        ["--", "--project", "other"],
    ],
    ids=" ".join,
)
def test_words_after_the_command_are_the_commands(
    two_projects: Cli, parser: str, tail: list[str]
) -> None:
    done = kv_exec(two_projects, parser, "--project", "work", "--no-masking", *SHOW, *tail)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [WORK, *tail]


@pytest.mark.slow
@pytest.mark.parametrize("parser", PARSERS)
def test_options_before_the_command_are_keyvaults(two_projects: Cli, parser: str) -> None:
    done = kv_exec(two_projects, parser, "--no-masking", "--project=other", "--", *SHOW, "x")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [OTHER, "x"]
