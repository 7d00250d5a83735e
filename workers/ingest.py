"""Store one validated batch atomically: events, flags, user risk, alerts, rollups, quarantine, ledger."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.exc import DBAPIError

from config.settings import Settings
from contract.wire import CleanEvent, Reason, Rejection, now_ms
from store.db import hold_locks, write_transaction
from store.models import (
    ActivityHours,
    ActivityMix,
    ActivityRollup,
    Alert,
    Batch,
    UserRisk,
)
from workers.risk import RISK_COLUMNS, Assessment, Band, RiskRules, UserAggregates, assess, risk_values
from workers.sequence import (
    PURCHASE,
    Anchor,
    SeqRow,
    SequenceRules,
    UserDelta,
    new_event_totals,
    recompute_tail,
    window_peaks,
)
from workers.validation import Limits, ParsedBatch, parse_batch, reject_batch

_CHUNK = 500  # bound parameters per statement stay far below every backend's limit
# A batch with more distinct users locks the whole store instead of each user, so no batch
# holds more than this many advisory locks (PostgreSQL's lock table is 6,400 by default).
MAX_USER_LOCKS = 512
# Passes of one batch on PostgreSQL when a new event id is committed meanwhile by another user's batch.
_ID_RACE_PASSES = 3
_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000
_AGGREGATE_FIELDS = UserAggregates._fields


def _marks(count: int) -> str:
    return ", ".join(["{p}"] * count)


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


def validate_batch(raw_text: str, *, settings: Settings, at_ms: int) -> ParsedBatch:
    """Validate a batch's lines; an over-size batch has every line quarantined."""
    size = len(raw_text.encode("utf-8", "surrogatepass"))
    if size > settings.max_batch_bytes:
        return reject_batch(
            raw_text,
            Reason.BATCH_TOO_LARGE,
            f"batch of {size} bytes, limit {settings.max_batch_bytes}",
        )
    return parse_batch(raw_text, Limits.from_settings(settings, now_ms=at_ms))


def ingest_batch(
    engine: Engine,
    *,
    settings: Settings,
    batch_id: str,
    raw_text: str,
    source: str,
    produced_ms: int | None = None,
    at_ms: int | None = None,
) -> BatchOutcome:
    """Validate outside the lock, then store everything in one write transaction."""
    at_ms = at_ms if at_ms is not None else now_ms()
    parsed = validate_batch(raw_text, settings=settings, at_ms=at_ms)
    batch = prepare_batch(parsed, IngestRules.from_settings(settings))
    with write_transaction(engine) as conn:
        return store_batch(
            conn,
            batch=batch,
            raw_text=raw_text,
            batch_id=batch_id,
            source=source,
            produced_ms=produced_ms,
            at_ms=at_ms,
        )


def quarantine_whole_batch(
    engine: Engine,
    *,
    batch_id: str,
    raw_text: str,
    source: str,
    produced_ms: int | None,
    reason: Reason,
    detail: str,
    at_ms: int,
) -> BatchOutcome:
    """Dead-letter a batch: every line to quarantine with one reason, recorded in the ledger."""
    with write_transaction(engine) as conn:
        return store_batch(
            conn,
            batch=prepare_batch(reject_batch(raw_text, reason, detail[:500]), None),
            raw_text=raw_text,
            batch_id=batch_id,
            source=source,
            produced_ms=produced_ms,
            at_ms=at_ms,
        )


class EventIdRace(Exception):
    """A new event's id was committed meanwhile by a batch that did not hold this user's lock."""


@dataclass(slots=True)
class UserEvents:
    """One user's new events in a batch, with what they add whatever the stored history."""

    rows: list[SeqRow]
    t0: int  # the earliest new timestamp: the user's tail starts there
    totals: UserDelta


@dataclass(frozen=True, slots=True)
class NewEvents:
    """Events to insert, in id order, and everything about them that needs no stored state."""

    events: list[CleanEvent]
    columns: list[tuple[Any, ...]]  # each event's own columns, the first of _INSERT_EVENTS
    rows: list[SeqRow]  # each event's sequence row, derived fields filled in under the lock
    users: dict[str, UserEvents]
    minutes: Counter[tuple[int, str, str]]  # (minute, action, category) -> events
    hours: Counter[tuple[int, int]]  # (weekday, hour) -> events

    def without(self, gone: list[CleanEvent], rules: SequenceRules) -> NewEvents:
        """These new events less some of them (found stored already); only their users are redone."""
        gone_ids = {e.event_id for e in gone}
        kept = [i for i, e in enumerate(self.events) if e.event_id not in gone_ids]
        users = dict(self.users)
        for user_id in {e.user_id for e in gone}:
            rows = [r for r in users.pop(user_id).rows if r.event_id not in gone_ids]
            if rows:
                users[user_id] = UserEvents(rows, min(r.ts_ms for r in rows), new_event_totals(rows, rules))
        minutes, hours = self.minutes.copy(), self.hours.copy()
        minutes.subtract(_minute_key(e) for e in gone)
        hours.subtract(_hour_key(e.ts_ms) for e in gone)
        return NewEvents(
            [self.events[i] for i in kept],
            [self.columns[i] for i in kept],
            [self.rows[i] for i in kept],
            users,
            +minutes,  # unary plus drops the keys that fell to zero
            +hours,
        )


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A validated batch with the work that needs no stored state done before the write lock."""

    parsed: ParsedBatch
    rules: IngestRules | None  # None only for a batch without events
    unique: NewEvents  # the first event of each id in the batch
    duplicates: int  # repeats of an id with the same content within the batch
    clashes: list[CleanEvent]  # repeats of an id with other content within the batch


def prepare_batch(parsed: ParsedBatch, rules: IngestRules | None) -> PreparedBatch:
    """Deduplicate the batch and precompute its new events' rows, per-user totals and rollup counts."""
    first: dict[str, CleanEvent] = {}
    clashes: list[CleanEvent] = []
    duplicates = 0
    for event in parsed.events:
        seen = first.get(event.event_id)
        if seen is None:
            first[event.event_id] = event
        elif seen.content_hash == event.content_hash:
            duplicates += 1
        else:
            clashes.append(event)
    assert rules is not None or not first, "a batch with events needs rules"
    unique = collect_new_events(list(first.values()), rules.sequence if rules else None)
    return PreparedBatch(parsed, rules, unique, duplicates, clashes)


def collect_new_events(events: list[CleanEvent], rules: SequenceRules | None) -> NewEvents:
    """NewEvents of events with distinct ids; rules are needed when there is any event."""
    # Id order: two batches that insert the same ids wait for each other in one order, never a cycle.
    events = sorted(events, key=lambda e: e.event_id)
    columns = []
    rows = []
    users: dict[str, list[SeqRow]] = defaultdict(list)
    minutes: Counter[tuple[int, str, str]] = Counter()
    hours: Counter[tuple[int, int]] = Counter()
    for e in events:
        ts_ms = e.ts_ms
        columns.append(
            (
                e.event_id,
                e.user_id,
                e.session_id,
                e.action,
                e.category,
                e.product,
                e.amount_cents,
                ts_ms,
                e.user_agent,
                e.content_hash,
                e.line_no,
            )
        )
        row = SeqRow(e.event_id, e.user_id, ts_ms, e.action, e.amount_cents, is_new=True)
        rows.append(row)
        users[e.user_id].append(row)
        minutes[_minute_key(e)] += 1
        hours[_hour_key(ts_ms)] += 1
    by_user = {}
    if users:
        assert rules is not None, "new events need sequence rules"
        by_user = {
            user_id: UserEvents(
                user_rows, min(r.ts_ms for r in user_rows), new_event_totals(user_rows, rules)
            )
            for user_id, user_rows in users.items()
        }
    return NewEvents(events, columns, rows, by_user, minutes, hours)


def _minute_key(e: CleanEvent) -> tuple[int, str, str]:
    return (e.ts_ms - e.ts_ms % _MINUTE_MS, e.action, e.category or "")


def _hour_key(ts_ms: int) -> tuple[int, int]:
    hour = ts_ms // _HOUR_MS
    return ((hour // 24 + 3) % 7, hour % 24)  # 1970-01-01 was a Thursday (weekday 3)


def store_batch(
    conn: Connection,
    *,
    batch: PreparedBatch,
    raw_text: str,
    batch_id: str,
    source: str,
    produced_ms: int | None,
    at_ms: int,
    store_locked: bool = False,
) -> BatchOutcome:
    """Apply a prepared batch inside the caller's transaction; a committed batch id is a no-op.

    store_locked: the caller holds the store-wide lock exclusively, so no user lock is needed
    (a long dry run would otherwise pile up one lock per user until it rolls back).
    """
    # A second delivery racing the first waits here, then finds its ledger row.
    hold_locks(conn, "batch", [batch_id])
    done = conn.execute(select(Batch).where(Batch.batch_id == batch_id)).first()
    if done is not None:
        row = done[0] if isinstance(done[0], Batch) else done
        return BatchOutcome(
            batch_id,
            row.received,
            row.stored_new,
            row.duplicates,
            row.quarantined,
            already_committed=True,
        )
    # Every read of a user's stored events or risk row below happens under that user's lock.
    if not store_locked:
        _lock_users(conn, set(batch.unique.users))
    args = (batch, raw_text, batch_id, source, produced_ms, at_ms)
    if conn.dialect.name != "postgresql":
        return _store_new(conn, *args)
    for _ in range(_ID_RACE_PASSES - 1):
        try:
            with conn.begin_nested():
                return _store_new(conn, *args)
        except EventIdRace:
            continue  # the rival batch has committed: this pass quarantines its ids as clashes
    return _store_new(conn, *args)


def _lock_users(conn: Connection, user_ids: set[str]) -> None:
    """On PostgreSQL, hold the write lock of each user, or of the whole store for a batch of many users."""
    if len(user_ids) > MAX_USER_LOCKS:
        hold_locks(conn, "store", ["all"])
        return
    hold_locks(conn, "store", ["all"], shared=True)
    hold_locks(conn, "user", user_ids)


def _store_new(
    conn: Connection,
    batch: PreparedBatch,
    raw_text: str,
    batch_id: str,
    source: str,
    produced_ms: int | None,
    at_ms: int,
) -> BatchOutcome:
    """Store a batch that is not in the ledger yet; its users are locked."""
    new, duplicates, rejections = _split_new(conn, batch, raw_text)
    alerts = 0
    if new.events:
        assert batch.rules is not None, "a batch with events needs rules"
        alerts = _apply_new_events(conn, new, rules=batch.rules, batch_id=batch_id, at_ms=at_ms)
    _insert_quarantine(conn, rejections, batch_id=batch_id, at_ms=at_ms)
    outcome = BatchOutcome(
        batch_id, batch.parsed.received, len(new.events), duplicates, len(rejections), alerts=alerts
    )
    conn.execute(
        insert(Batch),
        {
            "batch_id": batch_id,
            "source": source[:256],
            "received": outcome.received,
            "stored_new": outcome.stored_new,
            "duplicates": outcome.duplicates,
            "quarantined": outcome.quarantined,
            "produced_ms": produced_ms,
            # Just before commit, so produced_ms -> committed_ms is the whole end-to-end latency.
            "committed_ms": max(at_ms, now_ms()),
            "max_event_ts_ms": max((e.ts_ms for e in new.events), default=None),
        },
    )
    return outcome


def _split_new(
    conn: Connection, batch: PreparedBatch, raw_text: str
) -> tuple[NewEvents, int, list[Rejection]]:
    """New events, the duplicate count, and rejections incl. ids that clash with other content."""
    unique = batch.unique
    stored = _stored_hashes(conn, [e.event_id for e in unique.events])
    duplicates = batch.duplicates
    clashes = list(batch.clashes)
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
        assert batch.rules is not None, "a batch with events needs rules"
        new = unique.without(gone, batch.rules.sequence)
    rejections = list(batch.parsed.rejections)
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


def _stored_hashes(conn: Connection, event_ids: list[str]) -> dict[str, str]:
    if conn.dialect.name == "postgresql":
        # One array parameter: with an IN list of hundreds, the generic plan that a prepared
        # statement switches to after five runs scans the whole table.
        query = "SELECT event_id, content_hash FROM events WHERE event_id = ANY(%s)"
        return dict(fetch_many(conn, query, [event_ids]))
    found: dict[str, str] = {}
    for start in range(0, len(event_ids), _CHUNK):
        chunk = event_ids[start : start + _CHUNK]
        query = f"SELECT event_id, content_hash FROM events WHERE event_id IN ({_marks(len(chunk))})"  # noqa: S608
        found.update(fetch_many(conn, query, chunk))
    return found


# A per-connection scratch table of (user, earliest new timestamp): fixed SQL, compiled once.
# On PostgreSQL its user_id shares the "C" collation of events.user_id, so joins use that index.
_STARTS_DDL = {
    dialect: text(
        f"CREATE TEMP TABLE IF NOT EXISTS batch_starts (user_id VARCHAR(128){collate} PRIMARY KEY,"
        " t0 BIGINT NOT NULL)"
    )
    for dialect, collate in (("sqlite", ""), ("postgresql", ' COLLATE "C"'))
}
_STARTS_CLEAR = text("DELETE FROM batch_starts")


def _per_batch_user(columns: str, table: str, condition: str) -> dict[str, str]:
    """SQL per dialect: rows of `table` (alias e) matching each row of batch_starts (alias b).

    Both forms make batch_starts the outer loop, so each user is an index lookup. Otherwise
    SQLite (no statistics for the temp table) and PostgreSQL (a hash join) scan the whole
    table, a cost that grows with it. OFFSET 0 keeps PostgreSQL from flattening the LATERAL
    subquery back into that join.
    """
    # Only fixed identifiers and conditions from this module are spliced in; values are bound.
    lateral = f"LATERAL (SELECT * FROM {table} e WHERE {condition} OFFSET 0) e"  # noqa: S608
    return {
        "sqlite": f"SELECT {columns} FROM batch_starts b CROSS JOIN {table} e WHERE {condition}",  # noqa: S608
        "postgresql": f"SELECT {columns} FROM batch_starts b CROSS JOIN {lateral}",  # noqa: S608
    }


_TAIL_SQL = _per_batch_user(
    "e.event_id, e.user_id, e.ts_ms, e.action, e.category, e.amount_cents,"
    " e.gap_ms, e.is_rapid, e.is_steady, e.session_no, e.burst_len",
    "events",
    "e.user_id = b.user_id AND e.ts_ms >= b.t0",
)
_ANCHOR_SQL = (
    "SELECT b.user_id, e.ts_ms, e.gap_ms, e.session_no, e.burst_len FROM batch_starts b JOIN events e"
    " ON e.event_id = (SELECT p.event_id FROM events p WHERE p.user_id = b.user_id AND p.ts_ms < b.t0"
    " ORDER BY p.ts_ms DESC, p.event_id DESC LIMIT 1)"
)
_LOOKBACK_SQL = _per_batch_user(
    "e.user_id, e.ts_ms, e.amount_cents",
    "events",
    "e.user_id = b.user_id AND e.action = 'purchase' AND e.ts_ms < b.t0 AND e.ts_ms > b.t0 - {p}",
)


@dataclass(slots=True)
class _UserWork:
    """Everything loaded for one user of the batch."""

    rows: list[SeqRow]
    anchor: Anchor | None = None
    purchases: list[tuple[int, int]] = field(default_factory=list)


def _load_user_work(
    conn: Connection, new: NewEvents, window_ms: int
) -> tuple[dict[str, _UserWork], dict[str, tuple[str, str, int]]]:
    """Per user: new rows plus the stored tail, the anchor and the look-back purchases."""
    # A fresh list per user: a PostgreSQL pass that is rolled back must not leave tail rows behind.
    work = {user_id: _UserWork(list(user.rows)) for user_id, user in new.users.items()}
    old_keys: dict[str, tuple[str, str, int]] = {}  # tail event_id -> (action, category, was rapid)
    conn.execute(_STARTS_DDL[conn.dialect.name])
    conn.execute(_STARTS_CLEAR)
    execute_many(
        conn,
        "INSERT INTO batch_starts (user_id, t0) VALUES ({p}, {p})",
        [(user_id, user.t0) for user_id, user in new.users.items()],
    )
    dialect = conn.dialect.name
    for (
        event_id,
        user_id,
        ts_ms,
        action,
        category,
        amount_cents,
        gap_ms,
        rapid,
        steady,
        session_no,
        burst,
    ) in fetch_many(conn, _TAIL_SQL[dialect]):
        work[user_id].rows.append(
            SeqRow(
                event_id,
                user_id,
                ts_ms,
                action,
                amount_cents,
                is_new=False,
                gap_ms=gap_ms,
                is_rapid=bool(rapid),
                is_steady=bool(steady),
                session_no=session_no,
                burst_len=burst,
            )
        )
        old_keys[event_id] = (action, category or "", int(bool(rapid)))
    for user_id, *anchor in fetch_many(conn, _ANCHOR_SQL):
        work[user_id].anchor = Anchor(*anchor)
    for user_id, ts_ms, amount_cents in fetch_many(conn, _LOOKBACK_SQL[dialect], [window_ms]):
        work[user_id].purchases.append((ts_ms, amount_cents or 0))
    return work, old_keys


def _apply_new_events(
    conn: Connection, new: NewEvents, *, rules: IngestRules, batch_id: str, at_ms: int
) -> int:
    """Insert new events, correct their users' tails, aggregates, rollups; return alerts written."""
    seq = rules.sequence
    work, old_keys = _load_user_work(conn, new, seq.window_ms)
    deltas: dict[str, UserDelta] = {}
    changed: list[SeqRow] = []
    for user_id, w in work.items():
        user = new.users[user_id]
        touched, delta = recompute_tail(w.rows, w.anchor, seq, new_totals=user.totals)
        tail_purchases = [(r.ts_ms, r.amount_cents or 0) for r in w.rows if r.action == PURCHASE]
        delta.max_purchases_window, delta.max_spend_window_cents = window_peaks(
            w.purchases + tail_purchases, user.t0, seq
        )
        deltas[user_id] = delta
        changed += [row for row in touched if not row.is_new]
    _insert_events(conn, new, batch_id=batch_id, at_ms=at_ms)
    if changed:
        execute_many(
            conn,
            "UPDATE events SET gap_ms = {p}, gap_s = {p}, is_rapid = {p}, is_steady = {p},"
            " session_no = {p}, burst_len = {p} WHERE event_id = {p}",
            [
                (r.gap_ms, _seconds(r.gap_ms), r.is_rapid, r.is_steady, r.session_no, r.burst_len, r.event_id)
                for r in changed
            ],
        )
    alerts = _update_user_risk(conn, deltas, rules=rules.risk, batch_id=batch_id, at_ms=at_ms)
    # Last: a few rollup rows are shared by every batch; on PostgreSQL their row locks last until commit.
    _update_rollups(conn, new, changed, old_keys)
    return alerts


def _seconds(gap_ms: int | None) -> float | None:
    return None if gap_ms is None else gap_ms / 1000


# The first eleven columns are NewEvents.columns; the batch and the derived flags follow.
_INSERT_EVENTS = (
    "INSERT INTO events (event_id, user_id, session_id, action, category, product, amount_cents, ts_ms,"
    " user_agent, content_hash, line_no, batch_id, ingested_ms, gap_ms, gap_s, is_rapid, is_steady,"
    " session_no, burst_len) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p},"
    " {p}, {p}, {p}, {p}, {p}, {p})"
)
# PostgreSQL: an id that another user's batch committed meanwhile is skipped, then detected.
_INSERT_EVENTS_PG = _INSERT_EVENTS + " ON CONFLICT (event_id) DO NOTHING"


def _driver_sql(conn: Connection, statement: str) -> str:
    return statement.replace("{p}", "?" if conn.dialect.paramstyle == "qmark" else "%s")


def execute_many(conn: Connection, statement: str, rows: list[tuple[Any, ...]]) -> int:
    """Run a fixed statement once per row through the driver's executemany; return the rows affected.

    `{p}` marks a parameter. The hot path skips SQLAlchemy's per-row parameter processing; values
    stay bound parameters.
    """
    if not rows:
        return 0
    return conn.exec_driver_sql(_driver_sql(conn, statement), rows).rowcount


def fetch_many(conn: Connection, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run a fixed query with `{p}` parameters on the driver's own cursor; rows as plain tuples.

    SQLAlchemy's result rows cost about a microsecond each, and the hot path reads thousands
    per batch. A driver error still surfaces as SQLAlchemy's DBAPIError, which tasks retry.
    """
    sql = _driver_sql(conn, statement)
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    except dbapi_error as exc:
        raise DBAPIError.instance(sql, tuple(params), exc, dbapi_error, dialect=conn.dialect) from exc
    finally:
        cursor.close()


def _insert_events(conn: Connection, new: NewEvents, *, batch_id: str, at_ms: int) -> None:
    rows = [
        (
            *columns,
            batch_id,
            at_ms,
            d.gap_ms,
            None if d.gap_ms is None else d.gap_ms / 1000,  # _seconds, inlined: once per event
            d.is_rapid,
            d.is_steady,
            d.session_no,
            d.burst_len,
        )
        for columns, d in zip(new.columns, new.rows, strict=True)
    ]
    if conn.dialect.name != "postgresql":
        execute_many(conn, _INSERT_EVENTS, rows)
        return
    inserted = execute_many(conn, _INSERT_EVENTS_PG, rows)
    if inserted != len(rows):
        raise EventIdRace(f"{len(rows) - inserted} of {len(rows)} event ids were committed meanwhile")


def _update_rollups(
    conn: Connection, new: NewEvents, changed: list[SeqRow], old_keys: dict[str, tuple[str, str, int]]
) -> None:
    """Add new events and rapid flips to the dashboard rollups, as exact increments."""
    minutes = new.minutes
    minute_rapid: Counter[tuple[int, str, str]] = Counter()
    for e, d in zip(new.events, new.rows, strict=True):
        if d.is_rapid:
            minute_rapid[_minute_key(e)] += 1
    for r in changed:
        action, category, was_rapid = old_keys[r.event_id]
        minute_rapid[(r.ts_ms - r.ts_ms % _MINUTE_MS, action, category)] += int(r.is_rapid) - was_rapid
    mix: Counter[tuple[str, str]] = Counter()
    mix_rapid: Counter[tuple[str, str]] = Counter()
    for (_, action, category), n in minutes.items():
        mix[(action, category)] += n
    for (_, action, category), n in minute_rapid.items():
        mix_rapid[(action, category)] += n
    _add_counts(
        conn,
        ActivityRollup,
        ("minute_ms", "action", "category"),
        [(*k, minutes[k], minute_rapid[k]) for k in minutes | minute_rapid],
    )
    _add_counts(
        conn, ActivityMix, ("action", "category"), [(*k, mix[k], mix_rapid[k]) for k in mix | mix_rapid]
    )
    _add_counts(conn, ActivityHours, ("weekday", "hour"), [(*k, n) for k, n in new.hours.items()])


def _add_counts(conn: Connection, model: Any, keys: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Upsert rows of (*keys, *counts), adding the counts to any stored ones."""
    table = model.__table__
    counters = [c.name for c in table.columns if c.name not in keys]
    names = [*keys, *counters]
    # Identifiers come from the schema; every value stays a bound parameter.
    statement = (
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({_marks(len(names))})"  # noqa: S608
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
        + ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in counters)
    )
    # Key order: concurrent batches lock shared rollup rows in one order, never a cycle.
    execute_many(conn, statement, sorted(rows))


# The batch's users are the rows of batch_starts (see _load_user_work).
# Identifiers in the SQL below come from the schema; every value stays a bound parameter.
_STORED_RISK_SQL = _per_batch_user(
    f"e.user_id, e.band, {', '.join('e.' + name for name in _AGGREGATE_FIELDS)}",
    "user_risk",
    "e.user_id = b.user_id",
)
# The order _risk_row builds a row in; the assertion keeps it in step with the table.
_RISK_COLUMNS = ("user_id", *RISK_COLUMNS, "markers", "updated_ms")
assert set(_RISK_COLUMNS) == {c.name for c in UserRisk.__table__.columns}, "user_risk changed"
_UPSERT_RISK = (
    f"INSERT INTO user_risk ({', '.join(_RISK_COLUMNS)}) VALUES ({_marks(len(_RISK_COLUMNS))})"  # noqa: S608
    " ON CONFLICT (user_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _RISK_COLUMNS if name != "user_id")
)


def _update_user_risk(
    conn: Connection, deltas: dict[str, UserDelta], *, rules: RiskRules, batch_id: str, at_ms: int
) -> int:
    """Fold each user's delta into their aggregates, rescore, and record band crossings."""
    # user_id -> (band, aggregates in field order)
    stored = {row[0]: (row[1], row[2:]) for row in fetch_many(conn, _STORED_RISK_SQL[conn.dialect.name])}
    upserts: list[tuple[Any, ...]] = []
    alerts: list[dict[str, Any]] = []
    # User order: concurrent PostgreSQL batches lock user_risk rows in one order.
    for user_id in sorted(deltas):
        old_band, old_aggregates = stored.get(user_id, (None, None))
        aggregates = merge_aggregates(old_aggregates, deltas[user_id])
        result = assess(aggregates, rules)
        upserts.append(_risk_row(user_id, aggregates, result, at_ms))
        if result.band is Band.HIGH and old_band != Band.HIGH:
            alerts.append(
                {
                    "user_id": user_id,
                    "created_ms": at_ms,
                    "score": result.score,
                    "band": result.band.value,
                    "risk_kind": result.kind.value,
                    "reasons": result.markers_json(),
                    "batch_id": batch_id,
                }
            )
    execute_many(conn, _UPSERT_RISK, upserts)
    if alerts:
        conn.execute(insert(Alert), alerts)
    return len(alerts)


def merge_aggregates(stored: Sequence[Any] | None, delta: UserDelta) -> UserAggregates:
    """Stored aggregates (values in UserAggregates field order) plus a batch's delta.

    Sums add, peaks take the max, seen-times widen. Spelled out field by field: it runs once
    per user and batch.
    """
    if stored is None:
        return UserAggregates(
            events=delta.events,
            rapid_events=delta.rapid_events,
            max_burst=max(0, delta.max_burst),
            gap_count=delta.gap_count,
            gap_sum_ms=delta.gap_sum_ms,
            gap_sumsq_ms=delta.gap_sumsq_ms,
            steady_gaps=delta.steady_gaps,
            purchases=delta.purchases,
            spend_cents=delta.spend_cents,
            max_purchases_window=max(0, delta.max_purchases_window),
            max_spend_window_cents=max(0, delta.max_spend_window_cents),
            night_events=delta.night_events,
            sessions=delta.sessions,
            first_seen_ms=delta.first_seen_ms,  # type: ignore[arg-type]  # a delta of new events has both
            last_seen_ms=delta.last_seen_ms,  # type: ignore[arg-type]
        )
    old = UserAggregates._make(stored)
    first, last = delta.first_seen_ms, delta.last_seen_ms
    return UserAggregates(
        events=old.events + delta.events,
        rapid_events=old.rapid_events + delta.rapid_events,
        max_burst=max(old.max_burst, delta.max_burst),
        gap_count=old.gap_count + delta.gap_count,
        gap_sum_ms=old.gap_sum_ms + delta.gap_sum_ms,
        gap_sumsq_ms=old.gap_sumsq_ms + delta.gap_sumsq_ms,
        steady_gaps=old.steady_gaps + delta.steady_gaps,
        purchases=old.purchases + delta.purchases,
        spend_cents=old.spend_cents + delta.spend_cents,
        max_purchases_window=max(old.max_purchases_window, delta.max_purchases_window),
        max_spend_window_cents=max(old.max_spend_window_cents, delta.max_spend_window_cents),
        night_events=old.night_events + delta.night_events,
        sessions=old.sessions + delta.sessions,
        first_seen_ms=old.first_seen_ms if first is None else min(old.first_seen_ms, first),
        last_seen_ms=old.last_seen_ms if last is None else max(old.last_seen_ms, last),
    )


def _risk_row(user_id: str, agg: UserAggregates, result: Assessment, at_ms: int) -> tuple[Any, ...]:
    """One user_risk row in _RISK_COLUMNS order; markers as JSON text for the driver."""
    markers = orjson.dumps(result.markers_json()).decode() if result.markers else "[]"
    return (user_id, *risk_values(agg, result), markers, at_ms)


_INSERT_QUARANTINE = (
    "INSERT INTO quarantine (batch_id, line_no, reason, detail, raw_text, quarantined_ms, released_ms)"
    " VALUES ({p}, {p}, {p}, {p}, {p}, {p}, NULL) ON CONFLICT (batch_id, line_no) DO NOTHING"
)


def _insert_quarantine(
    conn: Connection, rejections: Iterable[Rejection], *, batch_id: str, at_ms: int
) -> None:
    rows = [
        (
            batch_id,
            r.line_no,
            r.reason.value,
            r.detail,
            # Lone surrogates (undecodable input bytes) cannot be stored as UTF-8; keep them visible.
            r.raw_text.encode("utf-8", "backslashreplace").decode("utf-8"),
            at_ms,
        )
        for r in rejections
    ]
    execute_many(conn, _INSERT_QUARANTINE, rows)
