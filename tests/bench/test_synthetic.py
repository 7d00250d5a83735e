"""The dashboard benchmark's synthetic store is what the pipeline stores for the same events."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, select

from bench.synthetic import seed_synthetic
from config.settings import Settings
from contract.wire import RawBatch
from dash_app.queries import MINUTE_MS
from store.db import create_reader_engine, create_writer_engine, init_schema
from store.models import ActivityRollup, Alert, Event, RiskBucket, UserRisk
from workers.ingest import ingest_batch
from workers.reference import find_mismatches

# Filled in by the pipeline as it stores, not by the rules.
BOOKKEEPING = {"updated_ms"}


def stricter(tmp_path: Path) -> Settings:
    """Other rules than the defaults: the seeding must read them, not carry its own."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'rules.db'}",
        rapid_gap_s=1.0,
        session_gap_s=600.0,
        night_start_hour=20,
        night_end_hour=24,
        risk_bucket_s=1800.0,
        risk_window_s=3600.0,
        band_elevated=20,
        band_high=45,
    )


def as_wire(engine: Engine) -> list[str]:
    """Every stored event as the NDJSON line a producer would have sent."""
    with engine.connect() as conn:
        own = (Event.event_id, Event.user_id, Event.action, Event.ts_ms, Event.amount_cents, Event.category)
        rows = conn.execute(select(*own, Event.user_agent).order_by(Event.event_id)).all()
    return [
        orjson.dumps(
            {
                "event_id": event_id,
                "user_id": user_id,
                "action": action,
                "timestamp": datetime.fromtimestamp(ts / 1000, UTC).isoformat(timespec="milliseconds"),
                "amount": None if cents is None else cents / 100,
                "category": category,
                "user_agent": agent,
            }
        ).decode()
        for event_id, user_id, action, ts, cents, category, agent in rows
    ]


def table(
    engine: Engine, model: type[UserRisk] | type[RiskBucket]
) -> dict[tuple[object, ...], dict[str, object]]:
    keys = [c.name for c in model.__table__.primary_key.columns]
    with engine.connect() as conn:
        rows = conn.execute(select(model.__table__)).mappings().all()
    return {tuple(r[k] for k in keys): {k: v for k, v in r.items() if k not in BOOKKEEPING} for r in rows}


@pytest.mark.parametrize("rules", ["default", "stricter"])
def test_a_store_seeded_in_full_is_what_the_pipeline_stores(
    rules: str, settings: Settings, tmp_path: Path
) -> None:
    chosen = settings if rules == "default" else stricter(tmp_path)
    url = chosen.resolved_database_url
    seed_synthetic(url, events=6_000, users=150, minutes=180, detail_users=150, seed=4, settings=chosen)
    seeded = create_reader_engine(url)
    assert find_mismatches(seeded, chosen) == []

    piped_url = f"sqlite:///{tmp_path / 'piped.db'}"
    piped = create_writer_engine(piped_url)
    init_schema(piped)
    lines = as_wire(seeded)
    for n in range(0, len(lines), 1_000):
        ingest_batch(piped, RawBatch(f"p{n}", "\n".join(lines[n : n + 1_000]), "t"), settings=chosen)
    assert table(seeded, UserRisk) == table(piped, UserRisk)
    assert table(seeded, RiskBucket) == table(piped, RiskBucket)

    with seeded.connect() as conn:
        users = conn.execute(select(UserRisk.__table__)).mappings().all()
        alerts = conn.execute(select(Alert.__table__)).mappings().all()
        events = conn.execute(select(Event.ts_ms, Event.action, Event.category, Event.is_rapid)).all()
        rollup = conn.execute(select(ActivityRollup.__table__)).mappings().all()
    high = {u["user_id"]: u for u in users if u["band"] == "high"}
    assert high and {a["user_id"] for a in alerts} == set(high)
    for alert in alerts:
        user = high[alert["user_id"]]
        assert (alert["reasons"], alert["score"], alert["risk_kind"]) == (
            user["markers"],
            user["score"],
            user["risk_kind"],
        )
    cells: Counter[tuple[int, str, str]] = Counter()
    rapid: Counter[tuple[int, str, str]] = Counter()
    for ts, action, category, is_rapid in events:
        key = (ts - ts % MINUTE_MS, action, category or "")
        cells[key] += 1
        rapid[key] += is_rapid
    stored = {(r["minute_ms"], r["action"], r["category"]): (r["events"], r["rapid"]) for r in rollup}
    assert stored == {key: (n, rapid[key]) for key, n in cells.items()}
    seeded.dispose()
    piped.dispose()
