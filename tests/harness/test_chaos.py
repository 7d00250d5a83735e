"""The chaos run's rule that its kills cut work in flight, and how it counts that work."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import Engine

from config.settings import Settings
from contract.wire import RawBatch, broker_client
from harness.chaos import (
    KillRecord,
    batches_in_flight,
    chaos_batch_size,
    delivered_batch_ids,
    describe_kills,
    faults_hit_work,
)
from producer.publisher import Publisher
from store.db import create_writer_engine, init_schema
from workers.ingest import ingest_batch


def kills(*cuts: bool) -> list[KillRecord]:
    """Made-up kills: each cut a batch in flight (its victim was writing) or struck between batches."""
    return [
        KillRecord(at_s=3.0 * n, main=n % 2 == 1, in_writer=cut, in_flight=2) for n, cut in enumerate(cuts)
    ]


@pytest.mark.parametrize(
    ("cuts", "passes"),
    [
        ((True,), True),
        ((False,), False),
        ((True, False, False), True),  # exactly one in three
        ((False, False, True, False, False, False), False),  # one in six
        ((False, True, False, False, True, False), True),  # two in six
        ((True, False, False, False), False),  # one in four
        ((), False),  # no kill proves nothing
        ((False,) * 25, False),  # 25 kills, all between batches: the run of issue 16
    ],
)
def test_a_run_passes_only_if_one_kill_in_three_cut_a_batch_in_flight(
    cuts: tuple[bool, ...], passes: bool
) -> None:
    assert faults_hit_work(kills(*cuts)) is passes


def test_a_kill_counts_as_cut_only_when_its_victim_held_a_write_transaction() -> None:
    between = KillRecord(at_s=1.0, main=True, in_writer=False, in_flight=3)  # work in flight, elsewhere
    assert not between.cut_in_flight and not faults_hit_work([between])
    text = describe_kills([*kills(True, False), KillRecord(9.0, False, False, None)])
    assert text.startswith("1 of 3 kills cut a batch in flight")
    assert "min 2, median 2, max 2" in text  # a kill while Redis was away does not count in the spread


@pytest.mark.parametrize(("rate", "size"), [(10_000, 2_500), (200, 50), (1, 1), (1_000_000, 10_000)])
def test_a_batch_holds_a_quarter_second_of_load_up_to_the_batch_size(rate: float, size: int) -> None:
    assert chaos_batch_size(Settings(), rate) == size


def test_in_flight_is_delivered_and_not_yet_in_the_ledger(live_settings: Settings) -> None:
    client: redis.Redis[bytes] = redis.Redis.from_url(live_settings.redis_url or "")
    engine: Engine = create_writer_engine(live_settings.resolved_database_url)
    init_schema(engine)
    assert delivered_batch_ids(client) == [] and batches_in_flight(client, engine) == 0
    # Messages as a worker leaves them in kombu's unacked hash: one committed since, one not.
    publisher = Publisher(broker_client(live_settings), live_settings)
    for batch_id in ("done", "cut"):
        publisher.publish(batch_id, ['{"event_id": "x"}'], source="t")
        packed = client.rpop(live_settings.queue_name)
        assert packed is not None
        client.hset(
            "unacked", batch_id, b"[" + packed + b', "", "' + live_settings.queue_name.encode() + b'"]'
        )
    ingest_batch(engine, RawBatch("done", '{"event_id": "x"}', "t"), settings=live_settings)
    assert sorted(delivered_batch_ids(client)) == ["cut", "done"]
    assert batches_in_flight(client, engine) == 1
    engine.dispose()
