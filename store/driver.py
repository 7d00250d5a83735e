"""Driver-level SQL for the hot path: `{p}` placeholders, executemany, and reads as plain tuples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

CHUNK = 500  # bound parameters per statement stay far below every backend's limit


def marks(count: int) -> str:
    """`count` parameter markers, comma-separated, for a statement of `{p}` placeholders."""
    return ", ".join(["{p}"] * count)


def driver_sql(conn: Connection, statement: str) -> str:
    """The statement with each `{p}` replaced by this driver's parameter marker."""
    return statement.replace("{p}", "?" if conn.dialect.paramstyle == "qmark" else "%s")


def execute_many(conn: Connection, statement: str, rows: list[tuple[Any, ...]]) -> int:
    """Run a fixed statement once per row through the driver's executemany; return the rows affected.

    `{p}` marks a parameter. The hot path skips SQLAlchemy's per-row parameter processing; values
    stay bound parameters.
    """
    if not rows:
        return 0
    return conn.exec_driver_sql(driver_sql(conn, statement), rows).rowcount


def fetch_many(conn: Connection, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run a fixed query with `{p}` parameters on the driver's own cursor; rows as plain tuples.

    SQLAlchemy's result rows cost about a microsecond each, and the hot path reads thousands
    per batch. A driver error still surfaces as SQLAlchemy's DBAPIError, which tasks retry.
    """
    sql = driver_sql(conn, statement)
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    except dbapi_error as exc:
        raise DBAPIError.instance(sql, tuple(params), exc, dbapi_error, dialect=conn.dialect) from exc
    finally:
        cursor.close()
