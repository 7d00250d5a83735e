"""Named read-only queries for the dashboard: one short transaction each, plain data out.

Refresh queries read only the aggregate tables (batches, user_risk, activity_rollup, alerts
and the newest quarantine rows); the user drill-down is the one query on `events`, and it
walks the (user_id, ts_ms) index of a single user. A missing database or table never
raises: the result carries `problem`, a sentence the panel shows instead of data.
"""

from __future__ import annotations

import functools
import re
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

import pandas as pd
from sqlalchemy import ColumnElement, Engine, Float, case, cast, func, select
from sqlalchemy.exc import SQLAlchemyError

from config.settings import hide_password
from store.models import (
    ActivityHours,
    ActivityRollup,
    Alert,
    AlertReview,
    AlertState,
    AllowListEntry,
    Batch,
    Event,
    QuarantinedLine,
    UserRisk,
    WebhookDelivery,
)
from store.models import ActivityMix as MixRollup
from store.summaries import REPLAY_SOURCE

P = ParamSpec("P")
R = TypeVar("R")

BANDS = ("low", "elevated", "high")
EPS_WINDOW_MS = 10_000  # events/s is stored_new of the batches committed in this window
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
MAX_PAGE_ROWS = 500
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
TOP_MARKERS = 3
ACK_SAMPLE = 10_000  # the median time to acknowledge is taken over this many latest reviewed alerts
# The highest code point sorts after every string that starts with a prefix, so
# `prefix <= user_id < prefix + MAX_CHAR` is a prefix match that walks the primary key.
_MAX_CHAR = "\U0010ffff"


# --- failure as data ----------------------------------------------------------------------


def database_file(engine: Engine) -> Path | None:
    """The SQLite file behind an engine (read-only URI form included), else None."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database.removeprefix("file:"))


def database_label(engine: Engine) -> str:
    """Where the data lives, for messages: a file path, or the URL without its password."""
    path = database_file(engine)
    if path is not None:
        return str(path)
    return hide_password(engine.url.render_as_string(hide_password=False))


# SQLite says "no such table: batches"; PostgreSQL says 'relation "batches" does not exist'.
_MISSING_TABLE = re.compile(r'no such table: (?P<table>\w+)|relation "(?:\w+\.)?(?P<pg>\w+)" does not exist')


def describe_unavailable(engine: Engine, exc: SQLAlchemyError) -> str:
    """A sentence saying why the database could not be read, and what to do."""
    where = database_label(engine)
    path = database_file(engine)
    text = str(getattr(exc, "orig", None) or exc).strip()
    if path is not None and not path.exists():
        return f"No database yet at {where}: start the workers."
    missing = _MISSING_TABLE.search(text)
    if missing:
        table = missing["table"] or missing["pg"]
        return f"The database at {where} has no table {table} yet: start the workers."
    if "locked" in text or "busy" in text:
        return f"The database at {where} is busy; retrying on the next refresh."
    return f"Cannot read the database at {where}: {text.splitlines()[0][:200]}"


def _unavailable_as(empty: Callable[[str], R]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn a database error in a query into `empty(problem)` instead of an exception."""

    def wrap(query: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(query)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return query(*args, **kwargs)
            except SQLAlchemyError as exc:
                engine: Engine = kwargs["engine"]  # type: ignore[assignment]
                return empty(describe_unavailable(engine, exc))

        return guarded

    return wrap


def _frame(columns: list[str], rows: Any = ()) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=columns)


def _utc(ms: pd.Series) -> pd.Series:
    return pd.to_datetime(ms.astype("int64"), unit="ms", utc=True)


# --- KPI cards --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpis:
    """Headline numbers from the batch ledger, the activity rollup and user_risk."""

    events_stored: int = 0
    events_per_s: float = 0.0
    received: int = 0
    quarantined: int = 0
    rapid_events: int = 0
    rollup_events: int = 0
    band_counts: Mapping[str, int] = field(default_factory=dict)
    open_alerts: int = 0
    reviewed_alerts: int = 0
    median_ack_ms: int | None = None  # alert created -> first review, over the latest reviewed alerts
    problem: str | None = None

    @property
    def quarantined_share(self) -> float | None:
        """Quarantined lines over received lines, or None before any batch."""
        return self.quarantined / self.received if self.received else None

    @property
    def rapid_share(self) -> float | None:
        """Rapid events over all rolled-up events, or None before any event."""
        return self.rapid_events / self.rollup_events if self.rollup_events else None

    @property
    def users(self) -> int:
        """Users with a risk row."""
        return sum(self.band_counts.values())


@_unavailable_as(lambda problem: Kpis(problem=problem))
def fetch_kpis(*, engine: Engine, now_ms: int) -> Kpis:
    """Events stored, current events/s, quarantined and rapid shares, users per band."""
    with engine.connect() as conn:
        replay = Batch.source == REPLAY_SOURCE  # its lines were received once already
        stored, received, quarantined = conn.execute(
            select(
                func.coalesce(func.sum(Batch.stored_new), 0),
                func.coalesce(func.sum(case((replay, 0), else_=Batch.received)), 0),
                func.coalesce(func.sum(Batch.quarantined - case((replay, Batch.received), else_=0)), 0),
            )
        ).one()
        recent = conn.execute(
            select(func.coalesce(func.sum(Batch.stored_new), 0)).where(
                Batch.committed_ms > now_ms - EPS_WINDOW_MS
            )
        ).scalar_one()
        rapid, events = conn.execute(
            select(
                func.coalesce(func.sum(ActivityRollup.rapid), 0),
                func.coalesce(func.sum(ActivityRollup.events), 0),
            )
        ).one()
        bands = conn.execute(select(UserRisk.band, func.count()).group_by(UserRisk.band)).all()
        alerts, reviewed = conn.execute(
            select(func.count(Alert.id), func.count(AlertState.alert_id)).outerjoin(
                AlertState, AlertState.alert_id == Alert.id
            )
        ).one()
        waits = conn.scalars(
            select(AlertState.first_ack_ms - Alert.created_ms)
            .join(Alert, Alert.id == AlertState.alert_id)
            .order_by(AlertState.alert_id.desc())
            .limit(ACK_SAMPLE)
        ).all()
    return Kpis(
        events_stored=int(stored),
        events_per_s=int(recent) / (EPS_WINDOW_MS / 1000),
        received=int(received),
        quarantined=int(quarantined),
        rapid_events=int(rapid),
        rollup_events=int(events),
        band_counts={str(band): int(n) for band, n in bands},
        open_alerts=int(alerts) - int(reviewed),
        reviewed_alerts=int(reviewed),
        median_ack_ms=round(statistics.median(waits)) if waits else None,
    )


# --- risk table ------------------------------------------------------------------------------

SortColumn = Literal["user_id", "score", "band", "last_seen"]
UserMatch = Literal["contains", "startsWith", "equals"]

# Only indexed columns sort. Band is a function of score, so it sorts by the score index.
_SORT_COLUMNS: dict[str, Any] = {
    "user_id": UserRisk.user_id,
    "score": UserRisk.score,
    "band": UserRisk.score,
    "last_seen": UserRisk.last_seen_ms,
}
SORTABLE_COLUMNS = frozenset(_SORT_COLUMNS)


@dataclass(frozen=True)
class RiskQuery:
    """One page of the risk table: window, sort keys and filters."""

    offset: int = 0
    limit: int = 100
    sort: tuple[tuple[SortColumn, bool], ...] = (("score", True),)  # (column, descending)
    user_text: str | None = None
    user_match: UserMatch = "contains"
    bands: tuple[str, ...] = ()
    min_score: int | None = None
    max_score: int | None = None
    risk_kind: str | None = None


@dataclass(frozen=True)
class RiskRow:
    """One user in the risk table."""

    user_id: str
    score: int
    band: str
    risk_kind: str
    top_markers: tuple[str, ...]
    last_seen_ms: int
    events: int
    peak_score: int = 0


@dataclass(frozen=True)
class RiskPage:
    """The requested rows and how many rows match the filters."""

    rows: tuple[RiskRow, ...] = ()
    total: int = 0
    problem: str | None = None


def top_marker_names(markers: Any, *, limit: int = TOP_MARKERS) -> tuple[str, ...]:
    """Names of the heaviest markers from a user_risk.markers JSON list."""
    if not isinstance(markers, list):
        return ()
    valid = [m for m in markers if isinstance(m, dict) and m.get("name")]
    valid.sort(key=lambda m: -float(m.get("weight") or 0))
    return tuple(str(m["name"]) for m in valid[:limit])


def _risk_conditions(query: RiskQuery) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if query.user_text:
        text = query.user_text
        if query.user_match == "equals":
            conds.append(UserRisk.user_id == text)
        elif query.user_match == "startsWith":
            conds += [UserRisk.user_id >= text, UserRisk.user_id < text + _MAX_CHAR]
        else:
            conds.append(UserRisk.user_id.icontains(text, autoescape=True))
    if query.bands:
        conds.append(UserRisk.band.in_(query.bands))
    if query.min_score is not None:
        conds.append(UserRisk.score >= query.min_score)
    if query.max_score is not None:
        conds.append(UserRisk.score <= query.max_score)
    if query.risk_kind:
        conds.append(UserRisk.risk_kind == query.risk_kind)
    return conds


@_unavailable_as(lambda problem: RiskPage(problem=problem))
def fetch_risk_page(*, engine: Engine, query: RiskQuery) -> RiskPage:
    """One page of users, sorted on indexed columns, with the count of matching users."""
    conds = _risk_conditions(query)
    order: list[Any] = []
    for column, descending in query.sort:
        col = _SORT_COLUMNS[column]
        order.append(col.desc() if descending else col.asc())
    if not any(column == "user_id" for column, _ in query.sort):
        # A unique tie-breaker keeps pages stable. It runs in the direction of the last key, so
        # an index on (key, user_id) can serve the whole ORDER BY and deep OFFSETs stay cheap.
        descending = query.sort[-1][1] if query.sort else False
        order.append(UserRisk.user_id.desc() if descending else UserRisk.user_id.asc())
    limit = max(1, min(query.limit, MAX_PAGE_ROWS))
    stmt = (
        select(
            UserRisk.user_id,
            UserRisk.score,
            UserRisk.band,
            UserRisk.risk_kind,
            UserRisk.markers,
            UserRisk.last_seen_ms,
            UserRisk.events,
            UserRisk.peak_score,
        )
        .where(*conds)
        .order_by(*order)
        .offset(max(0, query.offset))
        .limit(limit)
    )
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(UserRisk).where(*conds)).scalar_one()
        rows = conn.execute(stmt).all()
    return RiskPage(
        rows=tuple(
            RiskRow(
                user_id=r.user_id,
                score=r.score,
                band=r.band,
                risk_kind=r.risk_kind,
                top_markers=top_marker_names(r.markers),
                last_seen_ms=r.last_seen_ms,
                events=r.events,
                peak_score=r.peak_score,
            )
            for r in rows
        ),
        total=int(total),
    )


# --- activity ----------------------------------------------------------------------------------


def _empty_mix() -> pd.DataFrame:
    return _frame(["name", "events", "rapid"])


@dataclass(frozen=True)
class ActivityMix:
    """Events and rapid events by action and by category, over the whole rollup."""

    by_action: pd.DataFrame = field(default_factory=_empty_mix)
    by_category: pd.DataFrame = field(default_factory=_empty_mix)
    problem: str | None = None


@_unavailable_as(lambda problem: ActivityMix(problem=problem))
def fetch_activity_mix(*, engine: Engine, top_categories: int = 15) -> ActivityMix:
    """Events by action and by the busiest categories ('' shown as '(none)'), from the small rollup."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(MixRollup.action, MixRollup.category, MixRollup.events, MixRollup.rapid)
        ).all()
    cells = _frame(["action", "category", "events", "rapid"], rows)

    def by(column: str) -> pd.DataFrame:
        summed = cells.groupby(column, as_index=False)[["events", "rapid"]].sum()
        return summed.rename(columns={column: "name"}).sort_values(
            ["events", "name"], ascending=[False, True], ignore_index=True
        )

    if cells.empty:
        return ActivityMix()
    by_category = by("category").head(top_categories)
    by_category["name"] = by_category["name"].replace("", "(none)")
    return ActivityMix(by_action=by("action"), by_category=by_category)


def _empty_heatmap() -> pd.DataFrame:
    return pd.DataFrame(0, index=list(WEEKDAYS), columns=list(range(24)))


@dataclass(frozen=True)
class ActivityHeatmap:
    """Events per UTC weekday (rows, Mon first) and hour of day (columns 0-23)."""

    counts: pd.DataFrame = field(default_factory=_empty_heatmap)
    problem: str | None = None

    @property
    def total(self) -> int:
        """All events in the heatmap."""
        return int(self.counts.to_numpy().sum())


@_unavailable_as(lambda problem: ActivityHeatmap(problem=problem))
def fetch_activity_heatmap(*, engine: Engine) -> ActivityHeatmap:
    """Events by weekday and hour of event time (UTC), from the 168-row rollup."""
    with engine.connect() as conn:
        rows = conn.execute(select(ActivityHours.weekday, ActivityHours.hour, ActivityHours.events)).all()
    cells = _frame(["weekday", "hod", "events"], rows)
    if cells.empty:
        return ActivityHeatmap()
    counts = (
        cells.pivot_table(index="weekday", columns="hod", values="events", aggfunc="sum")
        .reindex(index=range(7), columns=range(24))
        .fillna(0)
        .astype("int64")
    )
    counts.index = pd.Index(list(WEEKDAYS))
    return ActivityHeatmap(counts=counts)


# --- timeline ---------------------------------------------------------------------------------


def _empty_timeline() -> pd.DataFrame:
    return _frame(["minute", "events", "rapid"])


@dataclass(frozen=True)
class Timeline:
    """Events and rapid events per minute of event time, gaps filled with zeros."""

    per_minute: pd.DataFrame = field(default_factory=_empty_timeline)
    minutes: int = 60
    end_ms: int | None = None
    problem: str | None = None


@_unavailable_as(lambda problem: Timeline(problem=problem))
def fetch_timeline(*, engine: Engine, minutes: int = 60) -> Timeline:
    """The last `minutes` minutes up to the newest event time in the rollup."""
    with engine.connect() as conn:
        end = conn.execute(select(func.max(ActivityRollup.minute_ms))).scalar_one()
        if end is None:
            return Timeline(minutes=minutes)
        start = int(end) - (minutes - 1) * MINUTE_MS
        rows = conn.execute(
            select(
                ActivityRollup.minute_ms,
                func.sum(ActivityRollup.events),
                func.sum(ActivityRollup.rapid),
            )
            .where(ActivityRollup.minute_ms >= start)
            .group_by(ActivityRollup.minute_ms)
        ).all()
    frame = (
        _frame(["minute_ms", "events", "rapid"], rows)
        .set_index("minute_ms")
        .reindex(range(start, int(end) + 1, MINUTE_MS), fill_value=0)
        .rename_axis("minute_ms")
        .reset_index()
    )
    frame.insert(0, "minute", _utc(frame.pop("minute_ms")))
    return Timeline(per_minute=frame, minutes=minutes, end_ms=int(end))


# --- data quality --------------------------------------------------------------------------------


def _empty_quarantine_counts() -> pd.DataFrame:
    return _frame(["minute", "reason", "lines"])


@dataclass(frozen=True)
class QuarantineCounts:
    """Quarantined lines per reason and minute of quarantine time."""

    per_minute: pd.DataFrame = field(default_factory=_empty_quarantine_counts)
    minutes: int = 60
    problem: str | None = None


@_unavailable_as(lambda problem: QuarantineCounts(problem=problem))
def fetch_quarantine_counts(*, engine: Engine, now_ms: int, minutes: int = 60) -> QuarantineCounts:
    """Counts by current reason and minute over the last `minutes` minutes of wall-clock time."""
    minute = (QuarantinedLine.quarantined_ms // MINUTE_MS).label("minute")
    with engine.connect() as conn:
        rows = conn.execute(
            select(minute, QuarantinedLine.reason, func.count())
            .where(QuarantinedLine.quarantined_ms >= now_ms - minutes * MINUTE_MS)
            .group_by(minute, QuarantinedLine.reason)
            .order_by(minute)
        ).all()
    frame = _frame(["minute", "reason", "lines"], rows)
    frame["minute"] = _utc(frame["minute"] * MINUTE_MS)
    return QuarantineCounts(per_minute=frame, minutes=minutes)


@dataclass(frozen=True)
class QuarantinedRow:
    """One rejected line; raw_text is cut to raw_chars and is untrusted text."""

    id: int
    batch_id: str
    line_no: int
    reason: str  # what it fails with now; a replay may have found another reason than the first
    first_reason: str
    detail: str
    raw_text: str
    raw_length: int
    quarantined_ms: int
    released_ms: int | None


@dataclass(frozen=True)
class QuarantineLines:
    """The newest quarantined lines, newest first."""

    rows: tuple[QuarantinedRow, ...] = ()
    problem: str | None = None


@_unavailable_as(lambda problem: QuarantineLines(problem=problem))
def fetch_latest_quarantined(*, engine: Engine, limit: int = 50, raw_chars: int = 500) -> QuarantineLines:
    """The newest `limit` quarantined lines, raw text cut in SQL to `raw_chars` characters."""
    stmt = (
        select(
            QuarantinedLine.id,
            QuarantinedLine.batch_id,
            QuarantinedLine.line_no,
            QuarantinedLine.reason,
            QuarantinedLine.first_reason,
            func.substr(QuarantinedLine.detail, 1, raw_chars),
            func.substr(QuarantinedLine.raw_text, 1, raw_chars),
            func.length(QuarantinedLine.raw_text),
            QuarantinedLine.quarantined_ms,
            QuarantinedLine.released_ms,
        )
        .order_by(QuarantinedLine.quarantined_ms.desc(), QuarantinedLine.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return QuarantineLines(rows=tuple(QuarantinedRow(*row) for row in rows))


# --- alerts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRow:
    """One crossing into the high band."""

    id: int
    user_id: str
    created_ms: int
    score: int
    risk_kind: str
    reasons: tuple[str, ...]
    status: str = "open"
    label: str | None = None


@dataclass(frozen=True)
class AlertFeed:
    """The newest alerts, newest first."""

    rows: tuple[AlertRow, ...] = ()
    problem: str | None = None


# An alert with its review state: the feed and the drill-down read the same columns.
_ALERT_COLUMNS = (
    Alert.id,
    Alert.user_id,
    Alert.created_ms,
    Alert.score,
    Alert.risk_kind,
    Alert.reasons,
    AlertState.status,
    AlertState.label,
)


def _alert_row(r: Any) -> AlertRow:
    return AlertRow(
        id=r.id,
        user_id=r.user_id,
        created_ms=r.created_ms,
        score=r.score,
        risk_kind=r.risk_kind,
        reasons=top_marker_names(r.reasons, limit=10),
        status=r.status or "open",
        label=r.label,
    )


@_unavailable_as(lambda problem: AlertFeed(problem=problem))
def fetch_alerts(*, engine: Engine, limit: int = 50, status: str | None = None) -> AlertFeed:
    """The newest `limit` alerts with their reason names and review status; status 'open': never reviewed."""
    stmt = (
        select(*_ALERT_COLUMNS)
        .outerjoin(AlertState, AlertState.alert_id == Alert.id)
        .order_by(Alert.created_ms.desc(), Alert.id.desc())
        .limit(limit)
    )
    if status == "open":
        stmt = stmt.where(AlertState.alert_id.is_(None))
    elif status:
        stmt = stmt.where(AlertState.status == status)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return AlertFeed(rows=tuple(_alert_row(r) for r in rows))


# --- pipeline health ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineStats:
    """Freshness of the ledger: newest event, newest produced batch, last commit."""

    batches: int = 0
    last_committed_ms: int | None = None
    newest_event_ms: int | None = None
    newest_produced_ms: int | None = None
    last_batch_latency_ms: int | None = None
    webhook_dead_letters: int = 0
    now_ms: int = 0
    problem: str | None = None

    @property
    def event_lag_ms(self) -> int | None:
        """Newest produced time minus newest stored event time."""
        if self.newest_produced_ms is None or self.newest_event_ms is None:
            return None
        return self.newest_produced_ms - self.newest_event_ms

    @property
    def since_commit_ms(self) -> int | None:
        """Time since the last batch committed."""
        return None if self.last_committed_ms is None else self.now_ms - self.last_committed_ms


@_unavailable_as(lambda problem: PipelineStats(problem=problem))
def fetch_pipeline_stats(*, engine: Engine, now_ms: int) -> PipelineStats:
    """Batch count, newest event/produced/commit times and the last batch's latency."""
    with engine.connect() as conn:
        batches, committed, newest_event, newest_produced = conn.execute(
            select(
                func.count(),
                func.max(Batch.committed_ms),
                func.max(Batch.max_event_ts_ms),
                func.max(Batch.produced_ms),
            )
        ).one()
        latest = conn.execute(
            select(Batch.committed_ms, Batch.produced_ms).order_by(Batch.committed_ms.desc()).limit(1)
        ).first()
        dead = conn.execute(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.dead_ms.is_not(None), WebhookDelivery.delivered_ms.is_(None))
        ).scalar_one()
    latency = None
    if latest is not None and latest.produced_ms is not None:
        latency = int(latest.committed_ms - latest.produced_ms)
    return PipelineStats(
        batches=int(batches),
        last_committed_ms=committed,
        newest_event_ms=newest_event,
        newest_produced_ms=newest_produced,
        last_batch_latency_ms=latency,
        webhook_dead_letters=int(dead),
        now_ms=now_ms,
    )


# --- user drill-down --------------------------------------------------------------------------------

EVENT_COLUMNS = [
    "ts",
    "event_id",
    "action",
    "category",
    "product",
    "amount_cents",
    "gap_s",
    "is_rapid",
    "session_no",
    "burst_len",
    "utc_offset_min",
]
SESSION_COLUMNS = ["session_no", "start", "end", "duration_s", "events", "rapid", "purchases", "offset_min"]


def _empty_events() -> pd.DataFrame:
    return _frame(EVENT_COLUMNS)


def _empty_sessions() -> pd.DataFrame:
    return _frame(SESSION_COLUMNS)


@dataclass(frozen=True)
class UserDetail:
    """One user's risk row, newest events (ascending time) and sessions among them."""

    user_id: str = ""
    risk: Mapping[str, Any] | None = None
    events: pd.DataFrame = field(default_factory=_empty_events)
    sessions: pd.DataFrame = field(default_factory=_empty_sessions)
    truncated: bool = False
    problem: str | None = None


def sessions_of(events: pd.DataFrame) -> pd.DataFrame:
    """Per-session start, end, duration and counts from a user's events."""
    if events.empty:
        return _empty_sessions()
    grouped = events.assign(purchase=events["action"].eq("purchase")).groupby("session_no")
    sessions = grouped.agg(
        start=("ts", "min"),
        end=("ts", "max"),
        events=("event_id", "count"),
        rapid=("is_rapid", "sum"),
        purchases=("purchase", "sum"),
        offset_min=("utc_offset_min", "first"),  # the local time of the session's first event
    ).reset_index()
    sessions["duration_s"] = (sessions["end"] - sessions["start"]).dt.total_seconds()
    sessions[["rapid", "purchases"]] = sessions[["rapid", "purchases"]].astype("int64")
    return sessions[SESSION_COLUMNS]


@_unavailable_as(lambda problem: UserDetail(problem=problem))
def fetch_user_detail(*, engine: Engine, user_id: str, limit: int = 2_000) -> UserDetail:
    """A user's risk row and their newest `limit` events, read via (user_id, ts_ms)."""
    events_stmt = (
        select(
            Event.ts_ms,
            Event.event_id,
            Event.action,
            Event.category,
            Event.product,
            Event.amount_cents,
            (cast(Event.gap_ms, Float) / 1000).label("gap_s"),
            Event.is_rapid,
            Event.session_no,
            Event.burst_len,
            Event.utc_offset_min,
        )
        .where(Event.user_id == user_id)
        .order_by(Event.ts_ms.desc(), Event.event_id.desc())
        .limit(limit + 1)
    )
    with engine.connect() as conn:
        risk = conn.execute(select(UserRisk.__table__).where(UserRisk.user_id == user_id)).mappings().first()
        rows = conn.execute(events_stmt).all()
    truncated = len(rows) > limit
    events = _frame(EVENT_COLUMNS, reversed(rows[:limit]))
    events["ts"] = _utc(events["ts"])
    events["local"] = events["ts"] + pd.to_timedelta(events["utc_offset_min"], unit="min")
    events["is_rapid"] = events["is_rapid"].astype(bool)
    return UserDetail(
        user_id=user_id,
        risk=dict(risk) if risk is not None else None,
        events=events,
        sessions=sessions_of(events),
        truncated=truncated,
    )


# --- analyst review ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewEntry:
    """One review of one of the user's alerts."""

    alert_id: int
    status: str
    label: str | None
    note: str | None
    reviewer: str
    created_ms: int


@dataclass(frozen=True)
class UserReviews:
    """A user's alerts (newest first, with status), their review history and any live allow-list entry."""

    alerts: tuple[AlertRow, ...] = ()
    history: tuple[ReviewEntry, ...] = ()
    allow_listed_until_ms: int | None = None
    problem: str | None = None


@_unavailable_as(lambda problem: UserReviews(problem=problem))
def fetch_user_reviews(*, engine: Engine, user_id: str, now_ms: int, limit: int = 50) -> UserReviews:
    """The user's newest alerts and reviews, read through the user indexes of alerts and alert_reviews."""
    with engine.connect() as conn:
        alerts = conn.execute(
            select(*_ALERT_COLUMNS)
            .outerjoin(AlertState, AlertState.alert_id == Alert.id)
            .where(Alert.user_id == user_id)
            .order_by(Alert.id.desc())
            .limit(limit)
        ).all()  # fmt: skip
        history = conn.execute(
            select(
                AlertReview.alert_id, AlertReview.status, AlertReview.label, AlertReview.note,
                AlertReview.reviewer, AlertReview.created_ms,
            )
            .where(AlertReview.user_id == user_id)
            .order_by(AlertReview.id.desc())
            .limit(limit)
        ).all()  # fmt: skip
        until = conn.execute(
            select(func.max(AllowListEntry.expires_ms)).where(
                AllowListEntry.user_id == user_id, AllowListEntry.expires_ms > now_ms
            )
        ).scalar()
    return UserReviews(
        alerts=tuple(_alert_row(r) for r in alerts),
        history=tuple(ReviewEntry(*r) for r in history),
        allow_listed_until_ms=until,
    )


def _empty_precision() -> pd.DataFrame:
    return _frame(["true_positives", "false_positives", "precision"])


@dataclass(frozen=True)
class MarkerPrecision:
    """Per marker: alerts confirmed and called false positives by analysts, and the precision."""

    by_marker: pd.DataFrame = field(default_factory=_empty_precision)
    labelled: int = 0
    problem: str | None = None


@_unavailable_as(lambda problem: MarkerPrecision(problem=problem))
def fetch_marker_precision(*, engine: Engine) -> MarkerPrecision:
    """The per-marker precision of `ecomrisk evaluate --source reviews`, from the same function."""
    from workers.evaluation import load_review_labels, review_precision

    result = review_precision(load_review_labels(engine))
    return MarkerPrecision(by_marker=result.by_marker, labelled=result.labelled)
