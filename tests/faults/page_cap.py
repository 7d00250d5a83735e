"""Test-only worker module: SQLite's max_page_count read from a file, for every new connection.

Used by the full-disk test where no small file system can be mounted: every new connection
(writers use a NullPool, so every transaction) applies the cap in FAULTS_PAGE_CAP_FILE, so
a write that needs a page beyond it fails with SQLITE_FULL, and raising the number in the
file frees space for the next transaction.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

CAP_FILE_ENV = "FAULTS_PAGE_CAP_FILE"


@event.listens_for(Pool, "connect")
def _cap_pages(dbapi_connection: Any, _record: Any) -> None:
    path = os.environ.get(CAP_FILE_ENV)
    if path and isinstance(dbapi_connection, sqlite3.Connection):
        with open(path) as fh:
            cap = int(fh.read())
        dbapi_connection.execute(f"PRAGMA max_page_count={cap}")
