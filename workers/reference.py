"""The offline reference: recompute every flag and user figure from scratch with pandas.

Independent of the incremental path in workers.sequence and workers.ingest; only the final
scoring function (workers.risk.assess) is shared, so equal aggregates mean equal scores.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from config.settings import Settings
from store.models import Event, UserRisk
from workers.risk import RiskRules, UserAggregates, assess, risk_columns

EVENT_FLAG_COLUMNS = ["gap_ms", "is_rapid", "is_steady", "session_no", "burst_len"]
EXACT_USER_COLUMNS = [
    *UserAggregates._fields,
    "automation_score",
    "loss_of_control_score",
    "score",
    "band",
    "risk_kind",
]
FLOAT_USER_COLUMNS = ["rapid_share", "gap_mean_s", "gap_cv", "steady_share", "night_share", "avg_session_s"]


def recompute_flags(events: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Gap, rapid flag, session number and burst length per event, in (user, ts, id) order."""
    df = events.sort_values(["user_id", "ts_ms", "event_id"], kind="mergesort").reset_index(drop=True)
    by_user = df.groupby("user_id", sort=False)
    gap = by_user["ts_ms"].diff()
    df["gap_ms"] = gap.astype("Int64")
    df["is_rapid"] = (gap < settings.rapid_gap_ms).fillna(False).astype(bool)
    starts = (gap.isna() | (gap >= settings.session_gap_ms)).astype(int)
    df["session_start"] = starts.astype(bool)
    df["session_no"] = starts.groupby(df["user_id"]).cumsum().astype(int)
    run_id = (~df["is_rapid"]).astype(int).groupby(df["user_id"]).cumsum()
    df["burst_len"] = df["is_rapid"].astype(int).groupby([df["user_id"], run_id]).cumsum().astype(int)
    within = gap.notna() & (gap < settings.session_gap_ms)
    previous = gap.groupby(df["user_id"]).shift(1)
    previous_within = within.groupby(df["user_id"]).shift(1, fill_value=False).astype(bool)
    close = (gap - previous).abs() * 10_000 <= settings.steady_tolerance_bp * previous
    df["is_steady"] = (within & previous_within & close.fillna(False)).astype(bool)
    return df


def recompute_users(flags: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Every user-risk figure from the flagged events, scored with the production rules."""
    df = flags.copy()
    within = df["gap_ms"].notna() & ~df["session_start"]
    gap = df["gap_ms"].where(within, 0).fillna(0).astype("int64")
    hour = (df["ts_ms"] % 86_400_000) // 3_600_000
    df["within"] = within.astype(int)
    df["gap_in"] = gap
    df["gap_sq"] = gap * gap
    df["night"] = ((hour >= settings.night_start_hour) & (hour < settings.night_end_hour)).astype(int)
    df["purchase"] = (df["action"] == "purchase").astype(int)
    df["spend"] = df["amount_cents"].where(df["action"] == "purchase", 0).fillna(0).astype("int64")
    users = df.groupby("user_id").agg(
        events=("event_id", "size"),
        rapid_events=("is_rapid", "sum"),
        max_burst=("burst_len", "max"),
        gap_count=("within", "sum"),
        gap_sum_ms=("gap_in", "sum"),
        gap_sumsq_ms=("gap_sq", "sum"),
        steady_gaps=("is_steady", "sum"),
        purchases=("purchase", "sum"),
        spend_cents=("spend", "sum"),
        night_events=("night", "sum"),
        sessions=("session_start", "sum"),
        first_seen_ms=("ts_ms", "min"),
        last_seen_ms=("ts_ms", "max"),
    )
    peaks = _window_peaks(df[df["purchase"] == 1], settings.velocity_window_ms)
    users = users.join(peaks).fillna({"max_purchases_window": 0, "max_spend_window_cents": 0})
    rules = RiskRules.from_settings(settings)
    scored = [_score_row(user_id, row, rules) for user_id, row in users.iterrows()]
    return pd.DataFrame(scored).set_index("user_id").sort_index()


def _window_peaks(purchases: pd.DataFrame, window_ms: int) -> pd.DataFrame:
    """Most purchases and most spend in any (t - W, t] window, per user."""
    if purchases.empty:
        return pd.DataFrame(columns=["max_purchases_window", "max_spend_window_cents"])
    p = purchases[["user_id", "ts_ms", "spend"]].copy()
    p["ts"] = pd.to_datetime(p["ts_ms"], unit="ms")
    p = p.sort_values(["user_id", "ts"], kind="mergesort")
    rolled = (
        p.set_index("ts")
        .groupby("user_id")["spend"]
        .rolling(pd.Timedelta(milliseconds=window_ms), closed="right")
        .agg(["count", "sum"])
    )
    peaks = rolled.groupby(level="user_id").max()
    return pd.DataFrame(
        {
            "max_purchases_window": peaks["count"].astype("int64"),
            "max_spend_window_cents": peaks["sum"].round().astype("int64"),
        }
    )


def _score_row(user_id: Any, row: pd.Series, rules: RiskRules) -> dict[str, Any]:
    aggregates = UserAggregates(**{name: int(row[name]) for name in UserAggregates._fields})
    return {"user_id": user_id, **risk_columns(aggregates, assess(aggregates, rules))}


def load_events(engine: Engine) -> pd.DataFrame:
    """Every stored event with its stored flags."""
    columns = [
        Event.event_id,
        Event.user_id,
        Event.ts_ms,
        Event.action,
        Event.amount_cents,
        Event.gap_ms,
        Event.is_rapid,
        Event.is_steady,
        Event.session_no,
        Event.burst_len,
    ]
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(select(*columns)).mappings().all(), columns=[c.key for c in columns])


def load_user_risk(engine: Engine) -> pd.DataFrame:
    """Every stored user-risk row, indexed by user id."""
    with engine.connect() as conn:
        rows = conn.execute(select(UserRisk.__table__)).mappings().all()
    return pd.DataFrame(rows).set_index("user_id").sort_index() if rows else pd.DataFrame()


def find_mismatches(engine: Engine, settings: Settings, *, limit: int = 20) -> list[str]:
    """Differences between the store and a from-scratch recompute; empty when exact."""
    stored = load_events(engine)
    problems: list[str] = []
    if stored.empty:
        users = load_user_risk(engine)
        return [] if users.empty else [f"{len(users)} user rows but no events"]
    fresh = recompute_flags(stored[["event_id", "user_id", "ts_ms", "action", "amount_cents"]], settings)
    merged = stored.merge(fresh, on="event_id", suffixes=("_stored", "_fresh"))
    for column in EVENT_FLAG_COLUMNS:
        a = merged[f"{column}_stored"].astype("float64")
        b = merged[f"{column}_fresh"].astype("float64")
        bad = ~((a == b) | (a.isna() & b.isna()))
        for _, row in merged[bad].head(limit).iterrows():
            problems.append(
                f"event {row['event_id']}: {column} stored {row[f'{column}_stored']} "
                f"!= recomputed {row[f'{column}_fresh']}"
            )
    expected = recompute_users(fresh, settings)
    actual = load_user_risk(engine)
    if set(expected.index) != set(actual.index):
        problems.append(f"user sets differ: {len(actual)} stored vs {len(expected)} recomputed")
        return problems[:limit]
    actual = actual.loc[expected.index]
    for column in EXACT_USER_COLUMNS:
        bad = actual[column].to_numpy() != expected[column].to_numpy()
        for user_id in expected.index[bad][:limit]:
            problems.append(
                f"user {user_id}: {column} stored {actual.at[user_id, column]!r} "
                f"!= recomputed {expected.at[user_id, column]!r}"
            )
    for column in FLOAT_USER_COLUMNS:
        for user_id in expected.index:
            stored_value, fresh_value = actual.at[user_id, column], expected.at[user_id, column]
            if not _same_float(stored_value, fresh_value):
                problems.append(
                    f"user {user_id}: {column} stored {stored_value!r} != recomputed {fresh_value!r}"
                )
    return problems[:limit]


def _same_float(a: Any, b: Any) -> bool:
    a_missing = a is None or (isinstance(a, float) and math.isnan(a))
    b_missing = b is None or (isinstance(b, float) and math.isnan(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    return bool(np.isclose(float(a), float(b), rtol=1e-12, atol=0.0))
