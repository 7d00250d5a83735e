"""The dashboard benchmark's synthetic store follows the product's rules: flags, aggregates, markers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import select

from bench.synthetic import ACTIONS, PURCHASE, SyntheticEvents, flag_events, seed_synthetic
from config.settings import Settings
from dash_app.queries import MINUTE_MS
from store.db import create_reader_engine
from store.models import ActivityRollup, Alert, Event, UserRisk
from workers.reference import find_mismatches
from workers.risk import RiskRules, UserAggregates, assess
from workers.sequence import SeqRow, SequenceRules, recompute_tail, window_peaks

RULES = st.builds(
    SequenceRules,
    rapid_gap_ms=st.integers(1, 5_000),
    session_gap_ms=st.integers(5_000, 60_000),
    window_ms=st.integers(1, 100_000),
    night_start_hour=st.integers(0, 11),
    night_end_hour=st.integers(12, 24),
    steady_tolerance_bp=st.integers(0, 2_000),
)
EDGES = SequenceRules.from_settings(Settings(velocity_window_s=2.0))
# Per user: (gap before each event, ms; action index; cents); the gaps make ties and session breaks.
USER = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 500, 1_999, 2_000, 2_001, 3_000, 4_999, 5_000, 30_000, 90_000]),
        st.integers(0, len(ACTIONS) - 1),
        st.integers(1, 50_000),
    ),
    min_size=1,
    max_size=30,
)


def synthetic(users: list[list[tuple[int, int, int]]], rules: SequenceRules) -> SyntheticEvents:
    """The users' events as SyntheticEvents, each user starting some hours after the one before."""
    counts = np.array([len(u) for u in users], dtype=np.int64)
    first = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    ts = np.concatenate([i * 19_000_000 + np.cumsum([gap for gap, _, _ in u]) for i, u in enumerate(users)])
    action = np.array([a for u in users for _, a, _ in u], dtype=np.int64)
    cents = np.array([c for u in users for _, _, c in u], dtype=np.int64)
    is_first = np.zeros(counts.sum(), dtype=bool)
    is_first[first] = True
    return SyntheticEvents(
        first=first,
        counts=counts,
        user=np.repeat(np.arange(len(users), dtype=np.int64), counts),
        ts_ms=ts.astype(np.int64),
        action=action,
        category=np.zeros_like(action),
        amount_cents=np.where(action == PURCHASE, cents, 0),
        flags=flag_events(ts.astype(np.int64), is_first, rules),
    )


@hyp_settings(max_examples=150, deadline=None)
@given(users=st.lists(USER, min_size=1, max_size=6), rules=RULES)
# Purchases exactly one window apart (its open end), then two in the same millisecond.
@example(users=[[(0, PURCHASE, 100), (2_000, PURCHASE, 200), (0, PURCHASE, 300)]], rules=EDGES)
def test_vectorised_flags_and_aggregates_equal_the_sequence_rules(
    users: list[list[tuple[int, int, int]]], rules: SequenceRules
) -> None:
    events = synthetic(users, rules)
    aggregates = events.aggregates(rules)
    f = events.flags
    for u, start in enumerate(events.first.tolist()):
        index = range(start, start + int(events.counts[u]))
        rows = [
            SeqRow(
                event_id=f"e{k:06d}",
                user_id=f"u{u}",
                ts_ms=int(events.ts_ms[i]),
                action=ACTIONS[int(events.action[i])].value,
                amount_cents=int(events.amount_cents[i]) if events.action[i] == PURCHASE else None,
                is_new=True,
            )
            for k, i in enumerate(index)
        ]
        touched, delta = recompute_tail(rows, None, rules)
        assert [(r.gap_ms, r.is_rapid, r.is_steady, r.session_no, r.burst_len) for r in touched] == [
            (int(f.gap_ms[i]) if f.has_gap[i] else None, bool(f.is_rapid[i]), bool(f.is_steady[i]),
             int(f.session_no[i]), int(f.burst_len[i]))
            for i in index
        ]  # fmt: skip
        purchases = [(r.ts_ms, r.amount_cents or 0) for r in rows if r.action == "purchase"]
        most, most_spend = window_peaks(purchases, rows[0].ts_ms, rules)
        # A new user's aggregates are the delta of their first batch, with the purchase window peaks.
        delta.max_purchases_window, delta.max_spend_window_cents = most, most_spend
        expected = UserAggregates(**{name: getattr(delta, name) for name in UserAggregates._fields})
        assert aggregates[u] == expected


def stricter(tmp_path: Path) -> Settings:
    """Other rules than the defaults: the seeding must read them, not carry its own."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'rules.db'}",
        rapid_gap_s=1.0,
        session_gap_s=600.0,
        night_start_hour=20,
        night_end_hour=24,
        band_elevated=40,
        band_high=60,
    )


@pytest.mark.parametrize("rules", ["default", "stricter"])
def test_a_store_seeded_in_full_equals_the_offline_recompute(
    rules: str, settings: Settings, tmp_path: Path
) -> None:
    chosen = settings if rules == "default" else stricter(tmp_path)
    url = chosen.resolved_database_url
    seed_synthetic(url, events=6_000, users=150, minutes=180, detail_users=150, seed=4, settings=chosen)

    engine = create_reader_engine(url)
    assert find_mismatches(engine, chosen) == []
    risk_rules = RiskRules.from_settings(chosen)
    with engine.connect() as conn:
        users = conn.execute(select(UserRisk.__table__)).mappings().all()
        alerts = conn.execute(select(Alert.__table__)).mappings().all()
        events = conn.execute(select(Event.ts_ms, Event.action, Event.category, Event.is_rapid)).all()
        rollup = conn.execute(select(ActivityRollup.__table__)).mappings().all()
    for user in users:
        aggregates = UserAggregates(**{name: user[name] for name in UserAggregates._fields})
        assert user["markers"] == assess(aggregates, risk_rules).markers_json()
    high = {u["user_id"]: u for u in users if u["band"] == "high"}
    assert high and {a["user_id"] for a in alerts} == set(high)
    for alert in alerts:
        user = high[alert["user_id"]]
        assert (alert["reasons"], alert["score"], alert["risk_kind"]) == (
            user["markers"],
            user["score"],
            user["risk_kind"],
        )
    cells: Counter[tuple[int, str, str]] = Counter()
    rapid: Counter[tuple[int, str, str]] = Counter()
    for ts, action, category, is_rapid in events:
        key = (ts - ts % MINUTE_MS, action, category or "")
        cells[key] += 1
        rapid[key] += is_rapid
    stored = {(r["minute_ms"], r["action"], r["category"]): (r["events"], r["rapid"]) for r in rollup}
    assert stored == {key: (n, rapid[key]) for key, n in cells.items()}
    engine.dispose()
