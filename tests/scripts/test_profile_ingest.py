"""scripts/profile_ingest.py --writers: two processes share one SQLite file and lose no batch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "profile_ingest.py"


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=True
    )
    return done.stdout


def test_two_writers_ingest_every_line_of_the_same_saved_batches(tmp_path: Path) -> None:
    saved = tmp_path / "batches.json"
    first = run("--events", "3000", "--batch-size", "500", "--writers", "2", "--batches", str(saved))
    batches = orjson.loads(saved.read_bytes())
    lines = sum(text.count("\n") + 1 for _, text in batches)
    assert len(batches) >= 6
    # Read back, not generated again: the same lines, whatever --events says now.
    again = run("--events", "100", "--writers", "2", "--batches", str(saved))
    for output in (first, again):
        found = re.search(
            r"([\d,]+) lines by 2 writers in [\d.]+ s = [\d,]+ lines/s, CPU ([\d.]+) us/line", output
        )
        assert found is not None, output
        assert int(found.group(1).replace(",", "")) == lines
        assert float(found.group(2)) > 0
