"""Ingest one batch: validate and prepare outside the lock, then one write transaction through store.writer.

Events, their users' corrected tails, user risk, alerts, rollups, quarantine and the ledger row
commit together; a batch id already in the ledger is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from config.settings import Settings
from contract.wire import LIVE, BatchMode, CleanEvent, RawBatch, Reason, Rejection, now_ms
from store import reviews, writer
from store.db import write_transaction
from store.models import ActivityHours, ActivityMix, ActivityRollup
from workers.preparation import NewEvents, PreparedBatch, prepare_batch, rollup_counts
from workers.risk import (
    RISK_COLUMNS,
    Band,
    Peak,
    RiskKind,
    RiskRules,
    UserAggregates,
    merge_aggregates,
    risk_values,
)
from workers.sequence import (
    BUCKET_FIELDS,
    PURCHASE,
    Anchor,
    SeqRow,
    SequenceRules,
    UserDelta,
    add_purchase_peaks,
    purchase_windows,
    recompute_tail,
)
from workers.validation import Limits, ParsedBatch, parse_batch, reject_batch
from workers.windows import Rescored, StoredBucket, StoredUser, rescore_user


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What a batch did; received = stored_new + duplicates + quarantined."""

    batch_id: str
    received: int
    stored_new: int
    duplicates: int
    quarantined: int
    already_committed: bool = False
    alerts: int = 0


@dataclass(frozen=True, slots=True)
class IngestRules:
    """Everything a batch needs from settings, resolved once per process."""

    sequence: SequenceRules
    risk: RiskRules
    max_batch_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestRules:
        return cls(
            SequenceRules.from_settings(settings),
            RiskRules.from_settings(settings),
            settings.max_batch_bytes,
        )


def validate_batch(raw_text: str, *, settings: Settings, at_ms: int, mode: BatchMode = LIVE) -> ParsedBatch:
    """Validate a batch's lines as its mode says; an over-size batch has every line quarantined."""
    size = len(raw_text.encode("utf-8", "surrogatepass"))
    if size > settings.max_batch_bytes:
        return reject_batch(
            raw_text,
            Reason.BATCH_TOO_LARGE,
            f"batch of {size} bytes, limit {settings.max_batch_bytes}",
        )
    return parse_batch(raw_text, Limits.from_settings(settings, now_ms=at_ms, mode=mode))


def ingest_batch(
    engine: Engine, batch: RawBatch, *, settings: Settings, at_ms: int | None = None
) -> BatchOutcome:
    """Validate outside the lock, then store everything in one write transaction."""
    at_ms = at_ms if at_ms is not None else now_ms()
    rules = IngestRules.from_settings(settings)
    parsed = validate_batch(batch.raw_text, settings=settings, at_ms=at_ms, mode=batch.mode)
    prepared = prepare_batch(parsed, rules.sequence)
    with write_transaction(engine) as conn:
        return store_batch(conn, prepared, batch, rules=rules, at_ms=at_ms)


def quarantine_batch(
    engine: Engine, batch: RawBatch, *, reason: Reason, detail: str, at_ms: int
) -> BatchOutcome:
    """Dead-letter a batch: every line to quarantine with one reason, recorded in the ledger."""
    rejections = reject_batch(batch.raw_text, reason, detail).rejections
    with write_transaction(engine) as conn:
        committed = writer.claim_batch(conn, batch.batch_id)
        if committed is not None:
            return BatchOutcome(batch.batch_id, *committed, already_committed=True)
        writer.lock_users(conn, set())  # no events, but the store lock orders it against a replay
        writer.insert_quarantine(conn, rejections, batch_id=batch.batch_id, at_ms=at_ms)
        outcome = BatchOutcome(batch.batch_id, len(rejections), 0, 0, len(rejections))
        _record(conn, batch, outcome, at_ms=at_ms, max_event_ts_ms=None)
        return outcome


def store_batch(
    conn: Connection,
    prepared: PreparedBatch,
    batch: RawBatch,
    *,
    rules: IngestRules,
    at_ms: int,
    store_locked: bool = False,
) -> BatchOutcome:
    """Apply a prepared batch inside the caller's transaction; a committed batch id is a no-op.

    store_locked: the caller holds the store-wide lock exclusively, so no user lock is needed
    (a long dry run would otherwise pile up one lock per user until it rolls back).
    """
    committed = writer.claim_batch(conn, batch.batch_id)
    if committed is not None:
        return BatchOutcome(batch.batch_id, *committed, already_committed=True)
    if not store_locked:
        writer.lock_users(conn, set(prepared.unique.users))
    return writer.retry_id_races(conn, lambda: _store_new(conn, prepared, batch, rules=rules, at_ms=at_ms))


def _store_new(
    conn: Connection, prepared: PreparedBatch, batch: RawBatch, *, rules: IngestRules, at_ms: int
) -> BatchOutcome:
    """Store a batch that is not in the ledger yet; its users are locked."""
    new, duplicates, rejections = _split_new(conn, prepared, batch.raw_text, rules.sequence)
    alerts = 0
    if new.events:
        alerts = _apply_new_events(conn, new, rules=rules, batch_id=batch.batch_id, at_ms=at_ms)
    writer.insert_quarantine(conn, rejections, batch_id=batch.batch_id, at_ms=at_ms)
    outcome = BatchOutcome(
        batch.batch_id, prepared.parsed.received, len(new.events), duplicates, len(rejections), alerts=alerts
    )
    _record(
        conn, batch, outcome, at_ms=at_ms, max_event_ts_ms=max((e.ts_ms for e in new.events), default=None)
    )
    return outcome


def _record(
    conn: Connection, batch: RawBatch, outcome: BatchOutcome, *, at_ms: int, max_event_ts_ms: int | None
) -> None:
    writer.insert_ledger_row(
        conn,
        batch_id=batch.batch_id,
        source=batch.source,
        received=outcome.received,
        stored_new=outcome.stored_new,
        duplicates=outcome.duplicates,
        quarantined=outcome.quarantined,
        produced_ms=batch.produced_ms,
        at_ms=at_ms,
        max_event_ts_ms=max_event_ts_ms,
        mode=batch.mode,
    )


def _split_new(
    conn: Connection, prepared: PreparedBatch, raw_text: str, rules: SequenceRules
) -> tuple[NewEvents, int, list[Rejection]]:
    """New events, the duplicate count, and rejections incl. ids that clash with other content."""
    unique = prepared.unique
    stored = writer.stored_hashes(conn, [e.event_id for e in unique.events])
    duplicates = prepared.duplicates
    clashes = list(prepared.clashes)
    new = unique
    if stored:  # a redelivery, a replay or a repeated event: drop the stored ids from what was prepared
        gone: list[CleanEvent] = []
        for event in unique.events:
            stored_hash = stored.get(event.event_id)
            if stored_hash is None:
                continue
            gone.append(event)
            if stored_hash == event.content_hash:
                duplicates += 1
            else:
                clashes.append(event)
        new = unique.without(gone, rules)
    rejections = list(prepared.parsed.rejections)
    if clashes:
        lines = raw_text.split("\n")
        rejections += [
            Rejection(
                e.line_no,
                lines[e.line_no - 1],
                Reason.CONFLICTING_DUPLICATE,
                f"event_id {e.event_id[:80]!r} already has different content",
            )
            for e in clashes
        ]
    return new, duplicates, rejections


@dataclass(slots=True)
class _UserWork:
    """Everything loaded for one user of the batch."""

    rows: list[SeqRow]
    anchor: Anchor | None = None
    purchases: list[tuple[int, int]] = field(default_factory=list)
    buckets: dict[int, StoredBucket] = field(default_factory=dict)


def _load_user_work(
    conn: Connection, new: NewEvents, rules: IngestRules
) -> tuple[dict[str, _UserWork], dict[str, tuple[str, str, int]]]:
    """Per user: new rows plus the stored tail, the anchor, the look-back purchases and the buckets."""
    seq = rules.sequence
    span_ms = (rules.risk.window_buckets - 1) * seq.bucket_ms
    # A fresh list per user: a PostgreSQL pass that is rolled back must not leave tail rows behind.
    work = {user_id: _UserWork(list(user.rows)) for user_id, user in new.users.items()}
    old_keys: dict[str, tuple[str, str, int]] = {}  # tail event_id -> (action, category, was rapid)
    writer.stage_users(
        conn,
        [(user_id, user.t0, seq.bucket_of(user.t0) - span_ms) for user_id, user in new.users.items()],
    )
    for (
        event_id,
        user_id,
        ts_ms,
        action,
        category,
        amount_cents,
        offset_min,
        gap_ms,
        rapid,
        steady,
        session_no,
        burst,
        session_ms,
        awake_ms,
    ) in writer.read_tails(conn):
        work[user_id].rows.append(
            # Positional (is_new, offset, is_agent, gap, rapid, steady, session, burst, changed, session
            # and awake lengths): keyword arguments cost more, once per stored tail row.
            SeqRow(
                event_id,
                user_id,
                ts_ms,
                action,
                amount_cents,
                False,
                offset_min,
                False,
                gap_ms,
                bool(rapid),
                bool(steady),
                session_no,
                burst,
                False,
                session_ms,
                awake_ms,
            )
        )
        old_keys[event_id] = (action, category or "", int(bool(rapid)))
    for user_id, *anchor in writer.read_anchors(conn):
        work[user_id].anchor = Anchor.stored(*anchor)
    for user_id, ts_ms, amount_cents in writer.read_lookback_purchases(conn, seq.window_ms):
        work[user_id].purchases.append((ts_ms, amount_cents or 0))
    for user_id, bucket_ms, *figures, score, kind in writer.read_buckets(conn, BUCKET_FIELDS):
        work[user_id].buckets[bucket_ms] = StoredBucket(tuple(figures), score, kind)
    return work, old_keys


def _apply_new_events(
    conn: Connection, new: NewEvents, *, rules: IngestRules, batch_id: str, at_ms: int
) -> int:
    """Insert new events, correct their users' tails, buckets, risk and rollups; return alerts written."""
    seq = rules.sequence
    work, old_keys = _load_user_work(conn, new, rules)
    deltas: dict[str, UserDelta] = {}
    changed: list[SeqRow] = []
    for user_id, w in work.items():
        user = new.users[user_id]
        touched, delta = recompute_tail(w.rows, w.anchor, seq, new_totals=user.totals)
        tail_purchases = [(r.ts_ms, r.amount_cents or 0) for r in w.rows if r.action == PURCHASE]
        add_purchase_peaks(delta, purchase_windows(w.purchases + tail_purchases, user.t0, seq), seq)
        deltas[user_id] = delta
        changed += [row for row in touched if not row.is_new]
    _insert_events(conn, new, batch_id=batch_id, at_ms=at_ms)
    if changed:
        writer.update_event_flags(
            conn,
            [
                (
                    r.gap_ms,
                    r.is_rapid,
                    r.is_steady,
                    r.session_no,
                    r.burst_len,
                    r.session_ms,
                    r.awake_ms,
                    r.event_id,
                )
                for r in changed
            ],
        )
    alerts = _update_user_risk(conn, deltas, work, rules=rules, batch_id=batch_id, at_ms=at_ms)
    # Last: a few rollup rows are shared by every batch; on PostgreSQL their row locks last until commit.
    counts = rollup_counts(new, changed, old_keys)
    writer.add_counts(conn, ActivityRollup, ("minute_ms", "action", "category"), counts.minutes)
    writer.add_counts(conn, ActivityMix, ("action", "category"), counts.mix)
    writer.add_counts(conn, ActivityHours, ("weekday", "hour"), counts.hours)
    return alerts


def _insert_events(conn: Connection, new: NewEvents, *, batch_id: str, at_ms: int) -> None:
    rows = [
        (
            *columns,
            batch_id,
            at_ms,
            d.gap_ms,
            d.is_rapid,
            d.is_steady,
            d.session_no,
            d.burst_len,
            d.session_ms,
            d.awake_ms,
        )
        for columns, d in zip(new.columns, new.rows, strict=True)
    ]
    writer.insert_events(conn, rows)


# What a user's rescore reads of their stored row, and the order _risk_row writes a row in.
_STORED_RISK = (
    "band",
    "score",
    "risk_kind",
    "closed_peak_score",
    "closed_peak_kind",
    "closed_peak_ms",
    *UserAggregates._fields,
)
_RISK_ROW = (
    "user_id",
    *RISK_COLUMNS,
    "closed_peak_score",
    "closed_peak_kind",
    "closed_peak_ms",
    "markers",
    "updated_ms",
)


def _update_user_risk(
    conn: Connection,
    deltas: dict[str, UserDelta],
    work: dict[str, _UserWork],
    *,
    rules: IngestRules,
    batch_id: str,
    at_ms: int,
) -> int:
    """Fold each user's delta into their buckets and lifetime figures, rescore, record band crossings."""
    seq, risk = rules.sequence, rules.risk
    stored = {row[0]: row[1:] for row in writer.read_user_risk(conn, _STORED_RISK)}
    upserts: list[tuple[Any, ...]] = []
    buckets: list[tuple[Any, ...]] = []
    alerts: list[dict[str, Any]] = []
    # User order: concurrent PostgreSQL batches lock user_risk rows in one order.
    for user_id in sorted(deltas):
        delta = deltas[user_id]
        row = stored.get(user_id)
        old_band = row[0] if row is not None else None
        aggregates = merge_aggregates(row[6:] if row is not None else None, delta)
        before = None
        if row is not None:
            closed = None if row[3] is None else Peak(row[3], risk.band_of(row[3]), RiskKind(row[4]), row[5])
            before = StoredUser(seq.bucket_of(row[6 + _LAST_SEEN]), row[1], row[2], closed)
        assert delta.buckets is not None
        result = rescore_user(
            work[user_id].buckets,
            delta.buckets,
            before,
            latest_bucket_ms=seq.bucket_of(aggregates.last_seen_ms),
            bucket_ms=seq.bucket_ms,
            rules=risk,
            best_before=partial(_best_before, conn, user_id, risk),
        )
        buckets += [(user_id, key, *figures, score, kind) for key, figures, score, kind in result.buckets]
        upserts.append(_risk_row(user_id, aggregates, result, at_ms))
        current = result.current
        if current.band is Band.HIGH and old_band != Band.HIGH:
            alerts.append(
                {
                    "user_id": user_id,
                    "created_ms": at_ms,
                    "score": current.score,
                    "band": current.band.value,
                    "risk_kind": current.kind.value,
                    "reasons": current.markers_json(),
                    "batch_id": batch_id,
                }
            )
    if alerts:  # allow-listed users are scored as usual but raise no alert until the entry expires
        allowed = reviews.allow_listed_users(conn, (a["user_id"] for a in alerts), at_ms=at_ms)
        alerts = [a for a in alerts if a["user_id"] not in allowed]
    writer.upsert_buckets(conn, BUCKET_FIELDS, buckets)
    writer.upsert_user_risk(conn, _RISK_ROW, upserts)
    writer.insert_alerts(conn, alerts)
    return len(alerts)


_LAST_SEEN = UserAggregates._fields.index("last_seen_ms")


def _best_before(conn: Connection, user_id: str, rules: RiskRules, before_ms: int) -> Peak | None:
    found = writer.best_window_before(conn, user_id, before_ms)
    if found is None:
        return None
    score, kind, bucket_ms = found
    return Peak(score, rules.band_of(score), RiskKind(kind), bucket_ms)


def _risk_row(user_id: str, agg: UserAggregates, result: Rescored, at_ms: int) -> tuple[Any, ...]:
    """One user_risk row in _RISK_ROW order; markers as JSON text for the driver."""
    current = result.current
    markers = orjson.dumps(current.markers_json()).decode() if current.markers else "[]"
    closed = result.closed
    return (
        user_id,
        *risk_values(agg, current, result.peak),
        None if closed is None else closed.score,
        None if closed is None else closed.kind.value,
        None if closed is None else closed.bucket_ms,
        markers,
        at_ms,
    )
