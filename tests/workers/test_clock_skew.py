"""Clock skew: skew limits at their edges, and mixed UTC offsets ordered on UTC for every rule."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from config.settings import Settings
from contract.wire import RawBatch, utc_ms
from store.db import create_writer_engine, init_schema
from store.models import Event, QuarantinedLine
from store.summaries import ledger_totals
from workers.ingest import ingest_batch
from workers.reference import find_mismatches, load_events
from workers.replay import replay_quarantine

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # the worker's clock in these tests
AT_MS = utc_ms(AT)
SKEW = {"max_future_skew_s": 90.0, "max_past_skew_days": 1.5}
FUTURE_EDGE_MS = AT_MS + 90_000
PAST_EDGE_MS = AT_MS - 129_600_000  # 1.5 days
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OFFSETS = ["Z", "+14:00", "-12:00", "+05:45", "-09:30", "+00:00", "-00:00"]


def zone(offset: str) -> timezone:
    if offset == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    hours, minutes = map(int, offset[1:].split(":"))
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def render(ts_ms: int, offset: str, *, micros: int = 0, timespec: str = "microseconds") -> str:
    """The instant ts_ms (+ micros) as ISO 8601 local time at this offset."""
    local = (EPOCH + timedelta(milliseconds=ts_ms, microseconds=micros)).astimezone(zone(offset))
    text = local.isoformat(timespec=timespec)
    if offset == "Z":
        return text.replace("+00:00", "Z")
    return text.replace("+00:00", offset)  # keeps "-00:00" as written


def line(event_id: str, timestamp: str, user_id: str = "u1", **fields: Any) -> str:
    doc = {"event_id": event_id, "user_id": user_id, "action": "view", "timestamp": timestamp, **fields}
    return orjson.dumps(doc).decode()


def skew_settings(workdir: Path) -> Settings:
    return Settings(data_dir=workdir / "data", database_url=f"sqlite:///{workdir / 'skew.db'}", **SKEW)


def open_engine(settings: Settings) -> Engine:
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    return engine


def outcomes(engine: Engine) -> dict[str, Any]:
    """event id -> stored ts_ms, or the reason its line is held in quarantine (ids are unique here)."""
    with engine.connect() as conn:
        found: dict[str, Any] = dict(conn.execute(select(Event.event_id, Event.ts_ms)).all())
        held = conn.execute(
            select(QuarantinedLine.raw_text, QuarantinedLine.reason).where(
                QuarantinedLine.released_ms.is_(None)
            )
        )
        for raw_text, reason in held:
            found[orjson.loads(raw_text)["event_id"]] = reason
    return found


def assert_balanced(engine: Engine, received: int) -> None:
    totals = ledger_totals(engine)
    assert totals.balanced and totals.received == received


@pytest.mark.parametrize("offset", OFFSETS)
def test_skew_limits_at_their_edges(tmp_path: Path, offset: str) -> None:
    settings = skew_settings(tmp_path)
    engine = open_engine(settings)
    cases: list[tuple[str, str, Any]] = [
        ("future-edge", render(FUTURE_EDGE_MS, offset), FUTURE_EDGE_MS),
        ("future-under", render(FUTURE_EDGE_MS - 1, offset), FUTURE_EDGE_MS - 1),
        ("future-over", render(FUTURE_EDGE_MS + 1, offset), "timestamp_in_future"),
        # Sub-millisecond digits are truncated first: 0.999 ms past the edge is on it.
        ("future-edge-us", render(FUTURE_EDGE_MS, offset, micros=999), FUTURE_EDGE_MS),
        (
            "future-over-ms",
            render(FUTURE_EDGE_MS + 1, offset, timespec="milliseconds"),
            "timestamp_in_future",
        ),
        ("past-edge", render(PAST_EDGE_MS, offset), PAST_EDGE_MS),
        ("past-inside", render(PAST_EDGE_MS + 1, offset), PAST_EDGE_MS + 1),
        ("past-over", render(PAST_EDGE_MS - 1, offset), "timestamp_too_old"),
        ("past-over-us", render(PAST_EDGE_MS - 1, offset, micros=999), "timestamp_too_old"),
        ("now", render(AT_MS, offset), AT_MS),
        ("far-future", "9999-12-31T23:59:59.999999-12:00", "timestamp_in_future"),
        ("far-future-east", "9999-12-31T23:59:59+14:00", "timestamp_in_future"),
        ("tomorrow", render(AT_MS + 86_400_000, offset), "timestamp_in_future"),
        ("ancient", "0001-01-01T00:00:00+14:00", "timestamp_too_old"),
        ("epoch", "1970-01-01T00:00:00Z", "timestamp_too_old"),
        ("last-year", render(AT_MS - 365 * 86_400_000, offset), "timestamp_too_old"),
        ("no-offset", render(AT_MS, offset)[:19], "bad_timestamp"),
    ]
    raw = "\n".join(line(name, ts) for name, ts, _ in cases)
    outcome = ingest_batch(engine, RawBatch("edges", raw, "t"), settings=settings, at_ms=AT_MS)
    assert outcomes(engine) == {name: expected for name, _, expected in cases}
    assert (outcome.stored_new, outcome.quarantined) == (6, 11)
    assert find_mismatches(engine, settings) == []
    assert_balanced(engine, len(cases))


def test_the_limits_follow_the_workers_clock(tmp_path: Path) -> None:
    settings = skew_settings(tmp_path)
    engine = open_engine(settings)
    early = line("early", render(FUTURE_EDGE_MS + 1, "+14:00"))
    ingest_batch(engine, RawBatch("a", early, "t"), settings=settings, at_ms=AT_MS)
    assert outcomes(engine) == {"early": "timestamp_in_future"}
    # One millisecond later the same line is on the edge; a replay then admits it.
    replay_quarantine(engine, settings=settings, at_ms=AT_MS + 1)
    assert outcomes(engine) == {"early": FUTURE_EDGE_MS + 1}
    assert_balanced(engine, 1)


def test_mixed_offsets_are_ordered_on_utc(tmp_path: Path) -> None:
    settings = skew_settings(tmp_path)
    engine = open_engine(settings)
    t0 = AT_MS - 3_600_000
    steps = [  # (UTC instant, offset); wall-clock text sorts in a different order
        (t0, "+14:00"),
        (t0 + 1_000, "-12:00"),
        (t0 + 2_000, "Z"),
        (t0 + 90_000, "-12:00"),
        (t0 + 90_000 + 1_800_000, "+14:00"),  # exactly the session gap later
        (t0 + 90_000 + 1_800_000, "-09:30"),  # the same instant again: a 0 s gap
    ]
    texts = [render(ts, off, timespec="milliseconds") for ts, off in steps]
    assert sorted(texts) != texts
    lines = [line(f"m{i}", text) for i, text in enumerate(texts)]
    # Delivered newest first, across two batches.
    for n, chunk in enumerate([lines[3:][::-1], lines[:3][::-1]]):
        ingest_batch(engine, RawBatch(f"m-{n}", "\n".join(chunk), "t"), settings=settings, at_ms=AT_MS)
    events = load_events(engine).sort_values(["ts_ms", "event_id"])
    assert list(events["ts_ms"]) == [ts for ts, _ in steps]
    assert list(events["gap_ms"].astype("float").fillna(-1)) == [-1, 1000, 1000, 88_000, 1_800_000, 0]
    assert list(events["is_rapid"]) == [False, True, True, False, False, True]
    assert list(events["session_no"]) == [1, 1, 1, 1, 2, 2]
    assert list(events["burst_len"]) == [0, 1, 2, 0, 0, 1]
    assert find_mismatches(engine, settings) == []
    assert_balanced(engine, len(lines))


def test_an_instant_resent_at_another_offset_is_a_duplicate(tmp_path: Path) -> None:
    settings = skew_settings(tmp_path)
    engine = open_engine(settings)
    instant = AT_MS - 60_000
    same = [line("d1", render(instant, offset)) for offset in OFFSETS]
    moved = line("d1", render(instant + 60_000, "-12:00"))  # same id, another instant
    outcome = ingest_batch(
        engine, RawBatch("d", "\n".join([*same, moved]), "t"), settings=settings, at_ms=AT_MS
    )
    assert (outcome.stored_new, outcome.duplicates, outcome.quarantined) == (1, len(OFFSETS) - 1, 1)
    with engine.connect() as conn:
        assert conn.execute(select(Event.event_id, Event.ts_ms)).all() == [("d1", instant)]
        held = conn.execute(select(QuarantinedLine.line_no, QuarantinedLine.reason)).all()
    assert held == [(len(OFFSETS) + 1, "conflicting_duplicate")]
    assert_balanced(engine, len(OFFSETS) + 1)


# Offsets in steps of 250 ms, 1 s and 30 min make exact 2 s and 30 min gaps likely.
instants = st.one_of(
    st.integers(0, 40).map(lambda k: k * 250),
    st.integers(0, 12).map(lambda k: k * 450_000),
    st.integers(0, 3 * 3_600_000),
).map(lambda offset: AT_MS - 4 * 3_600_000 + offset)


@st.composite
def skewed_runs(draw: st.DrawFn) -> tuple[list[tuple[str, str, int]], list[list[int]]]:
    """(event id, user, UTC ms) events, and how their lines, at random offsets, are split into batches."""
    n = draw(st.integers(1, 40))
    events = [(f"e{i:02d}", draw(st.sampled_from(["u1", "u2"])), draw(instants)) for i in range(n)]
    order = draw(st.permutations(range(n)))
    cuts = sorted(draw(st.lists(st.integers(1, max(n - 1, 1)), max_size=5, unique=True)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, n], strict=True) if order[a:b]]
    return events, batches


@hyp_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(skewed_runs(), st.data())
def test_any_mix_of_offsets_gives_the_flags_of_utc(
    run: tuple[list[tuple[str, str, int]], list[list[int]]], data: st.DataObject
) -> None:
    events, batches = run
    offsets = data.draw(st.lists(st.sampled_from(OFFSETS), min_size=len(events), max_size=len(events)))
    micros = data.draw(st.lists(st.integers(0, 999), min_size=len(events), max_size=len(events)))
    mixed = [
        line(eid, render(ts, off, micros=us), user_id=user)
        for (eid, user, ts), off, us in zip(events, offsets, micros, strict=True)
    ]
    in_utc = [line(eid, render(ts, "Z"), user_id=user) for eid, user, ts in events]
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        settings = skew_settings(Path(one))
        engine = open_engine(settings)
        for n, batch in enumerate(batches):
            raw = "\n".join(mixed[i] for i in batch)
            ingest_batch(engine, RawBatch(f"b{n}", raw, "t"), settings=settings, at_ms=AT_MS)
        reference = open_engine(skew_settings(Path(two)))
        ingest_batch(reference, RawBatch("z", "\n".join(in_utc), "t"), settings=settings, at_ms=AT_MS)
        stored = load_events(engine).sort_values("event_id").reset_index(drop=True)
        expected = load_events(reference).sort_values("event_id").reset_index(drop=True)
        assert dict(zip(stored["event_id"], stored["ts_ms"], strict=True)) == {e: ts for e, _, ts in events}
        # Each event keeps the offset it was written with; everything else is what UTC gives.
        written = {
            eid: zone(off).utcoffset(None) // timedelta(minutes=1)
            for (eid, _, _), off in zip(events, offsets, strict=True)
        }
        assert dict(zip(stored["event_id"], stored["utc_offset_min"], strict=True)) == written
        pd.testing.assert_frame_equal(
            stored.drop(columns="utc_offset_min"), expected.drop(columns="utc_offset_min")
        )
        assert find_mismatches(engine, settings) == []
        assert_balanced(engine, len(events))
        engine.dispose()
        reference.dispose()
