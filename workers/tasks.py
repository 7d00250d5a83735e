"""Celery tasks: thin adapters that decode the message and call workers.ingest."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import Task
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from config.settings import get_settings
from store.db import create_writer_engine, init_schema
from workers.celery_app import INGEST_TASK, app
from workers.ingest import ingest_batch, now_ms, quarantine_whole_batch
from workers.schemas import Reason

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def writer_engine() -> Engine:
    """One engine per worker process, created after the fork."""
    settings = get_settings()
    engine = create_writer_engine(
        settings.resolved_database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    init_schema(engine)
    return engine


def _backoff_s(retries: int) -> float:
    return float(min(2**retries, 60))


@app.task(name=INGEST_TASK, bind=True, max_retries=None)
def ingest_batch_task(
    self: Task, batch_id: str, raw_text: str, source: str, produced_ms: int | None = None
) -> dict[str, Any]:
    """Ingest one raw NDJSON batch; storage errors retry with backoff, a poison batch is quarantined."""
    settings = get_settings()
    try:
        outcome = ingest_batch(
            writer_engine(),
            settings=settings,
            batch_id=batch_id,
            raw_text=raw_text,
            source=source,
            produced_ms=produced_ms,
        )
    except (OperationalError, DBAPIError) as exc:
        # Locked or full database, lost connection: transient, so retry rather than ack a loss.
        log.warning("batch %s: storage error, retry %s: %s", batch_id, self.request.retries + 1, exc)
        raise self.retry(exc=exc, countdown=_backoff_s(self.request.retries)) from exc
    except Exception as exc:
        if self.request.retries + 1 >= settings.task_max_attempts:
            log.exception("batch %s failed %s times: quarantining it", batch_id, settings.task_max_attempts)
            outcome = quarantine_whole_batch(
                writer_engine(),
                batch_id=batch_id,
                raw_text=raw_text,
                source=source,
                produced_ms=produced_ms,
                reason=Reason.POISON_BATCH,
                detail=repr(exc),
                at_ms=now_ms(),
            )
        else:
            log.exception("batch %s: unexpected error, retrying", batch_id)
            raise self.retry(exc=exc, countdown=_backoff_s(self.request.retries)) from exc
    return {
        "batch_id": outcome.batch_id,
        "received": outcome.received,
        "stored_new": outcome.stored_new,
        "duplicates": outcome.duplicates,
        "quarantined": outcome.quarantined,
        "already_committed": outcome.already_committed,
    }
