"""The workers' Celery app: fixed configuration at import, the process's settings applied at start.

Importing this module reads no environment. `python -m workers` (what `ecomrisk worker` and
`ecomrisk flower` run) applies the settings through `configure` before Celery starts.
"""

from __future__ import annotations

from celery import Celery

from config.settings import Settings
from contract.wire import MESSAGE_CONFIG, broker_options

app = Celery("ecomrisk", include=["workers.tasks"])
app.conf.update(
    MESSAGE_CONFIG,
    # At-least-once: ack after the batch commits, and requeue when the pool child dies.
    # Upserts keyed on event and batch ids make the second delivery a no-op.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_acks_on_failure_or_timeout=True,
    worker_send_task_events=True,
    task_send_sent_event=True,
    worker_hijack_root_logger=False,
)


def configure(settings: Settings) -> Celery:
    """Apply a process's settings to the app: broker URL, TLS, transport options, queue, prefetch."""
    # One reserved batch per process by default: a killed worker strands at most that many.
    app.conf.update(broker_options(settings), worker_prefetch_multiplier=settings.worker_prefetch)
    return app
