"""Every reason code has a description, and the README's reason table says the same."""

from __future__ import annotations

import re

from cli.reports import describe_reason
from contract.wire import REASON_DESCRIPTIONS, Reason
from tests.support import REPO_ROOT

ROW = re.compile(r"^\| `(?P<code>[a-z_]+)` \| (?P<meaning>.+?) \|$")


def readme_reasons() -> dict[str, str]:
    """Reason code -> meaning, from the README's table of reason codes."""
    text = (REPO_ROOT / "README.md").read_text()
    table = text[text.index("| reason code | meaning |") :].split("\n\n", 1)[0]
    return {m["code"]: m["meaning"] for line in table.splitlines() if (m := ROW.match(line))}


def test_every_reason_is_described() -> None:
    assert set(REASON_DESCRIPTIONS) == set(Reason)
    assert all(text.endswith(".") for text in REASON_DESCRIPTIONS.values())


def test_the_readme_table_is_the_descriptions() -> None:
    assert readme_reasons() == {reason.value: text for reason, text in REASON_DESCRIPTIONS.items()}


def test_status_names_what_a_code_means() -> None:
    assert describe_reason("not_json") == REASON_DESCRIPTIONS[Reason.NOT_JSON]
    assert describe_reason("a_code_of_a_later_release") == ""
