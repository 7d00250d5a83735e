"""Synthetic stores for the dashboard benchmark: millions of events flagged and scored by the real rules.

Every user's events are generated with numpy (a persona's gaps, actions, categories, purchases),
then flagged, bucketed and scored by the offline reference (workers.reference), which recomputes
exactly what the pipeline stores. Only the top users' events (and buckets) are written, for the
drill-down; user_risk, alerts and the rollups are what the pipeline would store for all of them,
so the seeded store cannot drift from the product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import insert

from config.settings import Settings, get_settings
from contract.wire import Action, Reason, now_ms
from dash_app.queries import MINUTE_MS
from store.db import create_writer_engine, init_schema
from store.models import ActivityRollup, Alert, Base, Batch, Event, QuarantinedLine, RiskBucket, UserRisk
from store.rollups import rebuild_activity_summaries
from workers.reference import recompute_buckets, recompute_flags, score_windows, users_from
from workers.risk import Band, RiskKind
from workers.sequence import SequenceRules

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]

ACTION_WEIGHTS = {
    Action.VIEW: 0.52,
    Action.SEARCH: 0.18,
    Action.ADD_TO_CART: 0.12,
    Action.REMOVE_FROM_CART: 0.04,
    Action.PURCHASE: 0.06,
    Action.LOGIN: 0.08,
}
ACTIONS = tuple(ACTION_WEIGHTS)
PURCHASE = ACTIONS.index(Action.PURCHASE)
# Lower case, as validation cleans them; "" is an event without a category, as the rollups key it.
CATEGORIES = (
    "", "books", "electronics", "garden", "grocery", "toys", "beauty",
    "sports", "home", "fashion", "music", "office",
)  # fmt: skip
# The behaviour each synthetic user's events are drawn from, named by the markers it should trip.
PERSONA_MIX = {RiskKind.NONE: 0.9, RiskKind.AUTOMATION: 0.06, RiskKind.LOSS_OF_CONTROL: 0.04}
PERSONAS = tuple(PERSONA_MIX)
NEW_SESSION_SHARE = 0.01  # gaps of twice the session gap: a few new sessions per persona
QUARANTINE_SAMPLES = (
    (Reason.NOT_JSON, '{"event_id": "e-1", "user_id": "u-1", "action": "view"'),
    (Reason.NOT_JSON, '<script>alert(1)</script>{"bad'),
    (Reason.UNKNOWN_ACTION, '{"event_id":"e-2","user_id":"u-2","action":"teleport","timestamp":1}'),
    (Reason.MISSING_FIELD, '{"event_id":"e-3","action":"view","timestamp":"2024-01-01T00:00:00Z"}'),
    (Reason.NEGATIVE_AMOUNT, '{"event_id":"e-4","user_id":"u-4","action":"purchase","amount":-5}'),
    (Reason.BAD_TIMESTAMP, '{"event_id":"e-5","user_id":"u-5","action":"view","timestamp":"yesterday"}'),
    (Reason.WRONG_TYPE, '{"event_id":"e-6","user_id":42,"action":"view","timestamp":"2024-01-01T00:00:00Z"}'),
    (Reason.NOT_AN_OBJECT, '["e-7","u-7","view"]'),
)  # fmt: skip
BATCH_SIZE = 500
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def fill_required(model: type[Base], row: dict[str, Any]) -> dict[str, Any]:
    """The row plus a zero value for every other NOT NULL column, so new columns don't break seeding."""
    filled = dict(row)
    for column in model.__table__.columns:
        if column.key in filled or column.nullable or column.default is not None or column.primary_key:
            continue
        python_type = column.type.python_type
        filled[column.key] = python_type() if python_type in (int, float, bool, str) else None
    return filled


def fill_rows(model: type[Base], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """fill_required for rows that all have the keys of the first, working the zero values out once."""
    if not rows:
        return rows
    zeros = {k: v for k, v in fill_required(model, rows[0]).items() if k not in rows[0]}
    return [{**zeros, **row} for row in rows] if zeros else rows


@dataclass(frozen=True)
class SyntheticEvents:
    """Every synthetic user's events, in (user, time) order, as the columns of the events table."""

    user: Ints
    ts_ms: Ints
    action: Ints  # index into ACTIONS
    category: Ints  # index into CATEGORIES
    amount_cents: Ints  # 0 unless a purchase

    def frame(self, user_ids: list[str]) -> pd.DataFrame:
        """The events as the offline reference reads them; ids sort as the events do."""
        width = max(6, len(str(self.user.size)))
        return pd.DataFrame(
            {
                "event_id": [f"e{i:0{width}d}" for i in range(self.user.size)],
                "user_id": np.asarray(user_ids, dtype=object)[self.user],
                "ts_ms": self.ts_ms,
                "utc_offset_min": np.zeros(self.user.size, dtype=np.int64),
                "action": np.asarray([a.value for a in ACTIONS], dtype=object)[self.action],
                "amount_cents": pd.Series(self.amount_cents, dtype="Int64").where(self.action == PURCHASE),
                "user_agent": "bench",
                "category": np.asarray(CATEGORIES, dtype=object)[self.category],
            }
        )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values (no numpy scalars, None for missing)."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [
        {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in clean.to_dict("records")
    ]


def _event_rows(flags: pd.DataFrame) -> list[dict[str, Any]]:
    """events table rows of flagged events."""
    rows = _records(flags.drop(columns=["session_start"]))
    for k, row in enumerate(rows):
        row.update(
            session_id=f"{row['user_id']}-s{row['session_no']}",
            category=row["category"] or None,
            product=f"product-{k % 97}",
            content_hash=f"{k:032x}",
            batch_id="bench-detail",
            line_no=k,
            ingested_ms=row["ts_ms"] + 500,
            is_rapid=bool(row["is_rapid"]),
            is_steady=bool(row["is_steady"]),
        )
    return rows


def _rollup_rows(flags: pd.DataFrame) -> list[dict[str, Any]]:
    """activity_rollup: events and rapid events per event-time minute, action and category."""
    minute = flags["ts_ms"] - flags["ts_ms"] % MINUTE_MS
    cells = flags.assign(minute_ms=minute).groupby(["minute_ms", "action", "category"])["is_rapid"]
    counted = cells.agg(events="size", rapid="sum").reset_index()
    return _records(counted)


def persona_gaps(kind: RiskKind, size: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Gaps (ms) between a persona's events: metronome bots, bursts of rapid clicks, or calm browsing."""
    if kind is RiskKind.AUTOMATION:
        return rng.normal(800, 60, size).clip(200)
    if kind is RiskKind.LOSS_OF_CONTROL:
        rapid = rng.random(size) < 0.5
        return np.where(rapid, rng.uniform(300, 1900, size), rng.exponential(40_000, size))
    return rng.exponential(90_000, size)


def generate_events(
    counts: Ints, personas: Ints, last_seen_ms: Ints, rules: SequenceRules, rng: np.random.Generator
) -> SyntheticEvents:
    """counts[u] events of each user u, drawn from their persona and ending at last_seen_ms[u]."""
    total = int(counts.sum())
    first = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    user = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    persona = personas[user]
    gaps = np.empty(total)
    for code, kind in enumerate(PERSONAS):
        chosen = persona == code
        gaps[chosen] = persona_gaps(kind, int(chosen.sum()), rng)
    gaps[rng.random(total) < NEW_SESSION_SHARE] = 2 * rules.session_gap_ms
    steps = np.rint(gaps).astype(np.int64)
    # Each event lies the sum of the later gaps of its user before that user's last event.
    elapsed = np.cumsum(steps)
    last = first + counts - 1
    ts_ms = last_seen_ms[user] - (elapsed[last][user] - elapsed)
    action = rng.choice(len(ACTIONS), size=total, p=list(ACTION_WEIGHTS.values()))
    category_weights = rng.dirichlet(np.ones(len(CATEGORIES)) * 2)
    return SyntheticEvents(
        user=user,
        ts_ms=ts_ms,
        action=action,
        category=rng.choice(len(CATEGORIES), size=total, p=category_weights),
        amount_cents=np.where(action == PURCHASE, rng.integers(500, 20_000, total), 0),
    )


def seed_synthetic(
    url: str,
    *,
    events: int,
    users: int,
    minutes: int = 24 * 60,
    detail_users: int = 3,
    seed: int = 0,
    end_ms: int | None = None,
    settings: Settings | None = None,
) -> dict[str, int]:
    """Fill an empty database with the aggregates of `events` events of `users` users.

    sum(batches.stored_new) = sum(user_risk.events) = sum(activity_rollup.events) = events, and
    user_risk, alerts and the rollups are what the pipeline stores for those events under the
    rules of settings (default: the process's). Only the `detail_users` highest-scoring users get
    rows in `events`, for the drill-down.
    """
    settings = settings or get_settings()
    sequence_rules = SequenceRules.from_settings(settings)
    rng = np.random.default_rng(seed)
    end_ms = end_ms or now_ms()
    users = max(1, min(users, events))
    start_ms = end_ms - minutes * MINUTE_MS

    # --- users: persona, event counts, last event (more of them by day), then every event ------
    personas = rng.choice(len(PERSONAS), size=users, p=list(PERSONA_MIX.values()))
    weights = rng.lognormal(0, 1, users) * np.where(personas == PERSONAS.index(RiskKind.AUTOMATION), 8, 1)
    counts = 1 + rng.multinomial(events - users, weights / weights.sum())
    hour = (start_ms + np.arange(minutes) * MINUTE_MS) // HOUR_MS % 24
    diurnal = 1.0 + 0.8 * np.sin((hour - 8) / 24 * 2 * np.pi)
    minute = rng.choice(minutes, size=users, p=diurnal / diurnal.sum())
    last_seen = start_ms + minute * MINUTE_MS + rng.integers(0, MINUTE_MS, users)
    generated = generate_events(counts, personas, last_seen, sequence_rules, rng)
    user_ids = [f"user-{i:06d}" for i in range(users)]

    # --- flags, buckets, windows and user_risk: the offline reference, under these settings ------
    flags = recompute_flags(generated.frame(user_ids), settings)
    buckets = recompute_buckets(flags, settings)
    scored, windows = score_windows(buckets, settings)
    risk = users_from(flags, buckets, windows)
    risk_rows = [
        {
            "user_id": user_id,
            **row,
            "markers": windows[user_id]["current"].markers_json(),
            "updated_ms": end_ms,
        }
        for user_id, row in zip(risk.index, _records(risk), strict=True)
    ]
    alert_rows = [
        {
            "user_id": row["user_id"], "created_ms": row["last_seen_ms"], "score": row["score"],
            "band": row["band"], "risk_kind": row["risk_kind"], "reasons": row["markers"],
            "batch_id": f"b{n}",
        }
        for n, row in enumerate(risk_rows)
        if row["band"] == Band.HIGH.value
    ]  # fmt: skip
    # The dashboard's default order (score, then user_id, both descending): its top rows get events.
    ranked = sorted(risk_rows, key=lambda r: (r["score"], r["user_id"]), reverse=True)
    detail = {r["user_id"] for r in ranked[:detail_users]}
    detail_rows = _event_rows(flags[flags["user_id"].isin(detail)])
    bucket_rows = _records(scored[scored.index.get_level_values("user_id").isin(detail)].reset_index())
    rollup_rows = _rollup_rows(flags)

    # --- batches (the ledger) and their quarantined lines -------------------------------------
    n_batches = -(-events // BATCH_SIZE)
    stored = np.full(n_batches, BATCH_SIZE)
    stored[-1] = events - BATCH_SIZE * (n_batches - 1)
    quarantined = rng.binomial(stored, 0.004)
    duplicates = rng.binomial(stored, 0.002)
    committed = np.sort(rng.integers(start_ms, end_ms - 10_000, n_batches))
    committed[-min(4, n_batches) :] = end_ms - np.arange(min(4, n_batches))[::-1] * 2_000
    latency = rng.integers(40, 900, n_batches)
    batch_rows = []
    quarantine_rows = []
    for b in range(n_batches):
        batch_id = f"batch-{b:07d}"
        produced = int(committed[b] - latency[b])
        batch_rows.append(
            {
                "batch_id": batch_id, "source": "bench", "stored_new": int(stored[b]),
                "quarantined": int(quarantined[b]), "duplicates": int(duplicates[b]),
                "received": int(stored[b] + quarantined[b] + duplicates[b]),
                "produced_ms": produced, "committed_ms": int(committed[b]),
                "max_event_ts_ms": produced - int(rng.integers(0, 400)),
            }
        )  # fmt: skip
        for line in range(int(quarantined[b])):
            reason, raw = QUARANTINE_SAMPLES[int(rng.integers(len(QUARANTINE_SAMPLES)))]
            quarantine_rows.append(
                {
                    "batch_id": batch_id, "line_no": line, "reason": reason.value,
                    "detail": f"synthetic {reason.value}", "first_reason": reason.value,
                    "first_detail": f"synthetic {reason.value}", "raw_text": raw,
                    "quarantined_ms": int(committed[b]), "released_ms": None,
                }
            )  # fmt: skip

    engine = create_writer_engine(url)
    init_schema(engine)
    with engine.begin() as conn:
        for model, rows in (
            (UserRisk, risk_rows),
            (ActivityRollup, rollup_rows),
            (Batch, batch_rows),
            (QuarantinedLine, quarantine_rows),
            (Alert, alert_rows),
            (Event, detail_rows),
            (RiskBucket, bucket_rows),
        ):
            if rows:
                conn.execute(insert(model), fill_rows(model, rows))
    rebuild_activity_summaries(engine)
    engine.dispose()
    return {
        "events": events,
        "users": users,
        "rapid": int(flags["is_rapid"].sum()),
        "batches": n_batches,
        "quarantined": int(quarantined.sum()),
        "alerts": len(alert_rows),
        "rollup_rows": len(rollup_rows),
        "detail_events": len(detail_rows),
    }
