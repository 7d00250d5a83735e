"""Celery tasks: thin adapters that decode the message and call workers.ingest.

Every delivery ends in exactly one of: committed, quarantined with a reason, an explicit
retry, or (when even quarantine cannot be written) the dead-letter hash that `status`
shows and `reconcile` re-enqueues from the raw log. No exception escapes to be acked.
"""

from __future__ import annotations

import gc
import logging
from functools import lru_cache
from typing import Any

import redis
from celery import Task
from celery.signals import worker_process_init
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from config.settings import get_settings
from contract.wire import INGEST_TASK, BatchMode, RawBatch, Reason, now_ms
from store.db import open_writer
from workers.celery_app import app
from workers.deliveries import DeliveryBook
from workers.ingest import BatchOutcome, ingest_batch, quarantine_batch

log = logging.getLogger(__name__)


# A batch allocates tens of thousands of short-lived objects, nearly none of them in cycles:
# at CPython's default threshold (700) the collector runs hundreds of times per batch.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect young objects less often, and never rescan what was loaded before the first batch."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)


@worker_process_init.connect
def _on_pool_process_start(**_: Any) -> None:
    tune_gc()


@lru_cache(maxsize=1)
def writer_engine() -> Engine:
    """One engine per worker process, created lazily after the fork."""
    return open_writer(get_settings())


@lru_cache(maxsize=1)
def delivery_book() -> DeliveryBook:
    """Attempt counters and dead letters, kept in the broker's Redis."""
    settings = get_settings()
    assert settings.redis_url
    return DeliveryBook.from_url(settings.redis_url)


def backoff_s(attempt: int) -> float:
    """Exponential backoff between retries: 1, 2, 4 ... 60 s."""
    return float(min(2 ** max(attempt - 1, 0), 60))


@app.task(name=INGEST_TASK, bind=True, max_retries=None)
def ingest_batch_task(
    self: Task,
    batch_id: str,
    raw_text: str,
    source: str,
    produced_ms: int | None = None,
    historical: bool = False,
    history_end_ms: int | None = None,
    unpriced_purchases: bool = False,
) -> dict[str, Any]:
    """Ingest one raw NDJSON batch, or retry, or quarantine it as poison after too many attempts."""
    # The mode's keywords have defaults: a message queued by an earlier release is a live batch.
    settings = get_settings()
    book = delivery_book()
    try:
        attempt = book.count_attempt(batch_id)
    except redis.RedisError as exc:
        raise self.retry(exc=exc, countdown=backoff_s(self.request.retries + 1)) from exc
    mode = BatchMode(historical, history_end_ms, unpriced_purchases)
    batch = RawBatch(batch_id, raw_text, source, produced_ms, attempt, mode)
    if attempt > settings.task_max_attempts:
        return _give_up(book, batch, detail_chars=settings.quarantine_detail_chars)
    try:
        outcome = ingest_batch(writer_engine(), batch, settings=settings)
    except SQLAlchemyError as exc:
        # Locked or full database, lost connection: transient, so retry rather than ack a loss.
        log.warning("batch %s: storage error on attempt %s, retrying: %s", batch_id, attempt, exc)
        raise self.retry(exc=exc, countdown=backoff_s(attempt)) from exc
    except Exception as exc:
        log.exception("batch %s: unexpected error on attempt %s, retrying", batch_id, attempt)
        raise self.retry(exc=exc, countdown=backoff_s(attempt)) from exc
    book.forget(batch_id)
    return _summary(outcome)


def _give_up(book: DeliveryBook, batch: RawBatch, *, detail_chars: int) -> dict[str, Any]:
    detail = f"{batch.attempt - 1} deliveries failed or died"
    try:
        outcome = quarantine_batch(
            writer_engine(), batch, reason=Reason.POISON_BATCH, detail=detail[:detail_chars], at_ms=now_ms()
        )
    except Exception as exc:  # storage or file-system failure: the raw log still holds the batch
        log.error("batch %s: cannot even quarantine (%s): dead-lettered for reconcile", batch.batch_id, exc)
        book.dead_letter(batch.batch_id, reason=f"{detail}; storage error: {exc}"[:detail_chars])
        return {"batch_id": batch.batch_id, "dead_lettered": True}
    log.error("batch %s: %s, quarantined as %s", batch.batch_id, detail, Reason.POISON_BATCH.value)
    book.forget(batch.batch_id)
    return _summary(outcome)


def _summary(outcome: BatchOutcome) -> dict[str, Any]:
    return {
        "batch_id": outcome.batch_id,
        "received": outcome.received,
        "stored_new": outcome.stored_new,
        "duplicates": outcome.duplicates,
        "quarantined": outcome.quarantined,
        "already_committed": outcome.already_committed,
    }
