"""The benchmark helpers: consistent synthetic aggregates, and p95 timings per callback."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from bench.dashboard import measure_refresh
from bench.synthetic import seed_synthetic
from config.settings import Settings
from dash_app import queries as q
from dash_app.callbacks import REGIONS
from store.models import ActivityRollup, Alert, Batch, Event, QuarantinedLine, UserRisk


def _scalar(engine: Engine, stmt: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())  # type: ignore[call-overload]


def test_seed_synthetic_aggregates_agree(db_url: str, reader: Engine) -> None:
    summary = seed_synthetic(db_url, events=5_000, users=300, minutes=120, detail_users=2, seed=1)
    assert summary["events"] == 5_000 and summary["users"] == 300
    assert _scalar(reader, select(func.sum(Batch.stored_new))) == 5_000
    assert _scalar(reader, select(func.sum(UserRisk.events))) == 5_000
    assert _scalar(reader, select(func.sum(ActivityRollup.events))) == 5_000
    rapid = _scalar(reader, select(func.sum(UserRisk.rapid_events)))
    assert rapid == _scalar(reader, select(func.sum(ActivityRollup.rapid))) == summary["rapid"]
    assert _scalar(reader, select(func.sum(Batch.quarantined))) == _scalar(
        reader, select(func.count()).select_from(QuarantinedLine)
    )
    assert _scalar(reader, select(func.count()).select_from(Alert)) == _scalar(
        reader, select(func.count()).select_from(UserRisk).where(UserRisk.band == "high")
    )
    assert _scalar(reader, select(func.count()).select_from(Event)) == summary["detail_events"] > 0
    top = q.fetch_risk_page(engine=reader, query=q.RiskQuery(limit=1)).rows[0]
    detail = q.fetch_user_detail(engine=reader, user_id=top.user_id)
    assert len(detail.events) == min(top.events, 2_000)
    assert q.fetch_timeline(engine=reader).per_minute["events"].sum() > 0


def test_measure_refresh_times_every_callback(settings: Settings) -> None:
    seed_synthetic(settings.resolved_database_url, events=3_000, users=200, minutes=60, seed=2)
    timings = measure_refresh(settings, repeats=3)
    expected = {*REGIONS, "risk_page_top", "risk_page_deep", "risk_page_filtered", "drill_down"}
    assert set(timings) == expected
    assert all(isinstance(ms, float) and ms > 0 for ms in timings.values())
