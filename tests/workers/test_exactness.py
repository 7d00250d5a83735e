"""Property: stored flags and risk equal the offline recompute, whatever the split, order or duplicates."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from random import Random

import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from config.settings import Settings
from contract.wire import LIVE, BatchMode, RawBatch
from store.db import create_writer_engine, init_schema
from store.models import ActivityHours, ActivityMix, ActivityRollup, Batch, Event
from tests.support import BACKENDS, PostgresServer
from workers.ingest import ingest_batch
from workers.reference import find_mismatches, load_events

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=8)
# Steps on a 250 ms grid make exact 0.5 s, 2 s and 30 min gaps likely; whole hours hit the edges of
# buckets, windows and rests.
offsets = st.one_of(
    st.integers(0, 40).map(lambda k: k * 250),
    st.integers(0, 16).map(lambda k: k * 450_000),
    st.integers(0, 4 * 3_600_000),
)
# The zones a timestamp is written in: the same instant, another local time.
ZONES = [
    UTC,
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=8)),
]
AGENTS = [
    None,
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0",
    "python-requests/2.31",
    "HeadlessChrome/120.0",
]
# Small buckets and windows, short rests and low thresholds: windows slide, close and peak, and
# most markers fire at the sizes hypothesis draws.
PROPERTY_RULES = {
    "risk_bucket_s": 3600.0,
    "risk_window_s": 3 * 3600.0,
    "rest_gap_s": 2 * 3600.0,
    "marker_burst_threshold": 2,
    "marker_purchase_velocity_threshold": 2,
    "marker_night_sessions_threshold": 1,
    "marker_long_session_threshold": 0.25,
    "marker_rapid_share_threshold": 0.05,
    "marker_unsociable_hours_threshold": 0.05,
    "marker_stake_chasing_threshold": 0.05,
    "marker_machine_speed_threshold": 0.05,
    "marker_automation_agent_threshold": 0.05,
    "marker_login_flood_threshold": 0.05,
    "marker_regular_bets_threshold": 0.05,
    "chase_stake_multiple": 1.5,
    "band_elevated": 20,
    "band_high": 45,
}


# Purchases of an import without prices: some bets carry no amount, and a few stakes repeat, so
# the opening stake, chasing at 1.5x and ties in time are all likely.
UNPRICED_AMOUNTS = (
    st.none() | st.sampled_from([10.0, 15.0, 20.0, 14.99]) | st.integers(1, 40_000).map(lambda c: c / 100)
)


@st.composite
def event_lines(draw: st.DrawFn, *, unpriced: bool = False) -> list[str]:
    n = draw(st.integers(1, 60))
    lines = []
    for i in range(n):
        action = draw(st.sampled_from(["view", "search", "purchase", "add_to_cart", "login"]))
        hours = draw(st.integers(0, 3)) + 24 * draw(st.integers(0, 3))
        moment = BASE + timedelta(milliseconds=draw(offsets) + hours * 3_600_000)
        doc = {
            # Mixed case and punctuation: ties in time are broken by code point on every backend.
            "event_id": draw(st.sampled_from(["e", "E", "é", "e-", "e_"])) + f"{i:03d}",
            "user_id": draw(st.sampled_from(["u1", "u2", "u3"])),
            "action": action,
            "timestamp": moment.astimezone(draw(st.sampled_from(ZONES))).isoformat(timespec="milliseconds"),
            "amount": (
                draw(UNPRICED_AMOUNTS if unpriced else st.integers(1, 40_000).map(lambda c: c / 100))
                if action == "purchase"
                else None
            ),
            "category": draw(st.sampled_from(["books", None])),
            "user_agent": draw(st.sampled_from(AGENTS)),
        }
        lines.append(orjson.dumps(doc).decode())
    return lines


@st.composite
def betting_sessions(draw: st.DrawFn) -> list[str]:
    """One user betting in a few dense sessions: most events are bets, a few without a price."""
    lines = []
    t_ms = 0
    for i in range(draw(st.integers(2, 40))):
        t_ms += draw(st.sampled_from([0, 0, 250, 20_000, 20_000, 21_000, 40_000, 45 * 60_000]))
        action = draw(st.sampled_from(["purchase", "purchase", "purchase", "view"]))
        doc = {
            "event_id": f"b{draw(st.integers(0, 9))}{i:03d}",
            "user_id": "bettor",
            "action": action,
            "timestamp": (BASE + timedelta(milliseconds=t_ms)).isoformat(timespec="milliseconds"),
            "amount": draw(UNPRICED_AMOUNTS) if action == "purchase" else None,
        }
        lines.append(orjson.dumps(doc).decode())
    return lines


@st.composite
def deliveries(draw: st.DrawFn, *, unpriced: bool = False) -> tuple[list[str], list[list[str]]]:
    """Events, then batches: a random split, shuffled, with repeated events and repeated batches."""
    lines = draw(betting_sessions() if unpriced else event_lines())
    with_dupes = lines + draw(st.lists(st.sampled_from(lines), max_size=10))
    order = draw(st.permutations(with_dupes))
    cuts = sorted(draw(st.lists(st.integers(1, max(len(order) - 1, 1)), max_size=8, unique=True)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True) if order[a:b]]
    batches += draw(st.lists(st.sampled_from(batches), max_size=3))
    return lines, draw(st.permutations(batches))


@dataclass(frozen=True)
class Stores:
    """Makes one empty store per example: a SQLite file, or a schema on this PostgreSQL server."""

    postgres: PostgresServer | None

    def examples(self, sqlite_examples: int) -> hyp_settings:
        """Hypothesis settings: fewer examples on PostgreSQL, each of which pays for a schema."""
        n = sqlite_examples if self.postgres is None else max(1, sqlite_examples // 2)
        return hyp_settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])

    @contextmanager
    def fresh(self) -> Iterator[tuple[Settings, Engine]]:
        """Settings and a migrated writer engine on a new, empty database."""
        with tempfile.TemporaryDirectory() as tmp:
            if self.postgres is None:
                yield from _opened(Path(tmp), f"sqlite:///{Path(tmp) / 'p.db'}")
            else:
                with self.postgres.schema() as url:
                    yield from _opened(Path(tmp), url)


def _opened(workdir: Path, url: str) -> Iterator[tuple[Settings, Engine]]:
    engine = create_writer_engine(url)
    init_schema(engine)
    try:
        yield Settings(data_dir=workdir, database_url=url, **PROPERTY_RULES), engine
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def stores(request: pytest.FixtureRequest) -> Stores:
    """Fresh stores on SQLite, then on PostgreSQL."""
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    return Stores(postgres)


def ingest_all(batches: list[list[str]], settings: Settings, engine: Engine, mode: BatchMode = LIVE) -> None:
    seen: dict[str, int] = {}
    for lines in batches:
        key = "\n".join(lines)
        batch_id = f"b{seen.setdefault(key, len(seen))}"
        ingest_batch(engine, RawBatch(batch_id, key, "property", mode=mode), settings=settings)


def test_stored_state_equals_offline_recompute(stores: Stores) -> None:
    @stores.examples(60)
    @given(deliveries())
    def check(delivery: tuple[list[str], list[list[str]]]) -> None:
        lines, batches = delivery
        with stores.fresh() as (settings, engine):
            ingest_all(batches, settings, engine)
            assert find_mismatches(engine, settings) == []
            with engine.connect() as conn:
                assert conn.scalar(select(func.count()).select_from(Event)) == len(lines)
                received, stored, dupes, quarantined = conn.execute(
                    select(
                        func.sum(Batch.received),
                        func.sum(Batch.stored_new),
                        func.sum(Batch.duplicates),
                        func.sum(Batch.quarantined),
                    )
                ).one()
                assert stored == len(lines) and quarantined == 0
                assert received == stored + dupes
                rollup_events, rollup_rapid = conn.execute(
                    select(func.sum(ActivityRollup.events), func.sum(ActivityRollup.rapid))
                ).one()
                mix = dict(
                    ((a, c), (n, r))
                    for a, c, n, r in conn.execute(
                        select(
                            ActivityMix.action, ActivityMix.category, ActivityMix.events, ActivityMix.rapid
                        )
                    )
                )
                hours = dict(((d, h), n) for d, h, n in conn.execute(select(ActivityHours.__table__)))
                categories = dict(conn.execute(select(Event.event_id, Event.category)).all())
            events = load_events(engine)
        assert rollup_events == len(events)
        assert rollup_rapid == int(events["is_rapid"].sum())
        events["category"] = events["event_id"].map(categories).fillna("")
        expected_mix = events.groupby(["action", "category"])["is_rapid"].agg(["size", "sum"])
        assert mix == {k: (int(n), int(r)) for k, (n, r) in expected_mix.iterrows()}
        moment = pd.to_datetime(events["ts_ms"], unit="ms")
        local = moment + pd.to_timedelta(events["utc_offset_min"], unit="min")  # the events' own local time
        expected_hours = events.groupby([local.dt.dayofweek, local.dt.hour]).size()
        assert hours == {(int(d), int(h)): int(n) for (d, h), n in expected_hours.items()}

    check()


def test_bets_without_prices_and_late_bets_equal_offline_recompute(stores: Stores) -> None:
    """A tail continues its anchor's session bets, read from the purchase index, not from stored steps."""

    @stores.examples(40)
    @given(deliveries(unpriced=True))
    def check(delivery: tuple[list[str], list[list[str]]]) -> None:
        lines, batches = delivery
        with stores.fresh() as (settings, engine):
            ingest_all(batches, settings, engine, BatchMode(unpriced_purchases=True))
            assert find_mismatches(engine, settings) == []
            with engine.connect() as conn:
                assert conn.scalar(select(func.count()).select_from(Event)) == len(lines)

    check()


def test_a_session_opened_by_two_bets_in_one_millisecond_continues_from_the_lower_id(stores: Stores) -> None:
    """The anchor's opening stake is its session's first priced bet in (time, id) order, ties included."""

    def bet(event_id: str, t_ms: int, amount: float) -> str:
        moment = (BASE + timedelta(milliseconds=t_ms)).isoformat(timespec="milliseconds")
        doc = {"event_id": event_id, "user_id": "bettor", "action": "purchase", "timestamp": moment}
        return orjson.dumps({**doc, "amount": amount}).decode()

    # b0 opens the session at 5.00 (b1, at the same millisecond, sorts after it). Read as 1.00, the
    # later bets would be raised stakes; from 5.00 neither is.
    opening = [bet("b1", 0, 1.00), bet("b0", 0, 5.00)]
    later = [bet("b2", 20_000, 3.00), bet("b3", 40_000, 6.00)]
    with stores.fresh() as (settings, engine):
        ingest_all([opening, later], settings, engine)
        assert find_mismatches(engine, settings) == []


def test_final_state_does_not_depend_on_delivery(stores: Stores) -> None:
    @stores.examples(25)
    @given(deliveries(), st.randoms())
    def check(delivery: tuple[list[str], list[list[str]]], rnd: Random) -> None:
        lines, batches = delivery
        with stores.fresh() as (settings, split), stores.fresh() as (whole_settings, whole):
            ingest_all(batches, settings, split)
            ingest_all([rnd.sample(lines, len(lines))], whole_settings, whole)
            a = load_events(split).sort_values("event_id").reset_index(drop=True)
            b = load_events(whole).sort_values("event_id").reset_index(drop=True)
        assert a.equals(b)

    check()
