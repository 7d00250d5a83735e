"""Redis and Celery probes: real Redis, a dead port, and the non-blocking cache."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from cli.redis_server import free_port
from config.settings import Settings
from dash_app import probes
from tests.support import wait_until


def test_queue_depth_counts_every_priority_list(redis_url: str) -> None:
    client = probes.redis_client(redis_url)
    raw = redis.Redis.from_url(redis_url)
    raw.rpush("ingest", "a", "b")
    raw.rpush("ingest\x06\x169", "c")
    raw.rpush("other", "x")
    assert probes.read_queue_depth(
        client=client, redis_url=redis_url, queue_name="ingest"
    ) == probes.QueueDepth(depth=3)


def test_queue_depth_with_redis_down_says_where_without_the_password() -> None:
    port = free_port()
    url = f"redis://:secret@127.0.0.1:{port}/0"
    started = time.monotonic()
    depth = probes.read_queue_depth(client=probes.redis_client(url), redis_url=url, queue_name="q")
    assert time.monotonic() - started < 2.0
    assert depth.depth is None and depth.problem is not None
    assert depth.problem.startswith(f"Redis unreachable at redis://127.0.0.1:{port}/0")
    assert "secret" not in depth.problem


def test_queue_depth_without_redis_configured() -> None:
    depth = probes.read_queue_depth(client=None, redis_url=None, queue_name="q")
    assert depth.problem is not None and "ECOMRISK_REDIS_URL" in depth.problem


class FakeInspect:
    def __init__(self, replies: Any) -> None:
        self.replies = replies

    def ping(self) -> Any:
        if isinstance(self.replies, Exception):
            raise self.replies
        return self.replies


class FakeCelery:
    def __init__(self, replies: Any) -> None:
        self.control = self
        self.replies = replies
        self.timeouts: list[float] = []

    def inspect(self, timeout: float) -> FakeInspect:
        self.timeouts.append(timeout)
        return FakeInspect(self.replies)


@pytest.mark.parametrize(
    ("replies", "expected"),
    [
        ({"w2@h": {"ok": "pong"}, "w1@h": {"ok": "pong"}}, probes.WorkerStatus(workers=("w1@h", "w2@h"))),
        (None, probes.WorkerStatus()),
        (OSError("boom"), probes.WorkerStatus(problem="Cannot ping workers (OSError).")),
    ],
)
def test_ping_workers(replies: Any, expected: probes.WorkerStatus) -> None:
    app = FakeCelery(replies)
    assert probes.ping_workers(celery_app=app, timeout_s=0.5) == expected
    assert app.timeouts == [0.5]


def test_refreshing_never_blocks_and_computes_once_at_a_time() -> None:
    release = threading.Event()
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        release.wait(5)
        return len(calls)

    value = probes.Refreshing(slow, ttl_s=0.0, initial=0)
    started = time.monotonic()
    assert [value.get() for _ in range(5)] == [0] * 5  # stale, but answered at once
    assert time.monotonic() - started < 0.5
    assert len(calls) == 1  # one background refresh in flight, not five
    release.set()
    assert wait_until(lambda: value.get() == 1 or None, timeout_s=5) is True


def test_refreshing_keeps_a_fresh_value() -> None:
    calls: list[int] = []
    value = probes.Refreshing(lambda: calls.append(1) or len(calls), ttl_s=60.0, initial=0)
    assert value.refresh() == 1
    assert [value.get() for _ in range(3)] == [1, 1, 1]
    time.sleep(0.05)
    assert calls == [1]


def test_pipeline_probe_with_redis_down(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    probe = probes.PipelineProbe(settings)
    assert probe.workers().checked is False  # the first answer is immediate
    status = wait_until(lambda: probe.workers() if probe.workers().checked else None, timeout_s=10)
    assert status.problem is not None and status.problem.startswith("Redis unreachable at")
    depth = wait_until(lambda: probe.queue_depth() if probe.queue_depth().checked else None, timeout_s=10)
    assert depth.problem is not None and depth.problem.startswith("Redis unreachable at")


def test_pipeline_probe_pings_through_real_redis(tmp_path: Any, redis_url: str) -> None:
    settings = Settings(data_dir=tmp_path, redis_url=redis_url, queue_name="probe-test")
    redis.Redis.from_url(redis_url).rpush("probe-test", "m")
    probe = probes.PipelineProbe(settings)
    depth = wait_until(lambda: probe.queue_depth() if probe.queue_depth().checked else None, timeout_s=10)
    assert depth == probes.QueueDepth(depth=1)
    status = wait_until(lambda: probe.workers() if probe.workers().checked else None, timeout_s=15)
    assert status == probes.WorkerStatus(workers=())  # no worker runs in this test
