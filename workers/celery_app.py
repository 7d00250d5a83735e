"""The Celery app: Redis broker, JSON only (orjson, compressed), at-least-once delivery."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu.utils.url import parse_url

from config.settings import Settings, get_settings
from workers.wire import COMPRESSION, SERIALIZER, register_wire_formats

INGEST_TASK = "ecomrisk.ingest_batch"


def broker_tls_options(url: str) -> dict[str, Any] | None:
    """TLS options of a rediss:// URL: its ssl_* parameters, verifying the server by default."""
    if urlsplit(url).scheme != "rediss":
        return None
    # Kombu alone would not verify a bare rediss:// URL (redis-py does), and Flower's queue
    # view reads TLS options only from broker_use_ssl, never from the URL.
    return {"ssl_cert_reqs": ssl.CERT_REQUIRED, **(parse_url(url).get("ssl") or {})}


def create_celery_app(settings: Settings) -> Celery:
    """Build the Celery app for these settings; producers use it only to send."""
    if not settings.redis_url:
        raise RuntimeError("ECOMRISK_REDIS_URL is not set (ecomrisk up sets it for its own Redis)")
    register_wire_formats()
    app = Celery("ecomrisk", broker=settings.redis_url, include=["workers.tasks"])
    transport = {
        # Must exceed the slowest batch, or a running batch is handed to a second worker.
        # Short enough that a batch lost with a killed worker comes back within minutes.
        "visibility_timeout": settings.visibility_timeout_s,
        # Look for such stranded batches every 10 s (kombu's unacked_restore_interval) rather
        # than every tenth time (its default throttle): otherwise they wait 100 s more.
        "unacked_restore_throttle": 1,
        "socket_keepalive": True,
        "retry_on_timeout": True,
    }
    app.conf.update(
        task_serializer=SERIALIZER,
        task_compression=COMPRESSION,
        # Plain JSON too, for messages queued by an earlier release; pickle is refused:
        # a message can never run code.
        accept_content=[SERIALIZER, "json"],
        result_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        # At-least-once: ack after the batch commits, and requeue when the pool child dies.
        # Upserts keyed on event and batch ids make the second delivery a no-op.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        # One reserved batch per process: a killed worker strands at most that many.
        worker_prefetch_multiplier=settings.worker_prefetch,
        task_default_queue=settings.queue_name,
        broker_transport_options=transport,
        broker_use_ssl=broker_tls_options(settings.redis_url),
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
    )
    return app


app = create_celery_app(get_settings()) if get_settings().redis_url else Celery("ecomrisk")
