"""Producer output through a real Celery worker: the expected outcomes are the stored ones."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, create_engine, text

from config.settings import Settings
from contract.wire import broker_client, now_ms
from producer.delivery import Outcome
from producer.faults import LINE_FAULTS, FaultRates
from producer.generator import plan_run, run_generator
from producer.importer import ImportSummary, ParentCount, import_file
from producer.labels import LabelWriter
from producer.mapping import load_preset
from producer.publisher import Publisher
from producer.reconcile import account_raw_logs
from store.summaries import ledger_totals
from tests.producer.exports import (
    SourceEvent,
    otto_events,
    otto_lines,
    rapid_count,
    read_otto,
    read_retailrocket,
    retailrocket_csv,
    retailrocket_events,
)
from tests.support import REES46_SAMPLE, celery_worker, wait_until
from workers.reference import find_mismatches
from workers.replay import replay_quarantine

REES46 = REES46_SAMPLE

pytestmark = pytest.mark.integration


def ledger(settings: Settings, prefix: str) -> tuple[int, int, int, Counter[str]]:
    """Batches committed, events stored new, duplicates, and quarantine reasons for a batch prefix."""
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        batches, stored, duplicates = conn.execute(
            text(
                "select count(*), coalesce(sum(stored_new), 0), coalesce(sum(duplicates), 0)"
                " from batches where batch_id like :p"
            ),
            {"p": f"{prefix}%"},
        ).one()
        reasons = conn.execute(
            text("select reason, count(*) from quarantine where batch_id like :p group by reason"),
            {"p": f"{prefix}%"},
        ).all()
    engine.dispose()
    return batches, stored, duplicates, Counter(dict(reasons))


def drained(settings: Settings) -> bool:
    """Nothing waiting and nothing delivered but unacknowledged (acks come after the commit)."""
    client = redis.Redis.from_url(settings.redis_url or "")
    return client.llen(settings.queue_name) == 0 and client.hlen("unacked") == 0


def committed(settings: Settings, prefix: str, batches: int) -> bool:
    try:
        return ledger(settings, prefix)[0] == batches
    except Exception:  # the worker creates the schema on its first batch
        return False


def rapid_count_in_file(path: Path, rapid_gap_s: int = 2) -> int:
    """Rapid events counted straight from the CSV: per user, sorted times, gaps under 2 s."""
    times: dict[str, list[datetime]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            times[row["user_id"]].append(datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S UTC"))
    rapid = 0
    for moments in times.values():
        moments.sort()
        rapid += sum((b - a).total_seconds() < rapid_gap_s for a, b in pairwise(moments))
    return rapid


def number_of(settings: Settings, query: str, prefix: str) -> int:
    """One number from a query whose :p is the batch id prefix, as LIKE pattern."""
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        value = conn.execute(text(query), {"p": f"{prefix}%"}).scalar_one()
    engine.dispose()
    return int(value)


def stored_rapid(settings: Settings, prefix: str) -> int:
    return number_of(settings, "select count(*) from events where is_rapid and batch_id like :p", prefix)


def test_worker_outcomes_equal_the_expected_ones(live_settings: Settings) -> None:
    settings = live_settings.model_copy(update={"batch_size": 400})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    publisher = Publisher(broker_client(settings), settings)
    rates = FaultRates().with_rates({f.value: 0.01 for f in LINE_FAULTS})
    rates = rates.with_rates({"duplicate": 0.02, "out_of_order": 0.02})
    config = plan_run(settings, count=4000, seed=31, rates=rates)
    run = run_generator(config, publisher=publisher, labels=LabelWriter(settings.labels_path), progress=False)
    first = import_file(REES46, publisher, batch_size=2000, mapping=load_preset("rees46"), progress=False)

    with celery_worker(settings, concurrency=2):
        wait_until(lambda: committed(settings, "gen-", run.batches), timeout_s=120, what="run")
        wait_until(lambda: committed(settings, "imp-", first.batches), timeout_s=120, what="import")
        _, stored, duplicates, reasons = ledger(settings, "gen-")
        assert stored == run.expected[Outcome.STORED]
        assert duplicates == run.expected[Outcome.DUPLICATE]
        assert reasons == Counter({k: n for k, n in run.expected.items() if k not in set(Outcome)})

        with REES46.open(newline="", encoding="utf-8") as fh:
            rows = sum(1 for _ in csv.DictReader(fh))
        assert ledger(settings, "imp-")[1:] == (rows, 0, Counter())  # identical rows kept apart
        assert stored_rapid(settings, "imp-") == rapid_count_in_file(REES46)

        # The same file again: same batch ids, already committed, so nothing changes.
        again = import_file(REES46, publisher, batch_size=2000, mapping=load_preset("rees46"), progress=False)
        assert (again.first_batch, again.last_batch) == (first.first_batch, first.last_batch)
        wait_until(lambda: drained(settings), timeout_s=120, what="the re-import to be acked")
        assert ledger(settings, "imp-")[1:] == (rows, 0, Counter())


@dataclass(frozen=True)
class Expected:
    """What the ledger must hold for one imported file, derived from the file."""

    received: int
    stored: int
    reasons: Counter[str]
    rapid: int


def ledger_of(settings: Settings, prefix: str) -> tuple[int, int, int, int, Counter[str]]:
    """Batches, received, stored new, duplicates and quarantine reasons of one file's batches."""
    batches, stored, duplicates, reasons = ledger(settings, prefix)
    received = number_of(
        settings, "select coalesce(sum(received), 0) from batches where batch_id like :p", prefix
    )
    return batches, received, stored, duplicates, reasons


def expected_from(events: list[SourceEvent], *, extra: Counter[str]) -> Expected:
    """Purchases carry no price in these exports and their presets say so: every event is stored."""
    return Expected(len(events) + extra.total(), len(events), extra, rapid_count(events))


def purchases_of(settings: Settings, prefix: str) -> tuple[int, int]:
    """Stored purchases of a file's batches, and how many of them carry an amount."""
    where = "from events where action = 'purchase' and batch_id like :p"
    return (
        number_of(settings, f"select count(*) {where}", prefix),
        number_of(settings, f"select count(amount_cents) {where}", prefix),
    )


def high_band_share(engine: Engine, path: Path) -> float:
    """The share of a CSV file's users (its user_id column) whose stored current band is high."""
    with path.open(newline="", encoding="utf-8") as fh:
        users = {row["user_id"] for row in csv.DictReader(fh)}
    with engine.connect() as conn:
        bands = dict(conn.execute(text("select user_id, band from user_risk")).tuples().all())
    assert users <= bands.keys(), "every user of the file has a risk row"
    return sum(1 for user in users if bands[user] == "high") / len(users)


def test_public_exports_are_accounted_for_line_by_line(live_settings: Settings, tmp_path: Path) -> None:
    settings = live_settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    start_ms = now_ms() - 2 * 86_400_000  # recent: within the workers' past window
    retailrocket = tmp_path / "events.csv"
    retailrocket.write_text(
        retailrocket_csv(retailrocket_events(seed=3, users=range(1000, 1060), start_ms=start_ms), seed=3)
    )
    otto = tmp_path / "otto.jsonl"
    sessions = otto_lines(otto_events(seed=4, users=range(5000, 5050), start_ms=start_ms), seed=4)
    # A byte order mark, a session with no events (no line), one without a list (one line,
    # missing_field) and a form feed line (one line, not_json).
    malformed = ['{"session": 5998, "events": []}', '{"session": 5999}', "\x0c"]
    otto.write_text("\ufeff" + "\n".join(sessions[:5] + malformed + sessions[5:]) + "\n", encoding="utf-8")

    with REES46.open(newline="", encoding="utf-8") as fh:
        rees46_rows = sum(1 for _ in csv.DictReader(fh))
    expected = {
        REES46: Expected(rees46_rows, rees46_rows, Counter(), rapid_count_in_file(REES46)),
        retailrocket: expected_from(read_retailrocket(retailrocket), extra=Counter()),
        otto: expected_from(read_otto(otto), extra=Counter({"missing_field": 1, "not_json": 1})),
    }
    options: dict[Path, dict[str, Any]] = {
        REES46: {"mapping": load_preset("rees46")},
        retailrocket: {"mapping": load_preset("retailrocket")},
        otto: {"mapping": load_preset("otto"), "records": ("events",)},
    }
    publisher = Publisher(broker_client(settings), settings)

    def import_all() -> dict[Path, ImportSummary]:
        return {
            path: import_file(path, publisher, batch_size=150, progress=False, **options[path])
            for path in expected
        }

    first = import_all()
    assert first[otto].parents == ParentCount(parents=len(sessions) + 3, empty=1, malformed=2)
    with celery_worker(settings, concurrency=2):
        for path, summary in first.items():
            prefix = f"imp-{summary.digest[:12]}-"
            batches = summary.batches
            wait_until(lambda p=prefix, n=batches: committed(settings, p, n), timeout_s=120, what=path.name)
        figures = {}
        for path, want in expected.items():
            prefix = f"imp-{first[path].digest[:12]}-"
            figures[path] = ledger_of(settings, prefix)
            _, received, stored, duplicates, reasons = figures[path]
            assert (received, stored, duplicates, reasons) == (want.received, want.stored, 0, want.reasons)
            assert first[path].lines - first[path].blank_lines == want.received
            assert stored_rapid(settings, prefix) == want.rapid
        # Purchases without a price: stored with no amount, counted as purchases (REES46's have prices).
        sources = ((retailrocket, read_retailrocket, "transaction"), (otto, read_otto, "orders"))
        for path, read, kind in sources:
            purchases = sum(1 for e in read(path) if e.kind == kind)
            assert purchases and purchases_of(settings, f"imp-{first[path].digest[:12]}-") == (purchases, 0)
        engine = create_engine(settings.resolved_database_url)
        # Real shoppers: at most 1 % of the sample's users in the high band (issue 14's floor).
        assert high_band_share(engine, REES46) <= 0.01
        totals = ledger_totals(engine)
        assert totals.balanced and totals.received == sum(w.received for w in expected.values())
        assert account_raw_logs(settings.raw_dir, engine).missing == ()

        # The same files again: the same batch ids, already in the ledger, so nothing changes.
        again = import_all()
        assert {p: (s.first_batch, s.last_batch) for p, s in again.items()} == {
            p: (s.first_batch, s.last_batch) for p, s in first.items()
        }
        wait_until(lambda: drained(settings), timeout_s=120, what="the re-import to be acked")
        for path in expected:
            assert ledger_of(settings, f"imp-{first[path].digest[:12]}-") == figures[path]
        assert ledger_totals(engine) == totals
        engine.dispose()


def test_a_history_file_is_stored_with_historical_held_without_and_replayed_after_switching(
    live_settings: Settings, tmp_path: Path
) -> None:
    # RetailRocket's export is from 2015: older than the workers' past window of ten years.
    start_ms = int(datetime(2015, 6, 2, 5, 0, tzinfo=UTC).timestamp() * 1000)
    path = tmp_path / "events.csv"
    events = retailrocket_events(seed=5, users=range(2000, 2040), start_ms=start_ms)
    path.write_text(retailrocket_csv(events, seed=5))
    history = live_settings
    plain = live_settings.model_copy(
        update={
            "data_dir": tmp_path / "plain",
            "database_url": f"sqlite:///{tmp_path / 'plain.db'}",
            "queue_name": f"{live_settings.queue_name}-plain",
        }
    )
    summaries = {}
    for settings, historical in ((history, True), (plain, False)):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        publisher = Publisher(broker_client(settings), settings)
        summaries[historical] = import_file(
            path,
            publisher,
            batch_size=100,
            mapping=load_preset("retailrocket"),
            historical=historical,
            progress=False,
        )
    prefix = f"imp-{summaries[True].digest[:12]}-"
    assert summaries[True].mode.history_end_ms == max(e.ts_ms for e in events)
    purchases = sum(1 for e in events if e.kind == "transaction")
    for settings in (history, plain):
        with celery_worker(settings, concurrency=2, name=settings.queue_name[-5:]):
            wait_until(
                lambda s=settings: committed(s, prefix, summaries[True].batches), timeout_s=120, what="import"
            )
    # With the flag: every line stored, purchases without an amount, all of it exact.
    assert ledger_of(history, prefix)[1:] == (len(events), len(events), 0, Counter())
    assert purchases and purchases_of(history, prefix) == (purchases, 0)
    assert stored_rapid(history, prefix) == rapid_count(events)
    # Without it: every line held as too old.
    assert ledger_of(plain, prefix)[1:] == (len(events), 0, 0, Counter({"timestamp_too_old": len(events)}))

    plain_engine = create_engine(plain.resolved_database_url)
    report = replay_quarantine(plain_engine, settings=plain, historical=True)
    assert (report.stored_new, sum(report.still_failing.values())) == (len(events), 0)
    history_engine = create_engine(history.resolved_database_url)
    assert stored_events(plain_engine) == stored_events(history_engine)
    for settings, engine in ((history, history_engine), (plain, plain_engine)):
        totals = ledger_totals(engine)
        assert totals.balanced and totals.held == 0 and totals.stored_new == len(events)
        assert find_mismatches(engine, settings) == []
        with engine.connect() as conn:
            assert conn.scalar(text("select sum(purchases) from user_risk")) == purchases
            assert conn.scalar(text("select sum(spend_cents) from user_risk")) == 0
        engine.dispose()


def stored_events(engine: Engine) -> list[tuple[Any, ...]]:
    """Every stored event and its flags, wherever it came from."""
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "select event_id, user_id, ts_ms, action, amount_cents, gap_ms, is_rapid, is_steady,"
                    " session_no, burst_len from events order by event_id"
                )
            )
        ]
