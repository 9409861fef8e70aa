"""`.keyvault.toml` in its plain form is read without tomllib, exactly as tomllib reads it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import ConfigError
from vault.store.context import NOT_PLAIN, plain_project_file, read_project_file


def tomllib_project(text: str) -> str | Exception | None:
    try:
        value = tomllib.loads(text).get("project")
    except tomllib.TOMLDecodeError as exc:
        return exc
    return value if value is None or isinstance(value, str) else ValueError("not a string")


PLAIN = [
    ('project = "work"\n', "work"),
    ('project="work"', "work"),
    ('  project\t=  "work"  \r\n', "work"),
    ('# a comment\n\n\tproject = "wörk ✓"\n# another = one\n', "wörk ✓"),
    ('project = ""\n', ""),
    ("", None),
    ("# only a comment\n", None),
]
NOT_PLAIN_TEXTS = [
    'project = "a\\"b"\n',  # an escape
    "project = 'literal'\n",
    'project = "x" # trailing comment\n',
    'project = "x"\nproject = "y"\n',  # a duplicate: TOML's error
    '[table]\nproject = "x"\n',
    'other = 1\nproject = "x"\n',
    '"project" = "x"\n',
    '\ufeffproject = "x"\n',
    'project = "x"\r',  # a CR without its LF
    'project = "x\x01"\n',
    'project = """x"""\n',
]


@pytest.mark.parametrize(("text", "project"), PLAIN)
def test_plain_files_read_as_tomllib_reads_them(text: str, project: str | None) -> None:
    assert plain_project_file(text) == (True, project)
    assert project == tomllib_project(text)


@pytest.mark.parametrize("text", NOT_PLAIN_TEXTS)
def test_anything_else_goes_to_tomllib(text: str) -> None:
    assert plain_project_file(text) == NOT_PLAIN


PIECES = ["project", " = ", "=", '"', "'", "work", "é", "#", " ", "\t", "\n", "\r\n", "\r"]
PIECES += ["\\", "[t]", "x", "\x00", "\x7f", "\u2028", "\ufeff", '"w"', "\n\n"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
@pytest.mark.slow
def test_the_plain_reader_never_disagrees_with_tomllib(text: str) -> None:
    plain, project = plain_project_file(text)
    if plain:
        assert project == tomllib_project(text), repr(text)


def test_read_project_file_still_names_toml_errors(tmp_path: Path) -> None:
    bad = tmp_path / ".keyvault.toml"
    bad.write_text('project = "x" = "y"\n')
    with pytest.raises(ConfigError, match="cannot read"):
        read_project_file(bad)
    bad.write_text("project = 3\n")
    with pytest.raises(ConfigError, match="must be a string"):
        read_project_file(bad)
    bad.write_text('project = "work"\n')
    assert read_project_file(bad) == "work"
