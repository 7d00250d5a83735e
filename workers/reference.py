"""The offline reference: recompute every flag, bucket and user figure from scratch with pandas.

Independent of the incremental path in workers.sequence, workers.windows and workers.ingest;
only the scoring of one window (workers.risk.assess) is shared, so equal buckets mean equal
scores.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from config.settings import Settings
from store.models import Event, RiskBucket, UserRisk
from store.writer import FLAG_COLUMNS
from workers.risk import Peak, RiskRules, UserAggregates, assess, fold_buckets, higher_peak, risk_columns
from workers.sequence import BUCKET_FIELDS, is_automation_agent

EXACT_USER_COLUMNS = [
    *UserAggregates._fields,
    "window_events",
    "night_sessions",
    "automation_score",
    "loss_of_control_score",
    "score",
    "band",
    "risk_kind",
    "peak_score",
    "peak_band",
    "peak_kind",
    "peak_ms",
    "closed_peak_score",
    "closed_peak_kind",
    "closed_peak_ms",
]
FLOAT_USER_COLUMNS = [
    "rapid_share",
    "fast_share",
    "gap_mean_s",
    "gap_cv",
    "steady_share",
    "night_share",
    "raised_share",
    "browse_share",
    "agent_share",
    "avg_session_s",
    "max_session_s",
    "max_awake_s",
]
BUCKET_COLUMNS = [*BUCKET_FIELDS, "window_score", "window_kind"]
_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000


def recompute_flags(events: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Per event in (user, ts, id) order: gap, rapid, session, burst, steady, run lengths, stake step."""
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
    session_first = df.groupby(["user_id", "session_no"])["ts_ms"].transform("min")
    df["session_ms"] = (df["ts_ms"] - session_first).astype("int64")
    rests = (gap.isna() | (gap >= round(settings.rest_gap_s * 1000))).astype(int)
    awake_id = rests.groupby(df["user_id"]).cumsum()
    df["awake_ms"] = (df["ts_ms"] - df.groupby([df["user_id"], awake_id])["ts_ms"].transform("min")).astype(
        "int64"
    )
    staked = (df["action"] == "purchase") & df["amount_cents"].notna()
    stakes = df[staked]
    opening = stakes.groupby(["user_id", "session_no"])["amount_cents"].transform("first")
    later = stakes.groupby(["user_id", "session_no"]).cumcount() > 0
    raised = (stakes["amount_cents"] > opening) & (
        stakes["amount_cents"] * 100 >= round(settings.chase_stake_multiple * 100) * opening
    )
    step = raised.astype("Int64").where(later)
    df["stake_raised"] = pd.Series(pd.NA, index=df.index, dtype="Int64")
    df.loc[step.index, "stake_raised"] = step
    # The session's opening stake, from its first bet on: carried forward within the session.
    first_bets = stakes.index[stakes.groupby(["user_id", "session_no"]).cumcount() == 0]
    opened = pd.Series(pd.NA, index=df.index, dtype="Int64")
    opened.loc[first_bets] = df.loc[first_bets, "amount_cents"]
    df["open_stake"] = opened.groupby([df["user_id"], df["session_no"]]).ffill().astype("Int64")
    _bet_steps(df, settings)
    return df


def _bet_steps(df: pd.DataFrame, settings: Settings) -> None:
    """The gap between a session's purchases, whether it is steady, and both carried forward."""
    bets = df[df["action"] == "purchase"]
    session = [bets["user_id"], bets["session_no"]]
    bet_gap = bets["ts_ms"].groupby(session).diff()
    before = bet_gap.groupby(session).shift(1)
    steady = (bet_gap - before).abs() * 10_000 <= settings.steady_tolerance_bp * before
    df["bet_rhythm"] = pd.Series(pd.NA, index=df.index, dtype="Int64")
    df.loc[bets.index, "bet_rhythm"] = steady.fillna(False).astype("Int64").where(bet_gap.notna())
    carried = [df["user_id"], df["session_no"]]
    last_bet = pd.Series(pd.NA, index=df.index, dtype="Int64")
    last_bet.loc[bets.index] = bets["ts_ms"]
    df["last_bet_ms"] = last_bet.groupby(carried).ffill().astype("Int64")
    gaps = pd.Series(pd.NA, index=df.index, dtype="Int64")
    gaps.loc[bets.index] = bet_gap.astype("Int64")
    df["bet_gap_ms"] = gaps.groupby(carried).ffill().astype("Int64")


def recompute_buckets(flags: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Every user's buckets of event time with their figures, from the flagged events."""
    df = flags.copy()
    bucket_ms = round(settings.risk_bucket_s * 1000)
    within = df["gap_ms"].notna() & ~df["session_start"]
    gap = df["gap_ms"].where(within, 0).fillna(0).astype("int64")
    local_hour = ((df["ts_ms"] + df["utc_offset_min"] * 60_000) % _DAY_MS) // _HOUR_MS
    night = (local_hour >= settings.night_start_hour) & (local_hour < settings.night_end_hour)
    purchase = df["action"] == "purchase"
    df["bucket_ms"] = df["ts_ms"] - df["ts_ms"] % bucket_ms
    df["within"] = within.astype(int)
    df["gap_in"] = gap
    df["gap_sq"] = gap * gap
    df["fast"] = (within & (df["gap_ms"].fillna(0) < round(settings.machine_gap_s * 1000))).astype(int)
    df["start"] = df["session_start"].astype(int)
    df["night"] = night.astype(int)
    df["night_start"] = (night & df["session_start"]).astype(int)
    df["purchase"] = purchase.astype(int)
    df["spend"] = df["amount_cents"].where(purchase, 0).fillna(0).astype("int64")
    df["browse"] = df["action"].isin(["view", "search"]).astype(int)
    df["trade"] = df["action"].isin(["add_to_cart", "purchase"]).astype(int)
    df["rapid_trade"] = (df["trade"].astype(bool) & df["is_rapid"]).astype(int)
    df["agent"] = (
        df["user_agent"].map(lambda ua: is_automation_agent(ua if isinstance(ua, str) else None)).astype(int)
    )
    df["staked"] = df["stake_raised"].notna().astype(int)
    df["rise"] = df["stake_raised"].fillna(0).astype(int)
    df["login"] = (df["action"] == "login").astype(int)
    df["bet_gap"] = df["bet_rhythm"].notna().astype(int)
    df["steady_bet"] = df["bet_rhythm"].fillna(0).astype(int)
    buckets = df.groupby(["user_id", "bucket_ms"]).agg(
        events=("event_id", "size"),
        rapid_events=("is_rapid", "sum"),
        gap_count=("within", "sum"),
        gap_sum_ms=("gap_in", "sum"),
        gap_sumsq_ms=("gap_sq", "sum"),
        steady_gaps=("is_steady", "sum"),
        fast_gaps=("fast", "sum"),
        sessions=("start", "sum"),
        night_events=("night", "sum"),
        night_sessions=("night_start", "sum"),
        purchases=("purchase", "sum"),
        spend_cents=("spend", "sum"),
        browse_events=("browse", "sum"),
        agent_events=("agent", "sum"),
        stake_bets=("staked", "sum"),
        raised_bets=("rise", "sum"),
        trade_events=("trade", "sum"),
        rapid_trades=("rapid_trade", "sum"),
        logins=("login", "sum"),
        bet_gaps=("bet_gap", "sum"),
        steady_bets=("steady_bet", "sum"),
        max_burst=("burst_len", "max"),
        max_session_ms=("session_ms", "max"),
        max_awake_ms=("awake_ms", "max"),
    )
    peaks = _purchase_peaks(df[purchase], settings.velocity_window_ms)
    buckets = buckets.join(peaks).fillna({"max_purchases_window": 0, "max_spend_window_cents": 0})
    return buckets[list(BUCKET_FIELDS)].astype("int64")


def _purchase_peaks(purchases: pd.DataFrame, window_ms: int) -> pd.DataFrame:
    """Most purchases and most spend in any (t - W, t] window ending at a purchase of the bucket."""
    if purchases.empty:
        empty = pd.MultiIndex.from_arrays([[], []], names=["user_id", "bucket_ms"])
        return pd.DataFrame(columns=["max_purchases_window", "max_spend_window_cents"], index=empty)
    p = purchases[["user_id", "ts_ms", "bucket_ms", "spend"]].copy()
    p["ts"] = pd.to_datetime(p["ts_ms"], unit="ms")
    p = p.sort_values(["user_id", "ts"], kind="mergesort")
    rolled = (
        p.set_index("ts")
        .groupby("user_id")["spend"]
        .rolling(pd.Timedelta(milliseconds=window_ms), closed="right")
        .agg(["count", "sum"])
    )
    p["count"] = rolled["count"].to_numpy()
    p["sum"] = rolled["sum"].to_numpy()
    peaks = p.groupby(["user_id", "bucket_ms"])[["count", "sum"]].max()
    return pd.DataFrame(
        {
            "max_purchases_window": peaks["count"].astype("int64"),
            "max_spend_window_cents": peaks["sum"].round().astype("int64"),
        }
    )


def score_windows(
    buckets: pd.DataFrame, settings: Settings
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """The score and kind of the window ending at each bucket, and each user's current, closed and peak."""
    rules = RiskRules.from_settings(settings)
    span = (rules.window_buckets - 1) * round(settings.risk_bucket_s * 1000)
    ordered = buckets.sort_index()
    keys = ordered.index.get_level_values("bucket_ms").to_numpy(dtype=np.int64).tolist()
    owners = ordered.index.get_level_values("user_id").to_numpy()
    rows = [tuple(r) for r in ordered.to_numpy(dtype=np.int64).tolist()]
    scores: list[int] = []
    kinds: list[str] = []
    users: dict[str, dict[str, Any]] = {}
    starts = [0, *(i for i in range(1, len(rows)) if owners[i] != owners[i - 1]), len(rows)] if rows else [0]
    for first, stop in itertools.pairwise(starts):
        closed: Peak | None = None
        current = None
        low = first
        for i in range(first, stop):
            while keys[low] < keys[i] - span:
                low += 1
            result = assess(fold_buckets(rows[low : i + 1]), rules)
            scores.append(result.score)
            kinds.append(result.kind.value)
            if i < stop - 1:
                closed = higher_peak(closed, Peak(result.score, result.band, result.kind, keys[i]))
            else:
                current = result
        assert current is not None
        peak = higher_peak(closed, Peak(current.score, current.band, current.kind, keys[stop - 1]))
        users[str(owners[first])] = {"current": current, "closed": closed, "peak": peak}
    scored = ordered.copy()
    scored["window_score"] = scores
    scored["window_kind"] = kinds
    return scored, users


def recompute_users(flags: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Every user-risk figure from the flagged events, scored with the production rules."""
    buckets = recompute_buckets(flags, settings)
    return users_from(flags, buckets, score_windows(buckets, settings)[1])


def users_from(
    flags: pd.DataFrame, buckets: pd.DataFrame, windows: dict[str, dict[str, Any]]
) -> pd.DataFrame:
    """The user_risk rows of flagged events whose buckets and windows are computed already."""
    df = flags
    within = df["gap_ms"].notna() & ~df["session_start"]
    gap = df["gap_ms"].where(within, 0).fillna(0).astype("int64")
    purchase = df["action"] == "purchase"
    lifetime = pd.DataFrame(
        {
            "user_id": df["user_id"],
            "event_id": df["event_id"],
            "is_rapid": df["is_rapid"],
            "within": within.astype(int),
            "gap_in": gap,
            "gap_sq": gap * gap,
            "is_steady": df["is_steady"],
            "purchase": purchase.astype(int),
            "spend": df["amount_cents"].where(purchase, 0).fillna(0).astype("int64"),
            "session_start": df["session_start"],
            "ts_ms": df["ts_ms"],
        }
    )
    users = lifetime.groupby("user_id").agg(
        events=("event_id", "size"),
        rapid_events=("is_rapid", "sum"),
        gap_count=("within", "sum"),
        gap_sum_ms=("gap_in", "sum"),
        gap_sumsq_ms=("gap_sq", "sum"),
        steady_gaps=("is_steady", "sum"),
        purchases=("purchase", "sum"),
        spend_cents=("spend", "sum"),
        sessions=("session_start", "sum"),
        first_seen_ms=("ts_ms", "min"),
        last_seen_ms=("ts_ms", "max"),
    )
    from_buckets = buckets.groupby(level="user_id").agg(
        max_burst=("max_burst", "max"),
        max_purchases_window=("max_purchases_window", "max"),
        max_spend_window_cents=("max_spend_window_cents", "max"),
        night_events=("night_events", "sum"),
    )
    users = users.join(from_buckets)
    scored = [_score_row(str(user_id), row, windows[str(user_id)]) for user_id, row in users.iterrows()]
    return pd.DataFrame(scored).set_index("user_id").sort_index()


def _score_row(user_id: str, row: pd.Series, window: dict[str, Any]) -> dict[str, Any]:
    aggregates = UserAggregates(**{name: int(row[name]) for name in UserAggregates._fields})
    closed: Peak | None = window["closed"]
    return {
        "user_id": user_id,
        **risk_columns(aggregates, window["current"], window["peak"]),
        "closed_peak_score": None if closed is None else closed.score,
        "closed_peak_kind": None if closed is None else closed.kind.value,
        "closed_peak_ms": None if closed is None else closed.bucket_ms,
    }


def load_events(engine: Engine) -> pd.DataFrame:
    """Every stored event with its stored flags."""
    columns = [
        Event.event_id,
        Event.user_id,
        Event.ts_ms,
        Event.utc_offset_min,
        Event.action,
        Event.amount_cents,
        Event.user_agent,
        Event.gap_ms,
        Event.is_rapid,
        Event.is_steady,
        Event.session_no,
        Event.burst_len,
        Event.session_ms,
        Event.awake_ms,
    ]
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(select(*columns)).mappings().all(), columns=[c.key for c in columns])


def load_user_risk(engine: Engine) -> pd.DataFrame:
    """Every stored user-risk row, indexed by user id."""
    with engine.connect() as conn:
        rows = conn.execute(select(UserRisk.__table__)).mappings().all()
    return pd.DataFrame(rows).set_index("user_id").sort_index() if rows else pd.DataFrame()


def load_buckets(engine: Engine) -> pd.DataFrame:
    """Every stored risk bucket, indexed by (user_id, bucket_ms)."""
    with engine.connect() as conn:
        rows = conn.execute(select(RiskBucket.__table__)).mappings().all()
    if not rows:
        return pd.DataFrame(columns=BUCKET_COLUMNS)
    return pd.DataFrame(rows).set_index(["user_id", "bucket_ms"]).sort_index()[BUCKET_COLUMNS]


def find_mismatches(engine: Engine, settings: Settings, *, limit: int = 20) -> list[str]:
    """Differences between the store and a from-scratch recompute; empty when exact."""
    stored = load_events(engine)
    problems: list[str] = []
    if stored.empty:
        users = load_user_risk(engine)
        return [] if users.empty else [f"{len(users)} user rows but no events"]
    own = ["event_id", "user_id", "ts_ms", "utc_offset_min", "action", "amount_cents", "user_agent"]
    fresh = recompute_flags(stored[own], settings)
    merged = stored.merge(fresh, on="event_id", suffixes=("_stored", "_fresh"))
    for column in FLAG_COLUMNS:  # the stored derived columns of an event
        a = merged[f"{column}_stored"].astype("float64")
        b = merged[f"{column}_fresh"].astype("float64")
        bad = ~((a == b) | (a.isna() & b.isna()))
        for _, row in merged[bad].head(limit).iterrows():
            problems.append(
                f"event {row['event_id']}: {column} stored {row[f'{column}_stored']} "
                f"!= recomputed {row[f'{column}_fresh']}"
            )
    buckets = recompute_buckets(fresh, settings)
    scored, windows = score_windows(buckets, settings)
    problems += _bucket_mismatches(load_buckets(engine), scored, limit=limit)
    expected = users_from(fresh, buckets, windows)
    actual = load_user_risk(engine)
    if set(expected.index) != set(actual.index):
        problems.append(f"user sets differ: {len(actual)} stored vs {len(expected)} recomputed")
        return problems[:limit]
    actual = actual.loc[expected.index]
    for column in EXACT_USER_COLUMNS:
        for user_id in expected.index:
            stored_value, fresh_value = actual.at[user_id, column], expected.at[user_id, column]
            if not _same_value(stored_value, fresh_value):
                problems.append(
                    f"user {user_id}: {column} stored {stored_value!r} != recomputed {fresh_value!r}"
                )
    for column in FLOAT_USER_COLUMNS:
        for user_id in expected.index:
            stored_value, fresh_value = actual.at[user_id, column], expected.at[user_id, column]
            if not _same_float(stored_value, fresh_value):
                problems.append(
                    f"user {user_id}: {column} stored {stored_value!r} != recomputed {fresh_value!r}"
                )
    return problems[:limit]


def _bucket_mismatches(stored: pd.DataFrame, fresh: pd.DataFrame, *, limit: int) -> list[str]:
    if set(stored.index) != set(fresh.index):
        missing, extra = set(fresh.index) - set(stored.index), set(stored.index) - set(fresh.index)
        example = sorted(missing | extra)[:3]
        return [f"risk buckets differ: {len(missing)} missing, {len(extra)} not expected, e.g. {example}"]
    stored = stored.loc[fresh.index]
    problems = []
    for column in BUCKET_COLUMNS:
        bad = stored[column].to_numpy() != fresh[column].to_numpy()
        for key in fresh.index[bad][:limit]:
            stored_value, fresh_value = stored.at[key, column], fresh.at[key, column]
            problems.append(f"bucket {key}: {column} stored {stored_value!r} != recomputed {fresh_value!r}")
    return problems


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _same_value(a: Any, b: Any) -> bool:
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return bool(a == b)


def _same_float(a: Any, b: Any) -> bool:
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return bool(np.isclose(float(a), float(b), rtol=1e-12, atol=0.0))
