"""Replay held quarantined lines through validation with the current settings.

After a limit, rule or mapping is fixed, lines that now pass are stored through the normal
ingest path (`workers.ingest.store_batch`), so flags, user risk, rollups and alerts stay exact.
Each chunk of held lines is one replay batch in one write transaction: its events, its ledger
row (source "replay", batch id `replay-<sha256 of the released quarantine row ids>`) and the
`released_ms` of exactly the lines it let through commit together. Replay line k is the k-th
released quarantine row in id order, so stored events trace back to their quarantine rows.

- A line that still fails stays held, untouched: its reason and detail keep what happened at
  ingest (a line stored backslash-escaped because it was not UTF-8 must not turn into
  `not_json`); the report counts the reasons it fails with now.
- A line whose event id is stored already with the same content (or that repeats an earlier
  line of the replay) counts as a duplicate and leaves quarantine too; one whose id is stored
  with other content stays held (`conflicting_duplicate`).
- `batch_too_large` and `poison_batch` lines are judged line by line: the batch limit protects
  the queue, which replay does not use.
- Ledger: a replay batch records received = stored_new + duplicates for the lines it released
  and never quarantines, so `store.summaries.ledger_totals` counts its lines as released
  rather than received a second time: received = stored + duplicates + held.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection, Engine

from config.settings import Settings
from contract.wire import CleanEvent, RawBatch, Reason, now_ms
from store import writer
from store.db import write_transaction
from store.summaries import REPLAY_SOURCE
from workers.ingest import IngestRules, store_batch
from workers.preparation import prepare_batch
from workers.validation import Limits, LineRejected, ParsedBatch, validate_line


@dataclass(slots=True)
class ReplayReport:
    """What a replay did (or, with dry_run, would do)."""

    dry_run: bool = False
    examined: int = 0
    stored_new: int = 0
    duplicates: int = 0
    alerts: int = 0
    still_failing: Counter[str] = field(default_factory=Counter)
    batch_ids: list[str] = field(default_factory=list)

    @property
    def released(self) -> int:
        """Lines that left quarantine: stored new or counted as duplicates."""
        return self.stored_new + self.duplicates

    def summary(self) -> str:
        """A few plain lines for the command line."""
        verb = "would release" if self.dry_run else "released"
        failing = sum(self.still_failing.values())
        lines = [
            f"{self.examined:,} held lines examined; {verb} {self.released:,} "
            f"({self.stored_new:,} stored, {self.duplicates:,} duplicates) "
            f"in {len(self.batch_ids):,} replay batch(es), {self.alerts:,} alert(s)",
            f"{failing:,} still fail and stay held" + (", failing now with:" if failing else ""),
        ]
        lines += [f"  {reason}: {n:,}" for reason, n in self.still_failing.most_common()]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Job:
    """What every chunk of one replay shares."""

    limits: Limits
    rules: IngestRules
    batch_size: int
    reason: Reason | None
    at_ms: int


def replay_quarantine(
    engine: Engine,
    *,
    settings: Settings,
    reason: Reason | None = None,
    dry_run: bool = False,
    at_ms: int | None = None,
) -> ReplayReport:
    """Validate held lines again with the current settings; store and release those that pass.

    One write transaction per chunk of ECOMRISK_BATCH_SIZE held lines. A dry run does the same
    work in a single transaction and rolls it back, so its counts are exact; on PostgreSQL it
    holds the store-wide write lock throughout, so live batches wait for it (as on SQLite).
    """
    at_ms = at_ms if at_ms is not None else now_ms()
    job = _Job(
        Limits.from_settings(settings, now_ms=at_ms),
        IngestRules.from_settings(settings),
        settings.batch_size,
        reason,
        at_ms,
    )
    report = ReplayReport(dry_run=dry_run)
    after_id = 0
    if dry_run:
        with write_transaction(engine) as conn:
            while after_id >= 0:
                after_id = _replay_chunk(conn, job, report, after_id)
            conn.rollback()
    else:
        while after_id >= 0:
            with write_transaction(engine) as conn:
                after_id = _replay_chunk(conn, job, report, after_id)
    return report


def _replay_chunk(conn: Connection, job: _Job, report: ReplayReport, after_id: int) -> int:
    """Replay the held lines after after_id, one chunk; return the last id seen, or -1 at the end."""
    # PostgreSQL: the store-wide write lock before anything else, as a many-user batch takes it.
    # A dry run keeps every chunk's row and user locks until its rollback, which a live batch
    # could wait on while holding a user lock a later chunk needs: a deadlock. Held, no live
    # batch writes meanwhile, so the clash check below sees every event stored before this chunk.
    writer.lock_store(conn)
    rows = writer.read_held_lines(
        conn, after_id=after_id, limit=job.batch_size, reason=job.reason.value if job.reason else None
    )
    if not rows:
        return -1
    report.examined += len(rows)
    passing: list[tuple[int, str, CleanEvent]] = []
    for row_id, raw_text in rows:
        try:
            passing.append((row_id, raw_text, validate_line(raw_text, line_no=0, limits=job.limits)))
        except LineRejected as exc:
            report.still_failing[exc.reason.value] += 1
    accepted = _without_clashes(conn, passing, report)
    if accepted:
        _store_replay_batch(conn, accepted, report, job)
    return rows[-1][0]


def _without_clashes(
    conn: Connection, passing: list[tuple[int, str, CleanEvent]], report: ReplayReport
) -> list[tuple[int, str, CleanEvent]]:
    """Drop lines whose event id is stored, or replayed earlier, with other content."""
    known = writer.stored_hashes(conn, sorted({e.event_id for _, _, e in passing}))
    accepted = []
    for row_id, raw_text, event in passing:
        content = known.setdefault(event.event_id, event.content_hash)
        if content != event.content_hash:
            report.still_failing[Reason.CONFLICTING_DUPLICATE.value] += 1
            continue
        accepted.append((row_id, raw_text, event))
    return accepted


def _store_replay_batch(
    conn: Connection,
    accepted: list[tuple[int, str, CleanEvent]],
    report: ReplayReport,
    job: _Job,
) -> None:
    """Store the accepted lines as one replay batch and release their quarantine rows."""
    row_ids = [row_id for row_id, _, _ in accepted]
    digest = hashlib.sha256(",".join(map(str, row_ids)).encode()).hexdigest()
    batch = RawBatch(
        f"replay-{digest}", "\n".join(raw_text for _, raw_text, _ in accepted), source=REPLAY_SOURCE
    )
    events = [replace(event, line_no=n) for n, (_, _, event) in enumerate(accepted, start=1)]
    outcome = store_batch(
        conn,
        prepare_batch(ParsedBatch(events, []), job.rules.sequence),
        batch,
        rules=job.rules,
        at_ms=job.at_ms,
        store_locked=True,  # _replay_chunk took the store-wide lock exclusively
    )
    if outcome.already_committed:  # its rows were released in that same transaction
        return
    assert outcome.quarantined == 0, "clashes are filtered before the replay batch"
    writer.release_quarantine(conn, row_ids, at_ms=job.at_ms)
    report.stored_new += outcome.stored_new
    report.duplicates += outcome.duplicates
    report.alerts += outcome.alerts
    report.batch_ids.append(batch.batch_id)
