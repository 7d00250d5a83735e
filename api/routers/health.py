"""Health: store, broker, queue depth, workers online, event-time lag, webhook dead letters."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError

from api import schemas
from api.deps import Reader, State
from contract.wire import now_ms
from dash_app.queries import fetch_pipeline_stats
from store.webhooks import dead_letter_count

router = APIRouter(tags=["health"])


@router.get("/health", response_model=schemas.Health, responses=schemas.error_responses(401))
def health(state: State, _caller: Reader) -> schemas.Health:
    """The pipeline's health; the Redis probes are the dashboard's, refreshed in the background."""
    stats = fetch_pipeline_stats(engine=state.reader, now_ms=now_ms())
    dead: int | None
    try:
        dead = dead_letter_count(state.reader)
    except SQLAlchemyError:
        dead = None
    queue = state.probe.queue_depth()
    workers = state.probe.workers()
    broker = schemas.Check(ok=None if not queue.checked else queue.problem is None, problem=queue.problem)
    store = schemas.Check(ok=stats.problem is None, problem=stats.problem)
    online = None if not workers.checked or workers.problem else list(workers.workers)
    degraded = not store.ok or broker.ok is False or online == [] or bool(dead)
    return schemas.Health(
        status="degraded" if degraded else "ok",
        store=store,
        broker=broker,
        queue_depth=queue.depth,
        workers_online=online,
        event_lag_ms=stats.event_lag_ms,
        last_commit_ms=stats.last_committed_ms,
        webhook_endpoints=len(state.settings.webhook_endpoints),
        webhook_dead_letters=dead,
    )
