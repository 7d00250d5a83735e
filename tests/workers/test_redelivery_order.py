"""Every batch of a run twice, the second time in reverse order, via real Redis and Celery; each backend."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
import redis
from sqlalchemy import Engine, func, select

from config.settings import Settings
from contract.wire import broker_client
from producer.delivery import Batch as RunBatch
from producer.delivery import Outcome, expected_counts
from producer.faults import LINE_FAULTS, FaultRates
from producer.generator import generate_batches, plan_run
from producer.publisher import Publisher
from producer.reconcile import account_raw_logs, count_event_lines, iter_raw_batches
from store.db import create_writer_engine, init_schema
from store.models import Batch, Event, QuarantinedLine
from store.summaries import ledger_totals
from tests.support import celery_worker, wait_until
from workers.reference import find_mismatches

pytestmark = pytest.mark.integration

RATES = FaultRates().with_rates(
    {f.value: 0.01 for f in LINE_FAULTS} | {"duplicate": 0.05, "out_of_order": 0.05}
)


def make_run(settings: Settings, *, seed: int) -> list[RunBatch]:
    config = plan_run(settings, count=3000, seed=seed, rates=RATES)
    return list(generate_batches(config, count=3000))


def drained(settings: Settings) -> bool:
    """Nothing waiting and nothing delivered but unacknowledged (acks come after the commit)."""
    client = redis.Redis.from_url(settings.redis_url or "")
    return client.llen(settings.queue_name) == 0 and client.hlen("unacked") == 0


def ledger_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(select(Batch.batch_id)))


def stored_ids(batches: list[RunBatch]) -> set[str]:
    """Event ids of the lines the generator expects to be stored."""
    return {
        orjson.loads(line.text)["event_id"]
        for b in batches
        for line in b.lines
        if line.outcome is Outcome.STORED
    }


def deliver(settings: Settings, engine: Engine, sends: list[tuple[str, RunBatch]], ledger_size: int) -> None:
    """Publish (raw log, then queue) every (batch id, batch); wait until all are acked and committed."""
    publisher = Publisher(broker_client(settings), settings)
    with celery_worker(settings, concurrency=2, name="redeliver"):
        for batch_id, batch in sends:
            publisher.publish(batch_id, batch.texts, source="redelivery")
        wait_until(lambda: len(ledger_ids(engine)) == ledger_size, timeout_s=120, what="every batch")
        wait_until(lambda: drained(settings), timeout_s=60, what="the queue to drain")


def held_reasons(engine: Engine) -> Counter[str]:
    query = select(QuarantinedLine.reason, func.count()).group_by(QuarantinedLine.reason)
    with engine.connect() as conn:
        return Counter({reason: int(n) for reason, n in conn.execute(query)})


def assert_raw_logs_balance(settings: Settings, engine: Engine) -> None:
    totals = ledger_totals(engine)
    raw_lines = sum(count_event_lines(path) for path in iter_raw_batches(settings.raw_dir))
    assert totals.balanced
    assert raw_lines == totals.received == totals.stored_new + totals.duplicates + totals.quarantined
    assert account_raw_logs(settings.raw_dir, engine).missing == ()


@pytest.fixture()
def run_settings(live_db_settings: Settings) -> Settings:
    settings = live_db_settings.model_copy(update={"batch_size": 100})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def test_same_batches_again_in_reverse_order_change_nothing(run_settings: Settings) -> None:
    settings = run_settings
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    batches = make_run(settings, seed=11)
    expected = expected_counts(batches)
    assert expected[Outcome.DUPLICATE] > 0 and sum(expected.values()) > expected[Outcome.STORED]
    sends = [(b.batch_id, b) for b in batches]

    deliver(settings, engine, sends + sends[::-1], ledger_size=len(batches))

    ids = ledger_ids(engine)
    assert sorted(ids) == sorted(b.batch_id for b in batches)
    with engine.connect() as conn:
        events = conn.scalar(select(func.count()).select_from(Event))
        distinct = conn.scalar(select(func.count(func.distinct(Event.event_id))))
        event_ids = set(conn.scalars(select(Event.event_id)))
    assert events == distinct == expected[Outcome.STORED]
    assert event_ids == stored_ids(batches)
    totals = ledger_totals(engine)
    assert (totals.stored_new, totals.duplicates) == (expected[Outcome.STORED], expected[Outcome.DUPLICATE])
    assert held_reasons(engine) == Counter({k: n for k, n in expected.items() if k not in set(Outcome)})
    assert_raw_logs_balance(settings, engine)
    assert find_mismatches(engine, settings) == []


def test_a_reimport_under_new_batch_ids_counts_duplicates(run_settings: Settings) -> None:
    settings = run_settings
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    batches = make_run(settings, seed=12)
    expected = expected_counts(batches)
    reasons = Counter({k: n for k, n in expected.items() if k not in set(Outcome)})
    sends = [(b.batch_id, b) for b in batches]
    again = [(f"{b.batch_id}-again", b) for b in reversed(batches)]

    deliver(settings, engine, sends + again, ledger_size=2 * len(batches))

    assert len(set(ledger_ids(engine))) == 2 * len(batches)
    with engine.connect() as conn:
        events = conn.scalar(select(func.count()).select_from(Event))
        event_ids = set(conn.scalars(select(Event.event_id)))
    assert events == expected[Outcome.STORED] and event_ids == stored_ids(batches)
    totals = ledger_totals(engine)
    # Every line of the second copy that can be stored is now a duplicate; bad lines are bad again.
    assert totals.stored_new == expected[Outcome.STORED]
    assert totals.duplicates == 2 * expected[Outcome.DUPLICATE] + expected[Outcome.STORED]
    assert held_reasons(engine) == reasons + reasons
    assert_raw_logs_balance(settings, engine)
    assert find_mismatches(engine, settings) == []
