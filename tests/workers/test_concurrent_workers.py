"""Four concurrent writers (two Celery workers x two processes) write the same users; results stay exact."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import func, select

from config.settings import Settings
from contract.wire import INGEST_TASK, broker_client
from store.db import create_writer_engine, init_schema
from store.models import Batch, Event, QuarantinedLine
from tests.support import celery_worker, wait_until
from workers.reference import find_mismatches

pytestmark = pytest.mark.integration


def make_lines(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(hours=3)
    lines = []
    for i in range(count):
        action = rng.choice(["view", "view", "search", "purchase"])
        moment = start + timedelta(milliseconds=rng.randint(0, 2 * 3_600_000))
        lines.append(
            orjson.dumps(
                {
                    "event_id": f"c{i:05d}",
                    "user_id": f"u{rng.randint(1, 12)}",
                    "action": action,
                    "timestamp": moment.isoformat(timespec="milliseconds"),
                    "amount": rng.randint(100, 9_999) / 100 if action == "purchase" else None,
                }
            ).decode()
        )
    return lines


def test_four_writers_concurrently_match_the_offline_recompute(live_db_settings: Settings) -> None:
    engine = create_writer_engine(live_db_settings.resolved_database_url)
    init_schema(engine)
    lines = make_lines(3000, seed=7)
    lines[10] = "{broken json"
    batches = [lines[i : i + 60] for i in range(0, len(lines), 60)]
    app = broker_client(live_db_settings)
    for n, batch in enumerate(batches):
        app.send_task(
            INGEST_TASK,
            kwargs={
                "batch_id": f"cw-{n:03d}",
                "raw_text": "\n".join(batch),
                "source": "test",
                "produced_ms": 0,
            },
            queue=live_db_settings.queue_name,
        )
    # Redeliver a few batches, as a lost ack would.
    for n in (0, 5, 9):
        app.send_task(
            INGEST_TASK,
            kwargs={"batch_id": f"cw-{n:03d}", "raw_text": "\n".join(batches[n]), "source": "test"},
            queue=live_db_settings.queue_name,
        )

    def committed() -> int | None:
        with engine.connect() as conn:
            n = conn.scalar(select(func.count()).select_from(Batch))
        return n if n == len(batches) else None

    with (
        celery_worker(live_db_settings, concurrency=2, name="a"),
        celery_worker(live_db_settings, concurrency=2, name="b"),
    ):
        wait_until(committed, timeout_s=180, what="every batch in the ledger")

    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event)) == len(lines) - 1
        assert conn.scalar(select(QuarantinedLine.reason)) == "not_json"
        totals = conn.execute(
            select(func.sum(Batch.received), func.sum(Batch.stored_new), func.sum(Batch.quarantined))
        ).one()
    assert tuple(totals) == (len(lines), len(lines) - 1, 1)
    assert find_mismatches(engine, live_db_settings) == []
    engine.dispose()
