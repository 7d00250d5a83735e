"""Stores of `ecomrisk bench`: fresh databases, earlier history seeded fast, and the bulk-insert ceiling."""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from bench.synthetic import fill_required
from store.db import (
    apply_writer_pragmas,
    create_reader_engine,
    create_writer_engine,
    init_schema,
    is_sqlite,
    sqlite_path,
)
from store.models import Event, UserRisk

# Batch id of the rows that stand for history stored before a run; the run's own rows never carry it.
SEED_BATCH = "bench-seed"
SEED_EVENTS_PER_USER = 50
SEED_STEP_MS = 3_000  # between two seeded events: neither rapid nor a new session
SEED_START_MS = 1_704_067_200_000  # 2024-01-01 UTC
CHUNK_ROWS = 50_000  # rows per transaction of a bulk insert
EVENT_COLUMNS = tuple(column.name for column in Event.__table__.columns)
SEED_ACTIONS = ("view", "search", "add_to_cart", "view", "purchase")

Row = tuple[Any, ...]
T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to size items (itertools.batched needs Python 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


@dataclass
class StoreFactory:
    """Fresh, empty databases on one backend: SQLite files in a directory, or PostgreSQL schemas."""

    directory: Path
    base_url: str | None = None  # a PostgreSQL URL; None (or any SQLite URL) means SQLite files
    prefix: str = field(default_factory=lambda: f"ecomrisk_bench_{secrets.token_hex(4)}")
    schemas: dict[str, str] = field(default_factory=dict)  # URL -> PostgreSQL schema

    @property
    def backend(self) -> str:
        return "sqlite" if self.base_url is None or is_sqlite(self.base_url) else "postgresql"

    def fresh(self, name: str) -> str:
        """The URL of a new database called name, with the current schema (tables and indexes)."""
        if self.backend == "sqlite":
            self.directory.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{self.directory / f'{name}.db'}"
        else:
            assert self.base_url is not None
            schema = f"{self.prefix}_{name}"
            self._admin(f"CREATE SCHEMA {schema}")
            url = (
                make_url(self.base_url)
                .update_query_dict({"options": f"-csearch_path={schema}"})
                .render_as_string(hide_password=False)
            )
            self.schemas[url] = schema
        engine = create_writer_engine(url)
        init_schema(engine)
        engine.dispose()
        return url

    def drop(self, url: str) -> None:
        """Remove a store that fresh() made: its SQLite files, or its PostgreSQL schema."""
        path = sqlite_path(url)
        if path is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        elif url in self.schemas:
            self._admin(f"DROP SCHEMA IF EXISTS {self.schemas.pop(url)} CASCADE")

    def drop_all(self) -> None:
        """Drop every PostgreSQL schema still there (SQLite files go with their directory)."""
        for url in list(self.schemas):
            self.drop(url)

    def _admin(self, statement: str) -> None:
        assert self.base_url is not None
        engine = create_engine(self.base_url)
        try:
            with engine.begin() as conn:
                conn.execute(text(statement))
        finally:
            engine.dispose()


def seed_rows(count: int) -> Iterator[Row]:
    """count clean events of users no run uses, ordered by id, by user and by time: every index appends."""
    for i in range(count):
        user, k = divmod(i, SEED_EVENTS_PER_USER)
        action = SEED_ACTIONS[k % len(SEED_ACTIONS)]
        ts_ms = SEED_START_MS + i * SEED_STEP_MS
        gap_ms = None if k == 0 else SEED_STEP_MS
        row = {
            "event_id": f"seed-{i:010d}",
            "user_id": f"seed-u{user:08d}",
            "session_id": f"seed-s{user:08d}",
            "action": action,
            "category": "books",
            "product": f"product-{k}",
            "amount_cents": 1_999 if action == "purchase" else None,
            "ts_ms": ts_ms,
            "user_agent": "bench",
            "content_hash": f"{i:032x}",
            "batch_id": SEED_BATCH,
            "line_no": k + 1,
            "ingested_ms": ts_ms,
            "gap_ms": gap_ms,
            "is_rapid": False,
            "is_steady": k >= 2,
            "session_no": 1,
            "burst_len": 0,
            "utc_offset_min": 0,
            "session_ms": k * SEED_STEP_MS,
            "awake_ms": k * SEED_STEP_MS,
        }
        yield tuple(row[name] for name in EVENT_COLUMNS)


def seed_history(url: str, *, events: int) -> float:
    """Store `events` events of other users and their user_risk rows; returns the seconds it took."""
    started = time.perf_counter()
    bulk_insert(url, chunked(seed_rows(events), CHUNK_ROWS))
    users = -(-events // SEED_EVENTS_PER_USER)
    engine = create_writer_engine(url)
    for chunk in chunked(range(users), 10_000):
        rows = [
            fill_required(
                UserRisk,
                {
                    "user_id": f"seed-u{user:08d}",
                    "events": min(SEED_EVENTS_PER_USER, events - user * SEED_EVENTS_PER_USER),
                    "first_seen_ms": SEED_START_MS + user * SEED_EVENTS_PER_USER * SEED_STEP_MS,
                    "last_seen_ms": SEED_START_MS + ((user + 1) * SEED_EVENTS_PER_USER - 1) * SEED_STEP_MS,
                    "band": "low",
                    "risk_kind": "none",
                    "markers": [],
                },
            )
            for user in chunk
        ]
        with engine.begin() as conn:
            conn.execute(insert(UserRisk), rows)
    engine.dispose()
    return time.perf_counter() - started


def bulk_insert(url: str, chunks: Iterable[list[Row]]) -> tuple[int, float]:
    """Insert event rows with the plain driver, one transaction per chunk: (rows, seconds spent inserting)."""
    if is_sqlite(url):
        path = sqlite_path(url)
        assert path is not None, "a bulk insert needs a SQLite file"
        return _sqlite_executemany(path, chunks)
    return _postgres_copy(url, chunks)


def _sqlite_executemany(path: Path, chunks: Iterable[list[Row]]) -> tuple[int, float]:
    names = ", ".join(EVENT_COLUMNS)
    marks = ", ".join("?" * len(EVENT_COLUMNS))
    sql = f"INSERT INTO events ({names}) VALUES ({marks}) ON CONFLICT(event_id) DO NOTHING"  # noqa: S608
    conn = sqlite3.connect(path, isolation_level=None)
    # The writer engine's PRAGMAs, so the ceiling pays the same durability and gets the same cache.
    apply_writer_pragmas(conn, busy_timeout_ms=30_000)
    rows = 0
    spent = 0.0
    try:
        for chunk in chunks:  # reading the next chunk is not timed
            started = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany(sql, chunk)
            conn.execute("COMMIT")
            spent += time.perf_counter() - started
            rows += len(chunk)
    finally:
        conn.close()
    return rows, spent


def _postgres_copy(url: str, chunks: Iterable[list[Row]]) -> tuple[int, float]:
    import psycopg

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    copy_sql = f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
    rows = 0
    spent = 0.0
    with psycopg.connect(conninfo) as conn:
        for chunk in chunks:
            started = time.perf_counter()
            with conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
                for row in chunk:
                    copy.write_row(row)
            conn.commit()
            spent += time.perf_counter() - started
            rows += len(chunk)
    return rows, spent


def stored_rows(url: str) -> Iterator[list[Row]]:
    """The events a run stored, seeded history left out, in chunks of CHUNK_ROWS."""
    engine = create_reader_engine(url)
    columns = [Event.__table__.c[name] for name in EVENT_COLUMNS]
    # On the statement, not the connection: the reader's SET TRANSACTION must not be streamed too.
    query = select(*columns).where(Event.batch_id != SEED_BATCH).execution_options(yield_per=CHUNK_ROWS)
    try:
        with engine.connect() as conn:
            for part in conn.execute(query).partitions():
                yield [tuple(row) for row in part]
    finally:
        engine.dispose()


def measure_ceiling(source_url: str, target_url: str, *, table_size: int) -> dict[str, Any]:
    """Bulk-insert the rows a run stored into a fresh store holding the same history: rows/s."""
    seed_s = seed_history(target_url, events=table_size) if table_size else 0.0
    rows, seconds = bulk_insert(target_url, stored_rows(source_url))
    how = (
        "sqlite3 executemany of INSERT .. ON CONFLICT DO NOTHING" if is_sqlite(target_url) else "psycopg COPY"
    )
    return {
        "rows": rows,
        "table_size": table_size,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds, 1) if seconds > 0 else None,
        "seed_s": round(seed_s, 1),
        "method": f"{how}, {CHUNK_ROWS:,} rows per transaction, same schema and indexes",
    }
