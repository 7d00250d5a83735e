"""Pipeline probes outside the database: Redis queue depth and Celery workers online.

Both are read through `Refreshing`: a refresh callback gets the last answer at once, and a
stale answer is recomputed in one background thread. A Redis that hangs or a 0.5 s worker
ping therefore never blocks a dashboard refresh, and never runs twice at the same time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from config.settings import Settings
from contract.wire import queue_depth

T = TypeVar("T")

PROBE_TIMEOUT_S = 0.5
QUEUE_TTL_S = 1.0
WORKERS_TTL_S = 5.0


def redact_url(url: str) -> str:
    """scheme://host:port/db of a URL, without user or password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True)
class QueueDepth:
    """Messages waiting in the Celery queue, or why it could not be read."""

    depth: int | None = None
    problem: str | None = None
    checked: bool = True


@dataclass(frozen=True)
class WorkerStatus:
    """Celery workers that answered a ping, or why none could be asked."""

    workers: tuple[str, ...] = ()
    problem: str | None = None
    checked: bool = True


def redis_client(url: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> redis.Redis[bytes]:
    """A Redis client that fails fast: short socket timeouts and no retries."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def read_queue_depth(
    *, client: redis.Redis[bytes] | None, redis_url: str | None, queue_name: str
) -> QueueDepth:
    """LLEN of the Celery queue lists, or a sentence saying why Redis could not answer."""
    if client is None or not redis_url:
        return QueueDepth(problem="Redis is not configured (ECOMRISK_REDIS_URL is unset).")
    try:
        return QueueDepth(depth=queue_depth(client, [queue_name]))
    except redis.RedisError as exc:
        return QueueDepth(problem=f"Redis unreachable at {redact_url(redis_url)} ({type(exc).__name__}).")


def ping_workers(*, celery_app: Any, timeout_s: float = PROBE_TIMEOUT_S) -> WorkerStatus:
    """Names of the workers that answer a broadcast ping within timeout_s."""
    try:
        replies = celery_app.control.inspect(timeout=timeout_s).ping() or {}
    except Exception as exc:  # a broker error of any transport must not reach the page
        return WorkerStatus(problem=f"Cannot ping workers ({type(exc).__name__}).")
    return WorkerStatus(workers=tuple(sorted(replies)))


class Refreshing(Generic[T]):
    """A value recomputed in a background thread at most every ttl_s; readers never wait."""

    def __init__(self, compute: Callable[[], T], *, ttl_s: float, initial: T) -> None:
        self._compute = compute
        self._ttl_s = ttl_s
        self._value = initial
        self._at = float("-inf")
        self._running = False
        self._lock = threading.Lock()

    def get(self) -> T:
        """The latest value; starts one background refresh when it is stale."""
        with self._lock:
            if not self._running and time.monotonic() - self._at >= self._ttl_s:
                self._running = True
                threading.Thread(target=self.refresh, name="ecomrisk-probe", daemon=True).start()
            return self._value

    def refresh(self) -> T:
        """Recompute now, in the calling thread, and keep the result."""
        try:
            value = self._compute()
            with self._lock:
                self._value, self._at = value, time.monotonic()
            return value
        finally:
            with self._lock:
                self._running = False


class PipelineProbe:
    """Cached, non-blocking Redis and Celery probes for one dashboard process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client = redis_client(settings.redis_url) if settings.redis_url else None
        self._celery: Any = None
        self._queue: Refreshing[QueueDepth] = Refreshing(
            self._read_queue, ttl_s=QUEUE_TTL_S, initial=QueueDepth(checked=False)
        )
        self._workers: Refreshing[WorkerStatus] = Refreshing(
            self._ping, ttl_s=WORKERS_TTL_S, initial=WorkerStatus(checked=False)
        )

    def queue_depth(self) -> QueueDepth:
        """The last known queue depth (refreshed in the background every second)."""
        return self._queue.get()

    def workers(self) -> WorkerStatus:
        """The last known workers online (re-pinged in the background every few seconds)."""
        return self._workers.get()

    def _read_queue(self) -> QueueDepth:
        return read_queue_depth(
            client=self._client, redis_url=self._settings.redis_url, queue_name=self._settings.queue_name
        )

    def _ping(self) -> WorkerStatus:
        queue = self._read_queue()
        if queue.problem:  # no broker, no ping: a broadcast would wait on reconnects
            return WorkerStatus(problem=queue.problem)
        if self._celery is None:
            from contract.wire import broker_client  # the same broker config as the workers'

            self._celery = broker_client(self._settings)
        return ping_workers(celery_app=self._celery)
