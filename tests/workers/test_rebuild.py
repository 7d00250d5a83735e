"""`ecomrisk rebuild` brings a store to what ingesting its events under the current settings gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import Engine, func, select

from config.settings import Settings
from contract.wire import RawBatch
from store.db import open_writer
from store.models import ActivityHours, ActivityRollup, Event
from workers.ingest import ingest_batch
from workers.rebuild import rebuild_store
from workers.reference import find_mismatches

START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)


def lines(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    moment, out = START, []
    for i in range(count):
        moment += timedelta(milliseconds=rng.choice([300, 900, 1_500, 2_500, 40_000, 3_000_000]))
        action = rng.choice(["view", "view", "add_to_cart", "purchase"])
        zone = rng.choice([UTC, datetime.now().astimezone().tzinfo])
        event = {
            "event_id": f"e{i:05d}",
            "user_id": f"u{rng.randrange(6)}",
            "action": action,
            "timestamp": moment.astimezone(zone).isoformat(timespec="milliseconds"),
            "amount": rng.choice([5.0, 20.0, 80.0]) if action == "purchase" else None,
        }
        out.append(orjson.dumps(event).decode())
    return out


def store(settings: Settings, name: str) -> Engine:
    return open_writer(settings.model_copy(update={"database_url": f"sqlite:///{settings.data_dir / name}"}))


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return (
            int(conn.scalar(select(func.count()).select_from(Event)) or 0),
            int(conn.scalar(select(func.sum(ActivityRollup.rapid))) or 0),
            int(conn.scalar(select(func.sum(ActivityHours.events))) or 0),
        )


def test_a_rebuild_under_new_rules_equals_ingesting_under_them(settings: Settings, tmp_path: Path) -> None:
    settings.data_dir.mkdir(parents=True)
    events = lines(3, 600)
    old = settings
    new = settings.model_copy(
        update={"rapid_gap_s": 1.0, "session_gap_s": 600.0, "risk_bucket_s": 3600.0, "risk_window_s": 7200.0,
                "marker_burst_threshold": 3, "band_elevated": 20}
    )  # fmt: skip
    engine = store(old, "rebuilt.db")
    for n in range(0, len(events), 100):
        ingest_batch(engine, RawBatch(f"b{n}", "\n".join(events[n : n + 100]), "t"), settings=old)
    assert find_mismatches(engine, old) == []
    assert find_mismatches(engine, new) != []  # the new rules disagree with what is stored

    report = rebuild_store(engine, settings=new, users_per_chunk=2)
    assert (report.users, report.events) == (6, 600)
    assert find_mismatches(engine, new) == []
    fresh = store(new, "fresh.db")
    ingest_batch(fresh, RawBatch("all", "\n".join(events), "t"), settings=new)
    assert counts(engine) == counts(fresh)  # the rollups follow the new flags too
    engine.dispose()
    fresh.dispose()
