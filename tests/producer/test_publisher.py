"""The publisher: raw file first, then the queue; a Redis outage delays a batch, never loses it."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from cli.redis_server import free_port, start_redis
from config.settings import Settings
from contract.wire import INGEST_TASK, LIVE, BatchMode, broker_client
from producer.publisher import Publisher, backoff_delays, read_batch_mode, write_raw_batch
from tests.support import task_message_body, wait_until


def queued_messages(settings: Settings) -> list[dict[str, Any]]:
    """The task messages waiting in the Redis list kombu uses for the queue."""
    client = redis.Redis.from_url(settings.redis_url or "")
    return [json.loads(raw) for raw in client.lrange(settings.queue_name, 0, -1)]


def task_kwargs(message: dict[str, Any]) -> dict[str, Any]:
    """The kwargs of a Celery protocol-2 message body: [args, kwargs, embed]."""
    args, kwargs, _ = task_message_body(message)
    assert args == []
    return dict(kwargs)


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = backoff_delays(3.0)
    assert [next(delays) for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert next(backoff_delays(0.2)) == 0.2


def test_raw_batch_is_written_whole_and_refuses_unsafe_ids(tmp_path: Path) -> None:
    path = write_raw_batch(tmp_path / "raw", "gen-s1-000001", "a\nb")
    assert path.read_text() == "a\nb\n"
    write_raw_batch(tmp_path / "raw", "gen-s1-000001", "c")
    assert path.read_text() == "c\n"
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["gen-s1-000001.ndjson"]
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="filename-safe"):
            write_raw_batch(tmp_path / "raw", bad, "x")


def test_a_batch_that_is_not_live_keeps_its_mode_beside_its_raw_file(tmp_path: Path) -> None:
    raw_dir = tmp_path / "raw"
    mode = BatchMode(historical=True, history_end_ms=1_433_203_202_000, unpriced_purchases=True)
    history = write_raw_batch(raw_dir, "imp-1", "a", mode=mode)
    live = write_raw_batch(raw_dir, "gen-1", "b")
    assert sorted(p.name for p in raw_dir.iterdir()) == ["gen-1.ndjson", "imp-1.mode.json", "imp-1.ndjson"]
    assert (read_batch_mode(history), read_batch_mode(live)) == (mode, LIVE)


def test_the_raw_file_exists_before_the_message_is_queued(live_settings: Settings) -> None:
    app = broker_client(live_settings)
    raw_path = live_settings.raw_dir / "gen-t-000001.ndjson"
    original = app.send_task
    existed_at_send: list[bool] = []

    def spying_send_task(*args: Any, **kwargs: Any) -> Any:
        existed_at_send.append(raw_path.exists())
        assert queued_messages(live_settings) == []
        return original(*args, **kwargs)

    app.send_task = spying_send_task  # type: ignore[method-assign]
    lines = ['{"event_id":"e1"}', "broken {", '{"event_id":"e2"}']
    publisher = Publisher(app, live_settings, clock_ms=lambda: 1_700_000_000_123)
    assert publisher.publish("gen-t-000001", lines, source="test") == raw_path
    assert existed_at_send == [True]

    [message] = queued_messages(live_settings)
    assert message["headers"]["task"] == INGEST_TASK
    assert task_kwargs(message) == {
        "batch_id": "gen-t-000001",
        "raw_text": "\n".join(lines),
        "source": "test",
        "produced_ms": 1_700_000_000_123,
    }
    assert raw_path.read_text("utf-8") == "\n".join(lines) + "\n"
    assert (publisher.batches, publisher.lines, publisher.retries) == (1, 3, 0)


def test_publishing_while_redis_is_down_retries_until_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    server = start_redis(tmp_path / "redis", port=port, appendonly=False)
    settings = Settings(
        data_dir=tmp_path / "data",
        redis_url=server.url,
        queue_name="outage",
        publish_retry_max_s=0.5,
    )
    publisher = Publisher(broker_client(settings), settings)
    publisher.publish("gen-t-000001", ['{"n":1}'], source="test")  # a warm, pooled connection
    server.stop()

    caplog.set_level(logging.WARNING, logger="producer.publisher")
    worker = threading.Thread(
        target=publisher.publish,
        args=(
            "gen-t-000002",
            ['{"n":2}'],
        ),
        kwargs={"source": "test"},
    )
    try:
        worker.start()
        wait_until(lambda: publisher.retries >= 2, timeout_s=60, what="two failed attempts")
        assert (settings.raw_dir / "gen-t-000002.ndjson").exists()  # written before any attempt
        assert worker.is_alive()
        server = start_redis(tmp_path / "redis", port=port, appendonly=False)
        worker.join(timeout=60)
        assert not worker.is_alive()
        [message] = queued_messages(settings)  # the restarted Redis started empty
        assert task_kwargs(message)["batch_id"] == "gen-t-000002"
    finally:
        server.stop()
        worker.join(timeout=5)
    retries = [r.getMessage() for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert retries and all("retrying batch gen-t-000002 in " in m for m in retries)
    assert publisher.batches == 2
