"""Synthetic stores for the dashboard benchmark: consistent aggregates for millions of events, fast."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import insert

from contract.wire import now_ms
from dash_app.queries import MINUTE_MS
from store.db import create_writer_engine, init_schema
from store.models import ActivityRollup, Alert, Base, Batch, Event, QuarantinedLine, UserRisk
from store.rollups import rebuild_activity_summaries

ACTIONS = ("view", "search", "add_to_cart", "remove_from_cart", "purchase", "login")
ACTION_WEIGHTS = (0.52, 0.18, 0.12, 0.04, 0.06, 0.08)
CATEGORIES = (
    "", "Books", "Electronics", "Garden", "Grocery", "Toys", "Beauty",
    "Sports", "Home", "Fashion", "Music", "Office",
)  # fmt: skip
QUARANTINE_SAMPLES = (
    ("not_json", '{"event_id": "e-1", "user_id": "u-1", "action": "view"'),
    ("not_json", '<script>alert(1)</script>{"bad'),
    ("unknown_action", '{"event_id":"e-2","user_id":"u-2","action":"teleport","timestamp":1}'),
    ("missing_field", '{"event_id":"e-3","action":"view","timestamp":"2024-01-01T00:00:00Z"}'),
    ("negative_amount", '{"event_id":"e-4","user_id":"u-4","action":"purchase","amount":-5}'),
    ("bad_timestamp", '{"event_id":"e-5","user_id":"u-5","action":"view","timestamp":"yesterday"}'),
    ("wrong_type", '{"event_id":"e-6","user_id":42,"action":"view","timestamp":"2024-01-01T00:00:00Z"}'),
    ("not_an_object", '["e-7","u-7","view"]'),
)  # fmt: skip
BATCH_SIZE = 500
SESSION_GAP_MS = 1_800_000
RAPID_GAP_MS = 2_000


def fill_required(model: type[Base], row: dict[str, Any]) -> dict[str, Any]:
    """The row plus a zero value for every other NOT NULL column, so new columns don't break seeding."""
    filled = dict(row)
    for column in model.__table__.columns:
        if column.key in filled or column.nullable or column.default is not None or column.primary_key:
            continue
        python_type = column.type.python_type
        filled[column.key] = python_type() if python_type in (int, float, bool, str) else None
    return filled


def _markers(kind: str, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Plausible fired markers (strongest first) for a synthetic persona."""
    if kind == "automation":
        return [
            {"name": "regular_timing", "value": round(float(rng.uniform(0.02, 0.2)), 4),
             "threshold": 0.25, "weight": 80, "kind": "automation",
             "description": "inter-event gaps are machine-regular (coefficient of variation)"},
            {"name": "inhuman_volume", "value": round(float(rng.uniform(0.3, 0.9)), 4),
             "threshold": 1.0, "weight": 30, "kind": "automation",
             "description": "mean gap within sessions, seconds"},
        ]  # fmt: skip
    if kind == "loss_of_control":
        return [
            {"name": "rapid_share", "value": round(float(rng.uniform(0.3, 0.7)), 4),
             "threshold": 0.3, "weight": 45, "kind": "loss_of_control",
             "description": "share of actions under the rapid gap"},
            {"name": "burst", "value": int(rng.integers(5, 14)), "threshold": 5, "weight": 30,
             "kind": "loss_of_control", "description": "longest run of rapid actions"},
            {"name": "night_share", "value": round(float(rng.uniform(0.5, 0.9)), 4),
             "threshold": 0.5, "weight": 15, "kind": "loss_of_control",
             "description": "share of events at night (UTC)"},
        ]  # fmt: skip
    return []


def _user_events(
    user_id: str, n: int, kind: str, last_ms: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """n events of one user ending at last_ms, with gaps, sessions and bursts derived."""
    if kind == "automation":
        gaps = rng.normal(800, 60, n).clip(200)
    elif kind == "loss_of_control":
        gaps = np.where(rng.random(n) < 0.5, rng.uniform(300, 1900, n), rng.exponential(40_000, n))
    else:
        gaps = rng.exponential(90_000, n)
    gaps[rng.random(n) < 0.01] = 2 * SESSION_GAP_MS  # a few new sessions
    ts = (last_ms - np.cumsum(gaps[::-1])[::-1]).astype(np.int64)
    actions = rng.choice(ACTIONS, size=n, p=ACTION_WEIGHTS)
    rows: list[dict[str, Any]] = []
    session, burst, prev = 1, 0, None
    for i in range(n):
        t = int(ts[i])
        gap = None if prev is None else t - prev
        if gap is not None and gap >= SESSION_GAP_MS:
            session += 1
        rapid = gap is not None and gap < RAPID_GAP_MS
        burst = burst + 1 if rapid else 0
        action = str(actions[i])
        rows.append(
            {
                "event_id": f"{user_id}-e{i:06d}",
                "user_id": user_id,
                "session_id": f"{user_id}-s{session}",
                "action": action,
                "category": CATEGORIES[1 + i % (len(CATEGORIES) - 1)],
                "product": f"product-{i % 97}",
                "amount_cents": int(rng.integers(500, 20_000)) if action == "purchase" else None,
                "ts_ms": t,
                "user_agent": "bench",
                "content_hash": f"{i:032x}",
                "batch_id": "bench-detail",
                "line_no": i,
                "ingested_ms": t + 500,
                "gap_ms": gap,
                "gap_s": None if gap is None else gap / 1000,
                "is_rapid": rapid,
                "session_no": session,
                "burst_len": burst,
            }
        )
        prev = t
    return rows


def seed_synthetic(
    url: str,
    *,
    events: int,
    users: int,
    minutes: int = 24 * 60,
    detail_users: int = 3,
    seed: int = 0,
    end_ms: int | None = None,
    band_elevated: int = 65,
    band_high: int = 75,
) -> dict[str, int]:
    """Fill an empty database with consistent aggregates for `events` events of `users` users.

    sum(batches.stored_new) = sum(user_risk.events) = sum(activity_rollup.events) = events,
    and rapid totals agree between user_risk and activity_rollup. Only the `detail_users`
    highest-scoring users get rows in `events`, for the drill-down.
    """
    rng = np.random.default_rng(seed)
    end_ms = end_ms or now_ms()
    users = max(1, min(users, events))
    start_ms = end_ms - minutes * MINUTE_MS

    # --- users: persona, event counts, scores --------------------------------------------
    kind_of = rng.choice(["none", "automation", "loss_of_control"], size=users, p=[0.9, 0.06, 0.04])
    weights = rng.lognormal(0, 1, users) * np.where(kind_of == "automation", 8, 1)
    counts = 1 + rng.multinomial(events - users, weights / weights.sum())
    scores = np.where(
        kind_of == "automation",
        rng.integers(70, 100, users),
        np.where(kind_of == "loss_of_control", rng.integers(55, 95, users), rng.integers(0, 60, users)),
    )
    rapid_p = np.select([kind_of == "automation", kind_of == "loss_of_control"], [0.6, 0.45], 0.04)
    rapid = rng.binomial(counts, rapid_p)
    last_seen = rng.integers(start_ms, end_ms, users)
    user_ids = [f"user-{i:06d}" for i in range(users)]

    detail_rows: list[dict[str, Any]] = []
    # The dashboard's default order (score, then user_id, both descending): its top rows get events.
    for i in np.lexsort((-np.arange(users), -scores))[:detail_users]:
        rows = _user_events(user_ids[i], int(counts[i]), str(kind_of[i]), int(last_seen[i]), rng)
        rapid[i] = sum(r["is_rapid"] for r in rows)
        detail_rows += rows

    risk_rows = []
    alert_rows = []
    for i in range(users):
        kind, score, n = str(kind_of[i]), int(scores[i]), int(counts[i])
        band = "high" if score >= band_high else "elevated" if score >= band_elevated else "low"
        markers = _markers(kind, rng) if kind != "none" else []
        auto = min(100, sum(m["weight"] for m in markers if m["kind"] == "automation"))
        loss = min(100, sum(m["weight"] for m in markers if m["kind"] == "loss_of_control"))
        span = int(rng.integers(60_000, 6 * 3_600_000))
        risk_rows.append(
            {
                "user_id": user_ids[i], "events": n, "rapid_events": int(rapid[i]),
                "max_burst": min(n, int(rng.integers(0, 12))), "gap_count": max(0, n - 1),
                "gap_sum_ms": max(0, n - 1) * 30_000, "gap_sumsq_ms": max(0, n - 1) * 900_000_000,
                "purchases": n // 17, "spend_cents": (n // 17) * 4_200,
                "max_purchases_window": min(n // 17, 6), "max_spend_window_cents": 25_000,
                "night_events": n // 5, "sessions": 1 + n // 40,
                "first_seen_ms": int(last_seen[i]) - span, "last_seen_ms": int(last_seen[i]),
                "rapid_share": float(rapid[i]) / n, "gap_mean_s": 30.0, "gap_cv": 1.0,
                "night_share": 0.2, "avg_session_s": 600.0,
                "automation_score": auto, "loss_of_control_score": loss, "score": score,
                "band": band, "risk_kind": "none" if kind == "none" else kind,
                "markers": markers, "updated_ms": end_ms,
            }
        )  # fmt: skip
        if band == "high":
            alert_rows.append(
                {
                    "user_id": user_ids[i], "created_ms": int(last_seen[i]), "score": score,
                    "band": band, "risk_kind": kind, "reasons": markers, "batch_id": f"b{i}",
                }
            )  # fmt: skip

    # --- activity rollup: events over minutes × actions × categories ------------------------
    minute_starts = (start_ms // MINUTE_MS + 1 + np.arange(minutes)) * MINUTE_MS
    hour = (minute_starts // 3_600_000) % 24
    diurnal = 1.0 + 0.8 * np.sin((hour - 8) / 24 * 2 * np.pi)
    cat_w = rng.dirichlet(np.ones(len(CATEGORIES)) * 2)
    cell_p = np.einsum("m,a,c->mac", diurnal / diurnal.sum(), np.array(ACTION_WEIGHTS), cat_w).ravel()
    cell_events = rng.multinomial(events, cell_p / cell_p.sum())
    total_rapid = int(rapid.sum())
    cell_rapid = rng.multivariate_hypergeometric(cell_events, total_rapid, method="marginals")
    rollup_rows = []
    for flat in np.flatnonzero(cell_events):
        m, rest = divmod(int(flat), len(ACTIONS) * len(CATEGORIES))
        a, c = divmod(rest, len(CATEGORIES))
        rollup_rows.append(
            {
                "minute_ms": int(minute_starts[m]),
                "action": ACTIONS[a],
                "category": CATEGORIES[c],
                "events": int(cell_events[flat]),
                "rapid": int(cell_rapid[flat]),
            }
        )

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
                    "batch_id": batch_id, "line_no": line, "reason": reason,
                    "detail": f"synthetic {reason}", "raw_text": raw,
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
        ):
            if rows:
                conn.execute(insert(model), [fill_required(model, row) for row in rows])
    rebuild_activity_summaries(engine)
    engine.dispose()
    return {
        "events": events,
        "users": users,
        "rapid": total_rapid,
        "batches": n_batches,
        "quarantined": int(quarantined.sum()),
        "alerts": len(alert_rows),
        "rollup_rows": len(rollup_rows),
        "detail_events": len(detail_rows),
    }
