"""A real worker never acks a failed batch silently: it retries, then quarantines or dead-letters."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from config.settings import Settings
from contract.wire import INGEST_TASK, broker_client
from store.db import create_writer_engine, init_schema
from store.models import Batch, QuarantinedLine
from tests.support import celery_worker, wait_until
from workers.deliveries import DeliveryBook
from workers.tasks import forget_delivered

pytestmark = pytest.mark.integration

LINE = '{"event_id": "x1", "user_id": "u", "action": "view", "timestamp": "2026-11-01T00:00:00Z"}'


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_unwritable_database_is_retried_then_dead_lettered(
    tmp_path: Path, redis_url: str, backend: str
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database folder should be")
    unwritable = {
        "sqlite": f"sqlite:///{blocker / 'db.sqlite'}",
        "postgresql": "postgresql+psycopg://postgres@127.0.0.1:1/test",  # nothing listens on port 1
    }
    settings = Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        queue_name="fail-q",
        task_max_attempts=2,
        database_url=unwritable[backend],
    )
    app = broker_client(settings)
    app.send_task(INGEST_TASK, kwargs={"batch_id": "doomed", "raw_text": LINE, "source": "t"}, queue="fail-q")
    book = DeliveryBook(redis.Redis.from_url(redis_url))
    with celery_worker(settings, name="fail"):
        letters = wait_until(lambda: book.dead_letters(), timeout_s=60, what="a dead letter")
    assert list(letters) == ["doomed"]
    assert "3 deliveries" not in str(letters) and "2 deliveries failed" in str(letters["doomed"]["reason"])


def test_poison_batch_is_quarantined_after_max_attempts(
    tmp_path: Path, redis_url: str, database_url: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        queue_name="poison-q",
        task_max_attempts=3,
        database_url=database_url,
    )
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    book = DeliveryBook(redis.Redis.from_url(redis_url))
    for _ in range(3):  # three earlier deliveries died with their worker
        book.count_attempt("poison")
    app = broker_client(settings)
    app.send_task(
        INGEST_TASK,
        kwargs={"batch_id": "poison", "raw_text": LINE + "\nbad", "source": "t"},
        queue="poison-q",
    )

    def ledger() -> int:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(Batch)) or 0)

    with celery_worker(settings, name="poison"):
        wait_until(ledger, timeout_s=60, what="the poison batch in the ledger")
    with engine.connect() as conn:
        reasons = conn.execute(select(QuarantinedLine.line_no, QuarantinedLine.reason)).all()
    assert sorted(reasons) == [(1, "poison_batch"), (2, "poison_batch")]
    assert book.client.get("ecomrisk:attempts:poison") is None
    engine.dispose()


def test_a_committed_batch_whose_counter_cannot_be_dropped_does_not_fail_its_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Redis went away between the commit and the clean-up: the task must still end as a success.
    book = DeliveryBook.from_url("redis://127.0.0.1:1/0")  # nothing listens on port 1
    with caplog.at_level(logging.WARNING, logger="workers.tasks"):
        forget_delivered(book, "committed-1")
    assert "batch committed-1: committed, but its attempt counter stays" in caplog.text
