"""Every write of an ingest batch, with the locks and stored-state reads it needs, behind named functions.

The caller holds one write transaction (`store.db.write_transaction`): on SQLite that is the
queued `BEGIN IMMEDIATE`, on PostgreSQL READ COMMITTED plus the advisory locks taken here.
Identifiers in the SQL below come from the schema or this module; every value is a bound
parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, delete, insert, select, text, update

from contract.wire import LIVE, BatchMode, Rejection, now_ms
from store.db import hold_locks
from store.driver import CHUNK, execute_many, fetch_many, marks
from store.models import Alert, Base, Batch, QuarantinedLine, RiskBucket, UserRisk

T = TypeVar("T")

# A batch with more distinct users locks the whole store instead of each user, so no batch
# holds more than this many advisory locks (PostgreSQL's lock table is 6,400 by default).
MAX_USER_LOCKS = 512
# Passes of one batch on PostgreSQL when a new event id is committed meanwhile by another user's batch.
ID_RACE_PASSES = 3


class EventIdRace(Exception):
    """A new event's id was committed meanwhile by a batch that did not hold this user's lock."""


class CommittedBatch(NamedTuple):
    """The ledger row of a batch that committed already."""

    received: int
    stored_new: int
    duplicates: int
    quarantined: int


# --- locks and the ledger ------------------------------------------------------------------


def claim_batch(conn: Connection, batch_id: str) -> CommittedBatch | None:
    """Wait out any other delivery of this batch id, then return its ledger row if it committed."""
    # A second delivery racing the first waits here (PostgreSQL), then finds its ledger row.
    hold_locks(conn, "batch", [batch_id])
    row = conn.execute(
        select(Batch.received, Batch.stored_new, Batch.duplicates, Batch.quarantined).where(
            Batch.batch_id == batch_id
        )
    ).first()
    return None if row is None else CommittedBatch(*row)


def lock_users(conn: Connection, user_ids: set[str]) -> None:
    """On PostgreSQL, hold the write lock of each user, or of the whole store for a batch of many users.

    Every read of a user's stored events or risk row happens under that user's lock.
    """
    if len(user_ids) > MAX_USER_LOCKS:
        lock_store(conn)
        return
    hold_locks(conn, "store", ["all"], shared=True)
    hold_locks(conn, "user", user_ids)


def lock_store(conn: Connection) -> None:
    """On PostgreSQL, hold the store-wide write lock exclusively: no batch writes meanwhile."""
    hold_locks(conn, "store", ["all"])


def retry_id_races(conn: Connection, store: Callable[[], T]) -> T:
    """Run store(); on PostgreSQL in savepoints, again after an EventIdRace, up to ID_RACE_PASSES times.

    SQLite serialises every writer, so no race can happen there. On PostgreSQL a rival batch of
    another user may commit one of our new ids meanwhile; the next pass sees it stored.
    """
    if conn.dialect.name != "postgresql":
        return store()
    for _ in range(ID_RACE_PASSES - 1):
        try:
            with conn.begin_nested():
                return store()
        except EventIdRace:
            continue  # the rival batch has committed: this pass finds its ids stored
    return store()


def insert_ledger_row(
    conn: Connection,
    *,
    batch_id: str,
    source: str,
    received: int,
    stored_new: int,
    duplicates: int,
    quarantined: int,
    produced_ms: int | None,
    at_ms: int,
    max_event_ts_ms: int | None,
    mode: BatchMode = LIVE,
) -> None:
    """Record the batch and its mode in the ledger: received = stored_new + duplicates + quarantined."""
    conn.execute(
        insert(Batch),
        {
            "batch_id": batch_id,
            "source": source[:256],
            "received": received,
            "stored_new": stored_new,
            "duplicates": duplicates,
            "quarantined": quarantined,
            "produced_ms": produced_ms,
            # Just before commit, so produced_ms -> committed_ms is the whole end-to-end latency.
            "committed_ms": max(at_ms, now_ms()),
            "max_event_ts_ms": max_event_ts_ms,
            # A replay of a held line judges it as its batch was judged (workers.replay).
            "historical": mode.historical,
            "history_end_ms": mode.history_end_ms,
            "unpriced_purchases": mode.unpriced_purchases,
        },
    )


# --- events ------------------------------------------------------------------------------------


def stored_hashes(conn: Connection, event_ids: list[str]) -> dict[str, str]:
    """The content hash of each of these event ids that is stored already."""
    if conn.dialect.name == "postgresql":
        # One array parameter: with an IN list of hundreds, the generic plan that a prepared
        # statement switches to after five runs scans the whole table.
        query = "SELECT event_id, content_hash FROM events WHERE event_id = ANY(%s)"
        return dict(fetch_many(conn, query, [event_ids]))
    found: dict[str, str] = {}
    for start in range(0, len(event_ids), CHUNK):
        chunk = event_ids[start : start + CHUNK]
        query = f"SELECT event_id, content_hash FROM events WHERE event_id IN ({marks(len(chunk))})"  # noqa: S608
        found.update(fetch_many(conn, query, chunk))
    return found


# Each event's own columns (CleanEvent order), then the batch and the derived flags.
EVENT_COLUMNS = (
    "event_id", "user_id", "session_id", "action", "category", "product", "amount_cents", "ts_ms",
    "user_agent", "content_hash", "line_no", "utc_offset_min", "batch_id", "ingested_ms",
    "gap_ms", "is_rapid", "is_steady", "session_no", "burst_len", "session_ms", "awake_ms",
)  # fmt: skip
_INSERT_EVENTS = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({marks(len(EVENT_COLUMNS))})"  # noqa: S608
# PostgreSQL: an id that another user's batch committed meanwhile is skipped, then detected.
_INSERT_EVENTS_PG = _INSERT_EVENTS + " ON CONFLICT (event_id) DO NOTHING"
# The derived columns a recompute may change, in the order update_event_flags takes them. A bet's
# steps (opening stake, chasing, rhythm) are not stored: the purchase index gives an anchor's.
FLAG_COLUMNS = ("gap_ms", "is_rapid", "is_steady", "session_no", "burst_len", "session_ms", "awake_ms")
_UPDATE_FLAGS = (
    f"UPDATE events SET {', '.join(f'{name} = {{p}}' for name in FLAG_COLUMNS)} WHERE event_id = {{p}}"  # noqa: S608
)


def insert_events(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert new events (EVENT_COLUMNS order); raise EventIdRace if a rival committed one meanwhile."""
    if conn.dialect.name != "postgresql":
        execute_many(conn, _INSERT_EVENTS, rows)
        return
    inserted = execute_many(conn, _INSERT_EVENTS_PG, rows)
    if inserted != len(rows):
        raise EventIdRace(f"{len(rows) - inserted} of {len(rows)} event ids were committed meanwhile")


def update_event_flags(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Write recomputed flags: rows of FLAG_COLUMNS, then the event id."""
    execute_many(conn, _UPDATE_FLAGS, rows)


# --- the batch's users and their stored state ---------------------------------------------------

# A per-connection scratch table of (user, earliest new timestamp, first bucket the batch reads):
# fixed SQL, compiled once. On PostgreSQL its user_id shares the "C" collation of events.user_id,
# so joins use that index.
_STARTS_DDL = {
    dialect: text(
        f"CREATE TEMP TABLE IF NOT EXISTS batch_starts (user_id VARCHAR(128){collate} PRIMARY KEY,"
        " t0 BIGINT NOT NULL, from_ms BIGINT NOT NULL)"
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
    lateral = f"LATERAL (SELECT * FROM {table} e WHERE {condition} OFFSET 0) e"  # noqa: S608
    return {
        "sqlite": f"SELECT {columns} FROM batch_starts b CROSS JOIN {table} e WHERE {condition}",  # noqa: S608
        "postgresql": f"SELECT {columns} FROM batch_starts b CROSS JOIN {lateral}",  # noqa: S608
    }


# Stored events at or after each user's t0: the tail a batch recomputes.
TAIL_COLUMNS = (
    "event_id", "user_id", "ts_ms", "action", "category", "amount_cents", "utc_offset_min",
    "gap_ms", "is_rapid", "is_steady", "session_no", "burst_len", "session_ms", "awake_ms",
)  # fmt: skip
_TAIL_SQL = _per_batch_user(
    ", ".join(f"e.{c}" for c in TAIL_COLUMNS), "events", "e.user_id = b.user_id AND e.ts_ms >= b.t0"
)


# A purchase of the anchor's session so far (it began session_ms before the anchor), alias q.
_SESSION_PURCHASE = (
    "q.user_id = b.user_id AND q.action = 'purchase' AND q.ts_ms >= e.ts_ms - e.session_ms AND q.ts_ms < b.t0"
)


def _session_bet_ms(offset: int) -> str:
    """A scalar subquery: the time of the session's last bet (offset 0) or the one before it (1)."""
    return (
        f"(SELECT q.ts_ms FROM events q WHERE {_SESSION_PURCHASE}"  # noqa: S608
        f" ORDER BY q.ts_ms DESC LIMIT 1 OFFSET {offset})"
    )


# The session's opening stake: its first priced bet in (ts, id) order. MIN(ts) reads the purchase
# index alone; ordering by (ts, id) at once walks every event of the session through the table.
_OPENING_STAKE = (
    "(SELECT s.amount_cents FROM events s WHERE s.user_id = b.user_id AND s.action = 'purchase'"  # noqa: S608
    " AND s.amount_cents IS NOT NULL AND s.ts_ms = (SELECT MIN(q.ts_ms) FROM events q"
    f" WHERE {_SESSION_PURCHASE} AND q.amount_cents IS NOT NULL) ORDER BY s.event_id LIMIT 1)"
)

# The last event before t0 and its session's bets so far (first priced, last, the one before it),
# from the purchase index: the state the tail continues from.
_BETS = ", ".join((_OPENING_STAKE, _session_bet_ms(0), _session_bet_ms(1)))
_ANCHOR_SQL = (
    f"SELECT b.user_id, e.ts_ms, e.gap_ms, e.session_no, e.burst_len, e.session_ms, e.awake_ms, {_BETS}"  # noqa: S608
    " FROM batch_starts b JOIN events e"
    " ON e.event_id = (SELECT p.event_id FROM events p WHERE p.user_id = b.user_id AND p.ts_ms < b.t0"
    " ORDER BY p.ts_ms DESC, p.event_id DESC LIMIT 1)"
)
_LOOKBACK_SQL = _per_batch_user(
    "e.user_id, e.ts_ms, e.amount_cents",
    "events",
    "e.user_id = b.user_id AND e.action = 'purchase' AND e.ts_ms < b.t0 AND e.ts_ms > b.t0 - {p}",
)


def stage_users(conn: Connection, starts: Iterable[tuple[str, int, int]]) -> None:
    """Make (user_id, t0, from_ms) of each user of the batch the users every read_* below answers for.

    t0: the user's earliest new event; from_ms: the first risk bucket the batch reads.
    """
    conn.execute(_STARTS_DDL[conn.dialect.name])
    conn.execute(_STARTS_CLEAR)
    execute_many(conn, "INSERT INTO batch_starts (user_id, t0, from_ms) VALUES ({p}, {p}, {p})", list(starts))


def read_tails(conn: Connection) -> list[tuple[Any, ...]]:
    """Each staged user's stored events at or after their t0, as TAIL_COLUMNS tuples."""
    return fetch_many(conn, _TAIL_SQL[conn.dialect.name])


def read_anchors(conn: Connection) -> list[tuple[Any, ...]]:
    """Each staged user's last event before t0, with its session's bets so far.

    Rows of (user_id, ts_ms, gap_ms, session_no, burst_len, session_ms, awake_ms, opening stake,
    last bet ms, the bet before it ms): the arguments of workers.sequence.Anchor.stored.
    """
    return fetch_many(conn, _ANCHOR_SQL)


def read_lookback_purchases(conn: Connection, window_ms: int) -> list[tuple[Any, ...]]:
    """(user_id, ts_ms, amount_cents) of each staged user's purchases in (t0 - window, t0)."""
    return fetch_many(conn, _LOOKBACK_SQL[conn.dialect.name], [window_ms])


@cache
def _stored_risk_sql(dialect: str, columns: tuple[str, ...]) -> str:
    return _per_batch_user(
        ", ".join(f"e.{name}" for name in ("user_id", *columns)), "user_risk", "e.user_id = b.user_id"
    )[dialect]


def read_user_risk(conn: Connection, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """(user_id, *columns) of each staged user's stored user_risk row."""
    return fetch_many(conn, _stored_risk_sql(conn.dialect.name, columns))


# --- risk buckets ---------------------------------------------------------------------------------


@cache
def _bucket_sql(dialect: str, fields: tuple[str, ...]) -> str:
    return _per_batch_user(
        ", ".join(f"e.{name}" for name in ("user_id", "bucket_ms", *fields, "window_score", "window_kind")),
        "risk_buckets",
        "e.user_id = b.user_id AND e.bucket_ms >= b.from_ms",
    )[dialect]


def read_buckets(conn: Connection, fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """(user_id, bucket_ms, *fields, window_score, window_kind) of each staged user's buckets from from_ms."""
    return fetch_many(conn, _bucket_sql(conn.dialect.name, fields))


@cache
def _upsert_bucket_sql(fields: tuple[str, ...]) -> str:
    names = ("user_id", "bucket_ms", *fields, "window_score", "window_kind")
    assert set(names) == {c.name for c in RiskBucket.__table__.columns}, "risk_buckets changed"
    return (
        f"INSERT INTO risk_buckets ({', '.join(names)}) VALUES ({marks(len(names))})"  # noqa: S608
        " ON CONFLICT (user_id, bucket_ms) DO UPDATE SET "
        + ", ".join(f"{name} = excluded.{name}" for name in names[2:])
    )


def upsert_buckets(conn: Connection, fields: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert or replace bucket rows of (user_id, bucket_ms, *fields, window_score, window_kind)."""
    # Key order: concurrent PostgreSQL batches lock bucket rows in one order.
    execute_many(conn, _upsert_bucket_sql(fields), sorted(rows, key=lambda r: (r[0], r[1])))


def replace_buckets(
    conn: Connection, fields: tuple[str, ...], user_ids: list[str], rows: list[tuple[Any, ...]]
) -> None:
    """Replace every bucket of these users with these rows (a rebuild from their events)."""
    for start in range(0, len(user_ids), CHUNK):
        conn.execute(delete(RiskBucket).where(RiskBucket.user_id.in_(user_ids[start : start + CHUNK])))
    upsert_buckets(conn, fields, rows)


def read_user_events(
    conn: Connection, user_ids: list[str], columns: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    """These columns of every stored event of these users."""
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(user_ids), CHUNK):
        chunk = user_ids[start : start + CHUNK]
        query = f"SELECT {', '.join(columns)} FROM events WHERE user_id IN ({marks(len(chunk))})"  # noqa: S608
        found += fetch_many(conn, query, chunk)
    return found


_BEST_WINDOW_BEFORE = (
    "SELECT window_score, window_kind, bucket_ms FROM risk_buckets WHERE user_id = {p} AND bucket_ms < {p}"
    " ORDER BY window_score DESC, bucket_ms ASC LIMIT 1"
)


def best_window_before(conn: Connection, user_id: str, before_ms: int) -> tuple[int, str, int] | None:
    """(score, kind, bucket_ms) of the best window ending before before_ms; the earliest on ties."""
    rows = fetch_many(conn, _BEST_WINDOW_BEFORE, [user_id, before_ms])
    return (int(rows[0][0]), str(rows[0][1]), int(rows[0][2])) if rows else None


# --- user risk and alerts --------------------------------------------------------------------


@cache
def _upsert_risk_sql(columns: tuple[str, ...]) -> str:
    assert set(columns) == {c.name for c in UserRisk.__table__.columns}, "user_risk changed"
    return (
        f"INSERT INTO user_risk ({', '.join(columns)}) VALUES ({marks(len(columns))})"  # noqa: S608
        " ON CONFLICT (user_id) DO UPDATE SET "
        + ", ".join(f"{name} = excluded.{name}" for name in columns if name != "user_id")
    )


def upsert_user_risk(conn: Connection, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert or replace user_risk rows, given in `columns` order (every column, user_id first)."""
    execute_many(conn, _upsert_risk_sql(columns), rows)


def insert_alerts(conn: Connection, alerts: list[dict[str, Any]]) -> None:
    """Record crossings into the high band, one row each."""
    if alerts:
        conn.execute(insert(Alert), alerts)


# --- dashboard rollups ----------------------------------------------------------------------------


def add_counts(
    conn: Connection, model: type[Base], keys: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """Upsert rows of (*keys, *counts) into a rollup table, adding the counts to any stored ones."""
    table = model.__tablename__
    counters = [c.name for c in model.__table__.columns if c.name not in keys]
    names = [*keys, *counters]
    statement = (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks(len(names))})"  # noqa: S608
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
        + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
    )
    # Key order: concurrent batches lock shared rollup rows in one order, never a cycle.
    execute_many(conn, statement, sorted(rows))


# --- quarantine ------------------------------------------------------------------------------------

# The first reason and detail start as the current ones; a replay changes only the current ones.
_INSERT_QUARANTINE = (
    "INSERT INTO quarantine (batch_id, line_no, reason, detail, first_reason, first_detail, raw_text,"
    " quarantined_ms, released_ms)"
    " VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, NULL) ON CONFLICT (batch_id, line_no) DO NOTHING"
)


def insert_quarantine(
    conn: Connection, rejections: Iterable[Rejection], *, batch_id: str, at_ms: int
) -> None:
    """Hold each rejected line with its batch, line number, reason, detail and raw text."""
    rows = [
        (
            batch_id,
            r.line_no,
            r.reason.value,
            r.detail,
            r.reason.value,
            r.detail,
            # Lone surrogates (undecodable input bytes) cannot be stored as UTF-8; keep them visible.
            r.raw_text.encode("utf-8", "backslashreplace").decode("utf-8"),
            at_ms,
        )
        for r in rejections
    ]
    execute_many(conn, _INSERT_QUARANTINE, rows)


class HeldLine(NamedTuple):
    """A line still in quarantine: its row, text, current reason and detail, and its batch's mode."""

    id: int
    raw_text: str
    reason: str
    detail: str
    mode: BatchMode = LIVE


def read_held_lines(
    conn: Connection, *, after_id: int, limit: int, reason: str | None = None
) -> list[HeldLine]:
    """Up to `limit` lines still held, after quarantine row after_id, in id order, with their batch's mode."""
    query = (
        select(
            QuarantinedLine.id,
            QuarantinedLine.raw_text,
            QuarantinedLine.reason,
            QuarantinedLine.detail,
            Batch.historical,
            Batch.history_end_ms,
            Batch.unpriced_purchases,
        )
        # A held line's ledger row committed with it; outer, so that a line never goes unread.
        .outerjoin(Batch, Batch.batch_id == QuarantinedLine.batch_id)
        .where(QuarantinedLine.released_ms.is_(None), QuarantinedLine.id > after_id)
        .order_by(QuarantinedLine.id)
        .limit(limit)
    )
    if reason is not None:
        query = query.where(QuarantinedLine.reason == reason)
    return [
        HeldLine(int(row_id), raw_text, reason, detail, BatchMode(bool(hist), end_ms, bool(unpriced)))
        for row_id, raw_text, reason, detail, hist, end_ms, unpriced in conn.execute(query)
    ]


_UPDATE_REASON = "UPDATE quarantine SET reason = {p}, detail = {p} WHERE id = {p} AND released_ms IS NULL"


def update_held_reasons(conn: Connection, rows: list[tuple[str, str, int]]) -> None:
    """Set the current (reason, detail) of held lines by id; their first reason and detail stay."""
    execute_many(conn, _UPDATE_REASON, rows)


def release_quarantine(conn: Connection, row_ids: list[int], *, at_ms: int) -> None:
    """Mark these quarantine rows released: a replay stored their lines."""
    for start in range(0, len(row_ids), CHUNK):
        conn.execute(
            update(QuarantinedLine)
            .where(QuarantinedLine.id.in_(row_ids[start : start + CHUNK]))
            .values(released_ms=at_ms)
        )
