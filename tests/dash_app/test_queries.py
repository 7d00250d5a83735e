"""Query functions against a seeded SQLite file, an empty schema and no database at all."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from dash_app import queries as q
from tests.dash_app.seed import LINK_LINE, MINUTE_MS, NOW_MS, XSS_LINE, Facts, add_rows, events_of

ALL_QUERIES: dict[str, Callable[[Engine], Any]] = {
    "kpis": lambda e: q.fetch_kpis(engine=e, now_ms=NOW_MS),
    "risk_page": lambda e: q.fetch_risk_page(engine=e, query=q.RiskQuery()),
    "activity_mix": lambda e: q.fetch_activity_mix(engine=e),
    "activity_heatmap": lambda e: q.fetch_activity_heatmap(engine=e),
    "timeline": lambda e: q.fetch_timeline(engine=e),
    "quarantine_counts": lambda e: q.fetch_quarantine_counts(engine=e, now_ms=NOW_MS),
    "latest_quarantined": lambda e: q.fetch_latest_quarantined(engine=e),
    "alerts": lambda e: q.fetch_alerts(engine=e),
    "pipeline_stats": lambda e: q.fetch_pipeline_stats(engine=e, now_ms=NOW_MS),
    "user_detail": lambda e: q.fetch_user_detail(engine=e, user_id="bot-001"),
}


# --- failure as data ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALL_QUERIES))
def test_missing_database_is_a_sentence_not_an_error(name: str, reader: Engine, db_path: Path) -> None:
    result = ALL_QUERIES[name](reader)
    assert result.problem == f"No database yet at {db_path.resolve()}: start the workers."
    assert not db_path.exists(), "a read must never create the database file"


@pytest.mark.parametrize("name", sorted(ALL_QUERIES))
def test_database_without_tables_says_which_table_is_missing(
    name: str, reader: Engine, db_path: Path
) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(db_path).close()  # an empty file, as before the workers' first start
    result = ALL_QUERIES[name](reader)
    assert result.problem is not None
    assert "has no table" in result.problem and "start the workers" in result.problem


@pytest.mark.parametrize("name", sorted(ALL_QUERIES))
def test_empty_schema_gives_empty_results_without_problem(name: str, empty_db: str, reader: Engine) -> None:
    assert ALL_QUERIES[name](reader).problem is None


def test_empty_schema_values(empty_db: str, reader: Engine) -> None:
    kpis = q.fetch_kpis(engine=reader, now_ms=NOW_MS)
    assert (kpis.events_stored, kpis.events_per_s, kpis.users) == (0, 0.0, 0)
    assert kpis.quarantined_share is None and kpis.rapid_share is None
    assert q.fetch_timeline(engine=reader).per_minute.empty
    assert q.fetch_activity_heatmap(engine=reader).total == 0
    assert q.fetch_activity_mix(engine=reader).by_action.empty
    stats = q.fetch_pipeline_stats(engine=reader, now_ms=NOW_MS)
    assert stats.batches == 0 and stats.event_lag_ms is None and stats.since_commit_ms is None
    page = q.fetch_risk_page(engine=reader, query=q.RiskQuery())
    assert page.rows == () and page.total == 0


def test_describe_unavailable_hides_a_postgres_password() -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    engine = create_engine("postgresql+psycopg://u:secret@db.example:5432/risk")
    message = q.describe_unavailable(engine, OperationalError("SELECT 1", {}, Exception("refused")))
    assert "secret" not in message and "db.example" in message


# --- KPI cards ----------------------------------------------------------------------------------


def test_kpis(seeded: Facts, reader: Engine) -> None:
    kpis = q.fetch_kpis(engine=reader, now_ms=NOW_MS)
    assert kpis.problem is None
    assert kpis.events_stored == seeded.events_stored
    assert kpis.events_per_s == seeded.events_per_s  # (50 + 30) stored in the last 10 s
    assert kpis.quarantined_share == pytest.approx(seeded.quarantined / seeded.received)
    assert kpis.rapid_share == pytest.approx(seeded.rollup_rapid / seeded.rollup_events)
    assert dict(kpis.band_counts) == {"low": 2, "elevated": 2, "high": 2}
    assert kpis.users == 6


@pytest.mark.parametrize(
    ("now_offset_ms", "expected"),
    [(0, 8.0), (2_999, 8.0), (5_000, 3.0), (8_000, 0.0)],  # the window is (now - 10 s, now]
)
def test_events_per_second_window_edges(
    seeded: Facts, reader: Engine, now_offset_ms: int, expected: float
) -> None:
    assert q.fetch_kpis(engine=reader, now_ms=NOW_MS + now_offset_ms).events_per_s == expected


# --- risk table -----------------------------------------------------------------------------------


def _ids(page: q.RiskPage) -> list[str]:
    return [r.user_id for r in page.rows]


def test_risk_page_default_sort_is_score_descending(seeded: Facts, reader: Engine) -> None:
    page = q.fetch_risk_page(engine=reader, query=q.RiskQuery())
    assert _ids(page) == list(seeded.users_by_score)
    assert page.total == 6
    bot = page.rows[0]
    assert (bot.score, bot.band, bot.risk_kind, bot.events) == (95, "high", "automation", 30)
    assert bot.top_markers == ("regular_timing", "inhuman_volume")


def test_risk_page_top_markers_are_heaviest_first(seeded: Facts, reader: Engine) -> None:
    page = q.fetch_risk_page(engine=reader, query=q.RiskQuery(user_text="bob", user_match="equals"))
    assert page.rows[0].top_markers == ("rapid_share", "burst")


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [(0, 2, ["bot-001", "bot-002"]), (2, 2, ["bob", "carol"]), (4, 10, ["alice", "dave_%"]), (6, 5, [])],
)
def test_risk_page_paging(
    seeded: Facts, reader: Engine, offset: int, limit: int, expected: list[str]
) -> None:
    page = q.fetch_risk_page(engine=reader, query=q.RiskQuery(offset=offset, limit=limit))
    assert _ids(page) == expected
    assert page.total == 6  # the count ignores the window


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ((("user_id", False),), ["alice", "bob", "bot-001", "bot-002", "carol", "dave_%"]),
        ((("user_id", True),), ["dave_%", "carol", "bot-002", "bot-001", "bob", "alice"]),
        ((("score", False),), ["dave_%", "alice", "carol", "bob", "bot-002", "bot-001"]),
        ((("last_seen", True),), ["carol", "bot-001", "bob", "alice", "bot-002", "dave_%"]),
        ((("band", True),), ["bot-001", "bot-002", "bob", "carol", "alice", "dave_%"]),
    ],
)
def test_risk_page_sorting(
    seeded: Facts, reader: Engine, sort: tuple[tuple[q.SortColumn, bool], ...], expected: list[str]
) -> None:
    assert _ids(q.fetch_risk_page(engine=reader, query=q.RiskQuery(sort=sort))) == expected


def test_risk_page_ties_are_broken_by_user_id(empty_db: str, reader: Engine) -> None:
    from tests.dash_app.seed import user_risk

    add_rows(empty_db, [user_risk(f"u{i}", score=50, band="low") for i in (3, 1, 2)])
    pages = [_ids(q.fetch_risk_page(engine=reader, query=q.RiskQuery(offset=i, limit=1))) for i in range(3)]
    assert pages == [["u3"], ["u2"], ["u1"]]  # score descending: ties by user_id descending
    ascending = q.RiskQuery(sort=(("score", False),), limit=3)
    assert _ids(q.fetch_risk_page(engine=reader, query=ascending)) == ["u1", "u2", "u3"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (q.RiskQuery(user_text="bot"), ["bot-001", "bot-002"]),
        (q.RiskQuery(user_text="BOT"), ["bot-001", "bot-002"]),  # contains is case-insensitive
        (q.RiskQuery(user_text="o", user_match="startsWith"), []),
        (q.RiskQuery(user_text="b", user_match="startsWith"), ["bot-001", "bot-002", "bob"]),
        (q.RiskQuery(user_text="bo", user_match="startsWith"), ["bot-001", "bot-002", "bob"]),
        (q.RiskQuery(user_text="bob", user_match="equals"), ["bob"]),
        (q.RiskQuery(user_text="bo", user_match="equals"), []),
        (q.RiskQuery(user_text="_"), ["dave_%"]),  # LIKE wildcards are literal
        (q.RiskQuery(user_text="%"), ["dave_%"]),
        (q.RiskQuery(bands=("elevated",)), ["bob", "carol"]),
        (q.RiskQuery(bands=("high", "low")), ["bot-001", "bot-002", "alice", "dave_%"]),
        (q.RiskQuery(min_score=66), ["bot-001", "bot-002", "bob", "carol"]),
        (q.RiskQuery(min_score=67), ["bot-001", "bot-002", "bob"]),
        (q.RiskQuery(min_score=10, max_score=70), ["bob", "carol", "alice"]),
        (q.RiskQuery(risk_kind="automation"), ["bot-001", "bot-002"]),
        (q.RiskQuery(user_text="bot", min_score=91), ["bot-001"]),
    ],
)
def test_risk_page_filters(seeded: Facts, reader: Engine, query: q.RiskQuery, expected: list[str]) -> None:
    page = q.fetch_risk_page(engine=reader, query=query)
    assert _ids(page) == expected
    assert page.total == len(expected)


def test_risk_page_limit_is_capped(seeded: Facts, reader: Engine) -> None:
    from dataclasses import replace

    query = replace(q.RiskQuery(), limit=10**6)
    assert len(q.fetch_risk_page(engine=reader, query=query).rows) == 6  # no error, capped in SQL


@pytest.mark.parametrize(
    ("order_by", "index"),
    [
        ("score DESC, user_id DESC", "ix_user_risk_score"),
        ("last_seen_ms ASC, user_id", "ix_user_risk_last_seen"),
    ],
)
def test_risk_page_order_walks_an_index(seeded: Facts, reader: Engine, order_by: str, index: str) -> None:
    with reader.connect() as conn:
        plan = conn.execute(
            text(f"EXPLAIN QUERY PLAN SELECT user_id FROM user_risk ORDER BY {order_by} LIMIT 50 OFFSET 100")
        ).all()
    assert any(index in row[-1] for row in plan), plan


def test_top_marker_names_tolerates_bad_json() -> None:
    assert q.top_marker_names(None) == ()
    assert q.top_marker_names([{"weight": 3}, "x", {"name": "a", "weight": 1}, {"name": "b"}]) == ("a", "b")


# --- activity and timeline -------------------------------------------------------------------------


def test_activity_mix(seeded: Facts, reader: Engine) -> None:
    mix = q.fetch_activity_mix(engine=reader)
    by_action = mix.by_action.set_index("name")
    assert by_action.to_dict("index") == {
        "view": {"events": 35, "rapid": 7},
        "search": {"events": 7, "rapid": 1},
        "purchase": {"events": 3, "rapid": 0},
    }
    assert list(mix.by_action["name"]) == ["view", "search", "purchase"]  # busiest first
    assert list(mix.by_category["name"]) == ["Books", "Toys", "(none)"]
    assert int(mix.by_category["events"].sum()) == seeded.rollup_events


def test_activity_mix_keeps_the_busiest_categories(seeded: Facts, reader: Engine) -> None:
    assert list(q.fetch_activity_mix(engine=reader, top_categories=1).by_category["name"]) == ["Books"]


def test_activity_heatmap(seeded: Facts, reader: Engine) -> None:
    heatmap = q.fetch_activity_heatmap(engine=reader)
    assert heatmap.counts.shape == (7, 24)
    assert list(heatmap.counts.index) == list(q.WEEKDAYS)
    assert heatmap.total == seeded.rollup_events
    # NOW is Monday 12:00 UTC: 13 events at 12:00, 27 in 11:xx, 5 at 10:00.
    assert heatmap.counts.loc["Mon", 12] == 13
    assert heatmap.counts.loc["Mon", 11] == 27
    assert heatmap.counts.loc["Mon", 10] == 5
    assert heatmap.counts.drop(index="Mon").to_numpy().sum() == 0


def test_timeline_covers_the_last_minutes_of_event_time(seeded: Facts, reader: Engine) -> None:
    timeline = q.fetch_timeline(engine=reader)
    frame = timeline.per_minute
    assert len(frame) == 60 and timeline.end_ms == NOW_MS
    assert frame["minute"].iloc[-1] == pd.Timestamp(NOW_MS, unit="ms", tz="UTC")
    assert frame["minute"].diff().dropna().eq(pd.Timedelta(minutes=1)).all()
    assert frame["events"].sum() == 40  # the 10:00 row is outside the hour
    last = frame.set_index("minute")
    assert last.loc[pd.Timestamp(NOW_MS - MINUTE_MS, unit="ms", tz="UTC"), "rapid"] == 5
    assert last.loc[pd.Timestamp(NOW_MS - 2 * MINUTE_MS, unit="ms", tz="UTC"), "events"] == 0  # filled


def test_timeline_window_is_configurable(seeded: Facts, reader: Engine) -> None:
    frame = q.fetch_timeline(engine=reader, minutes=3).per_minute
    assert list(frame["events"]) == [0, 20, 13]


# --- data quality -----------------------------------------------------------------------------------


def test_quarantine_counts_by_reason_and_minute(seeded: Facts, reader: Engine) -> None:
    frame = q.fetch_quarantine_counts(engine=reader, now_ms=NOW_MS).per_minute
    minute = pd.Timestamp(NOW_MS - MINUTE_MS, unit="ms", tz="UTC")  # 11:59:00 and 11:59:55 alike
    got = {(row.minute, row.reason): row.lines for row in frame.itertuples()}
    assert got == {(minute, "not_json"): 3, (minute, "unknown_action"): 1, (minute, "missing_field"): 1}


def test_quarantine_counts_window(seeded: Facts, reader: Engine) -> None:
    three_hours = q.fetch_quarantine_counts(engine=reader, now_ms=NOW_MS, minutes=180).per_minute
    assert three_hours["lines"].sum() == 6  # now includes the line from two hours ago
    later = q.fetch_quarantine_counts(engine=reader, now_ms=NOW_MS + 3_600_000).per_minute
    assert later.empty


def test_latest_quarantined_keeps_raw_text_verbatim(seeded: Facts, reader: Engine) -> None:
    rows = q.fetch_latest_quarantined(engine=reader).rows
    assert rows[0].raw_text == XSS_LINE and rows[0].reason == "not_json"
    assert rows[-1].raw_text == "{old}"  # newest first, old lines still listed
    assert LINK_LINE in [r.raw_text for r in rows]
    assert all(r.raw_length == len(r.raw_text) for r in rows)


def test_latest_quarantined_cuts_long_lines_in_sql(seeded: Facts, reader: Engine) -> None:
    rows = q.fetch_latest_quarantined(engine=reader, limit=1, raw_chars=8).rows
    assert len(rows) == 1
    assert rows[0].raw_text == XSS_LINE[:8] and rows[0].raw_length == len(XSS_LINE)


def test_alerts_newest_first_with_reason_names(seeded: Facts, reader: Engine) -> None:
    feed = q.fetch_alerts(engine=reader)
    assert [a.user_id for a in feed.rows] == ["bot-002", "bot-001"]
    assert feed.rows[1].reasons == ("regular_timing", "inhuman_volume")
    assert q.fetch_alerts(engine=reader, limit=1).rows[0].user_id == "bot-002"


# --- pipeline --------------------------------------------------------------------------------------


def test_pipeline_stats(seeded: Facts, reader: Engine) -> None:
    stats = q.fetch_pipeline_stats(engine=reader, now_ms=NOW_MS)
    assert stats.batches == 3
    assert stats.last_committed_ms == NOW_MS - 2_000
    assert stats.since_commit_ms == 2_000
    assert stats.newest_event_ms == NOW_MS - 3_000
    assert stats.newest_produced_ms == NOW_MS - 2_200
    assert stats.event_lag_ms == 800
    assert stats.last_batch_latency_ms == 200


# --- drill-down --------------------------------------------------------------------------------------


def test_user_detail(seeded: Facts, reader: Engine) -> None:
    detail = q.fetch_user_detail(engine=reader, user_id="bot-001")
    assert detail.problem is None and not detail.truncated
    assert len(detail.events) == seeded.bot_events
    assert detail.events["event_id"].str.startswith("bot-001-").all()  # one user only
    assert detail.events["ts"].is_monotonic_increasing
    assert detail.events["is_rapid"].sum() == 29
    assert detail.risk is not None and detail.risk["score"] == 95
    assert [m["name"] for m in detail.risk["markers"]] == ["regular_timing", "inhuman_volume"]
    assert detail.sessions[["session_no", "events", "rapid"]].values.tolist() == [[1, 30, 29]]


def test_user_detail_sessions(seeded: Facts, reader: Engine) -> None:
    sessions = q.fetch_user_detail(engine=reader, user_id="alice").sessions
    assert sessions["session_no"].tolist() == [1, 2]
    assert sessions["events"].tolist() == [2, 3]
    assert sessions["rapid"].tolist() == [0, 1]
    assert sessions["duration_s"].tolist() == [100.0, 300.0]


def test_user_detail_keeps_only_the_newest_events(seeded: Facts, reader: Engine) -> None:
    detail = q.fetch_user_detail(engine=reader, user_id="bot-001", limit=10)
    assert detail.truncated and len(detail.events) == 10
    assert detail.events["event_id"].tolist() == [f"bot-001-{i:05d}" for i in range(20, 30)]


def test_user_detail_of_unknown_user(seeded: Facts, reader: Engine) -> None:
    detail = q.fetch_user_detail(engine=reader, user_id="nobody")
    assert detail.problem is None and detail.risk is None
    assert detail.events.empty and detail.sessions.empty


def test_user_detail_reads_the_user_time_index(seeded: Facts, reader: Engine) -> None:
    with reader.connect() as conn:
        plan = conn.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT ts_ms FROM events WHERE user_id = 'bot-001' "
                "ORDER BY ts_ms DESC, event_id DESC LIMIT 2001"
            )
        ).all()
    assert any("ix_events_user_ts" in row[-1] for row in plan), plan


def test_user_detail_with_same_timestamps_is_ordered_by_event_id(empty_db: str, reader: Engine) -> None:
    add_rows(empty_db, events_of("twin", [NOW_MS, NOW_MS, NOW_MS]))
    detail = q.fetch_user_detail(engine=reader, user_id="twin", limit=2)
    assert detail.events["event_id"].tolist() == ["twin-00001", "twin-00002"]
