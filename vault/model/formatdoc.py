"""The parts of docs/format.md that are made from the code: history actions, mint states.

    python -m vault.model.formatdoc          # rewrite those parts of docs/format.md in place

tests/test_cli_docs.py fails when the page and the enums disagree, so the spec cannot drift
from what keyvault writes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from vault.model.records import MINT_TRANSITIONS, Action, MintState

PAGE = Path(__file__).resolve().parents[2] / "docs" / "format.md"


def _comments(enum: type[Action] | type[MintState]) -> dict[str, str]:
    """Each member's trailing `# comment` in vault/model/records.py: its one-line meaning."""
    source = (Path(__file__).parent / "records.py").read_text(encoding="utf-8")
    found = re.findall(r'^\s+[A-Z_]+ = "([a-z-]+)"\s+# (.+)$', source, re.MULTILINE)
    return {value: meaning for value, meaning in found if value in {m.value for m in enum}}


def actions_table() -> str:
    meaning = _comments(Action)
    rows = [f"| `{a.value}` | {meaning.get(a.value, '')} |" for a in Action]
    return "\n".join(["| action | written when |", "|---|---|", *rows])


def mint_states_table() -> str:
    meaning = _comments(MintState)
    rows = []
    for state in MintState:
        nxt = ", ".join(f"`{s.value}`" for s in sorted(MINT_TRANSITIONS[state])) or "(final)"
        rows.append(f"| `{state.value}` | {meaning.get(state.value, '')} | {nxt} |")
    return "\n".join(["| state | meaning | may become |", "|---|---|---|", *rows])


SECTIONS = {"actions": actions_table, "mint-states": mint_states_table}


def render(page: str) -> str:
    """`page` with every generated section replaced by what the code says today."""
    for name, make in SECTIONS.items():
        begin, end = f"<!-- generated:{name} -->", f"<!-- end:{name} -->"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
        section = f"{begin}\n{make()}\n{end}"
        page = pattern.sub(section.replace("\\", "\\\\"), page)
    return page


def main() -> None:
    PAGE.write_text(render(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    sys.stdout.write(f"updated {PAGE}\n")


if __name__ == "__main__":
    main()
