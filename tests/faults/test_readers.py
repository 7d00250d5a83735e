"""Dashboard readers while several workers write (SQLite, PostgreSQL): no error; on SQLite, a bounded WAL."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from config.settings import Settings
from contract.wire import now_ms
from dash_app.queries import (
    RiskQuery,
    fetch_activity_mix,
    fetch_alerts,
    fetch_kpis,
    fetch_pipeline_stats,
    fetch_risk_page,
    fetch_timeline,
    fetch_user_detail,
)
from harness.fleet import WorkerFleet
from harness.invariant import wait_drained
from store.db import create_reader_engine, sqlite_path
from store.models import Event
from tests.faults.harness import PrivateRedis, fault_settings
from tests.faults.invariant import assert_invariant, database_conflicts, escaped_errors, unretried_lock_errors
from tests.faults.load import Load

pytestmark = pytest.mark.integration

MIB = 1 << 20
# SQLite checkpoints once the WAL holds 1000 pages (4 MiB) and reuses the file from its start
# after a complete checkpoint, never shrinking it; so its size is that threshold plus the
# transactions that overlapped the checkpoints. Measured with this test's load (40,000 events,
# three writers): 6.6-8 MiB with the dashboard polling, 52 MiB when one reader holds its
# snapshot open throughout (a starved checkpoint: every frame written stays in the WAL).
WAL_BOUND_BYTES = 24 * MIB


def dashboard_refresh(engine: Engine) -> list[str]:
    """One full refresh, as the dashboard's callbacks run it; returns each panel's problem."""
    at = now_ms()
    results = [
        fetch_kpis(engine=engine, now_ms=at),
        fetch_pipeline_stats(engine=engine, now_ms=at),
        fetch_risk_page(engine=engine, query=RiskQuery()),
        fetch_activity_mix(engine=engine),
        fetch_timeline(engine=engine),
        fetch_alerts(engine=engine),
    ]
    page = results[2]
    rows = getattr(page, "rows", ())
    if rows:
        results.append(fetch_user_detail(engine=engine, user_id=rows[0].user_id))
    return [str(r.problem) for r in results if getattr(r, "problem", None)]


class Readers:
    """Threads that refresh the dashboard in a loop (interval_s=0: as fast as they can)."""

    def __init__(self, url: str, *, threads: int, interval_s: float) -> None:
        self.engine = create_reader_engine(url)
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.refreshes = 0
        self.problems: list[str] = []
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                problems = dashboard_refresh(self.engine)
                with self.engine.connect() as conn:  # and a plain read of the hot table
                    conn.execute(select(func.count()).select_from(Event)).scalar_one()
                    conn.execute(text("SELECT max(batch_id) FROM batches")).scalar()
            except Exception as exc:  # nothing may escape; recorded and asserted on
                problems = [f"{type(exc).__name__}: {exc}"]
            self.problems += problems
            self.refreshes += 1
            self.stop.wait(self.interval_s)

    def __enter__(self) -> Readers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


class WalSampler:
    """Samples the size of the database's -wal file in a thread; keeps the largest."""

    def __init__(self, database: Path, *, every_s: float = 0.05) -> None:
        self.wal = database.with_name(database.name + "-wal")
        self.every_s = every_s
        self.largest = 0
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(self.every_s):
            with suppress(FileNotFoundError):  # between a last close and the next open
                self.largest = max(self.largest, os.stat(self.wal).st_size)
            self.samples += 1

    def __enter__(self) -> WalSampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(5)


def run_writers(
    settings: Settings,
    fleet_factory: Callable[..., WorkerFleet],
    *,
    workers: int,
    events: int,
    reader_threads: int,
    interval_s: float,
    wal: WalSampler | None = None,
) -> tuple[Readers, str]:
    """Run workers over a generated load while readers refresh (and wal samples); return readers and logs."""
    fleet = fleet_factory(settings, concurrency=1)
    for n in range(1, workers + 1):
        fleet.start(f"writer{n}")
    fleet.wait_ready()
    with (
        Readers(settings.resolved_database_url, threads=reader_threads, interval_s=interval_s) as readers,
        wal or nullcontext(),
    ):
        Load(settings, seed=31, count=events).start().join()
        assert wait_drained(settings, timeout_s=120)
    assert_invariant(settings)
    return readers, fleet.log_text()


def test_tight_reader_loops_never_fail_and_never_cost_a_batch(
    tmp_path: Path, database_url: str, private_redis: PrivateRedis, fleet_factory: Callable[..., WorkerFleet]
) -> None:
    settings = fault_settings(tmp_path, private_redis.url, database_url=database_url, batch_size=250)
    started = time.monotonic()
    readers, logs = run_writers(
        settings, fleet_factory, workers=2, events=20_000, reader_threads=3, interval_s=0
    )
    print(f"{readers.refreshes} refreshes in {time.monotonic() - started:.1f}s")
    assert readers.problems == []
    assert readers.refreshes >= 50
    assert unretried_lock_errors(logs) == []
    assert escaped_errors(logs) == []
    assert database_conflicts(logs) == []


# SQLite only: the write-ahead log is SQLite's file.
def test_three_writers_and_a_polling_dashboard_keep_the_wal_bounded(
    tmp_path: Path, private_redis: PrivateRedis, fleet_factory: Callable[..., WorkerFleet]
) -> None:
    settings = fault_settings(tmp_path, private_redis.url, batch_size=500)
    database = sqlite_path(settings.resolved_database_url)
    assert database is not None
    wal = WalSampler(database)
    readers, logs = run_writers(
        settings, fleet_factory, workers=3, events=40_000, reader_threads=1, interval_s=1.0, wal=wal
    )
    size = database.stat().st_size
    print(
        f"WAL at most {wal.largest / MIB:.1f} MiB over {wal.samples} samples; database {size / MIB:.1f} MiB"
    )
    assert readers.problems == []
    assert readers.refreshes >= 3
    assert unretried_lock_errors(logs) == []
    assert escaped_errors(logs) == []
    assert wal.samples > 50 and wal.largest > 0
    assert wal.largest < WAL_BOUND_BYTES
