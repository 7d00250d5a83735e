"""Read-only summaries of the ledger, quarantine and alerts, for `ecomrisk status`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, inspect, select

from store.models import Alert, Batch, QuarantinedLine


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """Sums over every committed batch."""

    batches: int
    received: int
    stored_new: int
    duplicates: int
    quarantined: int
    last_committed_ms: int | None

    @property
    def balanced(self) -> bool:
        """received = stored new + duplicates + quarantined."""
        return self.received == self.stored_new + self.duplicates + self.quarantined


def has_schema(engine: Engine) -> bool:
    """True once the workers have created the tables."""
    return inspect(engine).has_table(Batch.__tablename__)


def ledger_totals(engine: Engine) -> LedgerTotals:
    """Totals of the batch ledger."""
    with engine.connect() as conn:
        row = conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(Batch.received), 0),
                func.coalesce(func.sum(Batch.stored_new), 0),
                func.coalesce(func.sum(Batch.duplicates), 0),
                func.coalesce(func.sum(Batch.quarantined), 0),
                func.max(Batch.committed_ms),
            )
        ).one()
    return LedgerTotals(*(int(v) if v is not None else None for v in row))  # type: ignore[arg-type]


def quarantine_by_reason(engine: Engine) -> dict[str, int]:
    """Lines currently in quarantine (not released by a replay), per reason code."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(QuarantinedLine.reason, func.count())
            .where(QuarantinedLine.released_ms.is_(None))
            .group_by(QuarantinedLine.reason)
            .order_by(func.count().desc())
        ).all()
    return {reason: int(count) for reason, count in rows}


def latest_alerts(engine: Engine, *, limit: int = 10) -> list[dict[str, Any]]:
    """The newest high-band crossings."""
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(Alert.user_id, Alert.created_ms, Alert.score, Alert.risk_kind, Alert.reasons)
                .order_by(Alert.created_ms.desc(), Alert.id.desc())
                .limit(limit)
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]
