"""Quarantine replay on SQLite and PostgreSQL: lines that now pass are stored once and released."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, func, select

from config.settings import Settings
from contract.wire import RawBatch, Reason
from dash_app.queries import fetch_kpis
from store.db import create_writer_engine, init_schema
from store.models import Alert, Base, Batch, Event, QuarantinedLine, UserRisk
from store.summaries import REPLAY_SOURCE, ledger_totals, quarantine_by_reason
from tests.support import wait_until
from workers.ingest import ingest_batch, now_ms
from workers.reference import find_mismatches
from workers.replay import replay_quarantine

ECOMRISK = str(Path(sys.executable).with_name("ecomrisk"))
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
LONG_UA = "agent/" + "x" * 34  # 40 characters: over a limit of 16, under 64
HUGE_UA = "agent/" + "x" * 294  # 300 characters: over both
BOT_KEPT = {0, 4, 8, 12, 16, 20, 24, 28}  # 8 events, 7 gaps: too few to judge, so the bot starts low


def line(event_id: str, user_id: str, seconds: float, **fields: Any) -> str:
    doc = {
        "event_id": event_id,
        "user_id": user_id,
        "action": "view",
        "timestamp": (START + timedelta(seconds=seconds)).isoformat(timespec="milliseconds"),
        **fields,
    }
    return orjson.dumps(doc).decode()


def small_limits(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_field_chars": 16, "max_amount": 1000.0})


def raised(settings: Settings, **extra: Any) -> Settings:
    return settings.model_copy(update={"max_field_chars": 64, **extra})


def open_engine(settings: Settings) -> Engine:
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    return engine


def ingest_fixture(engine: Engine, settings: Settings) -> dict[str, int]:
    """Three batches whose quarantine holds fixable, duplicate, clashing and hopeless lines."""
    bot = [
        line(f"b{i:02d}", "bot", 3 * i, **({} if i in BOT_KEPT else {"user_agent": LONG_UA}))
        for i in range(30)
    ]
    repeated = line("r1", "u2", 7, user_agent=LONG_UA)
    first = [
        *bot[:15],
        repeated,
        repeated,  # the same long line twice: both quarantined, later one stored, one duplicate
        line("x1", "u2", 9, user_agent=LONG_UA),  # id later stored with other content: a clash
        line("h1", "u2", 11, user_agent=HUGE_UA),  # still too long after the fix
        line("k1", "u2", 13, action="teleport", user_agent=LONG_UA),  # then fails another rule
        line("p1", "u2", 15, action="purchase", amount=2000),  # amount_out_of_range
        "",
    ]
    second = [*bot[15:], line("x1", "u2", 10), repeated, line("v1", "u2", 20)]
    for n, lines in enumerate([first, second]):
        ingest_batch(engine, RawBatch(f"in-{n}", "\n".join(lines), "test"), settings=settings)
    return {"received": len(first) - 1 + len(second)}


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    with engine.connect() as conn:
        return {
            table.name: sorted(tuple(map(repr, row)) for row in conn.execute(select(table)))
            for table in Base.metadata.sorted_tables
        }


def held(engine: Engine) -> list[tuple[str, int, str]]:
    """(batch, line, current reason) of every held line."""
    return [row[:3] for row in held_with_history(engine)]


def held_with_history(engine: Engine) -> list[tuple[str, int, str, str]]:
    """(batch, line, current reason, first reason) of every held line."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                QuarantinedLine.batch_id,
                QuarantinedLine.line_no,
                QuarantinedLine.reason,
                QuarantinedLine.first_reason,
            )
            .where(QuarantinedLine.released_ms.is_(None))
            .order_by(QuarantinedLine.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


# After the field limit is raised: x1 clashes with a stored event, h1 is still too long, k1's action
# is unknown, and p1 (not replayed, or still over the amount limit) keeps its reason.
AFTER_RAISED_FIELDS = [
    ("in-0", 18, "conflicting_duplicate", "field_too_long"),
    ("in-0", 19, "field_too_long", "field_too_long"),
    ("in-0", 20, "unknown_action", "field_too_long"),
    ("in-0", 21, "amount_out_of_range", "amount_out_of_range"),
]


def assert_ledger_balanced(engine: Engine, received: int) -> None:
    totals = ledger_totals(engine)
    with engine.connect() as conn:
        events = conn.scalar(select(func.count()).select_from(Event))
        held_rows = conn.scalar(
            select(func.count()).select_from(QuarantinedLine).where(QuarantinedLine.released_ms.is_(None))
        )
    assert totals.balanced
    assert totals.received == received == totals.stored_new + totals.duplicates + totals.held
    assert totals.stored_new == events
    assert totals.held == held_rows == sum(quarantine_by_reason(engine).values())
    kpis = fetch_kpis(engine=engine, now_ms=now_ms())  # the dashboard counts the same way
    assert (kpis.events_stored, kpis.received, kpis.quarantined) == (events, received, held_rows)


def test_replay_stores_fixed_lines_once_and_releases_them(db_settings: Settings) -> None:
    before = small_limits(db_settings)
    engine = open_engine(before)
    counts = ingest_fixture(engine, before)
    assert find_mismatches(engine, before) == []
    with engine.connect() as conn:
        assert conn.scalar(select(UserRisk.band).where(UserRisk.user_id == "bot")) == "low"
    assert len(held(engine)) == 22 + 6 + 1  # 22 bot lines, 6 others in batch one, r1 again in two
    assert_ledger_balanced(engine, counts["received"])

    after = raised(before)
    report = replay_quarantine(engine, settings=after, reason=Reason.FIELD_TOO_LONG)

    # 22 bot lines and r1 stored; the two other copies of r1 are duplicates.
    assert (report.examined, report.stored_new, report.duplicates) == (28, 23, 2)
    assert report.still_failing == {"field_too_long": 1, "unknown_action": 1, "conflicting_duplicate": 1}
    assert len(report.batch_ids) == 1 and report.batch_ids[0].startswith("replay-")
    # Lines that still fail stay held with the reason they fail with now, and keep the first one.
    assert held_with_history(engine) == AFTER_RAISED_FIELDS
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event)) == 30 + 3  # bot, r1, x1, v1
        assert conn.scalar(select(Event.user_agent).where(Event.event_id == "x1")) is None
        replay_batch = conn.execute(select(Batch.__table__).where(Batch.source == REPLAY_SOURCE)).one()
        assert (replay_batch.received, replay_batch.stored_new, replay_batch.duplicates) == (25, 23, 2)
        assert replay_batch.quarantined == 0
        released = conn.scalars(
            select(QuarantinedLine.released_ms).where(QuarantinedLine.released_ms.is_not(None))
        ).all()
        bot_risk = conn.execute(select(UserRisk.__table__).where(UserRisk.user_id == "bot")).one()
        alerts = conn.scalars(select(Alert.user_id)).all()
    assert len(released) == 25 and len(set(released)) == 1
    # The released events corrected their stored neighbours: 3 s gaps, not 12 s, and the bot is caught.
    assert (bot_risk.events, bot_risk.gap_count, bot_risk.gap_sum_ms) == (30, 29, 29 * 3000)
    assert bot_risk.band == "high" and alerts == ["bot"]
    assert find_mismatches(engine, after) == []
    assert_ledger_balanced(engine, counts["received"])

    state = snapshot(engine)
    again = replay_quarantine(engine, settings=after, reason=Reason.FIELD_TOO_LONG)
    assert (again.examined, again.released, again.batch_ids) == (1, 0, [])  # h1: the one still too long
    assert snapshot(engine) == state


def test_reason_filters_and_other_reasons_wait_for_their_own_fix(db_settings: Settings) -> None:
    before = small_limits(db_settings)
    engine = open_engine(before)
    counts = ingest_fixture(engine, before)
    fixed = raised(before, max_amount=5000.0)

    report = replay_quarantine(engine, settings=fixed, reason=Reason.AMOUNT_OUT_OF_RANGE)
    assert (report.examined, report.stored_new, report.duplicates) == (1, 1, 0)
    assert [r for r in held(engine) if r[2] == "amount_out_of_range"] == []
    assert len(held(engine)) == 28  # every field_too_long line waits for its own replay
    assert find_mismatches(engine, fixed) == []
    assert_ledger_balanced(engine, counts["received"])

    everything = replay_quarantine(engine, settings=fixed)
    assert (everything.stored_new, everything.duplicates) == (23, 2)
    assert ledger_totals(engine).replay_batches == 2
    assert find_mismatches(engine, fixed) == []
    assert_ledger_balanced(engine, counts["received"])
    with engine.connect() as conn:
        purchase = conn.execute(
            select(Event.amount_cents, Event.batch_id).where(Event.event_id == "p1")
        ).one()
    assert purchase.amount_cents == 200_000 and purchase.batch_id.startswith("replay-")


def test_dry_run_reports_exactly_and_changes_nothing(db_settings: Settings) -> None:
    before = small_limits(db_settings)
    engine = open_engine(before)
    ingest_fixture(engine, before)
    state = snapshot(engine)
    after = raised(before, batch_size=7)  # several replay batches, later ones see earlier ones

    dry = replay_quarantine(engine, settings=after, dry_run=True)
    assert snapshot(engine) == state
    real = replay_quarantine(engine, settings=after)
    assert (dry.examined, dry.stored_new, dry.duplicates, dry.still_failing) == (
        real.examined,
        real.stored_new,
        real.duplicates,
        real.still_failing,
    )
    assert dry.batch_ids == real.batch_ids and len(real.batch_ids) == len(set(real.batch_ids)) > 1
    assert (real.stored_new, real.duplicates) == (23, 2)
    assert find_mismatches(engine, after) == []


def test_concurrent_replays_store_each_line_once(db_settings: Settings) -> None:
    before = small_limits(db_settings)
    engine = open_engine(before)
    counts = ingest_fixture(engine, before)
    after = raised(before)
    reports = []

    def run() -> None:
        own = create_writer_engine(after.resolved_database_url)
        reports.append(replay_quarantine(own, settings=after))
        own.dispose()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(r.stored_new for r in reports) == 23 and sum(r.duplicates for r in reports) == 2
    assert ledger_totals(engine).replay_batches == 1
    assert find_mismatches(engine, after) == []
    assert_ledger_balanced(engine, counts["received"])


class LiveWriter:
    """A thread that ingests small batches for the replay's users, as a live worker would, until stopped."""

    USERS = ("bot", "u2", "u3")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.batches = 0
        self.lines = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _batch(self, n: int, rng: random.Random) -> list[str]:
        # Each batch touches a different pair of users, so the order it takes their locks in varies.
        users = rng.sample(self.USERS, 2)
        return [line(f"w{n:04d}-{i}", rng.choice(users), rng.uniform(0, 90)) for i in range(6)]

    def _run(self) -> None:
        engine = create_writer_engine(self.settings.resolved_database_url)
        rng = random.Random(5)
        try:
            while not self.stop.is_set():
                lines = self._batch(self.batches, rng)
                ingest_batch(
                    engine,
                    RawBatch(f"live-{self.batches:04d}", "\n".join(lines), "test"),
                    settings=self.settings,
                )
                self.batches += 1
                self.lines += len(lines)
        except Exception as exc:  # a deadlock or serialization failure: recorded and asserted on
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            engine.dispose()

    def wait_for(self, batches: int) -> None:
        wait_until(lambda: self.batches >= batches or self.errors, timeout_s=60, what=f"{batches} batches")

    def __enter__(self) -> LiveWriter:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(60)


def test_replay_beside_a_live_writer_neither_deadlocks_nor_breaks_exactness(db_settings: Settings) -> None:
    before = small_limits(db_settings)
    engine = open_engine(before)
    counts = ingest_fixture(engine, before)
    after = raised(before, batch_size=3)  # ten replay batches: ten chances to interleave with the writer

    with LiveWriter(after) as writer:
        writer.wait_for(batches=2)
        dry = [replay_quarantine(engine, settings=after, dry_run=True) for _ in range(3)]
        writer.wait_for(batches=writer.batches + 2)
        real = replay_quarantine(engine, settings=after)
        writer.wait_for(batches=writer.batches + 2)
    print(f"the live writer stored {writer.batches} batches beside the replays")

    assert writer.errors == []
    # The writer's events have ids of their own, so the replay's counts do not depend on them.
    for report in [*dry, real]:
        assert (report.stored_new, report.duplicates) == (23, 2)
    assert [r.batch_ids for r in dry] == [real.batch_ids] * 3
    assert held_with_history(engine) == AFTER_RAISED_FIELDS
    assert find_mismatches(engine, after) == []
    assert_ledger_balanced(engine, counts["received"] + writer.lines)


def run_cli(settings: Settings, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOMRISK_")}
    env |= {
        "ECOMRISK_DATA_DIR": str(settings.data_dir),
        "ECOMRISK_DATABASE_URL": settings.resolved_database_url,
        **{f"ECOMRISK_{k.upper()}": v for k, v in overrides.items()},
    }
    return subprocess.run(
        [ECOMRISK, *args], env=env, cwd=settings.data_dir, capture_output=True, text=True, timeout=120
    )


FIXED = {"max_field_chars": "64", "max_amount": "1000"}  # the field limit raised, the amount limit not


def test_command_replays_and_status_stays_balanced(db_settings: Settings) -> None:
    before = small_limits(db_settings)
    db_settings.data_dir.mkdir(parents=True)
    ingest_fixture(open_engine(before), before)

    refused = run_cli(before, "quarantine", "replay", "--reason", "no_such_reason")
    assert refused.returncode == 2 and "no_such_reason" in refused.stderr

    dry = run_cli(before, "quarantine", "replay", "--dry-run", **FIXED)
    assert dry.returncode == 0, dry.stderr
    assert "would release 25 (23 stored, 2 duplicates)" in dry.stdout

    done = run_cli(before, "quarantine", "replay", "--reason", "field_too_long", **FIXED)
    assert done.returncode == 0, done.stderr
    assert "released 25 (23 stored, 2 duplicates) in 1 replay batch(es)" in done.stdout
    assert "unknown_action: 1" in done.stdout

    status = run_cli(before, "status")
    assert status.returncode == 0, status.stderr
    rows = {
        cells[0].strip(): cells[1].strip()
        for cells in (row.strip("│┃ ").split("│") for row in status.stdout.splitlines())
        if len(cells) == 2
    }
    assert rows["received"] == "39" and rows["stored (new)"] == "33" and rows["duplicates"] == "2"
    assert rows["quarantined (held)"] == "4" and rows["released by replay"] == "25"
    assert "balanced" in status.stdout and "UNBALANCED" not in status.stdout
