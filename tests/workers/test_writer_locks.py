"""PostgreSQL writers: a batch waits for exactly the locks it needs, and every race ends exact.

Each race holds one batch's transaction open, starts a rival batch in a thread, waits until
PostgreSQL reports the rival as waiting on a lock, then commits the first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from config.settings import Settings
from contract.wire import RawBatch, now_ms
from store import writer
from store.db import create_writer_engine, init_schema
from store.models import Batch, Event, QuarantinedLine, UserRisk
from tests.support import BACKENDS, wait_until
from workers.ingest import BatchOutcome, IngestRules, ingest_batch, store_batch, validate_batch
from workers.preparation import prepare_batch
from workers.reference import find_mismatches

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
RIVAL = "ecomrisk-rival"  # application_name of the rival's connections


def line(
    event_id: str, user_id: str, seconds: float, action: str = "view", category: str | None = None
) -> str:
    moment = START + timedelta(seconds=seconds)
    return orjson.dumps(
        {
            "event_id": event_id,
            "user_id": user_id,
            "action": action,
            "timestamp": moment.isoformat(timespec="milliseconds"),
            "amount": 12.5 if action == "purchase" else None,
            "category": category,
        }
    ).decode()


@pytest.fixture()
def pg_settings(tmp_path: Path, postgres_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=postgres_url)


@pytest.fixture()
def engines(pg_settings: Settings) -> Iterator[tuple[Engine, Engine]]:
    """The first writer's engine, and the rival's, whose connections PostgreSQL can name."""
    url = pg_settings.resolved_database_url
    first = create_writer_engine(url)
    init_schema(first)
    rival = create_writer_engine(
        make_url(url).update_query_dict({"application_name": RIVAL}).render_as_string(hide_password=False)
    )
    yield first, rival
    first.dispose()
    rival.dispose()


def rival_is_waiting(engine: Engine) -> bool:
    with engine.connect() as conn:
        waiting = conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
                " AND wait_event_type = 'Lock'"
            ),
            {"name": RIVAL},
        )
    return bool(waiting)


@contextmanager
def open_batch(engine: Engine, settings: Settings, batch_id: str, lines: list[str]) -> Iterator[BatchOutcome]:
    """Store a batch in a transaction that commits when the block ends."""
    at = now_ms()
    raw = "\n".join(lines)
    rules = IngestRules.from_settings(settings)
    with engine.begin() as conn:
        yield store_batch(
            conn,
            prepare_batch(validate_batch(raw, settings=settings, at_ms=at), rules.sequence),
            RawBatch(batch_id, raw, "test"),
            rules=rules,
            at_ms=at,
        )


def start_rival(
    pool: ThreadPoolExecutor, engine: Engine, settings: Settings, batch_id: str, lines: list[str]
) -> Future[BatchOutcome]:
    return pool.submit(ingest_batch, engine, RawBatch(batch_id, "\n".join(lines), "t"), settings=settings)


def test_a_second_delivery_racing_the_first_returns_its_outcome(
    engines: tuple[Engine, Engine], pg_settings: Settings
) -> None:
    first, rival = engines
    lines = [line("d1", "u1", 0), line("d2", "u1", 1), "{broken"]
    with ThreadPoolExecutor(1) as pool:
        with open_batch(first, pg_settings, "dup", lines) as outcome:
            second = start_rival(pool, rival, pg_settings, "dup", lines)
            wait_until(
                lambda: rival_is_waiting(first), timeout_s=30, what="the rival waiting on the batch lock"
            )
        again = second.result(timeout=60)
    assert again.already_committed
    assert (again.received, again.stored_new, again.duplicates, again.quarantined) == (
        outcome.received,
        outcome.stored_new,
        outcome.duplicates,
        outcome.quarantined,
    )
    with first.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Batch)) == 1
        assert conn.scalar(select(func.count()).select_from(Event)) == 2


def test_a_batch_waits_for_the_users_it_shares_and_no_others(
    engines: tuple[Engine, Engine], pg_settings: Settings
) -> None:
    first, rival = engines
    with ThreadPoolExecutor(1) as pool:
        with open_batch(
            first, pg_settings, "late", [line(f"a{i}", "shared", 10 + 1.5 * i) for i in range(6)]
        ):
            # Another user goes through while the first batch is open (in another rollup minute,
            # hour and action/category: those few rows are shared by every batch that hits them) ...
            other = start_rival(
                pool, rival, pg_settings, "other", [line("o1", "other", -3600, "search", "toys")]
            )
            assert other.result(timeout=60).stored_new == 1
            # ... an earlier event of the same user waits, then corrects the committed tail.
            early = start_rival(pool, rival, pg_settings, "early", [line("b0", "shared", 9)])
            wait_until(lambda: rival_is_waiting(first), timeout_s=30, what="the rival waiting on its user")
            assert not early.done()
        assert early.result(timeout=60).stored_new == 1
    assert find_mismatches(first, pg_settings) == []
    with first.connect() as conn:
        assert conn.scalar(select(UserRisk.events).where(UserRisk.user_id == "shared")) == 7


def test_an_event_id_taken_meanwhile_by_another_user_is_quarantined(
    engines: tuple[Engine, Engine], pg_settings: Settings
) -> None:
    first, rival = engines
    with ThreadPoolExecutor(1) as pool:
        with open_batch(first, pg_settings, "owner", [line("same-id", "alice", 0)]):
            clash = start_rival(
                pool, rival, pg_settings, "clash", [line("same-id", "bob", 5), line("bob-2", "bob", 6)]
            )
            wait_until(
                lambda: rival_is_waiting(first), timeout_s=30, what="the rival waiting on the event id"
            )
        outcome = clash.result(timeout=60)
    assert (outcome.stored_new, outcome.duplicates, outcome.quarantined) == (1, 0, 1)
    with first.connect() as conn:
        assert conn.execute(select(QuarantinedLine.line_no, QuarantinedLine.reason)).all() == [
            (1, "conflicting_duplicate")
        ]
        assert conn.scalar(select(Event.user_id).where(Event.event_id == "same-id")) == "alice"
    assert find_mismatches(first, pg_settings) == []


def test_a_batch_of_many_users_locks_the_whole_store(
    engines: tuple[Engine, Engine], pg_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, rival = engines
    monkeypatch.setattr(writer, "MAX_USER_LOCKS", 2)
    many = [line(f"m{i}", f"user-{i}", i) for i in range(3)]
    with ThreadPoolExecutor(1) as pool:
        with open_batch(first, pg_settings, "many", many):
            unrelated = start_rival(pool, rival, pg_settings, "unrelated", [line("z1", "zoe", 1)])
            wait_until(lambda: rival_is_waiting(first), timeout_s=30, what="the rival waiting on the store")
        assert unrelated.result(timeout=60).stored_new == 1
    assert find_mismatches(first, pg_settings) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_four_threads_writing_the_same_users_match_the_offline_recompute(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    settings = Settings(data_dir=tmp_path / "data", database_url=url)
    engine = create_writer_engine(url)
    init_schema(engine)
    users = ["u1", "u2", "u3", "u4", "u5"]
    lines = [
        line(f"t{i:04d}", users[(i * 7) % 5], (i * 7919) % 7200 / 2, "purchase" if i % 9 == 0 else "view")
        for i in range(800)
    ]
    batches = [lines[i::20] for i in range(20)]  # every batch touches every user, across all times
    start = threading.Barrier(4)

    def writer(k: int) -> None:
        start.wait()
        for n in range(k, len(batches), 4):
            ingest_batch(engine, RawBatch(f"t{n}", "\n".join(batches[n]), "t"), settings=settings)
            # Every writer also redelivers a batch another writer owns.
            m = (n + 1) % len(batches)
            ingest_batch(engine, RawBatch(f"t{m}", "\n".join(batches[m]), "t"), settings=settings)

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(writer, k) for k in range(4)]:
            future.result(timeout=300)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Event)) == len(lines)
        assert conn.scalar(select(func.sum(Batch.stored_new))) == len(lines)
    assert find_mismatches(engine, settings) == []
    engine.dispose()
