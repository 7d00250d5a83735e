"""Line by line through the real pipeline: every produced line is stored once or quarantined as expected."""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest
from sqlalchemy import select

from config.settings import Settings
from contract.wire import broker_client
from producer.delivery import Outcome
from producer.faults import LINE_FAULTS, FaultRates
from producer.generator import generate_batches, plan_run
from producer.publisher import Publisher
from store.db import create_writer_engine, init_schema
from store.models import Batch, Event, QuarantinedLine
from store.summaries import ledger_totals
from tests.support import celery_worker, wait_until
from workers.reference import find_mismatches

pytestmark = pytest.mark.integration


def test_every_line_ends_where_the_producer_expects(live_settings: Settings) -> None:
    settings = live_settings.model_copy(update={"batch_size": 250})
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    rates = FaultRates().with_rates({f.value: 0.01 for f in LINE_FAULTS})
    rates = rates.with_rates({"duplicate": 0.02, "out_of_order": 0.03})
    batches = list(generate_batches(plan_run(settings, count=3000, seed=23, rates=rates), count=3000))
    publisher = Publisher(broker_client(settings), settings)
    for batch in batches:
        publisher.publish(batch.batch_id, batch.texts, source="lines-test")

    with celery_worker(settings, concurrency=2, name="lines"):
        wait_until(lambda: ledger_totals(engine).batches == len(batches), timeout_s=180, what="the ledger")

    with engine.connect() as conn:
        stored_at = {
            (b, n): e for b, n, e in conn.execute(select(Event.batch_id, Event.line_no, Event.event_id))
        }
        held_at = {
            (b, n): r
            for b, n, r in conn.execute(
                select(QuarantinedLine.batch_id, QuarantinedLine.line_no, QuarantinedLine.reason)
            )
        }
        ledger = {
            b: (r, s, d, q)
            for b, r, s, d, q in conn.execute(
                select(Batch.batch_id, Batch.received, Batch.stored_new, Batch.duplicates, Batch.quarantined)
            )
        }
    copies: dict[str, list[tuple[str, int]]] = defaultdict(list)  # valid event id -> its lines
    for batch in batches:
        for line_no, line in enumerate(batch.lines, start=1):
            where = (batch.batch_id, line_no)
            if line.outcome is Outcome.QUARANTINED:
                assert held_at.get(where) == line.expected, (where, line.fault, line.text[:120])
                assert where not in stored_at
            else:
                copies[orjson.loads(line.text)["event_id"]].append(where)
        received, stored, dupes, quarantined = ledger[batch.batch_id]
        assert received == stored + dupes + quarantined == len(batch.lines)
    # Batches run in parallel, so any one copy of a duplicated event may be the stored one.
    for event_id, places in copies.items():
        assert [stored_at.get(w) for w in places].count(event_id) == 1, (event_id, places)
        assert not any(w in held_at for w in places)
    assert set(stored_at.values()) == set(copies)
    produced = sum(len(b.lines) for b in batches)
    assert len(stored_at) + len(held_at) + sum(v[2] for v in ledger.values()) == produced
    assert find_mismatches(engine, settings) == []
