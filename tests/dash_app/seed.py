"""Seed a SQLite file with known store rows for the dashboard tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bench.synthetic import fill_required
from store.db import create_writer_engine, init_schema
from store.models import ActivityRollup, Alert, Base, Batch, Event, QuarantinedLine, UserRisk
from store.rollups import rebuild_activity_summaries

# 2026-01-05 12:00:00 UTC, a Monday.
NOW_MS = 1_767_614_400_000
MINUTE_MS = 60_000
M = TypeVar("M", bound=Base)
XSS_LINE = '<script>alert(1)</script>{"bad'
LINK_LINE = '<a href="https://evil.example/">click</a>'


def writer(url: str) -> Engine:
    """A writer engine on url with every table created."""
    engine = create_writer_engine(url)
    init_schema(engine)
    return engine


def add_rows(url: str, rows: Iterable[Base]) -> None:
    """Insert ORM rows in one transaction."""
    engine = writer(url)
    with Session(engine) as session, session.begin():
        session.add_all(list(rows))
    rebuild_activity_summaries(engine)  # the all-time rollups follow activity_rollup, as in workers
    engine.dispose()


def make(model: type[M], **values: Any) -> M:
    """A model row; NOT NULL columns this suite does not know about get zero values."""
    return model(**fill_required(model, values))


def marker(name: str, value: float, threshold: float, weight: int, kind: str) -> dict[str, Any]:
    """One fired marker as workers.risk stores it."""
    return {
        "name": name,
        "value": value,
        "threshold": threshold,
        "weight": weight,
        "kind": kind,
        "description": f"{name} marker",
    }


AUTOMATION = [
    marker("regular_timing", 0.1, 0.25, 80, "automation"),
    marker("inhuman_volume", 0.5, 1.0, 30, "automation"),
]
LOSS = [
    marker("burst", 6, 5, 30, "loss_of_control"),
    marker("rapid_share", 0.4, 0.3, 45, "loss_of_control"),  # heavier, listed second on purpose
]


def user_risk(
    user_id: str,
    *,
    score: int,
    band: str,
    events: int = 10,
    rapid: int = 0,
    last_seen_ms: int = NOW_MS,
    risk_kind: str = "none",
    markers: Sequence[dict[str, Any]] = (),
) -> UserRisk:
    """A user_risk row with plausible aggregates around the given score."""
    auto = min(100, sum(m["weight"] for m in markers if m["kind"] == "automation"))
    loss = min(100, sum(m["weight"] for m in markers if m["kind"] == "loss_of_control"))
    return make(
        UserRisk,
        user_id=user_id, events=events, rapid_events=rapid, max_burst=0, gap_count=events - 1,
        gap_sum_ms=0, gap_sumsq_ms=0, purchases=0, spend_cents=0, max_purchases_window=0,
        max_spend_window_cents=0, night_events=0, sessions=1, first_seen_ms=last_seen_ms - 3_600_000,
        last_seen_ms=last_seen_ms, rapid_share=rapid / events, gap_mean_s=10.0, gap_cv=1.0,
        night_share=0.0, avg_session_s=60.0, automation_score=auto, loss_of_control_score=loss,
        score=score, band=band, risk_kind=risk_kind, markers=list(markers), updated_ms=NOW_MS,
    )  # fmt: skip


def batch(
    batch_id: str,
    *,
    stored_new: int,
    committed_ms: int,
    quarantined: int = 0,
    duplicates: int = 0,
    produced_ms: int | None = None,
    max_event_ts_ms: int | None = None,
) -> Batch:
    """A ledger row; received is the sum of its parts."""
    return make(
        Batch,
        batch_id=batch_id,
        source="test",
        received=stored_new + quarantined + duplicates,
        stored_new=stored_new,
        duplicates=duplicates,
        quarantined=quarantined,
        produced_ms=produced_ms,
        committed_ms=committed_ms,
        max_event_ts_ms=max_event_ts_ms,
    )


def rollup(minute_ms: int, action: str, category: str, events: int, rapid: int) -> ActivityRollup:
    """One activity_rollup cell."""
    return make(
        ActivityRollup, minute_ms=minute_ms, action=action, category=category, events=events, rapid=rapid
    )


def quarantined(
    batch_id: str, line_no: int, *, reason: str, raw_text: str, quarantined_ms: int
) -> QuarantinedLine:
    """One quarantined line."""
    return make(
        QuarantinedLine,
        batch_id=batch_id,
        line_no=line_no,
        reason=reason,
        detail=f"detail of {reason}",
        first_reason=reason,
        first_detail=f"detail of {reason}",
        raw_text=raw_text,
        quarantined_ms=quarantined_ms,
        released_ms=None,
    )


def events_of(
    user_id: str, ts_ms: Sequence[int], *, actions: Sequence[str] = ("view",), session_gap_ms: int = 1_800_000
) -> list[Event]:
    """A user's events at the given times, with gap, rapid, session and burst derived."""
    rows: list[Event] = []
    session, burst, prev = 1, 0, None
    for i, ts in enumerate(ts_ms):
        gap = None if prev is None else ts - prev
        if gap is not None and gap >= session_gap_ms:
            session += 1
        rapid = gap is not None and gap < 2_000
        burst = burst + 1 if rapid else 0
        action = actions[i % len(actions)]
        rows.append(
            make(
                Event, event_id=f"{user_id}-{i:05d}", user_id=user_id, session_id=f"s{session}",
                action=action, category="Books" if i % 2 else None, product=f"p{i}",
                amount_cents=1_000 if action == "purchase" else None, ts_ms=ts, user_agent="t",
                content_hash=f"{i:032x}", batch_id="b1", line_no=i, ingested_ms=ts + 10,
                gap_ms=gap, is_rapid=rapid,
                session_no=session, burst_len=burst,
            )
        )  # fmt: skip
        prev = ts
    return rows


@dataclass(frozen=True)
class Facts:
    """What seed_standard wrote, for assertions."""

    events_stored: int = 180
    received: int = 187
    quarantined: int = 5
    events_per_s: float = 8.0
    rollup_events: int = 45
    rollup_rapid: int = 8
    users_by_score: tuple[str, ...] = ("bot-001", "bot-002", "bob", "carol", "alice", "dave_%")
    bot_events: int = 30
    alice_events: int = 5


def seed_standard(url: str) -> Facts:
    """A small, fully known dataset around NOW_MS."""
    minute = NOW_MS // MINUTE_MS * MINUTE_MS
    bot_ts = [NOW_MS - 60_000 + 800 * i for i in range(30)]
    alice_ts = [NOW_MS - 7_200_000, NOW_MS - 7_100_000, NOW_MS - 600_000, NOW_MS - 599_000, NOW_MS - 300_000]
    rows: list[Base] = [
        batch("b1", stored_new=100, quarantined=4, duplicates=1, committed_ms=NOW_MS - 60_000,
              produced_ms=NOW_MS - 61_000, max_event_ts_ms=NOW_MS - 62_000),
        batch("b2", stored_new=50, quarantined=1, duplicates=1, committed_ms=NOW_MS - 5_000,
              produced_ms=NOW_MS - 5_500, max_event_ts_ms=NOW_MS - 6_000),
        batch("b3", stored_new=30, committed_ms=NOW_MS - 2_000,
              produced_ms=NOW_MS - 2_200, max_event_ts_ms=NOW_MS - 3_000),
        user_risk("alice", score=10, band="low", events=5, last_seen_ms=NOW_MS - 300_000),
        user_risk("bob", score=70, band="elevated", events=3, rapid=1, last_seen_ms=NOW_MS - 50_000,
                  risk_kind="loss_of_control", markers=LOSS),
        user_risk("bot-001", score=95, band="high", events=30, rapid=29, last_seen_ms=NOW_MS - 36_800,
                  risk_kind="automation", markers=AUTOMATION),
        user_risk("bot-002", score=90, band="high", events=7, last_seen_ms=NOW_MS - 400_000,
                  risk_kind="automation", markers=AUTOMATION[:1]),
        user_risk("carol", score=66, band="elevated", events=12, last_seen_ms=NOW_MS - 1_000),
        user_risk("dave_%", score=5, band="low", events=1, last_seen_ms=NOW_MS - 900_000),
        rollup(minute, "view", "Books", 10, 2),
        rollup(minute, "purchase", "", 3, 0),
        rollup(minute - MINUTE_MS, "view", "Books", 20, 5),
        rollup(minute - 3 * MINUTE_MS, "search", "Toys", 7, 1),
        rollup(minute - 120 * MINUTE_MS, "view", "Books", 5, 0),
        quarantined("b1", 1, reason="not_json", raw_text="{oops", quarantined_ms=NOW_MS - 60_000),
        quarantined("b1", 2, reason="not_json", raw_text=LINK_LINE, quarantined_ms=NOW_MS - 60_000),
        quarantined("b1", 3, reason="unknown_action", raw_text='{"action":"fly"}',
                    quarantined_ms=NOW_MS - 60_000),
        quarantined("b1", 4, reason="missing_field", raw_text="{}", quarantined_ms=NOW_MS - 60_000),
        quarantined("b2", 7, reason="not_json", raw_text=XSS_LINE, quarantined_ms=NOW_MS - 5_000),
        quarantined("b0", 1, reason="bad_timestamp", raw_text="{old}", quarantined_ms=NOW_MS - 7_200_000),
        make(Alert, user_id="bot-001", created_ms=NOW_MS - 30_000, score=95, band="high",
              risk_kind="automation", reasons=AUTOMATION, batch_id="b2"),
        make(Alert, user_id="bot-002", created_ms=NOW_MS - 10_000, score=90, band="high",
              risk_kind="automation", reasons=AUTOMATION[:1], batch_id="b3"),
        *events_of("bot-001", bot_ts, actions=("view", "add_to_cart", "purchase")),
        *events_of("alice", alice_ts, actions=("search", "view")),
        *events_of("bob", [NOW_MS - 50_500, NOW_MS - 50_000, NOW_MS - 40_000]),
    ]  # fmt: skip
    add_rows(url, rows)
    return Facts()
