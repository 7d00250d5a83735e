"""Replay held quarantined lines through validation with the current settings.

After a limit, rule or mapping is fixed, lines that now pass are stored through the normal
ingest path (`workers.ingest.store_batch`), so flags, user risk, rollups and alerts stay exact.
Each chunk of held lines is one replay batch in one write transaction: its events, its ledger
row (source "replay", batch id `replay-<sha256 of the released quarantine row ids>`) and the
`released_ms` of exactly the lines it let through commit together. Replay line k is the k-th
released quarantine row in id order, so stored events trace back to their quarantine rows.

- A line is judged with the mode its batch was judged with (the ledger's `historical`,
  `history_end_ms`, `unpriced_purchases`); `historical` or `unpriced_purchases` of the replay
  turn that on for every line, e.g. for a file of history imported without `--historical`.
- A line that still fails stays held and now shows the reason it fails with (`reason`,
  `detail`); `first_reason` and `first_detail` keep what happened at ingest. A `bad_encoding`
  line is not judged again: what is held is a backslash-escaped copy of bytes that were not
  UTF-8, which would only ever fail as `not_json`.
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
from contract.wire import BatchMode, CleanEvent, RawBatch, Reason, now_ms
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

    settings: Settings
    rules: IngestRules
    reason: Reason | None
    at_ms: int
    forced: BatchMode  # what the replay turns on for every line, whatever its batch's mode
    _limits: dict[BatchMode, Limits] = field(default_factory=dict)  # per mode: a handful

    def mode_of(self, batch_mode: BatchMode) -> BatchMode:
        """The mode a held line is judged with: its batch's, with what the replay forces on top."""
        return BatchMode(
            historical=batch_mode.historical or self.forced.historical,
            history_end_ms=batch_mode.history_end_ms,
            unpriced_purchases=batch_mode.unpriced_purchases or self.forced.unpriced_purchases,
        )

    def limits(self, mode: BatchMode) -> Limits:
        """The limits of lines of this mode, at the replay's clock."""
        if mode not in self._limits:
            self._limits[mode] = Limits.from_settings(self.settings, now_ms=self.at_ms, mode=mode)
        return self._limits[mode]


def replay_quarantine(
    engine: Engine,
    *,
    settings: Settings,
    reason: Reason | None = None,
    dry_run: bool = False,
    at_ms: int | None = None,
    historical: bool = False,
    unpriced_purchases: bool = False,
) -> ReplayReport:
    """Validate held lines again with the current settings; store and release those that pass.

    Each line is judged in its batch's mode; historical and unpriced_purchases turn those on
    for every line. One write transaction per chunk of ECOMRISK_BATCH_SIZE held lines. A dry
    run does the same work in a single transaction and rolls it back, so its counts are exact;
    on PostgreSQL it holds the store-wide write lock throughout, so live batches wait for it
    (as on SQLite).
    """
    at_ms = at_ms if at_ms is not None else now_ms()
    job = _Job(
        settings,
        IngestRules.from_settings(settings),
        reason,
        at_ms,
        BatchMode(historical=historical, unpriced_purchases=unpriced_purchases),
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
        conn,
        after_id=after_id,
        limit=job.settings.batch_size,
        reason=job.reason.value if job.reason else None,
    )
    if not rows:
        return -1
    report.examined += len(rows)
    passing: list[tuple[writer.HeldLine, CleanEvent]] = []
    failing: list[tuple[writer.HeldLine, str, str]] = []  # with the reason and detail they fail with now
    for row in rows:
        if row.reason == Reason.BAD_ENCODING:  # the received bytes are gone (see the module doc)
            failing.append((row, row.reason, row.detail))
            continue
        limits = job.limits(job.mode_of(row.mode))
        try:
            passing.append((row, validate_line(row.raw_text, line_no=0, limits=limits)))
        except LineRejected as exc:
            failing.append((row, exc.reason.value, exc.detail[: limits.detail_chars]))
    accepted = _without_clashes(conn, passing, failing)
    report.still_failing.update(reason for _, reason, _ in failing)
    writer.update_held_reasons(
        conn,
        [
            (reason, detail, row.id)
            for row, reason, detail in failing
            if (reason, detail) != (row.reason, row.detail)
        ],
    )
    if accepted:
        _store_replay_batch(conn, accepted, report, job)
    return rows[-1].id


def _without_clashes(
    conn: Connection,
    passing: list[tuple[writer.HeldLine, CleanEvent]],
    failing: list[tuple[writer.HeldLine, str, str]],
) -> list[tuple[int, str, CleanEvent]]:
    """Drop lines whose event id is stored, or replayed earlier, with other content; they join failing."""
    known = writer.stored_hashes(conn, sorted({e.event_id for _, e in passing}))
    accepted = []
    for row, event in passing:
        content = known.setdefault(event.event_id, event.content_hash)
        if content != event.content_hash:
            detail = f"event_id {event.event_id[:80]!r} already has different content"
            failing.append((row, Reason.CONFLICTING_DUPLICATE.value, detail))
            continue
        accepted.append((row.id, row.raw_text, event))
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
        f"replay-{digest}",
        "\n".join(raw_text for _, raw_text, _ in accepted),
        source=REPLAY_SOURCE,
        mode=job.forced,  # what the replay turned on; each line's own batch keeps its mode
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
