"""Ledger, quarantine and alert summaries over SQLite and PostgreSQL, filled by the real ingest path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from config.settings import Settings
from contract.wire import RawBatch
from store.db import create_writer_engine, init_schema
from store.summaries import (
    BatchOutcomes,
    batch_outcomes,
    has_schema,
    latest_alerts,
    latest_commit_ms,
    ledger_totals,
    quarantine_by_reason,
)
from workers.ingest import ingest_batch


def test_summaries_follow_the_ledger(db_settings: Settings) -> None:
    engine = create_writer_engine(db_settings.resolved_database_url)
    assert not has_schema(engine)
    init_schema(engine)
    assert ledger_totals(engine).batches == 0
    start = datetime.now(UTC) - timedelta(hours=1)
    bot = [
        orjson.dumps(
            {
                "event_id": f"b{i}",
                "user_id": "bot",
                "action": "view",
                "timestamp": (start + timedelta(seconds=3 * i)).isoformat(),
            }
        ).decode()
        for i in range(30)
    ]
    ingest_batch(engine, RawBatch("one", "\n".join([*bot, "nope", bot[0]]), "t"), settings=db_settings)
    ingest_batch(engine, RawBatch("one", "ignored: already committed", "t"), settings=db_settings)
    totals = ledger_totals(engine)
    assert (totals.batches, totals.received, totals.stored_new, totals.duplicates, totals.quarantined) == (
        1,
        32,
        30,
        1,
        1,
    )
    assert totals.balanced
    assert quarantine_by_reason(engine) == {"not_json": 1}
    alerts = latest_alerts(engine)
    assert [a["user_id"] for a in alerts] == ["bot"]
    assert alerts[0]["risk_kind"] == "automation"
    assert alerts[0]["reasons"][0]["name"] == "regular_timing"
    engine.dispose()


def test_an_alert_is_written_once_per_crossing_not_per_batch(db_settings: Settings) -> None:
    engine = create_writer_engine(db_settings.resolved_database_url)
    init_schema(engine)
    start = datetime.now(UTC) - timedelta(hours=2)

    def bot_batch(first: int, n: int, step_s: float = 3.0) -> str:
        return "\n".join(
            orjson.dumps(
                {
                    "event_id": f"b{i}",
                    "user_id": "bot",
                    "action": "view",
                    "timestamp": (start + timedelta(seconds=step_s * i)).isoformat(),
                }
            ).decode()
            for i in range(first, first + n)
        )

    for k in range(5):
        ingest_batch(engine, RawBatch(f"k{k}", bot_batch(20 * k, 20), "t"), settings=db_settings)
    assert len(latest_alerts(engine)) == 1
    engine.dispose()


def test_batch_outcomes_and_the_latest_commit(db_settings: Settings) -> None:
    engine = create_writer_engine(db_settings.resolved_database_url)
    init_schema(engine)
    assert latest_commit_ms(engine) is None
    assert batch_outcomes(engine, batch_ids=["a"]) == BatchOutcomes()
    when = datetime.now(UTC) - timedelta(minutes=5)
    good = orjson.dumps({"event_id": "e1", "user_id": "u", "action": "view", "timestamp": when.isoformat()})
    old = orjson.dumps(
        {"event_id": "e2", "user_id": "u", "action": "view", "timestamp": "1999-01-01T00:00:00Z"}
    )
    ingest_batch(engine, RawBatch("a", f"{good.decode()}\nnope", "t"), settings=db_settings)
    ingest_batch(engine, RawBatch("b", f"{old.decode()}\nnah\n", "t"), settings=db_settings)
    ingest_batch(engine, RawBatch("c", "not mine", "t"), settings=db_settings)
    outcomes = batch_outcomes(engine, batch_ids=["a", "b", "missing"])
    assert (outcomes.committed, outcomes.received, outcomes.quarantined) == (2, 4, 3)
    assert outcomes.reasons == {"not_json": 2, "timestamp_too_old": 1}
    assert set(outcomes.examples) == set(outcomes.reasons)
    assert "1999-01-01" in outcomes.examples["timestamp_too_old"]
    assert batch_outcomes(engine, batch_ids=[]) == BatchOutcomes()
    latest = latest_commit_ms(engine)
    assert latest is not None and latest == ledger_totals(engine).last_committed_ms
    engine.dispose()
