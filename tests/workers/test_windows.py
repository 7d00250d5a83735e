"""Current risk over a trailing window of event time, and the lifetime peak beside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
from sqlalchemy import Engine, func, select

from config.settings import Settings
from contract.wire import RawBatch
from store.db import create_writer_engine, init_schema
from store.models import Alert, UserRisk
from workers.evaluation import JudgedAt, evaluate, load_predictions
from workers.ingest import ingest_batch
from workers.reference import find_mismatches
from workers.risk import Band, Peak, RiskKind, RiskRules, assess
from workers.sequence import BUCKET_FIELDS
from workers.windows import StoredBucket, StoredUser, rescore_user

START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=20)
HOUR_MS = 3_600_000


def line(event_id: str, moment: datetime, *, user: str = "u1", agent: str | None = None) -> str:
    return orjson.dumps(
        {
            "event_id": event_id,
            "user_id": user,
            "action": "view",
            "timestamp": moment.isoformat(timespec="milliseconds"),
            "user_agent": agent,
        }
    ).decode()


def headless_episode(prefix: str, at: datetime, count: int = 30) -> list[str]:
    """A crawl by a headless browser: automation evidence that puts a user in the high band."""
    return [
        line(f"{prefix}{i:03d}", at + timedelta(seconds=40 * i), agent="HeadlessChrome/120")
        for i in range(count)
    ]


def calm_days(prefix: str, first: datetime, days: int) -> list[str]:
    """A person's browsing: a short visit each day."""
    return [
        line(
            f"{prefix}{d:02d}{i}", first + timedelta(days=d, seconds=45 * i), agent="Mozilla/5.0 Firefox/121"
        )
        for d in range(days)
        for i in range(5)
    ]


def store(tmp_path: Path) -> tuple[Settings, Engine]:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'w.db'}")
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    return settings, engine


def risk_of(engine: Engine, user: str = "u1") -> UserRisk:
    with engine.connect() as conn:
        row = conn.execute(select(UserRisk).where(UserRisk.user_id == user)).first()
    assert row is not None
    return row[0] if isinstance(row[0], UserRisk) else row  # type: ignore[return-value]


def alerts(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Alert)) or 0)


def test_an_episode_that_is_over_falls_back_and_keeps_its_peak(tmp_path: Path) -> None:
    settings, engine = store(tmp_path)
    ingest_batch(engine, RawBatch("episode", "\n".join(headless_episode("h", START)), "t"), settings=settings)
    during = risk_of(engine)
    assert (during.band, during.risk_kind, during.peak_band) == ("high", "automation", "high")
    assert alerts(engine) == 1
    ingest_batch(
        engine,
        RawBatch("calm", "\n".join(calm_days("c", START + timedelta(days=1), 6)), "t"),
        settings=settings,
    )
    after = risk_of(engine)
    assert after.band == "low" and after.score < during.score
    assert (after.peak_score, after.peak_band, after.peak_kind) == (during.score, "high", "automation")
    start_ms, bucket_ms = int(START.timestamp() * 1000), round(settings.risk_bucket_s * 1000)
    assert after.peak_ms == start_ms - start_ms % bucket_ms  # the bucket the peak window ended with
    assert after.events == 30 + 30  # lifetime counts keep everything
    assert find_mismatches(engine, settings) == []


def test_evaluation_judges_a_user_at_their_peak_with_the_markers_of_that_window(tmp_path: Path) -> None:
    settings, engine = store(tmp_path)
    ingest_batch(engine, RawBatch("episode", "\n".join(headless_episode("h", START)), "t"), settings=settings)
    during = load_predictions(engine, settings, at=JudgedAt.CURRENT).set_index("user_id").loc["u1"]
    ingest_batch(
        engine,
        RawBatch("calm", "\n".join(calm_days("c", START + timedelta(days=1), 6)), "t"),
        settings=settings,
    )
    now = load_predictions(engine, settings, at=JudgedAt.CURRENT).set_index("user_id").loc["u1"]
    peak = load_predictions(engine, settings).set_index("user_id").loc["u1"]
    assert (now["band"], now["score"]) == ("low", risk_of(engine).score)
    assert "automation_agent" not in now["markers"]  # the crawl is out of the current window
    assert (peak["band"], peak["risk_kind"], peak["score"]) == ("high", "automation", during["score"])
    assert peak["markers"] == during["markers"]  # rescored from the buckets of the peak window
    truth = pd.DataFrame([("u1", "bot", "crawler")], columns=["user_id", "persona", "sub_type"])
    assert evaluate(truth, load_predictions(engine, settings)).recall == 1.0
    assert evaluate(truth, load_predictions(engine, settings, at=JudgedAt.CURRENT)).recall == 0.0


def test_a_new_episode_after_a_long_calm_history_is_seen_and_alerts_again(tmp_path: Path) -> None:
    settings, engine = store(tmp_path)
    ingest_batch(engine, RawBatch("first", "\n".join(headless_episode("h", START)), "t"), settings=settings)
    ingest_batch(
        engine,
        RawBatch("calm", "\n".join(calm_days("c", START + timedelta(days=1), 14)), "t"),
        settings=settings,
    )
    assert risk_of(engine).band == "low"
    relapse = headless_episode("r", START + timedelta(days=16))
    ingest_batch(engine, RawBatch("relapse", "\n".join(relapse), "t"), settings=settings)
    assert risk_of(engine).band == "high"  # a long normal history does not dilute a new episode
    assert alerts(engine) == 2  # one per crossing into the high band
    assert find_mismatches(engine, settings) == []


def test_late_events_of_an_old_window_change_the_peak_not_the_current_score(tmp_path: Path) -> None:
    settings, engine = store(tmp_path)
    ingest_batch(engine, RawBatch("calm", "\n".join(calm_days("c", START, 10)), "t"), settings=settings)
    current = risk_of(engine)
    late = headless_episode("h", START + timedelta(days=1, hours=3))
    ingest_batch(engine, RawBatch("late", "\n".join(late), "t"), settings=settings)
    after = risk_of(engine)
    assert (after.score, after.band) == (current.score, current.band)
    assert after.peak_score > current.peak_score and after.peak_band == "high"
    assert alerts(engine) == 0  # the current window never entered the high band
    assert find_mismatches(engine, settings) == []


def _bucket(**fields: int) -> tuple[int, ...]:
    return tuple(fields.get(name, 0) for name in BUCKET_FIELDS)


def test_rescoring_carries_the_best_closed_window_forward_without_reading_it() -> None:
    rules = RiskRules.from_settings(Settings())
    bucket_ms = round(Settings().risk_bucket_s * 1000)
    calm = _bucket(events=5, sessions=1)
    delta = {10 * bucket_ms: list(calm)}
    closed = Peak(90, Band.HIGH, RiskKind.AUTOMATION, 2 * bucket_ms)

    def must_not_read(_before_ms: int) -> Peak | None:
        raise AssertionError("an in-order batch needs no stored window before its own")

    result = rescore_user(
        {9 * bucket_ms: StoredBucket(calm, 0, "none")},
        delta,
        StoredUser(9 * bucket_ms, 0, "none", closed),
        latest_bucket_ms=10 * bucket_ms,
        bucket_ms=bucket_ms,
        rules=rules,
        best_before=must_not_read,
    )
    assert result.current.features.events == 10  # both calm buckets are in the window
    assert result.current == assess([a + b for a, b in zip(calm, calm, strict=True)], rules)
    assert result.closed == closed and result.peak == closed
    assert [key for key, *_ in result.buckets] == [10 * bucket_ms]
