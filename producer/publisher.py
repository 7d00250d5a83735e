"""The one way out of the producer: write the batch to the raw log, then enqueue it."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.settings import Settings
from contract.wire import INGEST_TASK, LIVE, BatchMode, RawBatch, now_ms

log = logging.getLogger(__name__)
# What a down, restarting or unreachable broker raises; anything else is a bug and propagates.
BROKER_DOWN_ERRORS = (OperationalError, RedisConnectionError, RedisTimeoutError, OSError)

_BATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
FIRST_RETRY_S = 0.5
MODE_SUFFIX = ".mode.json"  # beside a raw batch that is not live: its BatchMode


class BrokerAuthError(RuntimeError):
    """Redis refused the credentials in ECOMRISK_REDIS_URL: waiting cannot fix that."""


def refused_credentials(exc: BaseException) -> bool:
    """True when exc, or the Redis error kombu wrapped in it, is a refused or missing password."""
    return isinstance(exc, AuthenticationError) or isinstance(exc.__cause__, AuthenticationError)


def backoff_delays(cap_s: float, *, first_s: float = FIRST_RETRY_S) -> Iterator[float]:
    """Endless exponential delays: first_s, doubled each time, never above cap_s."""
    delay = min(first_s, cap_s)
    while True:
        yield delay
        delay = min(delay * 2, cap_s)


def write_raw_batch(raw_dir: Path, batch_id: str, raw_text: str, *, mode: BatchMode = LIVE) -> Path:
    """Write raw_dir/<batch_id>.ndjson whole or not at all (temp file, fsync, os.replace).

    A batch that is not live gets its mode beside it first (<batch_id>.mode.json), so that
    reconcile sends it again as it was judged the first time.
    """
    if not _BATCH_ID.fullmatch(batch_id):
        raise ValueError(f"batch id {batch_id!r} is not filename-safe")
    raw_dir.mkdir(parents=True, exist_ok=True)
    if mode != LIVE:
        _write_whole(raw_dir, f"{batch_id}{MODE_SUFFIX}", json.dumps(asdict(mode)))
    # surrogateescape writes back the exact bytes of imported lines that were not UTF-8.
    return _write_whole(raw_dir, f"{batch_id}.ndjson", raw_text + "\n")


def _write_whole(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    temp = directory / f".{name}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)
    return path


def read_batch_mode(raw_path: Path) -> BatchMode:
    """The mode written beside a raw batch file; live when there is none."""
    side = raw_path.with_name(raw_path.name.removesuffix(raw_path.suffix) + MODE_SUFFIX)
    try:
        return BatchMode(**json.loads(side.read_text("utf-8")))
    except FileNotFoundError:
        return LIVE


class Publisher:
    """Publishes batches through a Celery app; waits out broker outages instead of failing."""

    def __init__(
        self,
        app: Celery,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._app = app
        self._raw_dir = settings.raw_dir
        self._queue = settings.queue_name
        self._retry_max_s = settings.publish_retry_max_s
        self._sleep = sleep
        self._clock_ms = clock_ms
        self.batches = 0
        self.lines = 0
        self.retries = 0

    @property
    def raw_dir(self) -> Path:
        """Where every published batch is kept."""
        return self._raw_dir

    def publish(self, batch_id: str, lines: Sequence[str], *, source: str, mode: BatchMode = LIVE) -> Path:
        """Write the batch file, then send it, retrying until Redis accepts it."""
        raw_text = "\n".join(lines)
        path = write_raw_batch(self._raw_dir, batch_id, raw_text, mode=mode)
        self.send(batch_id, raw_text, source=source, produced_ms=self._clock_ms(), mode=mode)
        self.batches += 1
        self.lines += len(lines)
        return path

    def send(
        self, batch_id: str, raw_text: str, *, source: str, produced_ms: int, mode: BatchMode = LIVE
    ) -> None:
        """Enqueue a batch whose raw file is already written, retrying until Redis accepts it."""
        kwargs = RawBatch(batch_id, raw_text, source, produced_ms, mode=mode).task_kwargs()
        try:
            self._send(batch_id, kwargs)
        except KeyboardInterrupt:
            log.error(
                "batch %s is in %s but was not enqueued: `ecomrisk reconcile` sends it",
                batch_id,
                self._raw_dir,
            )
            raise

    def _send(self, batch_id: str, kwargs: dict[str, Any]) -> None:
        delays = backoff_delays(self._retry_max_s)
        while True:
            try:
                # Kombu's own publish retry is linear and cannot name the batch in its log,
                # so the producer retries here, for ever, with exponential backoff.
                self._app.send_task(INGEST_TASK, kwargs=kwargs, queue=self._queue, retry=False)
                return
            except BROKER_DOWN_ERRORS as exc:
                if refused_credentials(exc):
                    raise BrokerAuthError(
                        f"Redis refused the password in ECOMRISK_REDIS_URL ({exc}); batch {batch_id}"
                        f" is in {self._raw_dir}: fix the URL, then `ecomrisk reconcile` sends it"
                    ) from exc
                delay = next(delays)
                self.retries += 1
                log.warning("Redis unavailable, retrying batch %s in %.1fs (%s)", batch_id, delay, exc)
                self._sleep(delay)
