"""Read-only summaries of the ledger, quarantine and alerts, for `ecomrisk status`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, case, func, inspect, select

from store.models import Alert, Batch, QuarantinedLine

# Ledger source of the batches `ecomrisk quarantine replay` writes (workers.replay).
REPLAY_SOURCE = "replay"


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """Sums over the ledger; a replay batch's lines are released, not received a second time."""

    batches: int  # replay batches excluded
    received: int  # replay batches excluded
    stored_new: int
    duplicates: int
    quarantined: int  # ever quarantined, released lines included
    last_committed_ms: int | None
    released: int = 0  # quarantined lines a replay stored or counted as duplicates
    replay_batches: int = 0

    @property
    def held(self) -> int:
        """Lines still in quarantine."""
        return self.quarantined - self.released

    @property
    def balanced(self) -> bool:
        """received = stored new + duplicates + held in quarantine."""
        return self.received == self.stored_new + self.duplicates + self.held


def has_schema(engine: Engine) -> bool:
    """True once the workers have created the tables."""
    return inspect(engine).has_table(Batch.__tablename__)


def ledger_totals(engine: Engine) -> LedgerTotals:
    """Totals of the batch ledger."""
    replay = Batch.source == REPLAY_SOURCE
    with engine.connect() as conn:
        row = conn.execute(
            select(
                func.count() - func.count(case((replay, 1))),
                func.coalesce(func.sum(case((replay, 0), else_=Batch.received)), 0),
                func.coalesce(func.sum(Batch.stored_new), 0),
                func.coalesce(func.sum(Batch.duplicates), 0),
                func.coalesce(func.sum(Batch.quarantined), 0),
                func.max(Batch.committed_ms),
                func.coalesce(func.sum(case((replay, Batch.received), else_=0)), 0),
                func.count(case((replay, 1))),
            )
        ).one()
    return LedgerTotals(*(int(v) if v is not None else None for v in row))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class BatchOutcomes:
    """What the ledger holds of some batches: how many committed, their lines, why lines failed."""

    committed: int = 0
    received: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # current reason, released lines included
    examples: dict[str, str] = field(default_factory=dict)  # one detail per reason


def batch_outcomes(engine: Engine, *, batch_ids: Sequence[str]) -> BatchOutcomes:
    """Ledger figures and quarantine reasons of these batches, as far as they are committed."""
    if not batch_ids:
        return BatchOutcomes()
    chosen = list(batch_ids)
    with engine.connect() as conn:
        committed, received, quarantined = conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(Batch.received), 0),
                func.coalesce(func.sum(Batch.quarantined), 0),
            ).where(Batch.batch_id.in_(chosen))
        ).one()
        rows = conn.execute(
            select(QuarantinedLine.reason, func.count(), func.min(QuarantinedLine.detail))
            .where(QuarantinedLine.batch_id.in_(chosen))
            .group_by(QuarantinedLine.reason)
        ).all()
    return BatchOutcomes(
        committed=int(committed),
        received=int(received),
        quarantined=int(quarantined),
        reasons={reason: int(count) for reason, count, _ in rows},
        examples={reason: str(detail) for reason, _, detail in rows},
    )


def latest_commit_ms(engine: Engine) -> int | None:
    """When the newest batch was committed (epoch ms), or None for an empty ledger."""
    with engine.connect() as conn:
        value = conn.scalar(select(func.max(Batch.committed_ms)))
    return int(value) if value is not None else None


def quarantine_by_reason(engine: Engine) -> dict[str, int]:
    """Lines currently in quarantine (not released by a replay), per the reason they fail with now."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(QuarantinedLine.reason, func.count())
            .where(QuarantinedLine.released_ms.is_(None))
            .group_by(QuarantinedLine.reason)
            .order_by(func.count().desc())
        ).all()
    return {reason: int(count) for reason, count in rows}


def quarantine_first_reasons(engine: Engine) -> dict[str, dict[str, int]]:
    """Held lines that fail now for another reason than they were first held for: {now: {first: lines}}."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(QuarantinedLine.reason, QuarantinedLine.first_reason, func.count())
            .where(
                QuarantinedLine.released_ms.is_(None),
                QuarantinedLine.reason != QuarantinedLine.first_reason,
            )
            .group_by(QuarantinedLine.reason, QuarantinedLine.first_reason)
        ).all()
    history: dict[str, dict[str, int]] = {}
    for reason, first, count in rows:
        history.setdefault(reason, {})[first] = int(count)
    return history


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
