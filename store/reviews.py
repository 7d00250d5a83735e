"""Analyst reviews and the allow-list: each write one short transaction under the writer discipline.

SQLite: `write_transaction` queues the writer and begins IMMEDIATE, like an ingest batch. PostgreSQL:
a review locks its alert row (ingest only ever inserts alerts, so no batch waits for it); an
allow-list entry takes the user's advisory lock, as a batch of that user does, so a batch either
commits before the entry or reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from store.db import hold_locks, write_transaction
from store.models import Alert, AlertReview, AlertState, AllowListEntry

FALSE_POSITIVE = "false_positive"
RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Review:
    """One stored review."""

    id: int
    alert_id: int
    user_id: str
    status: str
    label: str | None
    note: str | None
    reviewer: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class AllowListed:
    """One stored allow-list entry."""

    id: int
    user_id: str
    alert_id: int | None
    expires_ms: int
    reviewer: str
    note: str | None
    created_ms: int


class NotFalsePositive(Exception):
    """Only a user with an alert resolved as false_positive can be allow-listed."""


def dialect_insert(conn: Connection, table: Any) -> Any:
    """The dialect's INSERT, which has on_conflict_do_update (typed Any: the two dialects' classes differ)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def record_review(
    engine: Engine,
    *,
    alert_id: int,
    status: str,
    label: str | None,
    note: str | None,
    reviewer: str,
    at_ms: int,
) -> Review | None:
    """Append a review and make it the alert's current state; None when there is no such alert."""
    with write_transaction(engine) as conn:
        alert = conn.execute(
            select(Alert.id, Alert.user_id).where(Alert.id == alert_id).with_for_update()
        ).first()
        if alert is None:
            return None
        values = {
            "alert_id": alert_id,
            "user_id": alert.user_id,
            "status": status,
            "label": label,
            "note": note,
            "reviewer": reviewer,
            "created_ms": at_ms,
        }
        review_id = conn.execute(insert(AlertReview).values(values).returning(AlertReview.id)).scalar_one()
        state = dialect_insert(conn, AlertState.__table__).values(
            alert_id=alert_id,
            status=status,
            label=label,
            review_id=review_id,
            reviewed_ms=at_ms,
            first_ack_ms=at_ms,
        )
        conn.execute(
            state.on_conflict_do_update(
                index_elements=["alert_id"],
                set_={"status": status, "label": label, "review_id": review_id, "reviewed_ms": at_ms},
            )
        )
    return Review(id=review_id, **values)


def allow_user(
    engine: Engine,
    *,
    user_id: str,
    expires_ms: int,
    reviewer: str,
    note: str | None,
    at_ms: int,
) -> AllowListed:
    """Allow-list a user until expires_ms; NotFalsePositive unless an alert of theirs was resolved so."""
    with write_transaction(engine) as conn:
        hold_locks(conn, "store", ["all"], shared=True)  # the order every batch takes its locks in
        hold_locks(conn, "user", [user_id])
        alert_id = conn.execute(
            select(AlertState.alert_id)
            .join(Alert, Alert.id == AlertState.alert_id)
            .where(
                Alert.user_id == user_id,
                AlertState.status == RESOLVED,
                AlertState.label == FALSE_POSITIVE,
            )
            .order_by(AlertState.alert_id.desc())
            .limit(1)
        ).scalar()
        if alert_id is None:
            raise NotFalsePositive(f"user {user_id!r} has no alert resolved as {FALSE_POSITIVE}")
        values = {
            "user_id": user_id,
            "alert_id": int(alert_id),
            "expires_ms": expires_ms,
            "reviewer": reviewer,
            "note": note,
            "created_ms": at_ms,
        }
        entry_id = conn.execute(
            insert(AllowListEntry).values(values).returning(AllowListEntry.id)
        ).scalar_one()
    return AllowListed(id=entry_id, **values)  # type: ignore[arg-type]


def allow_listed_users(conn: Connection, user_ids: Iterable[str], *, at_ms: int) -> set[str]:
    """Which of these users hold a live allow-list entry; read under the batch's user locks."""
    wanted = sorted(set(user_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            conn.scalars(
                select(AllowListEntry.user_id)
                .where(and_(AllowListEntry.user_id.in_(chunk), AllowListEntry.expires_ms > at_ms))
                .distinct()
            )
        )
    return found
