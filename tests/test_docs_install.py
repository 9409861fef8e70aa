"""No page tells people to install keyvault from a package index by name.

The name `keyvault` on PyPI belongs to an unrelated project (versions 0.1.0 to 1.0.0), so a
recipe such as `pip install "keyvault==0.1.0"` in a CI job holding KEYVAULT_IDENTITY would
run a stranger's code with the vault's key. Every install line names a source: `.`, a path,
or `keyvault @ git+…@COMMIT`.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
INSTALL = re.compile(r"\b(?:pip|pipx|uv(?: tool| pip)?)\s+install\b(?P<args>[^\n#;&|]*)")
# the bare name as a requirement (optionally with extras or a version), not `keyvault @ src`
BY_NAME = re.compile(
    r"""(?<![\w/.@-])["']?keyvault(?:\[[^\]]*\])?(?!\s*@)(?=\s*(?:[=<>!~]=|["']|\s|$))"""
)


def by_name_installs(text: str) -> list[str]:
    return [m.group(0) for m in INSTALL.finditer(text) if BY_NAME.search(m.group("args"))]


def test_no_page_installs_keyvault_by_name_from_an_index() -> None:
    found = {
        f"{page.relative_to(ROOT)}: {line}"
        for page in PAGES
        for line in by_name_installs(page.read_text(encoding="utf-8"))
    }
    assert not found, "\n".join(sorted(found))


def test_the_check_knows_a_by_name_install_from_a_pinned_source() -> None:
    assert by_name_installs('- run: python -m pip install "keyvault==0.1.0"')
    assert by_name_installs("pipx install keyvault")
    assert by_name_installs("uv tool install 'keyvault[socks]>=0.1'")
    assert not by_name_installs('pip install "keyvault @ git+https://github.com/o/keyvault@abc"')
    assert not by_name_installs("python3 -m pip install . && keyvault --help")
    assert not by_name_installs("pipx install ./keyvault")
