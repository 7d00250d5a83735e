"""The naive baseline of `ecomrisk bench`: one Celery task per event, validated and upserted row by row.

What most tutorials do, kept only to be measured against: an ORM session per event, a lookup of
the user's previous event, `session.merge` and a commit. It does less than the pipeline (no tail
correction for late events, no risk, rollups, alerts or ledger), which flatters its rate. Workers
load it with `--include`; the pipeline never sends it.
"""

from __future__ import annotations

from functools import lru_cache

from celery import Task
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings, get_settings
from contract.wire import now_ms
from store.db import create_writer_engine, init_schema
from store.models import Event, QuarantinedLine
from workers.celery_app import app
from workers.sequence import SequenceRules
from workers.validation import Limits, LineRejected, validate_line

NAIVE_TASK = "ecomrisk.naive_ingest_event"
STORED, QUARANTINED = "stored", "quarantined"


@lru_cache(maxsize=1)
def sessions() -> sessionmaker[Session]:
    """Sessions on one connection per worker process, opened after the fork and kept, as a pool would."""
    settings = get_settings()
    # The writer's PRAGMAs and BEGIN IMMEDIATE, so only the one-event-per-task design is compared.
    engine = create_writer_engine(
        settings.resolved_database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    init_schema(engine)
    return sessionmaker(engine.connect(), expire_on_commit=False)


def store_line(session: Session, line: str, *, settings: Settings, line_id: str, at_ms: int) -> str:
    """Validate one raw line, then upsert it after its user's previous event, or quarantine it."""
    try:
        event = validate_line(line, line_no=1, limits=Limits.from_settings(settings, now_ms=at_ms))
    except LineRejected as exc:
        session.add(
            QuarantinedLine(
                batch_id=line_id,
                line_no=1,
                reason=exc.reason.value,
                detail=exc.detail[: settings.quarantine_detail_chars],
                first_reason=exc.reason.value,
                first_detail=exc.detail[: settings.quarantine_detail_chars],
                raw_text=line,
                quarantined_ms=at_ms,
            )
        )
        return QUARANTINED
    rules = SequenceRules.from_settings(settings)
    previous = session.scalars(
        select(Event)
        .where(Event.user_id == event.user_id, Event.ts_ms < event.ts_ms)
        .order_by(Event.ts_ms.desc())
        .limit(1)
    ).first()
    gap_ms = None if previous is None else event.ts_ms - previous.ts_ms
    rapid = rules.is_rapid(gap_ms)
    session.merge(
        Event(
            event_id=event.event_id,
            user_id=event.user_id,
            session_id=event.session_id,
            action=event.action,
            category=event.category,
            product=event.product,
            amount_cents=event.amount_cents,
            ts_ms=event.ts_ms,
            user_agent=event.user_agent,
            content_hash=event.content_hash,
            batch_id=line_id,
            line_no=1,
            ingested_ms=at_ms,
            gap_ms=gap_ms,
            is_rapid=rapid,
            is_steady=rules.is_steady(gap_ms, previous.gap_ms if previous else None),
            session_no=(previous.session_no if previous else 0) + int(rules.starts_session(gap_ms)),
            burst_len=(previous.burst_len + 1 if previous and rapid else 0),
        )
    )
    return STORED


@app.task(name=NAIVE_TASK, bind=True)
def naive_ingest_event(self: Task, line: str) -> str:
    """Store one raw line in its own transaction."""
    with sessions()() as session, session.begin():
        return store_line(
            session, line, settings=get_settings(), line_id=str(self.request.id), at_ms=now_ms()
        )
