"""`keyvault ci`: $GITHUB_ENV read back by a model of the Actions runner, GitLab dotenv
reports read back by a model of GitLab's parser.

The runner model follows SetEnvFileCommand in actions/runner (src/Runner.Worker/
FileCommandManager.cs): lines end at LF (CR LF too on Windows runners); a line is
`NAME=value` when its first `=` comes before any `<<`, else `NAME<<DELIM`, whose value is
every line up to the first line equal to DELIM, without the line break before it. The
GitLab model follows Ci::ParseDotenvArtifactService: each line must match /^(.*?)=(.*)$/
and both sides are stripped.
"""

from __future__ import annotations

import io
import re
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Cli, make_key
from vault.errors import InvalidValue, PolicyViolation, UsageError
from vault.export.ci import (
    GITLAB_DOTENV_MAX_BYTES,
    github_env,
    gitlab_dotenv,
    mask_command,
    new_delimiter,
)

# --- the runner's parser -----------------------------------------------------------------------


def _read_line(text: str, index: int, windows: bool) -> tuple[str | None, int, str | None]:
    """(line, next index, line break) like the runner's ReadLine."""
    if index >= len(text):
        return None, index, None
    lf = text.find("\n", index)
    if lf < 0:
        return text[index:], len(text), None
    crlf = text.find("\r\n", index) if windows else -1
    if 0 <= crlf < lf:
        return text[index:crlf], crlf + 2, "\r\n"
    return text[index:lf], lf + 1, "\n"


def runner_parse(text: str, *, windows: bool = False) -> dict[str, str]:
    env: dict[str, str] = {}
    line, index, _ = _read_line(text, 0, windows)
    while line is not None:
        if line:
            equals, heredoc = line.find("="), line.find("<<")
            if equals >= 0 and (heredoc < 0 or equals < heredoc):
                name, value = line.split("=", 1)
            else:
                assert heredoc >= 0, f"invalid line {line!r}"
                name, delimiter = line.split("<<", 1)
                assert name and delimiter
                start = end = index
                current, index, newline = _read_line(text, index, windows)
                while current != delimiter:
                    assert current is not None, "matching delimiter not found"
                    assert newline is not None
                    end = index - len(newline)
                    current, index, newline = _read_line(text, index, windows)
                value = text[start:end] if end > start else ""
            env[name] = value
        line, index, _ = _read_line(text, index, windows)
    return env


def raw_text(path: Path) -> str:
    """The file as .NET's File.ReadAllText sees it: no newline translation."""
    return path.read_bytes().decode("utf-8")


def runner_unmask(line: str) -> str:
    """The data of a `::add-mask::` command as the runner decodes it."""
    data = line.removeprefix("::add-mask::")
    return data.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


# --- GitHub Actions ----------------------------------------------------------------------------

HOSTILE_VALUE = (
    "first line\nX=1\nOPENAI_ORG_ID<<EOF\nsneaky\nEOF\n"
    "ghadelimiter_00000000-0000-0000-0000-000000000000\nPATH=/tmp/evil\n\nlast"
)


def test_hostile_value_is_exactly_one_variable(tmp_path: Path) -> None:
    env_file = tmp_path / "github_env"
    env_file.write_text("EARLIER=kept\n")
    out = io.StringIO()
    github_env(
        {"OPENAI_API_KEY": HOSTILE_VALUE, "OPENAI_ORG_ID": "org-1"},
        ["OPENAI_API_KEY"],
        github_env_path=env_file,
        out=out,
    )
    for windows in (False, True):
        assert runner_parse(raw_text(env_file), windows=windows) == {
            "EARLIER": "kept",
            "OPENAI_API_KEY": HOSTILE_VALUE,
            "OPENAI_ORG_ID": "org-1",
        }


values_text = st.lists(
    st.one_of(
        st.sampled_from(["\n", "\r", "\r\n", "=", "<<", "EOF", "%", "%0A", "::", "ghadelimiter_"]),
        st.characters(exclude_characters="\0", exclude_categories=("Cs",)),
    ),
    max_size=30,
).map("".join)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=values_text, org=values_text)
@pytest.mark.slow
def test_any_value_survives_the_runner(tmp_path: Path, key: str, org: str) -> None:
    env_file = tmp_path / "env"
    env_file.write_bytes(b"")
    values = {"OPENAI_API_KEY": key, "OPENAI_ORG_ID": org}
    out = io.StringIO()
    try:
        github_env(values, ["OPENAI_API_KEY"], github_env_path=env_file, out=out)
    except InvalidValue:
        assert "\r" in key or "\r" in org  # runners disagree on CR: refused anywhere
        assert env_file.read_bytes() == b""
        assert out.getvalue() == ""
        return
    for windows in (False, True):
        assert runner_parse(raw_text(env_file), windows=windows) == values
    masks = [runner_unmask(line) for line in out.getvalue().split("\n") if line]
    assert all("\n" not in m and "\r" not in m for m in out.getvalue().split("\n"))
    if key:
        assert masks[0] == key
        assert all(part in masks for part in re.split(r"\r\n|\r|\n", key) if part)
    else:
        assert masks == []


def test_value_containing_the_delimiter_aborts_with_nothing_written(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_bytes(b"BEFORE=1\n")
    out = io.StringIO()
    fixed = "ghadelimiter_11111111-2222-3333-4444-555555555555"
    with pytest.raises(InvalidValue, match="delimiter") as caught:
        github_env(
            {"OPENAI_API_KEY": "a\n" + fixed + "\nEVIL=1"},
            ["OPENAI_API_KEY"],
            github_env_path=env_file,
            out=out,
            delimiter=lambda: fixed,
        )
    assert fixed not in str(caught.value)
    assert env_file.read_bytes() == b"BEFORE=1\n"
    assert out.getvalue() == ""


def test_masks_are_printed_before_the_file_is_written(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_bytes(b"")
    key = make_key()

    class Watcher(io.StringIO):
        def write(self, text: str) -> int:
            assert env_file.read_bytes() == b"", "file written before the mask"
            return super().write(text)

    out = Watcher()
    github_env(
        {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": "https://x"},
        ["OPENAI_API_KEY"],
        github_env_path=env_file,
        out=out,
    )
    assert out.getvalue() == f"::add-mask::{key}\n"
    assert runner_parse(raw_text(env_file))["OPENAI_API_KEY"] == key


def test_mask_command_escapes_the_runner_specials() -> None:
    assert mask_command("a%b\rc\nd") == "::add-mask::a%25b%0Dc%0Ad\n"
    assert runner_unmask(mask_command("50%0A off").rstrip("\n")) == "50%0A off"


def test_delimiters_are_unique() -> None:
    assert len({new_delimiter() for _ in range(100)}) == 100
    assert re.fullmatch(r"ghadelimiter_[0-9a-f-]{36}", new_delimiter())


@pytest.mark.parametrize(
    "name",
    [
        "PATH",
        "Path",
        "LD_PRELOAD",
        "DYLD_INSERT_LIBRARIES",
        "BASH_ENV",
        "ENV",
        "NODE_OPTIONS",
        "PYTHONPATH",
        "GIT_SSH_COMMAND",
        "GITHUB_TOKEN",
        "ACTIONS_RUNTIME_TOKEN",
    ],
)
def test_dangerous_names_are_refused(tmp_path: Path, name: str) -> None:
    env_file = tmp_path / "env"
    env_file.write_bytes(b"")
    out = io.StringIO()
    with pytest.raises(PolicyViolation, match=f"refusing to export {name}"):
        github_env(
            {"OPENAI_API_KEY": "k", name: "x"},
            ["OPENAI_API_KEY"],
            github_env_path=env_file,
            out=out,
        )
    assert env_file.read_bytes() == b""
    assert out.getvalue() == ""
    with pytest.raises(PolicyViolation):
        gitlab_dotenv({name: "x"}, tmp_path / "report.env")
    assert not (tmp_path / "report.env").exists()


def test_a_variable_the_project_does_not_set_but_the_job_holds_is_refused(
    tmp_path: Path,
) -> None:
    """An earlier `ci github` of a relay project left OPENAI_BASE_URL in the job: neither
    file can remove it, so a project without a base URL must not send its key there."""
    env_file = tmp_path / "github_env"
    env_file.write_bytes(b"EARLIER=1\n")
    report = tmp_path / "report.env"
    key = make_key()
    job = {"OPENAI_BASE_URL": "https://relay.example/v1", "OPENAI_ORG_ID": ""}
    unset = ("OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")
    out = io.StringIO()
    with pytest.raises(PolicyViolation, match="OPENAI_BASE_URL is set in this job") as caught:
        github_env(
            {"OPENAI_API_KEY": key},
            ["OPENAI_API_KEY"],
            github_env_path=env_file,
            out=out,
            unset=unset,
            environ=job,
        )
    assert key not in str(caught.value) and out.getvalue() == ""
    assert env_file.read_bytes() == b"EARLIER=1\n"
    with pytest.raises(PolicyViolation, match="OPENAI_BASE_URL is set in this job"):
        gitlab_dotenv({"OPENAI_API_KEY": key}, report, unset=unset, environ=job)
    assert not report.exists()
    # the project sets it (it overrides the job's), or the job holds only an empty one: fine
    fine = {"OPENAI_ORG_ID": ""}
    github_env(
        {"OPENAI_API_KEY": key}, [], github_env_path=env_file, out=out, unset=unset, environ=fine
    )
    assert gitlab_dotenv(
        {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": "https://r.example/v1"},
        report,
        unset=unset[1:],
        environ=job,
    )


def test_missing_github_env_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="GITHUB_ENV is not set"):
        github_env({"OPENAI_API_KEY": "k"}, [], github_env_path=None, out=io.StringIO())


# --- GitLab -------------------------------------------------------------------------------------


def gitlab_parse(data: bytes) -> dict[str, str]:
    assert len(data) < GITLAB_DOTENV_MAX_BYTES
    variables: dict[str, str] = {}
    for line in data.decode("utf-8").splitlines(keepends=True):
        match = re.search(r"^(.*?)=(.*)$", line, re.M)
        assert match, f"invalid format: {line!r}"
        key, value = match[1].strip(), match[2].strip()
        assert re.fullmatch(r"[a-zA-Z0-9_]+", key)
        variables[key] = value
    return variables


def test_gitlab_report_reads_back_and_is_private(tmp_path: Path) -> None:
    report = tmp_path / "keyvault.env"
    values = {
        "OPENAI_API_KEY": make_key(),
        "OPENAI_BASE_URL": "https://h/v1?a=b=c#x",
        "OPENAI_ORG_ID": "org-'\"`é",
    }
    warnings = gitlab_dotenv(values, report)
    assert gitlab_parse(report.read_bytes()) == values
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    assert len(warnings) == 1
    assert "downloadable" in warnings[0] or "download" in warnings[0]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a\nb", "line break"),
        ("a\rb", "line break"),
        (" lead", "blank"),
        ("trail\t", "blank"),
        ("co$t", r"\$"),
        ("x" * GITLAB_DOTENV_MAX_BYTES, "limit"),
    ],
)
def test_gitlab_refuses_what_it_would_change(tmp_path: Path, value: str, reason: str) -> None:
    report = tmp_path / "keyvault.env"
    with pytest.raises(InvalidValue, match=reason) as caught:
        gitlab_dotenv({"OPENAI_API_KEY": value}, report)
    assert value not in str(caught.value)
    assert not report.exists()


def test_gitlab_warns_when_the_key_could_not_be_masked(tmp_path: Path) -> None:
    report = tmp_path / "keyvault.env"
    for unmaskable in ("short", "has space-not-allowed-here!", "key#with#hash"):
        warnings = gitlab_dotenv({"OPENAI_API_KEY": unmaskable}, report)
        assert any("cannot be a masked gitlab variable" in w for w in warnings)
        assert all(unmaskable not in w for w in warnings)
    assert len(gitlab_dotenv({"OPENAI_API_KEY": make_key()}, report)) == 1


# --- through the CLI: two `ci github` steps in one job ------------------------------------


def test_a_second_ci_step_never_inherits_the_first_projects_relay(
    vault_cli: Cli, tmp_path: Path
) -> None:
    relay_key = vault_cli.add("r", None, "--project", "relay", "--base-url", "https://r.example/v1")
    vault_cli.add("p", None, "--project", "plain")
    env_file = tmp_path / "github_env"
    env_file.write_text("")
    first = vault_cli("ci", "github", "--project", "relay", env={"GITHUB_ENV": str(env_file)})
    assert first.code == 0, first.err
    job = runner_parse(env_file.read_text())  # what the runner gives the next step
    assert job == {"OPENAI_API_KEY": relay_key, "OPENAI_BASE_URL": "https://r.example/v1"}
    before = env_file.read_bytes()
    second = vault_cli(
        "ci", "github", "--project", "plain", env={**job, "GITHUB_ENV": str(env_file)}
    )
    assert second.code == 1 and "OPENAI_BASE_URL is set in this job" in second.err
    assert env_file.read_bytes() == before and second.out == ""
    report = tmp_path / "keyvault.env"
    third = vault_cli("ci", "gitlab", "--project", "plain", "--output", str(report), env=job)
    assert third.code == 1 and not report.exists()
