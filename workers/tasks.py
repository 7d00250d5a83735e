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

import httpx
import redis
from celery import Task
from celery.signals import worker_process_init
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from config.settings import get_settings
from contract.wire import INGEST_TASK, BatchMode, RawBatch, Reason, now_ms
from store.db import open_writer
from store.webhooks import batch_alert_ids
from workers import webhooks
from workers.celery_app import DELIVER_TASK, DISPATCH_TASK, SWEEP_TASK, app
from workers.deliveries import DeliveryBook
from workers.ingest import BatchOutcome, ingest_batch, quarantine_batch

log = logging.getLogger(__name__)


# A batch of 10,000 events holds some 40,000 tracked objects before the lock and more under it,
# nearly none in cycles, and frees them by reference counting. The threshold counts live objects:
# at 50,000 young collections ran during every batch, tracing objects about to be freed (1.7 % of
# the instructions per line); above a batch's worth they run only when something accumulates.
GC_YOUNG_THRESHOLD = 200_000


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
    forget_delivered(book, batch_id)
    if outcome.alerts and settings.webhook_endpoints:
        announce_alerts(batch_id)
    return _summary(outcome)


def forget_delivered(book: DeliveryBook, batch_id: str) -> None:
    """Drop the batch's attempt counter once it is in the ledger; Redis being away must not fail the task."""
    try:
        book.forget(batch_id)
    except redis.RedisError as exc:  # the counter expires by itself; a redelivery is a ledger no-op
        log.warning("batch %s: committed, but its attempt counter stays (%s)", batch_id, exc)


def announce_alerts(batch_id: str) -> None:
    """The fast path of webhooks: fan out the batch's new alerts; the outbox sweep covers a failure here."""
    try:
        dispatch_alerts_task.apply_async(kwargs={"batch_id": batch_id}, retry=False)
    except Exception as exc:  # the batch is committed: its alerts wait in the outbox for the sweep
        log.warning("batch %s: alerts not announced (%s); the outbox sweep sends them", batch_id, exc)


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
    forget_delivered(book, batch.batch_id)
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


# --- webhooks: on their own queue (workers.celery_app.webhook_options) --------------------------


@lru_cache(maxsize=1)
def http_client() -> httpx.Client:
    """One HTTP client per pool process, created after the fork; redirects are not followed."""
    return httpx.Client(follow_redirects=False)


@app.task(name=DISPATCH_TASK, bind=True, max_retries=None)
def dispatch_alerts_task(self: Task, batch_id: str) -> int:
    """One delivery task per new alert of a batch and endpoint."""
    settings = get_settings()
    try:
        alert_ids = batch_alert_ids(writer_engine(), batch_id=batch_id)
    except SQLAlchemyError as exc:
        raise self.retry(exc=exc, countdown=backoff_s(self.request.retries + 1)) from exc
    keys = sorted(webhooks.endpoints_by_key(settings))
    for alert_id in alert_ids:
        for key in keys:
            deliver_webhook_task.apply_async(kwargs={"alert_id": alert_id, "endpoint": key})
    return len(alert_ids) * len(keys)


@app.task(name=DELIVER_TASK, bind=True, max_retries=None)
def deliver_webhook_task(self: Task, alert_id: int, endpoint: str) -> str:
    """POST one alert to one endpoint; Celery retries with backoff until the log dead-letters it."""
    settings = get_settings()
    target = webhooks.endpoints_by_key(settings).get(endpoint)
    if target is None:
        log.warning("alert %s: endpoint %s is no longer configured; not sent", alert_id, endpoint)
        return webhooks.Outcome.SKIPPED.value
    rules = webhooks.WebhookRules.from_settings(settings)
    try:
        result = webhooks.deliver(writer_engine(), http_client(), target, alert_id=alert_id, rules=rules)
    except SQLAlchemyError as exc:  # the log could not be written: try again, the lease guards the POST
        log.warning("alert %s: delivery log error, retrying: %s", alert_id, exc)
        raise self.retry(exc=exc, countdown=backoff_s(self.request.retries + 1)) from exc
    if result.outcome is webhooks.Outcome.RETRY:
        log.info(
            "alert %s to %s failed (%s); retry in %ss", alert_id, endpoint, result.error, result.retry_in_s
        )
        raise self.retry(countdown=result.retry_in_s)
    if result.outcome is webhooks.Outcome.DEAD:
        log.error("alert %s to %s dead-lettered: %s", alert_id, endpoint, result.error)
    return result.outcome.value


@app.task(name=SWEEP_TASK)
def sweep_webhooks_task() -> int:
    """The outbox sweep (scheduled by celery beat): send again what no attempt is on its way for."""
    settings = get_settings()

    def enqueue(alert_id: int, endpoint: str) -> None:
        deliver_webhook_task.apply_async(kwargs={"alert_id": alert_id, "endpoint": endpoint})

    return webhooks.sweep_outbox(writer_engine(), settings, enqueue=enqueue)
