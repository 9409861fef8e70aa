"""`.env` writing: values read back exactly, the user's other lines kept byte for byte.

Values are checked with the real python-dotenv and with models of the two other parsers
that matter, written from their documented behaviour: node's dotenv 16 (`parse()` in
lib/main.js) and docker compose (compose-go v2 dotenv/parser.go).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import make_key
from vault.errors import InvalidValue, StorageError
from vault.export import OPENAI_VARIABLES, Unrepresentable
from vault.export.dotenv import (
    git_tracking_warning,
    quote_dotenv,
    read_assignment,
    render_dotenv,
    update_dotenv_file,
)

# --- models of node dotenv and docker compose ----------------------------------------------


def node_dotenv_parse(text: str) -> dict[str, str]:
    """node dotenv 16: CR LF and lone CR become LF; at each line start `[export ]KEY=` then a
    quoted value (ending at the first matching quote not after a backslash, newlines allowed)
    or a bare value up to `#` or end of line; the value is trimmed, its outer quotes removed,
    and in double quotes only \\n and \\r are decoded."""
    text = re.sub(r"\r\n?", "\n", text)
    out: dict[str, str] = {}
    value_forms = r"""\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+"""
    line = re.compile(
        rf"^\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)({value_forms})?\s*(?:#.*)?$", re.M
    )
    for match in line.finditer(text):
        value = (match[2] or "").strip()
        quote = value[:1]
        value = re.sub(r"^(['\"`])([\s\S]*)\1$", r"\2", value, flags=re.M)
        if quote == '"':
            value = value.replace("\\n", "\n").replace("\\r", "\r")
        out[match[1]] = value
    return out


_COMPOSE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    '"': '"',
    "\\": "\\",
    "$": "$",
}


def compose_parse(text: str) -> dict[str, str]:
    """docker compose (compose-go v2): skip blank and # lines; `[export ]KEY=`; a quoted
    value ends at the first unescaped matching quote (\\' or \\" drop their backslash, other
    escapes keep it); double quotes then decode \\n \\r \\t \\\\ \\" \\$ and the like, and
    interpolate $VAR, as bare values (cut at ` #`, right-trimmed) do. Interpolation is
    modelled as `<interpolated>`, which never equals a value we wrote."""
    out: dict[str, str] = {}
    pos = 0
    while True:
        start = re.compile(r"\s*(#[^\n]*)?").match(text, pos)
        while start and start.end() > pos:
            pos = start.end()
            start = re.compile(r"\s*(#[^\n]*)?").match(text, pos)
        if pos >= len(text):
            return out
        key = re.compile(r"(?:export\s+)?([\w.\-\[\]]+)\s*[=:][ \t]*").match(text, pos)
        assert key, f"compose would fail at {text[pos : pos + 20]!r}"
        pos = key.end()
        quote = text[pos : pos + 1]
        if quote in ("'", '"'):
            raw, pos = _compose_quoted(text, pos + 1, quote)
            value = _compose_double(raw) if quote == '"' else raw
        else:
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            value = _interpolate(text[pos:end].split(" #", maxsplit=1)[0].rstrip())
            pos = end
        out[key[1]] = value


def _compose_quoted(text: str, pos: int, quote: str) -> tuple[str, int]:
    chars: list[str] = []
    escaped = False
    for index in range(pos, len(text)):
        ch = text[index]
        if escaped:
            escaped = False
            chars.append(ch if ch == quote else "\\" + ch)
        elif ch == "\\":
            escaped = True
        elif ch == quote:
            return "".join(chars), index + 1
        else:
            chars.append(ch)
    raise AssertionError("compose: unterminated quoted value")


def _compose_double(raw: str) -> str:
    decoded = re.sub(r"\\(.)", lambda m: _COMPOSE_ESCAPES.get(m[1], m[0]), raw)
    return _interpolate(decoded)


def _interpolate(value: str) -> str:
    return "<interpolated>" if re.search(r"\$[\w{]", value) else value


def parse_everywhere(text: str) -> list[dict[str, str | None]]:
    python = dict(dotenv_values(stream=io.StringIO(text)))
    return [python, dict(node_dotenv_parse(text)), dict(compose_parse(text))]


# --- quoting ---------------------------------------------------------------------------------

HOSTILE = [
    "'",
    '"',
    "`",
    "$",
    "${X}",
    "$X",
    "\\",
    "\\n",
    "\n",
    "\r",
    "\r\n",
    "#",
    " #",
    " ",
    "\t",
    "=",
    "\u2028",
    "é",
    "\U0001f600",
    "export ",
    "X=1",
    "\x0b",
    "\x0c",
]
values_text = st.lists(
    st.one_of(
        st.sampled_from(HOSTILE),
        st.characters(exclude_characters="\0", exclude_categories=("Cs",)),
    ),
    max_size=20,
).map("".join)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(value=values_text)
def test_every_written_value_reads_back_the_same_in_all_three_parsers(value: str) -> None:
    try:
        line = f"OPENAI_API_KEY={quote_dotenv(value)}\n"
    except Unrepresentable:
        # refused only when no form works: ${...}, or ' / CR / an escaping \ with " \ $
        blocks_single = re.search(r"['\r]|\\\\|\\$", value)
        assert re.search(r"\$\{[^}]*\}", value) or (blocks_single and re.search(r'["\\$]', value))
        return
    for parsed in parse_everywhere("A=1\n" + line + "B=2\n"):
        assert parsed == {"A": "1", "OPENAI_API_KEY": value, "B": "2"}


def test_every_refusal_is_necessary() -> None:
    for value in ("it's a \\ backslash", 'it\'s "quoted"', "it's $HOME", "x${HOME}y"):
        with pytest.raises(Unrepresentable):
            quote_dotenv(value)
        # the naive double-quoted form is read differently by at least two parsers
        naive = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        results = {str(parsed.get("K")) for parsed in parse_everywhere(f"K={naive}\n")}
        assert len(results) > 1 or value not in results


def test_render_dotenv_refuses_naming_the_variable_not_the_value() -> None:
    secret = make_key() + "'\\"
    with pytest.raises(InvalidValue, match="OPENAI_API_KEY cannot be written") as caught:
        render_dotenv({"OPENAI_API_KEY": secret})
    assert secret not in str(caught.value)


def test_common_values_stay_readable() -> None:
    key = make_key()
    assert render_dotenv({"OPENAI_API_KEY": key, "OPENAI_BASE_URL": "https://h/v1?x=1&y"}) == (
        f"OPENAI_API_KEY={key}\nOPENAI_BASE_URL='https://h/v1?x=1&y'\n"
    )


# --- updating a file in place ------------------------------------------------------------------

USER_FILE = (
    b"# my settings\r\n"
    b"\n"
    b"DEBUG=1\n"
    b"export OPENAI_API_KEY=old-key # the comment stays\n"
    b'CERT="-----BEGIN\n'
    b"OPENAI_API_KEY=not-a-line-of-ours\n"
    b'-----END"\n'
    b"  OPENAI_ORG_ID = 'org-old'\n"
    b"LATIN1=caf\xe9\n"
    b"OPENAI_API_KEY=duplicate\n"
    b"OPENAI_BASE_URL='multi\n"
    b"line'\n"
    b"TAIL=no newline at end"
)


def test_update_replaces_in_place_and_keeps_everything_else(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_bytes(USER_FILE)
    key = make_key()
    result = update_dotenv_file(
        target, {"OPENAI_API_KEY": key, "OPENAI_PROJECT_ID": "proj_1"}, OPENAI_VARIABLES
    )
    assert target.read_bytes() == (
        b"# my settings\r\n"
        b"\n"
        b"DEBUG=1\n"
        b"export OPENAI_API_KEY=" + key.encode() + b" # the comment stays\n"
        b'CERT="-----BEGIN\n'
        b"OPENAI_API_KEY=not-a-line-of-ours\n"
        b'-----END"\n'
        b"LATIN1=caf\xe9\n"
        b"TAIL=no newline at end\n"
        b"OPENAI_PROJECT_ID=proj_1\n"
    )
    assert (result.created, result.changed) == (False, True)
    assert result.replaced == ("OPENAI_API_KEY",)
    assert result.appended == ("OPENAI_PROJECT_ID",)
    assert result.removed == ("OPENAI_ORG_ID", "OPENAI_BASE_URL")
    text = target.read_bytes().decode("utf-8", "replace")  # the user's Latin-1 byte stays
    parsed = dotenv_values(stream=io.StringIO(text))
    assert parsed["OPENAI_API_KEY"] == key
    assert parsed["CERT"] == "-----BEGIN\nOPENAI_API_KEY=not-a-line-of-ours\n-----END"


@pytest.mark.parametrize(
    "line",
    [
        b"OPENAI_API_KEY=sk-old # prod key, rotate monthly",
        b"OPENAI_API_KEY='sk-old'   # quoted",
        b'export OPENAI_API_KEY="sk-old" #tight',
        b"OPENAI_API_KEY = sk-old\t# tab before it",
    ],
)
def test_a_comment_after_a_replaced_value_is_kept(tmp_path: Path, line: bytes) -> None:
    target = tmp_path / ".env"
    target.write_bytes(b"A=1\n" + line + b"\r\n")
    comment = line[line.index(b"#") :]
    key = make_key()
    update_dotenv_file(target, {"OPENAI_API_KEY": key}, OPENAI_VARIABLES)
    written = target.read_bytes()
    assert written.endswith(comment + b"\r\n") and b"sk-old" not in written
    text = written.decode()
    for parse in (lambda t: dotenv_values(stream=io.StringIO(t)), node_dotenv_parse):
        assert parse(text)["OPENAI_API_KEY"] == key
    # and the file is still recognised as ours: the next sync changes it again
    newer = make_key()
    update_dotenv_file(target, {"OPENAI_API_KEY": newer}, OPENAI_VARIABLES)
    assert target.read_bytes() == written.replace(key.encode(), newer.encode())
    assert read_assignment(target.read_bytes(), "OPENAI_API_KEY") == newer


def test_a_hash_inside_a_value_is_not_a_comment(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_bytes(b"OPENAI_API_KEY=sk#old\nOPENAI_BASE_URL='https://x/#a' # real\n")
    key = make_key()
    update_dotenv_file(target, {"OPENAI_API_KEY": key}, OPENAI_VARIABLES)
    assert target.read_bytes() == f"OPENAI_API_KEY={key}\n".encode()


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(values=st.dictionaries(st.sampled_from(OPENAI_VARIABLES), values_text, max_size=4))
def test_update_round_trips_and_keeps_other_lines(tmp_path: Path, values: dict[str, str]) -> None:
    target = tmp_path / "prop.env"
    before = b"# head\nA=1\nexport OPENAI_ORG_ID=org-x\n\nB='two\nlines'\n"
    target.write_bytes(before)
    try:
        update_dotenv_file(target, values)
    except InvalidValue:
        assert target.read_bytes() == before
        return
    for parsed in parse_everywhere(target.read_bytes().decode("utf-8")):
        assert parsed.pop("A") == "1"
        assert parsed.pop("B") == "two\nlines"
        assert parsed == values
    text = target.read_bytes().decode("utf-8")
    assert text.startswith("# head\nA=1\n")
    assert "\n\nB='two\nlines'\n" in text


def test_crlf_files_stay_crlf(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_bytes(b"A=1\r\nOPENAI_API_KEY=old\r\n")
    update_dotenv_file(target, {"OPENAI_API_KEY": "new", "OPENAI_ORG_ID": "org"})
    assert target.read_bytes() == b"A=1\r\nOPENAI_API_KEY=new\r\nOPENAI_ORG_ID=org\r\n"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"A=1\r\nB=2", b"A=1\r\nB=2\r\nOPENAI_API_KEY=new\r\n"),
        (b"A=1\r\nOPENAI_API_KEY=old", b"A=1\r\nOPENAI_API_KEY=new"),
        (b"A=1\nB=2", b"A=1\nB=2\nOPENAI_API_KEY=new\n"),
        (b"B=2", b"B=2\nOPENAI_API_KEY=new\n"),
    ],
)
def test_a_last_line_without_its_end_gets_the_files_own(
    tmp_path: Path, old: bytes, new: bytes
) -> None:
    """Notepad leaves `A=1\\r\\nB=2`: what is appended ends in CR LF too, not a lone LF."""
    target = tmp_path / ".env"
    target.write_bytes(old)
    update_dotenv_file(target, {"OPENAI_API_KEY": "new"})
    assert target.read_bytes() == new


def test_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_bytes(b"X=1\nOPENAI_API_KEY=same\n")
    target.chmod(0o600)  # a readable file is rewritten private (test_small_leaks.py)
    inode = target.stat().st_ino
    result = update_dotenv_file(target, {"OPENAI_API_KEY": "same"})
    assert not result.changed
    assert target.stat().st_ino == inode


def test_new_file_is_0600_even_under_umask_000(tmp_path: Path) -> None:
    target = tmp_path / "fresh.env"
    old_umask = os.umask(0)
    try:
        result = update_dotenv_file(target, {"OPENAI_API_KEY": "k"})
    finally:
        os.umask(old_umask)
    assert result.created
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() == b"OPENAI_API_KEY=k\n"


def test_owner_bits_are_kept_and_a_wide_mode_made_private(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_bytes(b"OPENAI_API_KEY=old\n")
    target.chmod(0o640)
    old_umask = os.umask(0o077)
    try:
        result = update_dotenv_file(target, {"OPENAI_API_KEY": "new"})
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert result.warnings and "(mode 0640); it is now 0600" in result.warnings[0]
    target.chmod(0o400)  # a read-only file stays read-only for its owner
    update_dotenv_file(target, {"OPENAI_API_KEY": "newer"})
    assert stat.S_IMODE(target.stat().st_mode) == 0o400


def test_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    real = tmp_path / "real.env"
    real.write_bytes(b"OPENAI_API_KEY=old\n")
    link = tmp_path / ".env"
    link.symlink_to(real)
    with pytest.raises(StorageError, match="symbolic link"):
        update_dotenv_file(link, {"OPENAI_API_KEY": "new"})
    assert real.read_bytes() == b"OPENAI_API_KEY=old\n"
    assert link.is_symlink()


def test_dangling_symlink_is_refused_too(tmp_path: Path) -> None:
    link = tmp_path / ".env"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StorageError, match="symbolic link"):
        update_dotenv_file(link, {"OPENAI_API_KEY": "new"})
    assert not (tmp_path / "elsewhere").exists()


def test_failed_write_leaves_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_bytes(USER_FILE)
    calls = []

    def failing_write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return os.write(fd, data[:7])  # a short write first, then the disk fills up

    with pytest.raises(StorageError, match="no space left"):
        update_dotenv_file(target, {"OPENAI_API_KEY": make_key()}, write=failing_write)
    assert target.read_bytes() == USER_FILE
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_leaves_old_file(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_bytes(b"OPENAI_API_KEY=old\n")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StorageError, match="could not save"):
            update_dotenv_file(target, {"OPENAI_API_KEY": "new"})
    finally:
        tmp_path.chmod(0o700)
    assert target.read_bytes() == b"OPENAI_API_KEY=old\n"


def test_a_missing_folder_is_named_in_full(tmp_path: Path) -> None:
    """`keyvault dotenv ~/app/.env` with a typo in the folder: the error names the path the
    user gave, not just `.env`, and does not speak of a previous file that never was."""
    target = tmp_path / "no such folder" / ".env"
    with pytest.raises(StorageError) as caught:
        update_dotenv_file(target, {"OPENAI_API_KEY": make_key()})
    assert caught.value.message == f"{target}: could not save (no such file or directory)"
    assert caught.value.hint == "nothing was written"
    assert not target.parent.exists()


def test_nothing_to_write_creates_no_file(tmp_path: Path) -> None:
    result = update_dotenv_file(tmp_path / ".env", {})
    assert (result.created, result.changed) == (False, False)
    assert not (tmp_path / ".env").exists()


def test_removing_every_managed_line(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_bytes(b"OPENAI_API_KEY=a\nKEEP=1\nexport OPENAI_BASE_URL=b\n")
    result = update_dotenv_file(target, {})
    assert target.read_bytes() == b"KEEP=1\n"
    assert result.removed == ("OPENAI_API_KEY", "OPENAI_BASE_URL")


def test_refused_value_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    with pytest.raises(InvalidValue):
        update_dotenv_file(target, {"OPENAI_API_KEY": "a'b\"c"})
    assert not target.exists()


# --- git ---------------------------------------------------------------------------------------


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, timeout=30)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_tracking_warning(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    assert git_tracking_warning(outside / ".env") is None

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    env_file = repo / ".env"
    env_file.write_text("OPENAI_API_KEY=x\n")
    assert "not ignored" in (git_tracking_warning(env_file) or "")
    (repo / ".gitignore").write_text(".env\n")
    assert git_tracking_warning(env_file) is None
    git(repo, "add", "-f", ".env")
    assert "tracked by git" in (git_tracking_warning(env_file) or "")
    assert git_tracking_warning(env_file, git=str(tmp_path / "no-git-here")) is None
