"""Writer connections: the SQLite settings every writer, the benchmark's ceiling included, runs with."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from store.db import WRITER_CACHE_KIB, apply_writer_pragmas, create_writer_engine

PRAGMAS = ("journal_mode", "synchronous", "busy_timeout", "cache_size")


def pragmas(read: Callable[[str], object]) -> dict[str, object]:
    return {name: read(f"PRAGMA {name}") for name in PRAGMAS}


def test_the_writer_engine_and_a_plain_connection_get_the_same_settings(tmp_path: Path) -> None:
    engine = create_writer_engine(f"sqlite:///{tmp_path / 'a.db'}", busy_timeout_ms=1234)
    with engine.connect() as conn:
        through_engine = pragmas(lambda sql: conn.execute(text(sql)).scalar())
    engine.dispose()
    plain = sqlite3.connect(tmp_path / "b.db", isolation_level=None)
    apply_writer_pragmas(plain, busy_timeout_ms=1234)
    through_plain = pragmas(lambda sql: plain.execute(sql).fetchone()[0])
    plain.close()
    assert (
        through_engine
        == through_plain
        == {
            "journal_mode": "wal",
            "synchronous": 1,  # NORMAL
            "busy_timeout": 1234,
            "cache_size": -WRITER_CACHE_KIB,
        }
    )
