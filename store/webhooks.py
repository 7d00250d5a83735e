"""The webhook delivery log: one row per alert and endpoint, every write one short transaction.

The alert row is the outbox. A delivery row appears at the first attempt (or when the sweep sends
the alert again); an attempt first takes a lease on its row (committed before the POST), so two
copies of the same task never POST at once, and a worker killed mid-POST leaves a lease that
expires and lets the sweep send again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update

from store.db import write_transaction
from store.models import Alert, WebhookDelivery
from store.reviews import dialect_insert

ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """What a webhook says about one alert."""

    id: int
    user_id: str
    score: int
    band: str
    risk_kind: str
    reasons: list[dict[str, Any]]
    created_ms: int


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt that holds its row's lease: POST, then record its outcome."""

    alert: AlertRecord
    number: int  # 1 for the first attempt


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One row of the delivery log, for status, health and `webhooks retry`."""

    alert_id: int
    endpoint: str
    host: str
    attempts: int
    status_code: int | None
    last_error: str | None
    last_attempt_ms: int | None
    delivered_ms: int | None
    dead_ms: int | None


_ALERT_COLUMNS = (
    Alert.id,
    Alert.user_id,
    Alert.score,
    Alert.band,
    Alert.risk_kind,
    Alert.reasons,
    Alert.created_ms,
)


def begin_attempt(
    engine: Engine, *, alert_id: int, endpoint: str, host: str, at_ms: int, lease_ms: int
) -> Attempt | None:
    """Lease the (alert, endpoint) row for one attempt; None when delivered, dead, leased or not yet due."""
    with write_transaction(engine) as conn:
        alert = conn.execute(select(*_ALERT_COLUMNS).where(Alert.id == alert_id)).first()
        if alert is None:
            return None
        conn.execute(
            dialect_insert(conn, WebhookDelivery.__table__)
            .values(alert_id=alert_id, endpoint=endpoint, host=host[:256], attempts=0)
            .on_conflict_do_nothing(index_elements=["alert_id", "endpoint"])
        )
        key = and_(WebhookDelivery.alert_id == alert_id, WebhookDelivery.endpoint == endpoint)
        row = conn.execute(
            select(
                WebhookDelivery.attempts,
                WebhookDelivery.lease_until_ms,
                WebhookDelivery.next_attempt_ms,
                WebhookDelivery.delivered_ms,
                WebhookDelivery.dead_ms,
            )
            .where(key)
            .with_for_update()
        ).one()
        if row.delivered_ms is not None or row.dead_ms is not None:
            return None
        if row.lease_until_ms is not None and row.lease_until_ms > at_ms:
            return None  # another copy of this delivery is posting right now
        # A second's slack: a Celery retry is due at next_attempt_ms by the worker's own clock.
        if row.next_attempt_ms is not None and at_ms + 1_000 < row.next_attempt_ms:
            return None
        number = int(row.attempts) + 1
        conn.execute(
            update(WebhookDelivery)
            .where(key)
            .values(
                attempts=number, last_attempt_ms=at_ms, lease_until_ms=at_ms + lease_ms, next_attempt_ms=None
            )
        )
    return Attempt(AlertRecord(*alert), number)


def record_success(engine: Engine, *, alert_id: int, endpoint: str, status_code: int, at_ms: int) -> None:
    """The receiver accepted the delivery."""
    with write_transaction(engine) as conn:
        conn.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.alert_id == alert_id, WebhookDelivery.endpoint == endpoint)
            .values(status_code=status_code, last_error=None, delivered_ms=at_ms, lease_until_ms=None)
        )


def record_failure(
    engine: Engine,
    *,
    alert_id: int,
    endpoint: str,
    status_code: int | None,
    error: str,
    at_ms: int,
    next_attempt_ms: int | None,
) -> None:
    """The attempt failed: retry at next_attempt_ms, or dead-letter the delivery when that is None."""
    with write_transaction(engine) as conn:
        conn.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.alert_id == alert_id, WebhookDelivery.endpoint == endpoint)
            .values(
                status_code=status_code,
                last_error=error[:ERROR_CHARS],
                lease_until_ms=None,
                next_attempt_ms=next_attempt_ms,
                dead_ms=at_ms if next_attempt_ms is None else None,
            )
        )


def revive_dead(engine: Engine, *, alert_ids: Sequence[int] | None = None) -> list[tuple[int, str]]:
    """Give dead-lettered deliveries (all, or those of these alerts) a fresh set of attempts."""
    dead = and_(WebhookDelivery.dead_ms.is_not(None), WebhookDelivery.delivered_ms.is_(None))
    if alert_ids is not None:
        dead = and_(dead, WebhookDelivery.alert_id.in_(list(alert_ids)))
    with write_transaction(engine) as conn:
        revived = [
            (int(a), str(e))
            for a, e in conn.execute(select(WebhookDelivery.alert_id, WebhookDelivery.endpoint).where(dead))
        ]
        conn.execute(
            update(WebhookDelivery).where(dead).values(attempts=0, dead_ms=None, next_attempt_ms=None)
        )
    return revived


def overdue_deliveries(
    engine: Engine,
    *,
    endpoints: Sequence[str],
    since_ms: int,
    before_ms: int,
    requeued_before_ms: int,
    now_ms: int,
    limit: int = 1_000,
) -> list[tuple[int, str]]:
    """(alert_id, endpoint) of alerts created in [since_ms, before_ms] that no attempt is on its way for.

    That is: no delivery row yet, or a row neither delivered nor dead whose lease has expired,
    whose retry was due before before_ms (a lost fast path, a killed worker, a Redis restart)
    and that the sweep did not send again since requeued_before_ms.
    """
    found: list[tuple[int, str]] = []
    with engine.connect() as conn:
        for endpoint in endpoints:
            d = WebhookDelivery
            query = (
                select(Alert.id)
                .outerjoin(d, and_(d.alert_id == Alert.id, d.endpoint == endpoint))
                .where(
                    Alert.created_ms >= since_ms,
                    Alert.created_ms <= before_ms,
                    or_(
                        d.alert_id.is_(None),
                        and_(
                            d.delivered_ms.is_(None),
                            d.dead_ms.is_(None),
                            or_(d.lease_until_ms.is_(None), d.lease_until_ms <= now_ms),
                            or_(d.next_attempt_ms.is_(None), d.next_attempt_ms <= before_ms),
                            or_(d.queued_ms.is_(None), d.queued_ms <= requeued_before_ms),
                        ),
                    ),
                )
                .order_by(Alert.id)
                .limit(limit)
            )
            found += [(int(alert_id), endpoint) for alert_id in conn.scalars(query)]
    return found


def mark_queued(engine: Engine, items: Sequence[tuple[int, str, str]], *, at_ms: int) -> None:
    """Record that the sweep sent these (alert_id, endpoint, host) again, so it waits before the next time."""
    if not items:
        return
    with write_transaction(engine) as conn:
        statement = dialect_insert(conn, WebhookDelivery.__table__)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["alert_id", "endpoint"], set_={"queued_ms": statement.excluded.queued_ms}
            ),
            [
                {"alert_id": a, "endpoint": e, "host": h[:256], "attempts": 0, "queued_ms": at_ms}
                for a, e, h in sorted(items)
            ],
        )


def batch_alert_ids(engine: Engine, *, batch_id: str) -> list[int]:
    """The alerts a batch wrote."""
    with engine.connect() as conn:
        return [int(i) for i in conn.scalars(select(Alert.id).where(Alert.batch_id == batch_id))]


def read_deliveries(engine: Engine, *, dead_only: bool = False, limit: int = 100) -> list[DeliveryRow]:
    """Rows of the delivery log, newest attempt first; dead_only: the dead-lettered ones."""
    d = WebhookDelivery
    query = select(
        d.alert_id,
        d.endpoint,
        d.host,
        d.attempts,
        d.status_code,
        d.last_error,
        d.last_attempt_ms,
        d.delivered_ms,
        d.dead_ms,
    )
    if dead_only:
        query = query.where(d.dead_ms.is_not(None), d.delivered_ms.is_(None))
    query = query.order_by(d.last_attempt_ms.desc(), d.alert_id.desc()).limit(limit)
    with engine.connect() as conn:
        return [DeliveryRow(*row) for row in conn.execute(query)]


def dead_letter_count(engine: Engine) -> int:
    """Deliveries dead-lettered and not delivered since."""
    d = WebhookDelivery
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(d).where(d.dead_ms.is_not(None), d.delivered_ms.is_(None))
            ).scalar_one()
        )
