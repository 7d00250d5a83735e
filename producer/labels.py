"""Ground truth for evaluation: one `user_id,persona` row per generated user, never in events."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from producer.personas import Persona

HEADER = ("user_id", "persona")


def read_labels(path: Path) -> dict[str, str]:
    """The persona of every user in a labels file (empty if the file does not exist)."""
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["user_id"]: row["persona"] for row in csv.DictReader(fh)}


class LabelWriter:
    """Appends label rows, skipping users the file already has."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._known = set(read_labels(path))
        self.written = 0

    def write(self, users: Iterable[tuple[str, Persona]]) -> int:
        """Append rows for users not yet in the file; returns how many were added."""
        rows = []
        for user_id, persona in users:
            if user_id not in self._known:
                self._known.add(user_id)
                rows.append((user_id, persona.value))
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
