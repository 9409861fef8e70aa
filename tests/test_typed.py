"""vault/model/typed.py: what people type, turned into what the strict checks accept."""

from __future__ import annotations

import pytest

from vault.errors import InvalidValue
from vault.model import typed


@pytest.mark.parametrize("name", ["工作", "café", "work-1", "проект", "काम", "a.b_c@d+e", "0day"])
def test_labels_in_any_script(name: str) -> None:
    assert typed.check_label(name) == name


def test_labels_are_nfc_and_trimmed() -> None:
    assert typed.check_label(" cafe\u0301 ") == "café"


@pytest.mark.parametrize(
    "name", ["", "-x", "_x", "a b", "a\tb", "a\u202eb", "a\u200bb", "a\u2066b", "x" * 65, "a/b"]
)
def test_unsafe_labels_are_refused(name: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        typed.check_label(name, "project")
    assert str(caught.value).startswith("project ") and "\u202e" not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "made"),
    [("my app", "my-app"), ("--x--", "x"), ("官方 OpenAI", "官方-OpenAI"), ("!!!", "fallback")],
)
def test_make_label(raw: str, made: str) -> None:
    assert typed.make_label(raw, "fallback") == made
    assert typed.check_label(made) == made


@pytest.mark.parametrize(
    ("pasted", "value", "name"),
    [
        (
            "OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwxyz",
            "sk-abcdefghijklmnopqrstuvwxyz",
            "OPENAI_API_KEY",
        ),
        ("set OPENAI_API_KEY=sk-abcdefgh", "sk-abcdefgh", "OPENAI_API_KEY"),
        ("$env:OPENAI_API_KEY='sk-abcdefgh'", "sk-abcdefgh", "OPENAI_API_KEY"),
        ("DEEPSEEK_API_KEY: sk-abcdefgh;", "sk-abcdefgh", "DEEPSEEK_API_KEY"),
        ("YWJjZGVmZ2hpams=", "YWJjZGVmZ2hpams=", None),  # base64 padding is not an assignment
        ("HOME=/root/something", "HOME=/root/something", None),  # not a key variable
        ("sk-proj-abcdefghijklmnopqrstu", "sk-proj-abcdefghijklmnopqrstu", None),
    ],
)
def test_key_from_a_pasted_line(pasted: str, value: str, name: str | None) -> None:
    assert typed.key_from_assignment(pasted) == (value, name)


def test_tidy_base_url_checks_first() -> None:
    with pytest.raises(InvalidValue, match="plain http"):
        typed.tidy_base_url("http://relay.example.com")
    assert typed.tidy_base_url("https://r.example.com/v1/responses") == (
        "https://r.example.com/v1",
        "base url: dropped /responses (the SDKs add it themselves)",
    )
