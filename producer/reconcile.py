"""Reconcile the raw logs with the ledger: every raw batch must reach the ledger in the end.

A batch can miss the ledger when Redis lost it (a restart without persistence), when the
producer was stopped mid-outage, when a power loss took the last SQLite commits, or when it
was dead-lettered. Its raw file is the source of truth, so re-sending it is always safe:
the ledger makes a second delivery of a committed batch a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select

from contract.wire import is_blank_line
from producer.publisher import Publisher, read_batch_mode
from store.models import Batch
from store.summaries import has_schema

RAW_SUFFIX = ".ndjson"


@dataclass(frozen=True, slots=True)
class RawAccount:
    """Raw logs against the ledger."""

    raw_batches: int
    committed_batches: int
    missing: tuple[Path, ...] = field(default=())
    missing_lines: int = 0


def iter_raw_batches(raw_dir: Path) -> Iterator[Path]:
    """Every complete raw batch file (temp files of an interrupted write are skipped)."""
    if raw_dir.is_dir():
        yield from sorted(p for p in raw_dir.glob(f"*{RAW_SUFFIX}") if not p.name.startswith("."))


def count_event_lines(path: Path) -> int:
    """Non-blank lines of a raw file: what a worker will count as received."""
    with open(path, "rb") as fh:
        return sum(1 for line in fh if not is_blank_line(line.decode("utf-8", "surrogateescape")))


def committed_batch_ids(engine: Engine) -> set[str]:
    """Every batch id in the ledger."""
    if not has_schema(engine):
        return set()
    with engine.connect() as conn:
        return set(conn.scalars(select(Batch.batch_id)))


def account_raw_logs(raw_dir: Path, engine: Engine) -> RawAccount:
    """Which raw batches never reached the ledger, and how many event lines they hold."""
    committed = committed_batch_ids(engine)
    raw = list(iter_raw_batches(raw_dir))
    missing = tuple(p for p in raw if p.name.removesuffix(RAW_SUFFIX) not in committed)
    return RawAccount(
        raw_batches=len(raw),
        committed_batches=len(raw) - len(missing),
        missing=missing,
        missing_lines=sum(count_event_lines(p) for p in missing),
    )


def resend_missing(account: RawAccount, publisher: Publisher) -> int:
    """Send every missing raw batch again, under its own batch id; returns how many."""
    for path in account.missing:
        # Bytes, not read_text: universal newlines would turn a CR inside a line into a new line.
        raw_text = path.read_bytes().decode("utf-8", "surrogateescape").removesuffix("\n")
        publisher.send(
            path.name.removesuffix(RAW_SUFFIX),
            raw_text,
            source="reconcile",
            produced_ms=int(path.stat().st_mtime * 1000),
            mode=read_batch_mode(path),  # a historical import stays historical
        )
    return len(account.missing)
