"""`.env.example` documents every Settings field with its true default."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter

from config.settings import Settings
from tests.support import REPO_ROOT

ENV_EXAMPLE = REPO_ROOT / ".env.example"
ASSIGNMENT = re.compile(r"^#?\s*(?P<name>ECOMRISK_[A-Z0-9_]+)=(?P<value>.*)$")
REGENERATE = "regenerate it: .venv/bin/python scripts/env_example.py > .env.example"


def documented() -> dict[str, str]:
    """Variable name -> value shown in .env.example."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := ASSIGNMENT.match(line):
            found[match["name"]] = match["value"].strip()
    return found


def test_every_field_is_documented() -> None:
    fields = {f"ECOMRISK_{name.upper()}" for name in Settings.model_fields}
    names = set(documented())
    assert not fields - names, f".env.example lacks {sorted(fields - names)}; {REGENERATE}"
    assert not names - fields, f".env.example names unknown settings {sorted(names - fields)}"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_documented_default_is_the_real_one(name: str) -> None:
    info = Settings.model_fields[name]
    shown = documented().get(f"ECOMRISK_{name.upper()}")
    assert shown is not None, REGENERATE
    if info.default is None:
        assert shown == "", f"{name} has no default, .env.example shows {shown!r}"
    else:
        assert TypeAdapter(info.annotation).validate_python(shown) == info.default, REGENERATE
