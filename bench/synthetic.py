"""Synthetic stores for the dashboard benchmark: millions of events flagged and scored by the real rules.

Every user's events are generated (a persona's gaps, actions, categories, purchases), flagged by
the sequence rules and summed per user with numpy, and every user is scored by workers.risk.assess.
Only the top users' events are written, for the drill-down; user_risk, alerts and the rollups are
what the pipeline would store for all of them, so the seeded store cannot drift from the product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import insert

from config.settings import Settings, get_settings
from contract.wire import Action, Reason, now_ms
from dash_app.queries import MINUTE_MS
from store.db import create_writer_engine, init_schema
from store.models import ActivityRollup, Alert, Base, Batch, Event, QuarantinedLine, UserRisk
from store.rollups import rebuild_activity_summaries
from workers.risk import Band, RiskKind, RiskRules, UserAggregates, assess, risk_columns
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
class SequenceFlags:
    """What the sequence rules derive for each event, as arrays in (user, ts, id) order."""

    gap_ms: Ints  # 0 where has_gap is False
    has_gap: Flags  # False for each user's first event
    is_rapid: Flags
    within_session: Flags
    is_steady: Flags
    session_no: Ints
    burst_len: Ints


def flag_events(ts_ms: Ints, is_first: Flags, rules: SequenceRules) -> SequenceFlags:
    """The flags of workers.sequence.recompute_tail for many users' events at once.

    ts_ms is ordered by user, then time (then event id); is_first marks each user's first event.
    """
    has_gap = ~is_first
    gap = np.where(has_gap, np.diff(ts_ms, prepend=ts_ms[:1]), 0)
    rapid = has_gap & (gap < rules.rapid_gap_ms)
    within = has_gap & (gap < rules.session_gap_ms)
    previous_gap = np.roll(gap, 1)
    previous_within = np.roll(within, 1)
    previous_within[:1] = False
    # Exact integers, as SequenceRules.is_steady: |gap - previous| within tolerance_bp of previous.
    close = np.abs(gap - previous_gap) * 10_000 <= rules.steady_tolerance_bp * previous_gap
    sessions: Ints = np.cumsum(~within)
    user_start: Ints = np.maximum.accumulate(np.where(is_first, np.arange(ts_ms.size), 0))
    rapid_so_far: Ints = np.cumsum(rapid)
    # A burst restarts at every event that is not rapid; each user's first event is one.
    burst: Ints = rapid_so_far - np.maximum.accumulate(np.where(rapid, 0, rapid_so_far))
    return SequenceFlags(
        gap_ms=gap,
        has_gap=has_gap,
        is_rapid=rapid,
        within_session=within,
        is_steady=within & previous_within & close,
        session_no=sessions - sessions[user_start] + 1,
        burst_len=burst,
    )


def purchase_peaks(user: Ints, ts_ms: Ints, cents: Ints, *, users: int, window_ms: int) -> tuple[Ints, Ints]:
    """Per user, workers.sequence.window_peaks over all of their purchases: most in any (t - W, t].

    user, ts_ms and cents describe purchases only, ordered by user, then time.
    """
    most = np.zeros(users, dtype=np.int64)
    most_spend = np.zeros(users, dtype=np.int64)
    if not user.size:
        return most, most_spend
    offset = ts_ms - ts_ms.min()
    # One sorted key for every user's purchases; a window never reaches the previous user's.
    key = user * (int(offset.max()) + window_ms + 1) + offset
    start = np.searchsorted(key, key - window_ms, side="right")
    end = np.searchsorted(key, key, side="right")
    spent = np.concatenate(([0], np.cumsum(cents)))
    np.maximum.at(most, user, end - start)
    np.maximum.at(most_spend, user, spent[end] - spent[start])
    return most, most_spend


@dataclass(frozen=True)
class SyntheticEvents:
    """Every synthetic user's events as arrays in (user, time) order, flagged by the sequence rules."""

    first: Ints  # index of each user's first event
    counts: Ints  # events per user
    user: Ints
    ts_ms: Ints
    action: Ints  # index into ACTIONS
    category: Ints  # index into CATEGORIES
    amount_cents: Ints  # 0 unless a purchase
    flags: SequenceFlags

    def aggregates(self, rules: SequenceRules) -> list[UserAggregates]:
        """Each user's exact aggregates, as the pipeline maintains them in user_risk."""
        f, first = self.flags, self.first

        def total(values: npt.NDArray[Any]) -> list[int]:
            sums: list[int] = np.add.reduceat(values.astype(np.int64), first).tolist()
            return sums

        purchase = self.action == PURCHASE
        hour = self.ts_ms % DAY_MS // HOUR_MS
        night = (hour >= rules.night_start_hour) & (hour < rules.night_end_hour)
        within_gap = np.where(f.within_session, f.gap_ms, 0)
        most, most_spend = purchase_peaks(
            self.user[purchase],
            self.ts_ms[purchase],
            self.amount_cents[purchase],
            users=first.size,
            window_ms=rules.window_ms,
        )
        columns = {
            "events": self.counts.tolist(),
            "rapid_events": total(f.is_rapid),
            "max_burst": np.maximum.reduceat(f.burst_len, first).tolist(),
            "gap_count": total(f.within_session),
            "gap_sum_ms": total(within_gap),
            "gap_sumsq_ms": total(within_gap * within_gap),
            "steady_gaps": total(f.is_steady),
            "purchases": total(purchase),
            "spend_cents": total(self.amount_cents),
            "max_purchases_window": most.tolist(),
            "max_spend_window_cents": most_spend.tolist(),
            "night_events": total(night),
            "sessions": total(~f.within_session),
            "first_seen_ms": np.minimum.reduceat(self.ts_ms, first).tolist(),
            "last_seen_ms": np.maximum.reduceat(self.ts_ms, first).tolist(),
        }
        return [UserAggregates._make(values) for values in zip(*columns.values(), strict=True)]

    def rollup_rows(self) -> list[dict[str, Any]]:
        """activity_rollup: events and rapid events per event-time minute, action and category."""
        minute = self.ts_ms - self.ts_ms % MINUTE_MS
        cell = (minute // MINUTE_MS * len(ACTIONS) + self.action) * len(CATEGORIES) + self.category
        cells, inverse, events = np.unique(cell, return_inverse=True, return_counts=True)
        rapid = np.bincount(inverse, weights=self.flags.is_rapid, minlength=cells.size).astype(np.int64)
        rest, category = np.divmod(cells, len(CATEGORIES))
        minutes, action = np.divmod(rest, len(ACTIONS))
        return [
            {
                "minute_ms": m * MINUTE_MS,
                "action": ACTIONS[a].value,
                "category": CATEGORIES[c],
                "events": n,
                "rapid": r,
            }
            for m, a, c, n, r in zip(
                minutes.tolist(), action.tolist(), category.tolist(), events.tolist(), rapid.tolist(),
                strict=True,
            )
        ]  # fmt: skip

    def event_rows(self, index: int, user_id: str) -> list[dict[str, Any]]:
        """The events table rows of one user, with their derived flags."""
        f, start = self.flags, int(self.first[index])
        count = int(self.counts[index])
        width = max(6, len(str(count - 1)))  # ids sort as the events do, as the recompute orders ties
        rows = []
        for k, i in enumerate(range(start, start + count)):
            ts = int(self.ts_ms[i])
            gap = int(f.gap_ms[i]) if f.has_gap[i] else None
            action, category = ACTIONS[int(self.action[i])], CATEGORIES[int(self.category[i])]
            rows.append(
                {
                    "event_id": f"{user_id}-e{k:0{width}d}", "user_id": user_id,
                    "session_id": f"{user_id}-s{int(f.session_no[i])}", "action": action.value,
                    "category": category or None, "product": f"product-{k % 97}",
                    "amount_cents": int(self.amount_cents[i]) if action is Action.PURCHASE else None,
                    "ts_ms": ts, "user_agent": "bench", "content_hash": f"{k:032x}",
                    "batch_id": "bench-detail", "line_no": k, "ingested_ms": ts + 500,
                    "gap_ms": gap, "gap_s": None if gap is None else gap / 1000,
                    "is_rapid": bool(f.is_rapid[i]), "is_steady": bool(f.is_steady[i]),
                    "session_no": int(f.session_no[i]), "burst_len": int(f.burst_len[i]),
                }
            )  # fmt: skip
        return rows


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
    is_first = np.zeros(total, dtype=bool)
    is_first[first] = True
    return SyntheticEvents(
        first=first,
        counts=counts,
        user=user,
        ts_ms=ts_ms,
        action=action,
        category=rng.choice(len(CATEGORIES), size=total, p=category_weights),
        amount_cents=np.where(action == PURCHASE, rng.integers(500, 20_000, total), 0),
        flags=flag_events(ts_ms, is_first, rules),
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
    sequence_rules, risk_rules = SequenceRules.from_settings(settings), RiskRules.from_settings(settings)
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

    # --- user_risk and alerts: every user scored by the real risk rules ------------------------
    risk_rows, alert_rows, scores = [], [], []
    for i, aggregates in enumerate(generated.aggregates(sequence_rules)):
        assessment = assess(aggregates, risk_rules)
        markers = assessment.markers_json()
        scores.append(assessment.score)
        risk_rows.append(
            {
                "user_id": user_ids[i],
                **risk_columns(aggregates, assessment),
                "markers": markers,
                "updated_ms": end_ms,
            }
        )
        if assessment.band is Band.HIGH:
            alert_rows.append(
                {
                    "user_id": user_ids[i], "created_ms": aggregates.last_seen_ms,
                    "score": assessment.score, "band": assessment.band.value,
                    "risk_kind": assessment.kind.value, "reasons": markers, "batch_id": f"b{i}",
                }
            )  # fmt: skip
    # The dashboard's default order (score, then user_id, both descending): its top rows get events.
    top = np.lexsort((-np.arange(users), -np.asarray(scores)))[:detail_users]
    detail_rows = [row for i in top.tolist() for row in generated.event_rows(i, user_ids[i])]
    rollup_rows = generated.rollup_rows()

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
        ):
            if rows:
                conn.execute(insert(model), fill_rows(model, rows))
    rebuild_activity_summaries(engine)
    engine.dispose()
    return {
        "events": events,
        "users": users,
        "rapid": int(generated.flags.is_rapid.sum()),
        "batches": n_batches,
        "quarantined": int(quarantined.sum()),
        "alerts": len(alert_rows),
        "rollup_rows": len(rollup_rows),
        "detail_events": len(detail_rows),
    }
