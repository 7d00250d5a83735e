"""A worker that takes nothing while batches wait stops with exit code 75; started again, it takes them."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from config.settings import Settings
from contract.wire import broker_client, now_ms
from harness.fleet import WorkerFleet
from producer.publisher import Publisher
from store.db import create_reader_engine, create_writer_engine, init_schema
from store.models import Batch
from tests.support import wait_until
from workers.watchdog import EXIT_STALLED, StallClock

LINE = '{"event_id": "s1", "user_id": "u", "action": "view", "timestamp": "2026-11-01T00:00:00Z"}'
STALL_S = 3.0

# --- the clock, as pure logic ---------------------------------------------------------------------


def test_the_clock_calls_a_stall_only_after_stall_s_of_waiting_tasks_with_room_and_none_taken() -> None:
    clock = StallClock(stall_s=10)
    assert not clock.observe(0, waiting=3, has_room=True, last_received=-5)  # the clock starts
    assert not clock.observe(9.9, waiting=3, has_room=True, last_received=-5)
    assert clock.observe(10, waiting=3, has_room=True, last_received=-5)


@pytest.mark.parametrize(
    ("waiting", "has_room"),
    [(0, True), (None, True), (3, False)],
    ids=["nothing-waiting", "redis-unreachable", "pool-full"],
)
def test_no_work_no_room_or_no_view_of_the_queue_is_never_a_stall(
    waiting: int | None, has_room: bool
) -> None:
    clock = StallClock(stall_s=10)
    clock.observe(0, waiting=3, has_room=True, last_received=-5)
    assert not clock.observe(11, waiting=waiting, has_room=has_room, last_received=-5)  # resets the clock
    assert not clock.observe(12, waiting=3, has_room=True, last_received=-5)  # starts it again
    assert not clock.observe(21.9, waiting=3, has_room=True, last_received=-5)
    assert clock.observe(22, waiting=3, has_room=True, last_received=-5)


def test_a_task_taken_while_the_clock_runs_starts_it_again() -> None:
    clock = StallClock(stall_s=10)
    clock.observe(0, waiting=3, has_room=True, last_received=-5)
    assert not clock.observe(12, waiting=3, has_room=True, last_received=7)
    assert not clock.observe(21, waiting=3, has_room=True, last_received=7)
    assert clock.observe(22, waiting=3, has_room=True, last_received=7)


# --- a real worker that stops consuming ----------------------------------------------------------


@pytest.mark.integration
def test_a_worker_that_stops_consuming_exits_75_and_its_restart_takes_the_waiting_batch(
    tmp_path: Path, live_settings: Settings
) -> None:
    settings = live_settings.model_copy(update={"worker_stall_s": STALL_S})
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    fleet = WorkerFleet(settings, log_dir=tmp_path / "logs", concurrency=1)
    client = broker_client(settings)
    name = f"stall@{socket.gethostname()}"
    try:
        fleet.start("stall")
        fleet.wait_ready()
        wait_until(lambda: client.control.ping(destination=[name], timeout=1.0), timeout_s=60, what="a ping")
        time.sleep(2 * STALL_S)
        assert fleet.mains["stall"].poll() is None, "an idle worker with an empty queue was stopped"

        # What kombu's reconnect bug leaves behind, made on purpose: a live worker that consumes nothing.
        client.control.cancel_consumer(settings.queue_name, destination=[name], reply=True, timeout=5.0)
        Publisher(client, settings).send("waiting-1", LINE, source="test", produced_ms=now_ms())
        exit_code = fleet.mains["stall"].wait(timeout=60)
        assert exit_code == EXIT_STALLED
        assert "took no task for" in fleet.log_text()

        assert fleet.revive() == [("stall", EXIT_STALLED)]
        reader = create_reader_engine(settings.resolved_database_url)

        def stored() -> list[str]:
            with reader.connect() as conn:
                return list(conn.scalars(select(Batch.batch_id)))

        assert wait_until(stored, timeout_s=60, what="the waiting batch in the ledger") == ["waiting-1"]
    finally:
        fleet.stop(timeout_s=15)
