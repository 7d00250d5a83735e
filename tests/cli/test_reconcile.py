"""Reconcile re-sends raw batches that never reached the ledger; a second run changes nothing."""

from __future__ import annotations

import pytest
import redis
from rich.console import Console
from sqlalchemy import select

from cli.reports import print_status, run_reconcile
from config.settings import Settings
from contract.wire import BatchMode
from producer.publisher import write_raw_batch
from producer.reconcile import account_raw_logs
from store.db import create_writer_engine, init_schema
from store.models import Batch
from store.summaries import ledger_totals
from tests.support import celery_worker, wait_until

pytestmark = pytest.mark.integration


def line(i: int) -> str:
    return (
        f'{{"event_id": "r{i}", "user_id": "u{i % 3}", "action": "view",'
        f' "timestamp": "2026-11-01T00:00:{i:02d}Z"}}'
    )


def test_reconcile_recovers_batches_redis_never_had(live_settings: Settings) -> None:
    engine = create_writer_engine(live_settings.resolved_database_url)
    init_schema(engine)
    # Written to the raw log, then lost before any worker saw them (e.g. Redis restarted empty).
    for n in range(4):
        write_raw_batch(live_settings.raw_dir, f"lost-{n}", "\n".join([line(10 * n + k) for k in range(10)]))
    write_raw_batch(live_settings.raw_dir, "lost-bad", "not json\n" + line(50))
    # A batch of a history import: sent again, it is judged as a history again (its mode file says so).
    history = [line(k).replace("2026-11-01", "2015-06-02").replace('"r', '"old-r') for k in range(3)]
    mode = BatchMode(historical=True, history_end_ms=1_433_203_202_000)
    write_raw_batch(live_settings.raw_dir, "lost-hist", "\n".join(history), mode=mode)
    account = account_raw_logs(live_settings.raw_dir, engine)
    assert (len(account.missing), account.missing_lines) == (6, 45)

    console = Console(record=True, width=120)
    assert run_reconcile(live_settings, console, dry_run=True) == 0
    assert redis.Redis.from_url(live_settings.redis_url or "").llen(live_settings.queue_name) == 0
    assert run_reconcile(live_settings, console, dry_run=False) == 6

    with celery_worker(live_settings, name="reconcile"):
        wait_until(lambda: ledger_totals(engine).batches == 6, timeout_s=60, what="reconciled batches")
    totals = ledger_totals(engine)
    assert (totals.received, totals.stored_new, totals.quarantined) == (45, 44, 1)
    with engine.connect() as conn:
        assert conn.scalar(select(Batch.historical).where(Batch.batch_id == "lost-hist")) is True
    assert run_reconcile(live_settings, console, dry_run=False) == 0  # idempotent
    print_status(live_settings, console, dead_letters=0)
    text = console.export_text()
    assert "missing batches       │     0" in text
    assert "balanced" in text
