"""A worker that stops taking tasks while they wait is stopped, for its process manager to start again.

kombu's Redis transport has more than once lost a consumer's registration with the event loop
when the connection to Redis came back (celery/celery#8030, kombu#2492, kombu#2629): the worker
stays up, answers pings, and takes nothing while the queue grows. No batch is lost that way
(the queue and the raw logs keep them), but none is processed either. A restarted worker
registers afresh, so the cure is the one a process manager already gives: exit and start again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import redis
from celery import bootsteps
from celery.signals import task_received
from celery.worker import state

from config.settings import Settings, get_settings
from contract.wire import queue_depth

log = logging.getLogger(__name__)

EXIT_STALLED = 75  # EX_TEMPFAIL: start me again
MAX_CHECK_INTERVAL_S = 5.0
REDIS_TIMEOUT_S = 2.0


@dataclass
class StallClock:
    """Since when tasks have waited while this worker had room for one and took none."""

    stall_s: float
    since: float | None = None

    def observe(self, now: float, *, waiting: int | None, has_room: bool, last_received: float) -> bool:
        """Take one look (waiting is None when Redis did not answer); True once stalled for stall_s."""
        if not waiting or not has_room:
            self.since = None  # nothing to take, no room, or no view of the queue: not a stall
            return False
        if self.since is None or last_received >= self.since:
            self.since = now  # the clock starts, or a task came in since it started
            return False
        return now - self.since >= self.stall_s


_last_received = time.monotonic()


@task_received.connect
def _on_task_received(**_: Any) -> None:
    global _last_received
    _last_received = time.monotonic()


def waiting_tasks(client: redis.Redis[bytes], queues: list[str]) -> int | None:
    """Messages ready in the worker's queues, or None when Redis does not answer."""
    try:
        return queue_depth(client, queues)
    except redis.RedisError:
        return None


class StallWatchdog(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery is untyped
    """A worker bootstep: a thread that looks at the queue and this worker every few seconds."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.stopping = threading.Event()

    def start(self, worker: Any) -> None:
        settings = get_settings()
        if settings.worker_stall_s > 0:
            thread = threading.Thread(target=self._watch, args=(worker, settings), name="stall-watchdog")
            thread.daemon = True
            thread.start()

    def stop(self, worker: Any) -> None:
        self.stopping.set()

    def _watch(self, worker: Any, settings: Settings) -> None:
        stall_s = settings.worker_stall_s
        assert settings.redis_url
        client: redis.Redis[bytes] = redis.Redis.from_url(
            settings.redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        queues = sorted(worker.app.amqp.queues.consume_from or {settings.queue_name: None})
        capacity = worker.concurrency * max(worker.app.conf.worker_prefetch_multiplier, 1)
        clock = StallClock(stall_s)
        interval_s = min(MAX_CHECK_INTERVAL_S, stall_s / 4)
        while not self.stopping.wait(interval_s):
            waiting = waiting_tasks(client, queues)
            has_room = len(state.reserved_requests) < capacity
            now = time.monotonic()
            if clock.observe(now, waiting=waiting, has_room=has_room, last_received=_last_received):
                self._stop_stalled(waiting, stall_s)
                return

    def _stop_stalled(self, waiting: int | None, stall_s: float) -> None:
        log.critical(
            "took no task for %.0f s while %s waited and the pool had room: stopping (exit code %d) "
            "for the process manager to start this worker again",
            stall_s,
            waiting,
            EXIT_STALLED,
        )
        # The event loop checks this flag on every turn: a warm shutdown, then exit code 75.
        state.should_stop = EXIT_STALLED
        if not self.stopping.wait(stall_s):
            log.critical("the warm shutdown did not finish within %.0f s: exiting now", stall_s)
            os._exit(EXIT_STALLED)
