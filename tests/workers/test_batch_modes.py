"""Batch modes on SQLite and PostgreSQL: history files, purchases without amounts, and the replay reason."""

from __future__ import annotations

import inspect
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console
from sqlalchemy import Engine, select

from cli.reports import print_status
from config.settings import Settings
from contract.wire import LIVE, BatchMode, RawBatch, now_ms
from dash_app.queries import fetch_latest_quarantined, fetch_quarantine_counts
from store.db import create_writer_engine, init_schema
from store.models import Batch, Event, UserRisk
from store.summaries import batch_outcomes, ledger_totals, quarantine_by_reason, quarantine_first_reasons
from tests.support import PostgresServer
from workers.ingest import ingest_batch
from workers.reference import find_mismatches
from workers.replay import replay_quarantine
from workers.tasks import ingest_batch_task

SUMMER_2015 = datetime(2015, 6, 2, 5, 0, tzinfo=UTC)
USERS = ("257597", "992329", "111016")


def old_lines(
    *, seed: int, count: int, purchase_amount: float | None = 25.0, start: datetime = SUMMER_2015
) -> list[str]:
    """RetailRocket-like events from start (2015): views, cart adds, purchases; gaps under and over 2 s."""
    rng = random.Random(seed)
    moment = start
    lines = []
    for n in range(count):
        moment += timedelta(milliseconds=rng.choice((300, 1_500, 2_500, 40_000)))
        action = rng.choices(("view", "add_to_cart", "purchase"), (70, 20, 10))[0]
        amount = purchase_amount if action == "purchase" else None
        doc = {
            "event_id": f"rr-{seed}-{n}",
            "user_id": rng.choice(USERS),
            "action": action,
            "timestamp": moment.isoformat(timespec="milliseconds"),
            "amount": amount,
        }
        lines.append(orjson.dumps(doc).decode())
    return lines


def newest_ms(lines: list[str]) -> int:
    return max(int(datetime.fromisoformat(orjson.loads(t)["timestamp"]).timestamp() * 1000) for t in lines)


def kinds(lines: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for text in lines:
        action = orjson.loads(text)["action"]
        found[action] = found.get(action, 0) + 1
    return found


def open_store(url: str) -> Engine:
    engine = create_writer_engine(url)
    init_schema(engine)
    return engine


def stored_events(engine: Engine) -> list[tuple[Any, ...]]:
    """Every stored event with its derived flags, without where it came from."""
    columns = (Event.event_id, Event.user_id, Event.ts_ms, Event.action, Event.amount_cents, Event.gap_ms)
    flags = (Event.is_rapid, Event.is_steady, Event.session_no, Event.burst_len)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*columns, *flags).order_by(Event.event_id))]


@pytest.fixture()
def other_database_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A second empty database on the same backend as database_url."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'other.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    with server.schema() as url:
        yield url


def test_a_live_message_is_what_an_earlier_release_sent_and_the_task_takes_one() -> None:
    live = RawBatch("b", "x", "s", 1)
    assert live.task_kwargs() == {"batch_id": "b", "raw_text": "x", "source": "s", "produced_ms": 1}
    history = RawBatch(
        "b", "x", "s", 1, mode=BatchMode(historical=True, history_end_ms=5, unpriced_purchases=True)
    )
    extra = set(history.task_kwargs()) - set(live.task_kwargs())
    assert extra == {"historical", "history_end_ms", "unpriced_purchases"}
    # The task takes a message without the new keys, and their defaults are a live batch.
    parameters = inspect.signature(ingest_batch_task.run).parameters
    assert extra <= set(parameters)
    defaults = BatchMode(
        *(parameters[name].default for name in ("historical", "history_end_ms", "unpriced_purchases"))
    )
    assert defaults == LIVE
    inspect.signature(ingest_batch_task.run).bind(**live.task_kwargs())


def test_a_history_is_stored_with_the_flag_held_without_it_and_replayed_after_switching(
    db_settings: Settings, other_database_url: str
) -> None:
    lines = old_lines(seed=1, count=60)
    history = BatchMode(historical=True, history_end_ms=newest_ms(lines))
    flagged = open_store(db_settings.resolved_database_url)
    outcome = ingest_batch(
        flagged, RawBatch("hist", "\n".join(lines), "import", mode=history), settings=db_settings
    )
    assert (outcome.received, outcome.stored_new, outcome.quarantined) == (60, 60, 0)
    with flagged.connect() as conn:
        ledger = conn.execute(select(Batch.historical, Batch.history_end_ms, Batch.unpriced_purchases)).one()
    assert tuple(ledger) == (True, history.history_end_ms, False)

    unflagged = open_store(other_database_url)
    outcome = ingest_batch(unflagged, RawBatch("hist", "\n".join(lines), "import"), settings=db_settings)
    assert (outcome.stored_new, outcome.quarantined) == (0, 60)
    assert quarantine_by_reason(unflagged) == {"timestamp_too_old": 60}

    assert replay_quarantine(unflagged, settings=db_settings).still_failing == {"timestamp_too_old": 60}
    report = replay_quarantine(unflagged, settings=db_settings, historical=True)
    assert (report.stored_new, report.duplicates, sum(report.still_failing.values())) == (60, 0, 0)
    assert stored_events(unflagged) == stored_events(flagged)
    for engine in (flagged, unflagged):
        assert find_mismatches(engine, db_settings) == []
        assert ledger_totals(engine).balanced and ledger_totals(engine).held == 0
        engine.dispose()


def test_held_lines_of_a_history_batch_replay_in_its_mode(db_settings: Settings) -> None:
    # Purchases without an amount in a history file: held, then replayed once the batch may have them.
    lines = old_lines(seed=2, count=40, purchase_amount=None)
    purchases = kinds(lines)["purchase"]
    engine = open_store(db_settings.resolved_database_url)
    history = BatchMode(historical=True, history_end_ms=newest_ms(lines))
    ingest_batch(engine, RawBatch("h", "\n".join(lines), "import", mode=history), settings=db_settings)
    assert quarantine_by_reason(engine) == {"purchase_without_amount": purchases}
    # Judged in its batch's mode (historical), so the only reason left is the amount.
    assert replay_quarantine(engine, settings=db_settings).still_failing == {
        "purchase_without_amount": purchases
    }
    report = replay_quarantine(engine, settings=db_settings, unpriced_purchases=True)
    assert report.stored_new == purchases and ledger_totals(engine).held == 0
    assert find_mismatches(engine, db_settings) == []
    engine.dispose()


def test_purchases_without_an_amount_count_as_purchases_with_no_spend(db_settings: Settings) -> None:
    recent = old_lines(seed=3, count=50, purchase_amount=None, start=datetime.now(UTC) - timedelta(days=2))
    engine = open_store(db_settings.resolved_database_url)
    mode = BatchMode(unpriced_purchases=True)
    outcome = ingest_batch(
        engine, RawBatch("u", "\n".join(recent), "import", mode=mode), settings=db_settings
    )
    assert (outcome.stored_new, outcome.quarantined) == (50, 0)
    per_user: dict[str, int] = {}
    for text in recent:
        doc = orjson.loads(text)
        if doc["action"] == "purchase":
            per_user[doc["user_id"]] = per_user.get(doc["user_id"], 0) + 1
    with engine.connect() as conn:
        risk = {r.user_id: (r.purchases, r.spend_cents) for r in conn.execute(select(UserRisk.__table__))}
        amounts = set(conn.scalars(select(Event.amount_cents).where(Event.action == "purchase")))
        unpriced = conn.scalar(select(Batch.unpriced_purchases))
    assert amounts == {None} and unpriced is True
    assert {u: figures for u, figures in risk.items() if figures[0]} == {
        u: (n, 0) for u, n in per_user.items()
    }
    assert find_mismatches(engine, db_settings) == []
    engine.dispose()


def test_a_replayed_line_shows_the_reason_it_fails_with_now_and_keeps_the_first(
    db_settings: Settings,
) -> None:
    # As in issue 16: lines held as too old that a replay finds failing as purchase_without_amount.
    lines = old_lines(seed=4, count=80, purchase_amount=None)
    purchases = kinds(lines)["purchase"]
    engine = open_store(db_settings.resolved_database_url)
    ingest_batch(engine, RawBatch("old", "\n".join(lines), "import"), settings=db_settings)
    assert quarantine_by_reason(engine) == {"timestamp_too_old": 80}

    report = replay_quarantine(engine, settings=db_settings, historical=True)
    assert report.still_failing == {"purchase_without_amount": purchases}
    assert report.stored_new == 80 - purchases
    # status, the dashboard and the early warning read the reason the line fails with now.
    assert quarantine_by_reason(engine) == {"purchase_without_amount": purchases}
    assert quarantine_first_reasons(engine) == {"purchase_without_amount": {"timestamp_too_old": purchases}}
    latest = fetch_latest_quarantined(engine=engine, limit=500)
    held = [r for r in latest.rows if r.released_ms is None]
    assert {(r.reason, r.first_reason) for r in held} == {("purchase_without_amount", "timestamp_too_old")}
    assert all(r.detail == "a purchase needs an amount" for r in held)
    counts = fetch_quarantine_counts(engine=engine, now_ms=now_ms()).per_minute
    assert counts.groupby("reason")["lines"].sum().to_dict() == {
        "purchase_without_amount": purchases,
        "timestamp_too_old": 80 - purchases,  # released by the replay, still in the chart of that minute
    }
    assert (
        batch_outcomes(engine, batch_ids=["old"]).reasons == counts.groupby("reason")["lines"].sum().to_dict()
    )
    console = Console(record=True, width=220)
    print_status(db_settings, console, dead_letters=0)
    [row] = [line for line in console.export_text().splitlines() if "purchase_without_amount" in line]
    assert f" {purchases} " in row and f"timestamp_too_old {purchases}" in row  # now, and first held as

    # A second replay that changes nothing leaves the reasons as they are; a fix releases the lines.
    replay_quarantine(engine, settings=db_settings, historical=True)
    assert quarantine_first_reasons(engine) == {"purchase_without_amount": {"timestamp_too_old": purchases}}
    fixed = replay_quarantine(engine, settings=db_settings, historical=True, unpriced_purchases=True)
    assert fixed.stored_new == purchases and quarantine_by_reason(engine) == {}
    assert find_mismatches(engine, db_settings) == []
    engine.dispose()
