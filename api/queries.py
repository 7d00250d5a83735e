"""Named read-only queries of the API: keyword-only arguments, one short transaction each, plain rows out.

Every list is a keyset page over an index: users by (score, user_id) or (band, score, user_id) or
(last_seen_ms, user_id), alerts by id, a user's events by (user_id, ts_ms, event_id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, func, select, tuple_

from store.models import Alert, AlertReview, AlertState, AllowListEntry, Event, UserRisk


def read_user(engine: Engine, *, user_id: str, now_ms: int) -> tuple[Mapping[str, Any], int | None] | None:
    """A user's user_risk row and the end of their live allow-list entry, or None for an unknown user."""
    with engine.connect() as conn:
        row = conn.execute(select(UserRisk.__table__).where(UserRisk.user_id == user_id)).mappings().first()
        if row is None:
            return None
        until = conn.execute(
            select(func.max(AllowListEntry.expires_ms)).where(
                AllowListEntry.user_id == user_id, AllowListEntry.expires_ms > now_ms
            )
        ).scalar()
    return dict(row), until


def user_exists(engine: Engine, *, user_id: str) -> bool:
    """True when the user has a risk row."""
    with engine.connect() as conn:
        return conn.execute(select(UserRisk.user_id).where(UserRisk.user_id == user_id)).first() is not None


def list_users(
    engine: Engine,
    *,
    sort: str,
    limit: int,
    after: tuple[Any, ...] | None,
    band: str | None = None,
    kind: str | None = None,
    since_ms: int | None = None,
) -> Sequence[Any]:
    """Up to `limit` users after the key `after`, highest score or latest seen first, ties by user_id."""
    key = UserRisk.score if sort == "score" else UserRisk.last_seen_ms
    query = select(
        UserRisk.user_id,
        UserRisk.score,
        UserRisk.band,
        UserRisk.risk_kind,
        UserRisk.markers,
        UserRisk.events,
        UserRisk.last_seen_ms,
        UserRisk.peak_score,
        UserRisk.peak_band,
        UserRisk.peak_kind,
        UserRisk.peak_ms,
    )
    if band is not None:
        query = query.where(UserRisk.band == band)
    if kind is not None:
        query = query.where(UserRisk.risk_kind == kind)
    if since_ms is not None:
        query = query.where(UserRisk.last_seen_ms >= since_ms)
    if after is not None:
        # A row value: both SQLite and PostgreSQL turn it into one range of the (key, user_id) index.
        query = query.where(tuple_(key, UserRisk.user_id) < tuple_(*after))
    query = query.order_by(key.desc(), UserRisk.user_id.desc()).limit(limit)
    with engine.connect() as conn:
        return conn.execute(query).all()


def read_events(engine: Engine, *, user_id: str, limit: int) -> Sequence[Any]:
    """A user's newest `limit` events, newest first, through the (user_id, ts_ms, event_id) index."""
    query = (
        select(
            Event.event_id,
            Event.ts_ms,
            Event.action,
            Event.category,
            Event.product,
            Event.amount_cents,
            Event.session_id,
            Event.session_no,
            Event.gap_ms,
            Event.is_rapid,
            Event.is_steady,
            Event.burst_len,
        )
        .where(Event.user_id == user_id)
        .order_by(Event.ts_ms.desc(), Event.event_id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return conn.execute(query).all()


_ALERT_COLUMNS = (
    Alert.id,
    Alert.user_id,
    Alert.created_ms,
    Alert.score,
    Alert.band,
    Alert.risk_kind,
    Alert.reasons,
    AlertState.status,
    AlertState.label,
    AlertState.reviewed_ms,
)


def list_alerts(
    engine: Engine,
    *,
    status: str | None,
    limit: int,
    before_id: int | None,
    user_id: str | None = None,
) -> Sequence[Any]:
    """Up to `limit` alerts newest first (by id), with their state; status 'open' means never reviewed."""
    query = select(*_ALERT_COLUMNS).outerjoin(AlertState, AlertState.alert_id == Alert.id)
    key: Any = Alert.id
    if status == "open":
        query = query.where(AlertState.alert_id.is_(None))
    elif status is not None:
        # Walk ix_alert_state_status (status, alert_id): the same order, no sort of every match.
        query = query.where(AlertState.status == status)
        key = AlertState.alert_id
    if user_id is not None:
        query = query.where(Alert.user_id == user_id)
    if before_id is not None:
        query = query.where(key < before_id)
    query = query.order_by(key.desc()).limit(limit)
    with engine.connect() as conn:
        return conn.execute(query).all()


def read_alert(engine: Engine, *, alert_id: int) -> tuple[Any, list[Mapping[str, Any]]] | None:
    """An alert with its state and its reviews, oldest first; None for an unknown id."""
    with engine.connect() as conn:
        alert = conn.execute(
            select(*_ALERT_COLUMNS)
            .outerjoin(AlertState, AlertState.alert_id == Alert.id)
            .where(Alert.id == alert_id)
        ).first()
        if alert is None:
            return None
        reviews = conn.execute(
            select(AlertReview.__table__).where(AlertReview.alert_id == alert_id).order_by(AlertReview.id)
        ).mappings()
        return alert, [dict(r) for r in reviews]


def read_user_reviews(engine: Engine, *, user_id: str, limit: int) -> list[Mapping[str, Any]]:
    """The newest reviews of a user's alerts."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(AlertReview.__table__)
            .where(AlertReview.user_id == user_id)
            .order_by(AlertReview.id.desc())
            .limit(limit)
        ).mappings()
        return [dict(r) for r in rows]
