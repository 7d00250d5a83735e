"""The no-loss invariant of a fault run, and how a run settles before it is checked.

Every raw line is stored, a duplicate or quarantined exactly once, no raw batch is missing from
the ledger, every valid event id is stored, no dead letter is left, and the stored flags and user
figures equal a from-scratch recompute.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis
from kombu.transport.redis import Channel
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select

from cli.reports import run_reconcile
from config.settings import Settings
from contract.wire import now_ms, queue_depth
from harness.fleet import wait_for
from producer.reconcile import RAW_SUFFIX, account_raw_logs, count_event_lines, iter_raw_batches
from store.db import create_reader_engine
from store.models import Batch, Event
from store.summaries import REPLAY_SOURCE, ledger_totals
from workers.deliveries import DeliveryBook
from workers.ingest import validate_batch

QUIET_POLLS = 8  # the queue must stay empty this many polls in a row to count as drained


@dataclass(frozen=True)
class Invariant:
    """The ledger against the raw logs, the events table, the dead letters and a recompute."""

    raw_batches: int
    raw_lines: int  # non-blank lines of every raw batch file
    batches: int
    distinct_batches: int
    received: int
    stored_new: int
    duplicates: int
    quarantined: int  # still held (a quarantine replay releases lines into stored or duplicates)
    missing_batches: int
    missing_lines: int
    stray_batches: int  # ledger rows without a raw batch file
    event_rows: int
    valid_ids: int  # distinct event ids in the raw logs that pass validation
    valid_ids_not_stored: int
    dead_letters: int
    mismatches: tuple[str, ...] = ()

    @property
    def produced(self) -> int:
        """Raw-log lines as `ecomrisk status` counts them: the ledger plus what is missing."""
        return self.received + self.missing_lines

    @property
    def accounted(self) -> int:
        """Lines that ended somewhere: stored, duplicate or quarantined."""
        return self.stored_new + self.duplicates + self.quarantined

    def problems(self) -> list[str]:
        """Every broken rule, as a sentence; empty when the invariant holds."""
        checks = [
            (self.missing_batches == 0, f"{self.missing_batches} raw batches missing from the ledger"),
            (self.produced == self.accounted, f"produced {self.produced} != accounted {self.accounted}"),
            (self.raw_lines == self.received, f"raw lines {self.raw_lines} != received {self.received}"),
            (self.batches == self.distinct_batches, "a batch id is in the ledger twice"),
            (self.stray_batches == 0, f"{self.stray_batches} ledger batches have no raw file"),
            (self.event_rows == self.stored_new, f"events {self.event_rows} != stored {self.stored_new}"),
            (self.valid_ids_not_stored == 0, f"{self.valid_ids_not_stored} valid event ids not stored"),
            (self.dead_letters == 0, f"{self.dead_letters} dead letters left"),
            (not self.mismatches, f"{len(self.mismatches)} differences from the recompute"),
        ]
        return [message for ok, message in checks if not ok] + list(self.mismatches)

    @property
    def ok(self) -> bool:
        return not self.problems()


def valid_event_ids(settings: Settings, paths: list[Path]) -> set[str]:
    """Event ids of every line in these raw batches that validates (as a worker would now)."""
    at_ms = now_ms()
    ids: set[str] = set()
    for path in paths:
        # As reconcile reads it: bytes, so that a CR inside a line stays inside it.
        raw_text = path.read_bytes().decode("utf-8", "surrogateescape").removesuffix("\n")
        ids.update(e.event_id for e in validate_batch(raw_text, settings=settings, at_ms=at_ms).events)
    return ids


def check_invariant(settings: Settings, engine: Engine | None = None) -> Invariant:
    """Measure every figure of the invariant against the raw logs, the store and Redis."""
    from workers.reference import find_mismatches  # pandas: loaded only for the check

    engine = engine or create_reader_engine(settings.resolved_database_url)
    paths = list(iter_raw_batches(settings.raw_dir))
    raw_ids = {p.name.removesuffix(RAW_SUFFIX) for p in paths}
    account = account_raw_logs(settings.raw_dir, engine)
    totals = ledger_totals(engine)
    with engine.connect() as conn:
        ledger_ids = set(conn.scalars(select(Batch.batch_id).where(Batch.source != REPLAY_SOURCE)))
        event_rows = int(conn.scalar(select(func.count()).select_from(Event)) or 0)
        stored_ids = set(conn.scalars(select(Event.event_id)))
    valid = valid_event_ids(settings, paths)
    letters = DeliveryBook.from_url(settings.redis_url).dead_letters() if settings.redis_url else {}
    return Invariant(
        raw_batches=len(paths),
        raw_lines=sum(count_event_lines(p) for p in paths),
        batches=totals.batches,
        distinct_batches=len(ledger_ids),
        received=totals.received,
        stored_new=totals.stored_new,
        duplicates=totals.duplicates,
        quarantined=totals.held,
        missing_batches=len(account.missing),
        missing_lines=account.missing_lines,
        stray_batches=len(ledger_ids - raw_ids),
        event_rows=event_rows,
        valid_ids=len(valid),
        valid_ids_not_stored=len(valid - stored_ids),
        dead_letters=len(letters),
        mismatches=tuple(find_mismatches(engine, settings)),
    )


def invariant_table(inv: Invariant) -> Table:
    """The invariant's figures and its verdict."""
    table = Table(title="Invariant", show_header=True)
    table.add_column("check")
    table.add_column("figures", justify="right")
    table.add_column("", justify="center")
    balanced = inv.produced == inv.accounted and inv.raw_lines == inv.received
    twice = inv.batches - inv.distinct_batches
    missing, all_stored = inv.missing_batches == 0, inv.valid_ids_not_stored == 0
    rows = [
        (
            "raw lines = stored + duplicates + quarantined",
            f"{inv.produced:,} = {inv.stored_new:,} + {inv.duplicates:,} + {inv.quarantined:,}",
            balanced,
        ),
        ("raw batches missing from the ledger", f"{inv.missing_batches:,} of {inv.raw_batches:,}", missing),
        ("batches in the ledger twice", f"{twice:,}", twice == 0),
        ("event rows = stored (new)", f"{inv.event_rows:,}", inv.event_rows == inv.stored_new),
        ("valid event ids not stored", f"{inv.valid_ids_not_stored:,} of {inv.valid_ids:,}", all_stored),
        ("dead letters left", f"{inv.dead_letters:,}", inv.dead_letters == 0),
        ("differences from the pandas recompute", f"{len(inv.mismatches):,}", not inv.mismatches),
    ]
    for name, figures, ok in rows:
        table.add_row(name, figures, "ok" if ok else "FAIL")
    return table


# --- waiting for the pipeline to settle --------------------------------------------------------------


def pending_messages(client: redis.Redis[bytes], queue: str) -> int:
    """Batches waiting in the queue, or delivered and not yet acknowledged (kombu's `unacked`)."""
    return queue_depth(client, [queue]) + int(client.hlen(Channel.unacked_key))


def wait_drained(settings: Settings, *, timeout_s: float) -> bool:
    """Wait until nothing is queued or unacknowledged for QUIET_POLLS polls in a row."""
    assert settings.redis_url
    client: redis.Redis[bytes] = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    quiet = 0

    def drained() -> bool:
        nonlocal quiet
        try:
            idle = pending_messages(client, settings.queue_name) == 0
        except redis.RedisError:
            idle = False
        quiet = quiet + 1 if idle else 0
        return quiet >= QUIET_POLLS

    return wait_for(drained, timeout_s=timeout_s)


def missing_batches(settings: Settings, engine: Engine) -> int:
    """Raw batches not (yet) in the ledger."""
    return len(account_raw_logs(settings.raw_dir, engine).missing)


@dataclass(frozen=True)
class Settled:
    """How the pipeline settled: what redelivery alone left missing, what reconcile re-sent."""

    missing_before_reconcile: int
    resent: int
    missing: int


def settle(settings: Settings, console: Console, *, timeout_s: float = 120.0) -> Settled:
    """Drain the queue, reconcile what never reached the ledger, and drain again."""
    engine = create_reader_engine(settings.resolved_database_url)
    wait_drained(settings, timeout_s=timeout_s)
    before = missing_batches(settings, engine)
    resent = 0
    if before:
        resent = run_reconcile(settings, console, dry_run=False)
        wait_for(lambda: missing_batches(settings, engine) == 0, timeout_s=timeout_s)
        wait_drained(settings, timeout_s=timeout_s)
    return Settled(before, resent, missing_batches(settings, engine))
