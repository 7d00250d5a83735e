"""The kills' aim: a process counts as writing only inside a write transaction, on each backend."""

from __future__ import annotations

import psutil
from sqlalchemy import func, select

from harness.fleet import Pool, writers_filter
from store.db import create_writer_engine, hold_locks, init_schema
from store.models import Batch


def test_a_writer_is_seen_inside_its_write_transaction_only(database_url: str) -> None:
    engine = create_writer_engine(database_url)
    init_schema(engine)
    me: Pool = [("this", psutil.Process())]
    with writers_filter(database_url) as writing, engine.connect() as conn:
        assert writing is not None
        conn.execute(select(func.count()).select_from(Batch))
        conn.rollback()
        assert writing(me) == []  # connected, between batches
        with conn.begin():  # SQLite: BEGIN IMMEDIATE takes the WAL write lock
            hold_locks(conn, "batch", ["b1"])  # PostgreSQL: as store_batch does first
            assert writing(me) == me
        assert writing(me) == []
    engine.dispose()
