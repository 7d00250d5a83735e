"""Engines, sessions and writer locks: SQLite in WAL with IMMEDIATE writes, PostgreSQL with advisory locks."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from config.settings import Settings


def is_sqlite(url: str) -> bool:
    """True when the SQLAlchemy URL points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for memory or another backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


# Page cache of a writer connection: the hot parts of the events indexes (KiB).
WRITER_CACHE_KIB = 65_536


def apply_writer_pragmas(dbapi_connection: Any, *, busy_timeout_ms: int) -> None:
    """The SQLite settings of every writer, the benchmark's bulk-insert ceiling included."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL: a power loss may drop the last commits, never corrupt; raw logs
    # plus `ecomrisk reconcile` bring those batches back.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
    cursor.close()


def create_writer_engine(url: str, *, busy_timeout_ms: int = 30_000) -> Engine:
    """An engine for writers; on SQLite every transaction begins IMMEDIATE."""
    if not is_sqlite(url):
        # Pinned, not left to the server default: under REPEATABLE READ or SERIALIZABLE the
        # snapshot would be taken before `hold_locks` returns, hiding what the lock waited for.
        return create_engine(url, pool_pre_ping=True, isolation_level="READ COMMITTED")
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    # One kept connection per process: its page cache stays warm from batch to batch.
    engine = create_engine(url, pool_size=1, max_overflow=4, connect_args={"timeout": busy_timeout_ms / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Driver-level autocommit, so that the "begin" hook below owns BEGIN.
        dbapi_connection.isolation_level = None
        apply_writer_pragmas(dbapi_connection, busy_timeout_ms=busy_timeout_ms)

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        # A deferred transaction that reads then writes fails with SQLITE_BUSY under
        # concurrent writers, and busy_timeout cannot rescue it; IMMEDIATE takes the lock first.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """engine.begin(), queued first on a file lock when the store is a SQLite file.

    SQLite's busy handler polls with sleeps of up to 100 ms, so a waiting writer starts late
    after the lock frees; a blocking flock wakes the next writer as soon as the last one commits.
    """
    path = sqlite_path(str(engine.url))
    if path is None:
        with engine.begin() as conn:
            yield conn
        return
    fd = os.open(f"{path}.write-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if this process dies
        with engine.begin() as conn:
            yield conn
    finally:
        os.close(fd)


def create_reader_engine(url: str, *, busy_timeout_ms: int = 5_000) -> Engine:
    """A read-only engine: no pooled SQLite connection outlives a refresh."""
    if not is_sqlite(url):
        engine = create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)

        @event.listens_for(engine, "begin")
        def _read_only(conn: Any) -> None:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")

        return engine
    path = sqlite_path(url)
    if path is None:
        return create_engine(url, poolclass=NullPool)
    ro_url = f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"
    engine = create_engine(ro_url, poolclass=NullPool, connect_args={"timeout": busy_timeout_ms / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA query_only=1")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_read(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


_LOCK = "SELECT pg_advisory_xact_lock(%s)"
_LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(%s)"


def advisory_key(namespace: str, name: str) -> int:
    """A stable signed 64-bit PostgreSQL advisory-lock key for a name within a namespace."""
    data = f"{namespace}\0{name}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def hold_locks(conn: Connection, namespace: str, names: Iterable[str], *, shared: bool = False) -> None:
    """Hold PostgreSQL advisory locks on these names until the transaction ends; no-op on SQLite."""
    if conn.dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE already serialises every writer
    keys = sorted({advisory_key(namespace, name) for name in names})
    if keys:
        # Every transaction takes its keys in ascending order, so no two can wait on each other in
        # a cycle; executemany pipelines the statements and runs them in that order.
        conn.exec_driver_sql(_LOCK_SHARED if shared else _LOCK, [(key,) for key in keys])


def init_schema(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from store.schema import upgrade_schema  # Alembic loads lazily: readers never need it

    upgrade_schema(engine)


def open_writer(settings: Settings) -> Engine:
    """A writer engine on the configured database with its busy timeout, the schema at head."""
    engine = create_writer_engine(
        settings.resolved_database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    init_schema(engine)
    return engine
