"""Ground truth for evaluation: one `user_id,persona,sub_type` row per generated user, never in events."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

from producer.personas import Persona

HEADER = ("user_id", "persona", "sub_type")
# Files written before sub-types existed have only these columns; they still read.
OLD_HEADER = ("user_id", "persona")
Label = tuple[str, Persona, str]


def read_labels(path: Path) -> dict[str, str]:
    """The persona of every user in a labels file (empty if the file does not exist)."""
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["user_id"]: row["persona"] for row in csv.DictReader(fh)}


def upgrade_labels(path: Path) -> None:
    """Rewrite a two-column labels file with the sub-type column (empty: unknown)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != OLD_HEADER:
        return
    staged = path.with_name(path.name + ".tmp")
    with open(staged, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows([*row, ""] for row in rows[1:])
    os.replace(staged, path)


class LabelWriter:
    """Appends label rows, skipping users the file already has."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists() and path.stat().st_size:
            upgrade_labels(path)
        self._known = set(read_labels(path))
        self.written = 0

    def write(self, users: Iterable[Label]) -> int:
        """Append rows for users not yet in the file; returns how many were added."""
        rows = []
        for user_id, persona, sub_type in users:
            if user_id not in self._known:
                self._known.add(user_id)
                rows.append((user_id, persona.value, sub_type))
        if not rows:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        is_new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            if is_new:
                writer.writerow(HEADER)
            writer.writerows(rows)
        self.written += len(rows)
        return len(rows)
