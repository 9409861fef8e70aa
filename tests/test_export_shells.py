"""`keyvault env` output, evaluated by the real bash, zsh, dash and fish.

Every check runs the rendered text through the shell the way users do (`eval "$(...)"`,
`eval $(...)`, `source`, `eval (...)`) and then dumps the environment with `env -0`, so the
comparison is byte for byte on what a child process would receive. PowerShell and cmd are
not installed here: their output is checked against reference tokenizers written from the
documented rules (PowerShell's ScanStringLiteral, cmd's parsing phases).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.helpers import make_key, require_tool
from vault.errors import InvalidValue, PolicyViolation, UsageError
from vault.export import OPENAI_VARIABLES, export_values
from vault.export.shells import (
    POWERSHELL_QUOTES,
    SHELLS,
    detect_shell,
    quote_cmd,
    quote_powershell,
    render_exports,
    render_format,
    render_unsets,
    shell_of,
)
from vault.model.entry import Entry, Kind
from vault.model.secret import Secret

# (label, shell dialect, argv): the script path is the last argument.
RUNNERS = {
    "bash-quoted": ("bash", ["bash", "--norc", "--noprofile", "-c", 'eval "$(cat "$1")"']),
    "bash-unquoted": ("bash", ["bash", "--norc", "--noprofile", "-c", 'eval $(cat "$1")']),
    "zsh-quoted": ("zsh", ["zsh", "-f", "-c", 'eval "$(cat "$1")"']),
    "zsh-unquoted": ("zsh", ["zsh", "-f", "-c", 'eval $(cat "$1")']),
    "dash-quoted": ("sh", ["dash", "-c", 'eval "$(cat "$1")"']),
    "fish-source": ("fish", ["fish", "--no-config", "-c", "source $argv[1]"]),
    "fish-eval": ("fish", ["fish", "--no-config", "-c", "eval (cat $argv[1])"]),
}
# Characters and tokens that break naive quoting somewhere.
HOSTILE = [
    "'",
    '"',
    "`",
    "\u2018",
    "\u2019",
    "\u201a",
    "\u201b",
    "$(",
    "$((",
    ")",
    "${",
    "}",
    "$",
    "\n",
    "\r",
    "\r\n",
    "%",
    "%PATH%",
    "!",
    "!!",
    "\\",
    "\\\\",
    "*",
    "?",
    "[",
    "]",
    " ",
    "\t",
    "~",
    "#",
    ";",
    "&",
    "|",
    "<",
    ">",
    "^",
    "(",
    "{a,b}",
    "é",
    "\U0001f600",
    "\u2028",
    "-e",
    "--",
    "\x1b",
    "\x7f",
    "=",
]
values_text = st.lists(
    st.one_of(
        st.sampled_from(HOSTILE),
        st.characters(exclude_characters="\0", exclude_categories=("Cs",)),
    ),
    max_size=24,
).map("".join)
variable_sets = st.fixed_dictionaries(dict.fromkeys(OPENAI_VARIABLES, values_text))


def shell_env(tmp: Path) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(tmp)}


def evaluate(
    argv: list[str], text: str, tmp: Path, env: dict[str, str] | None = None
) -> dict[bytes, bytes]:
    """Eval `text` with the shell command `argv` in folder `tmp`; return the environment
    a child process then receives (dumped by `env -0`)."""
    script = tmp / "env.out"
    script.write_bytes(text.encode("utf-8"))
    fish = argv[0] == "fish"
    command = [*argv[:-1], argv[-1] + ("; and exec env -0" if fish else " && exec env -0")]
    command += [str(script)] if fish else ["_", str(script)]
    done = subprocess.run(
        command, cwd=tmp, env=env or shell_env(tmp), capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 0, (argv, done.returncode, done.stderr)
    assert done.stderr == b"", (argv, done.stderr)
    return dict(entry.split(b"=", 1) for entry in done.stdout.split(b"\0") if entry)


def assert_exported(env: dict[bytes, bytes], values: dict[str, str]) -> None:
    for name, value in values.items():
        assert env.get(name.encode()) == value.encode("utf-8"), name


# --- bash, zsh, sh, fish: property tests in the real shells --------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("runner", list(RUNNERS))
def test_every_value_round_trips_in_the_real_shell(runner: str, tmp_path: Path) -> None:
    shell, argv = RUNNERS[runner]
    require_tool(argv[0])  # skips on a dev machine without it, fails in CI

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(values=variable_sets)
    def check(values: dict[str, str]) -> None:
        assert_exported(evaluate(argv, render_exports(values, shell), tmp_path), values)

    check()


INJECTIONS = [
    "$(touch PWNED)",
    "`touch PWNED`",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "$'\\x27'; touch PWNED; '",
    "x\ntouch PWNED\n",
    "\\'; touch PWNED #",
    "*; touch PWNED",
    "') ; touch PWNED ; echo ('",
]


@pytest.mark.parametrize("runner", list(RUNNERS))
@pytest.mark.parametrize("attack", INJECTIONS)
def test_command_substitution_never_runs(runner: str, attack: str, tmp_path: Path) -> None:
    shell, argv = RUNNERS[runner]
    require_tool(argv[0])  # skips on a dev machine without it, fails in CI
    values = {"OPENAI_API_KEY": attack, "OPENAI_BASE_URL": "a " + attack}
    env = evaluate(argv, render_exports(values, shell), tmp_path)
    assert not (tmp_path / "PWNED").exists()
    assert_exported(env, values)


GLOBBY = {"OPENAI_API_KEY": "a * b ? [c] +(d) ~e ^f #g", "OPENAI_ORG_ID": "x\\y"}


@pytest.mark.parametrize(
    "runner",
    [
        # failglob turns any glob that matches nothing into an error, extglob adds +( ) @( )
        ("bash", ["bash", "--norc", "-O", "failglob", "-O", "extglob", "-c", 'eval $(cat "$1")']),
        ("bash", ["bash", "--norc", "-O", "nullglob", "-O", "extglob", "-c", 'eval $(cat "$1")']),
        # sh emulation turns on GLOB_SUBST and SH_WORD_SPLIT; EXTENDED_GLOB adds ~ ^ #
        ("zsh", ["zsh", "-f", "-c", 'emulate sh; setopt EXTENDED_GLOB; eval $(cat "$1")']),
    ],
    ids=["bash-failglob", "bash-nullglob", "zsh-sh-emulation"],
)
def test_unquoted_eval_survives_glob_options(runner: tuple[str, list[str]], tmp_path: Path) -> None:
    for name in ("a", "b", "c", "OPENAI_API_KEY=x", "export"):
        (tmp_path / name).write_text("decoy")
    shell, argv = runner
    assert_exported(evaluate(argv, render_exports(GLOBBY, shell), tmp_path), GLOBBY)


@pytest.mark.parametrize("runner", ["bash-quoted", "bash-unquoted", "zsh-quoted", "zsh-unquoted"])
def test_posix_output_does_not_depend_on_the_locale(runner: str, tmp_path: Path) -> None:
    shell, argv = RUNNERS[runner]
    values = {"OPENAI_API_KEY": "é\U0001f600\u2018\u2019 x"}
    c_locale = {"PATH": os.environ["PATH"], "LANG": "C", "LC_ALL": "C"}
    env = evaluate(argv, render_exports(values, shell), tmp_path, env=c_locale)
    assert_exported(env, values)


@pytest.mark.parametrize("runner", list(RUNNERS))
def test_unset_removes_the_variables(runner: str, tmp_path: Path) -> None:
    shell, argv = RUNNERS[runner]
    require_tool(argv[0])  # skips on a dev machine without it, fails in CI
    env = shell_env(tmp_path) | dict.fromkeys(OPENAI_VARIABLES, "stale") | {"KEEP": "1"}
    after = evaluate(argv, render_unsets(OPENAI_VARIABLES, shell), tmp_path, env)
    assert all(name.encode() not in after for name in OPENAI_VARIABLES)
    assert after[b"KEEP"] == b"1"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["source $argv[1]", "eval (cat $argv[1])"])
def test_fish_unset_keeps_a_universal_variable_and_hides_it(how: str, tmp_path: Path) -> None:
    """A fish user with `set -Ux OPENAI_BASE_URL …`: `set -e NAME` erased it for good (in
    every fish they open), and a later `set -e` of keyvault's global let it show through,
    so a project without a base URL sent its key there. fish exports a universal even
    under an unexported global: the shell's programs get an empty value instead."""
    fish = require_tool("fish")
    env = {**shell_env(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")

    def run(script: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [fish, "-c", script, str(tmp_path / "env.out")],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done

    run("set -Ux OPENAI_BASE_URL https://universal.example/v1; set -U OPENAI_ORG_ID org-mine")
    relay = {"OPENAI_API_KEY": "sk-a", "OPENAI_BASE_URL": "https://a.example/v1"}
    plain = {"OPENAI_API_KEY": "sk-b"}
    first = render_unsets([], "fish") + render_exports(relay, "fish")
    then = render_unsets(["OPENAI_BASE_URL", "OPENAI_ORG_ID"], "fish")
    then += render_exports(plain, "fish")
    for text in (then, first + then):
        (tmp_path / "env.out").write_text(text)
        done = run(f"{how}; and env")
        seen = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
        assert seen["OPENAI_API_KEY"] == "sk-b"
        assert seen["OPENAI_BASE_URL"] == ""  # never the universal's relay
        assert "OPENAI_ORG_ID" not in seen  # not exported by fish: left alone, not blanked
        assert "universal OPENAI_BASE_URL" in done.stderr and "ORG_ID" not in done.stderr
    kept = run("echo $OPENAI_BASE_URL $OPENAI_ORG_ID").stdout
    assert kept == "https://universal.example/v1 org-mine\n"  # the user's own settings


def test_statements_are_one_per_line_and_terminated() -> None:
    values = {"OPENAI_API_KEY": "a\nb", "OPENAI_BASE_URL": "c\rd"}
    for shell in ("bash", "zsh", "fish"):
        lines = render_exports(values, shell).split("\n")
        assert len(lines) == 3
        assert lines[-1] == ""
        assert all(line.endswith(";") for line in lines[:-1])
    assert len(render_exports(values, "powershell").split("\n")) == 3


def test_posix_output_has_nothing_to_split_or_glob() -> None:
    text = render_exports({"OPENAI_API_KEY": "".join(HOSTILE)}, "bash")
    statement = text.removeprefix("export ").removesuffix("\n")
    assert not re.search(r"[\s*?\[\]()~^#!`\"{}]", statement)


# --- PowerShell: reference tokenizer -------------------------------------------------------


def powershell_eval(expression: str) -> str:
    """Evaluate `term (+ term)*`; a term is a single-quoted string or "`n" / "`r".

    Single-quoted strings follow PowerShell's tokenizer: any of the five quote characters
    opens and closes, and a quote character followed by another one stands for the second.
    """
    out: list[str] = []
    pos = 0
    while True:
        if expression[pos] in POWERSHELL_QUOTES:
            pos += 1
            chars: list[str] = []
            while True:
                assert pos < len(expression), "unterminated string"
                ch = expression[pos]
                pos += 1
                if ch in POWERSHELL_QUOTES:
                    if pos < len(expression) and expression[pos] in POWERSHELL_QUOTES:
                        chars.append(expression[pos])
                        pos += 1
                        continue
                    break
                chars.append(ch)
            out.append("".join(chars))
        elif expression.startswith('"`n"', pos) or expression.startswith('"`r"', pos):
            out.append({"n": "\n", "r": "\r"}[expression[pos + 2]])
            pos += 4
        else:
            raise AssertionError(f"unexpected text at {pos}")
        if pos == len(expression):
            return "".join(out)
        assert expression.startswith(" + ", pos), "terms must be joined by +"
        pos += 3


def powershell_run(script: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in script.removesuffix("\n").split("\n"):
        match = re.fullmatch(r"\$env:([A-Za-z_]\w*) = (.*)", line)
        assert match, line
        env[match[1]] = powershell_eval(match[2])
    return env


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(values=variable_sets)
def test_powershell_round_trips_through_the_reference_tokenizer(values: dict[str, str]) -> None:
    script = render_exports(values, "powershell")
    # one line per statement, so `| Invoke-Expression` line by line works (PowerShell splits
    # native output on CR and LF only, so U+2028 and friends may stay)
    assert len(re.split(r"\r\n|\r|\n", script)) == len(values) + 1
    assert powershell_run(script) == values


def test_the_powershell_reference_would_catch_direnv_quoting() -> None:
    value = "it\u2019s; Remove-Item -Recurse ~"
    direnv_style = "'" + value.replace("'", "''") + "'"
    with pytest.raises(AssertionError):
        powershell_eval(direnv_style)
    assert powershell_eval(quote_powershell(value)) == value


def test_powershell_unset_removes_each_variable() -> None:
    lines = render_unsets(["OPENAI_API_KEY", "OPENAI_ORG_ID"], "powershell").splitlines()
    assert lines == [
        f"Remove-Item -LiteralPath Env:{name} -ErrorAction SilentlyContinue"
        for name in ("OPENAI_API_KEY", "OPENAI_ORG_ID")
    ]


# --- cmd: reference of its parsing phases --------------------------------------------------


def cmd_run_set(line: str, env: dict[str, str], *, delayed: bool) -> None:
    """Run one `set "NAME=value"` line the way cmd parses it.

    Phase 1 expands %VAR% even inside quotes; phase 2 toggles quoting at each ", and
    outside quotes ^ escapes and & | < > end the command; phase 5 (delayed expansion)
    expands !VAR! and eats carets when the line holds a !. `set "A=B"` takes the text
    between the first and the last quote.
    """
    line = re.sub(r"%([^%]+)%", lambda m: env.get(m[1], m[0]), line)
    quoted, kept = False, []
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "&|<>":
            break
        kept.append(ch)
    line = "".join(kept)
    if delayed and "!" in line:
        line = re.sub(r"!([^!]*)!", lambda m: env.get(m[1], ""), line).replace("^", "")
    argument = line.removeprefix("set ")
    name, _, value = argument[argument.index('"') + 1 : argument.rindex('"')].partition("=")
    env[name] = value


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(value=values_text, delayed=st.booleans())
@example(value=' "', delayed=False)  # once a flake: the refusal text holds ' "' itself
def test_cmd_round_trips_or_refuses(value: str, delayed: bool) -> None:
    try:
        script = render_exports({"OPENAI_API_KEY": value}, "cmd")
    except InvalidValue as err:
        culprit = re.search(r'[%!"]|[^\t\x20-\x7e]', value)
        assert culprit
        # The value is not echoed: the message is the one its first refused character gets
        # alone. (`value not in message` would fail for a value like ' "', which the fixed
        # text 'it contains ", which …' happens to hold.)
        with pytest.raises(InvalidValue) as alone:
            render_exports({"OPENAI_API_KEY": culprit[0]}, "cmd")
        assert str(err) == str(alone.value)
        return
    env = {"PATH": "C:\\Windows", "USERNAME": "me"}
    for line in script.removesuffix("\n").split("\n"):
        cmd_run_set(line, env, delayed=delayed)
    assert env["OPENAI_API_KEY"] == value


def test_cmd_refusals_are_needed() -> None:
    # Without the refusals, the reference shows the damage each character would do.
    env = {"PATH": "C:\\Windows"}
    cmd_run_set('set "A=x%PATH%y"', env, delayed=False)
    assert env["A"] == "xC:\\Windowsy"
    cmd_run_set('set "A=x!PATH!y"', env, delayed=True)
    assert env["A"] == "xC:\\Windowsy"
    for bad in ("a%b", "a!b", 'a"b', "a\nb", "a\rb", "é"):
        secret = make_key() + bad
        with pytest.raises(InvalidValue, match="cannot be written for cmd") as refused:
            render_exports({"OPENAI_API_KEY": secret}, "cmd")
        assert secret not in str(refused.value) and secret[8:40] not in str(refused.value)
    assert quote_cmd("a&b|c<d>e^f(g)") == "a&b|c<d>e^f(g)"
    assert render_unsets(["OPENAI_API_KEY"], "cmd") == 'set "OPENAI_API_KEY="\n'


# --- validation, formats, detection --------------------------------------------------------


@pytest.mark.parametrize("shell", list(SHELLS))
def test_bad_names_and_nul_are_refused_everywhere(shell: str) -> None:
    for name in ("1ABC", "A-B", "A B", "", "A=B", "É"):
        with pytest.raises(InvalidValue, match="invalid variable name"):
            render_exports({name: "x"}, shell)
        with pytest.raises(InvalidValue):
            render_unsets([name], shell)
    secret = "sk-" + "Q" * 30
    with pytest.raises(InvalidValue, match="nul") as caught:
        render_exports({"OPENAI_API_KEY": secret + "\0"}, shell)
    assert secret not in str(caught.value)


def _entry(**fields: object) -> Entry:
    return Entry("0123456789abcdef", "k", Secret("k"), **fields)  # type: ignore[arg-type]


def test_export_values_leave_out_what_an_entry_does_not_set() -> None:
    assert export_values(_entry()) == {"OPENAI_API_KEY": "k"}
    assert export_values(_entry(base_url="", org_id="org-1", project_id=None)) == {
        "OPENAI_API_KEY": "k",
        "OPENAI_ORG_ID": "org-1",
    }
    full = _entry(base_url="u", org_id="o", project_id="p")
    assert list(export_values(full)) == list(OPENAI_VARIABLES)
    with pytest.raises(PolicyViolation):
        export_values(_entry(kind=Kind.ADMIN))


def test_unknown_shell_and_format_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown shell"):
        render_exports({"A": "b"}, "tcsh")
    with pytest.raises(UsageError, match="unknown format"):
        render_format({"A": "b"}, "yaml")


def test_json_format_round_trips() -> None:
    import json

    values = {"OPENAI_API_KEY": "".join(HOSTILE), "OPENAI_ORG_ID": "org-1"}
    text = render_format(values, "json")
    assert text.isascii()
    assert json.loads(text) == values


def test_dotenv_format_uses_the_dotenv_quoting() -> None:
    assert render_format({"OPENAI_API_KEY": "sk-abc", "B": "a b"}, "dotenv") == (
        "OPENAI_API_KEY=sk-abc\nB='a b'\n"
    )


@pytest.mark.parametrize(
    ("environ", "parent", "expected"),
    [
        ({"SHELL": "/bin/bash"}, "zsh", "zsh"),
        ({"SHELL": "/usr/bin/fish"}, "bash", "bash"),
        ({"SHELL": "/bin/zsh"}, "-zsh", "zsh"),
        ({"SHELL": "/bin/zsh"}, "python3", "zsh"),
        ({"SHELL": "/usr/local/bin/fish"}, None, "fish"),
        ({}, "/usr/bin/dash", "sh"),
        ({}, "pwsh", "powershell"),
        ({}, "PowerShell.exe", "powershell"),
        ({}, "C:\\Windows\\System32\\cmd.exe", "cmd"),
        ({"PSModulePath": "C:\\x"}, None, "powershell"),
        ({"COMSPEC": "C:\\Windows\\System32\\cmd.exe"}, None, "bash"),
        ({}, None, "bash"),
        ({"SHELL": ""}, "", "bash"),
    ],
)
def test_detect_shell(environ: dict[str, str], parent: str | None, expected: str) -> None:
    assert detect_shell(environ, parent) == expected
    assert detect_shell(environ, parent) in SHELLS


def test_shell_of_ignores_unknown_programs() -> None:
    assert shell_of("sudo") is None
    assert shell_of("/opt/homebrew/bin/fish") == "fish"


CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from vault.export.shells import parent_process_name as p; from pathlib import Path; "
    "print(p(), p(proc=Path(sys.argv[2])))"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_parent_process_name_reads_proc_and_falls_back_on_ps(tmp_path: Path) -> None:
    if shutil.which("ps") is None:
        pytest.skip("ps is not installed")
    root = str(Path(__file__).resolve().parents[1])
    # `; true` keeps bash alive as the parent instead of exec-ing python in its place
    script = f'"{sys.executable}" -c "$1" "$2" "$3"; true'
    done = subprocess.run(
        ["bash", "-c", script, "_", CHILD, root, str(tmp_path / "no-proc")],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert done.stdout.split() == ["bash", "bash"]
