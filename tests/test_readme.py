"""The README's generated tables are the code's: markers from the rule table, settings from the class."""

from __future__ import annotations

import importlib.util

from tests.support import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def _tables() -> object:
    spec = importlib.util.spec_from_file_location("readme_tables", REPO_ROOT / "scripts" / "readme_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_marker_table_is_printed_from_the_rules() -> None:
    table = _tables().marker_table()  # type: ignore[attr-defined]
    assert table in README, "regenerate it: .venv/bin/python scripts/readme_tables.py markers"


def test_the_configuration_table_is_printed_from_the_settings() -> None:
    table = _tables().settings_table()  # type: ignore[attr-defined]
    assert table in README, "regenerate it: .venv/bin/python scripts/readme_tables.py settings"
