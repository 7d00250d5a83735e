"""The workers' Celery app: fixed configuration at import, the process's settings applied at start.

Importing this module reads no environment. `python -m workers` (what `ecomrisk worker` and
`ecomrisk flower` run) applies the settings through `configure` before Celery starts.
"""

from __future__ import annotations

from celery import Celery

from config.settings import Settings
from contract.wire import MESSAGE_CONFIG, broker_options
from workers.watchdog import StallWatchdog

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
# A worker that takes nothing while batches wait stops, for its process manager to restart it.
app.steps["worker"].add(StallWatchdog)


# Webhook tasks (workers.tasks); they run on a queue of their own, so a slow receiver never delays ingest.
DISPATCH_TASK = "ecomrisk.dispatch_alerts"
DELIVER_TASK = "ecomrisk.deliver_webhook"
SWEEP_TASK = "ecomrisk.sweep_webhooks"
WEBHOOK_TASKS = (DISPATCH_TASK, DELIVER_TASK, SWEEP_TASK)


def webhook_options(settings: Settings) -> dict[str, object]:
    """Routes of the webhook tasks to their queue, and the outbox sweep's schedule for `celery beat`."""
    return {
        "task_routes": {name: {"queue": settings.webhook_queue} for name in WEBHOOK_TASKS},
        "beat_schedule": {
            "sweep-webhook-outbox": {
                "task": SWEEP_TASK,
                "schedule": settings.webhook_sweep_s,
                # A sweep nobody ran in time is dropped rather than piled up behind a stopped worker.
                "options": {"queue": settings.webhook_queue, "expires": settings.webhook_sweep_s},
            }
        },
    }


def configure(settings: Settings) -> Celery:
    """Apply a process's settings to the app: broker URL, TLS, transport options, queues, prefetch, beat."""
    # One reserved batch per process by default: a killed worker strands at most that many.
    app.conf.update(
        broker_options(settings),
        worker_prefetch_multiplier=settings.worker_prefetch,
        **webhook_options(settings),
    )
    return app
