"""Alerts: keyset-paged by status, one alert with its review history, and the review itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from api import queries, schemas, views
from api.deps import Reader, Reviewer, State
from api.paging import DEFAULT_LIMIT, MAX_LIMIT, BadCursor, decode_cursor, encode_cursor
from contract.wire import now_ms
from store.reviews import NotFalsePositive, allow_user, record_review

router = APIRouter(prefix="/alerts", tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ERRORS = schemas.error_responses(401, 403, 422)
NOT_FOUND = schemas.error_responses(401, 403, 404, 422)


@router.get("", response_model=schemas.AlertPage, responses=ERRORS)
def list_alerts(
    state: State,
    _caller: Reader,
    status: schemas.AlertStatus | None = None,
    user_id: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1_000)] = None,
) -> schemas.AlertPage:
    """Alerts newest first, optionally only open, acknowledged or resolved ones; keyset paged."""
    try:
        before = decode_cursor(cursor, "alerts", (int,))[0] if cursor else None
    except BadCursor as exc:
        raise HTTPException(422, str(exc)) from None
    rows = queries.list_alerts(
        state.reader,
        status=None if status is None else status.value,
        limit=limit + 1,
        before_id=before,
        user_id=user_id,
    )
    page = [views.alert_out(row._mapping) for row in rows[:limit]]
    next_cursor = encode_cursor("alerts", page[-1].alert_id) if len(rows) > limit else None
    return schemas.AlertPage(items=page, next_cursor=next_cursor)


def _detail(state: State, alert_id: int) -> schemas.AlertDetail:
    found = queries.read_alert(state.reader, alert_id=alert_id)
    if found is None:
        raise HTTPException(404, f"no alert {alert_id}")
    alert, reviews = found
    return schemas.AlertDetail(
        **views.alert_out(alert._mapping).model_dump(), reviews=[views.review_out(r) for r in reviews]
    )


@router.get("/{alert_id}", response_model=schemas.AlertDetail, responses=NOT_FOUND)
def get_alert(state: State, _caller: Reader, alert_id: AlertId) -> schemas.AlertDetail:
    """One alert, its current status and every review of it, oldest first."""
    return _detail(state, alert_id)


@router.post(
    "/{alert_id}/review",
    response_model=schemas.ReviewResult,
    status_code=201,
    responses=schemas.error_responses(401, 403, 404, 409, 422),
)
def review_alert(
    state: State, reviewer: Reviewer, alert_id: AlertId, body: schemas.ReviewIn
) -> schemas.ReviewResult:
    """Acknowledge or resolve (with a label) an alert; appended, never overwritten; reviewer = token name."""
    at = now_ms()
    review = record_review(
        state.writer,
        alert_id=alert_id,
        status=body.status.value,
        label=None if body.label is None else body.label.value,
        note=body.note,
        reviewer=reviewer,
        at_ms=at,
    )
    if review is None:
        raise HTTPException(404, f"no alert {alert_id}")
    entry = None
    if body.allow_list_days is not None:
        try:
            entry = allow_user(
                state.writer,
                user_id=review.user_id,
                expires_ms=at + round(body.allow_list_days * 86_400_000),
                reviewer=reviewer,
                note=body.note,
                at_ms=at,
            )
        except NotFalsePositive as exc:  # a later review of another alert changed it meanwhile
            raise HTTPException(409, str(exc)) from None
    # Read back through the writer: the reader may be a replica or a separate snapshot.
    found = queries.read_alert(state.writer, alert_id=alert_id)
    assert found is not None
    return schemas.ReviewResult(
        review=schemas.ReviewOut.model_validate(review, from_attributes=True),
        alert=views.alert_out(found[0]._mapping),
        allow_list=None
        if entry is None
        else schemas.AllowListOut.model_validate(entry, from_attributes=True),
    )
