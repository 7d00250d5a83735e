"""The early warning reads what the workers did with an import's first batches, and never waits idly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import Engine

from config.settings import Settings
from contract.wire import RawBatch, Reason, now_ms
from producer.early_warning import (
    LIVE_WINDOW_MS,
    REMEDIES,
    FirstBatchesWatch,
    dominant_failure,
)
from store.db import create_reader_engine, create_writer_engine, init_schema
from store.summaries import BatchOutcomes
from workers.ingest import ingest_batch


class FakeTime:
    """A monotonic clock that only sleeping moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def event_line(n: int, *, timestamp: str | None = None) -> str:
    moment = timestamp or (datetime.now(UTC) - timedelta(minutes=10) + timedelta(seconds=n)).isoformat()
    return orjson.dumps({"event_id": f"e{n}", "user_id": "u", "action": "view", "timestamp": moment}).decode()


def old_line(n: int) -> str:
    return event_line(n, timestamp=f"2015-06-02T05:02:{n % 60:02d}Z")


@pytest.fixture()
def store(db_settings: Settings) -> Engine:
    engine = create_writer_engine(db_settings.resolved_database_url)
    init_schema(engine)
    return engine


def watch_of(settings: Settings, time: FakeTime, **options: int) -> FirstBatchesWatch:
    engine = create_reader_engine(settings.resolved_database_url)
    return FirstBatchesWatch(engine, clock=time.clock, sleep=time.sleep, **options)  # type: ignore[arg-type]


def commit(store: Engine, settings: Settings, batch_id: str, lines: list[str]) -> None:
    ingest_batch(store, RawBatch(batch_id, "\n".join(lines), "t"), settings=settings)


def test_every_reason_has_a_remedy() -> None:
    assert set(REMEDIES) == set(Reason)
    assert "ECOMRISK_MAX_PAST_SKEW_DAYS" in REMEDIES[Reason.TIMESTAMP_TOO_OLD]
    assert "import it with --historical" in REMEDIES[Reason.TIMESTAMP_TOO_OLD]
    assert "replay --reason {reason} --historical" in REMEDIES[Reason.TIMESTAMP_TOO_OLD]
    assert "--unpriced-purchases" in REMEDIES[Reason.PURCHASE_WITHOUT_AMOUNT]
    assert "--default-zone" in REMEDIES[Reason.BAD_TIMESTAMP]
    assert "--timestamp-format" in REMEDIES[Reason.BAD_TIMESTAMP]
    assert "--assume-utc" in REMEDIES[Reason.BAD_TIMESTAMP]
    assert "--value action:RAW=OURS" in REMEDIES[Reason.UNKNOWN_ACTION]
    assert "--map" in REMEDIES[Reason.MISSING_FIELD] and "--records" in REMEDIES[Reason.MISSING_FIELD]
    assert "--map amount=" in REMEDIES[Reason.PURCHASE_WITHOUT_AMOUNT]


@pytest.mark.parametrize(
    ("failing", "received", "warns"),
    [(50, 100, False), (51, 100, True), (1, 1, True), (0, 10, False)],
)
def test_more_than_half_failing_for_one_reason_warns(failing: int, received: int, warns: bool) -> None:
    reasons = {"timestamp_too_old": failing} if failing else {}
    outcomes = BatchOutcomes(1, received, failing, reasons, {"timestamp_too_old": "too old"})
    warning = dominant_failure(outcomes)
    assert (warning is not None) is warns
    if warning is not None:
        assert (warning.reason, warning.failing, warning.received) == ("timestamp_too_old", failing, received)


def test_several_reasons_half_each_do_not_warn_and_the_largest_is_named() -> None:
    split = BatchOutcomes(2, 100, 100, {"not_json": 50, "missing_field": 50}, {})
    assert dominant_failure(split) is None
    mostly = BatchOutcomes(2, 100, 90, {"not_json": 30, "missing_field": 60}, {"missing_field": "no user_id"})
    warning = dominant_failure(mostly)
    assert warning is not None and warning.reason == "missing_field"
    text = warning.message()
    assert "60 of the first 100 lines (2 batches committed)" in text
    assert "missing_field (no user_id)" in text and "--map FIELD=COLUMN" in text


def test_the_first_batches_of_history_warn_once_with_the_setting(
    store: Engine, db_settings: Settings
) -> None:
    time = FakeTime()
    watch = watch_of(db_settings, time, min_lines=20)
    watch.published("imp-1")
    assert watch.poll() is None  # nothing committed yet
    commit(store, db_settings, "imp-1", [old_line(n) for n in range(30)])
    assert watch.poll() is None  # read moments ago: not again yet
    time.now += 1
    warning = watch.poll()
    assert warning is not None
    assert (warning.reason, warning.failing, warning.received, warning.batches) == (
        "timestamp_too_old",
        30,
        30,
        1,
    )
    assert "ECOMRISK_MAX_PAST_SKEW_DAYS" in warning.message()
    assert (
        "--historical" in warning.message() and "--reason timestamp_too_old --historical" in warning.message()
    )
    time.now += 1
    assert watch.poll() is None and watch.settle() is None  # said once
    assert time.slept == []


def test_healthy_first_batches_decide_without_a_warning(store: Engine, db_settings: Settings) -> None:
    time = FakeTime()
    watch = watch_of(db_settings, time, min_lines=20)
    watch.published("imp-1")
    commit(store, db_settings, "imp-1", [event_line(n) for n in range(25)] + ["nope"] * 5)
    assert watch.poll() is None and watch.decided


def test_too_few_lines_wait_for_more_batches_or_the_end(store: Engine, db_settings: Settings) -> None:
    time = FakeTime()
    watch = watch_of(db_settings, time, watched=3, min_lines=100)
    watch.published("imp-1")
    commit(store, db_settings, "imp-1", [old_line(n) for n in range(10)])
    assert watch.poll() is None and not watch.decided  # 10 lines say little; two batches may follow
    warning = watch.settle()  # the file had one batch: that is all there is
    assert warning is not None and warning.received == 10


def test_no_database_and_no_worker_cost_no_wait(db_settings: Settings) -> None:
    time = FakeTime()
    watch = watch_of(db_settings, time)  # no tables: nothing was ever committed
    watch.published("imp-1")
    assert watch.poll() is None
    assert watch.settle() is None
    assert time.slept == []


def test_a_stale_ledger_means_no_worker_and_no_wait(store: Engine, db_settings: Settings) -> None:
    commit(store, db_settings, "earlier", [event_line(1)])
    time = FakeTime()
    engine = create_reader_engine(db_settings.resolved_database_url)
    later = now_ms() + LIVE_WINDOW_MS + 1_000
    watch = FirstBatchesWatch(engine, clock=time.clock, sleep=time.sleep, wall_clock_ms=lambda: later)
    watch.published("imp-1")
    assert watch.settle() is None
    assert time.slept == []


def test_a_recent_commit_means_a_worker_is_at_work_so_the_end_waits(
    store: Engine, db_settings: Settings
) -> None:
    commit(store, db_settings, "earlier", [event_line(1)])
    time = FakeTime()
    watch = watch_of(db_settings, time)
    watch.published("imp-1")
    assert watch.settle(timeout_s=3) is None  # the worker never got to it
    assert 3 <= sum(time.slept) < 4
