"""Users: current risk, keyset-paged lists, latest events, review history, the allow-list."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from api import queries, schemas, views
from api.deps import Reader, Reviewer, State
from api.paging import DEFAULT_LIMIT, MAX_LIMIT, BadCursor, decode_cursor, encode_cursor
from contract.wire import now_ms, utc_ms
from store.reviews import NotFalsePositive, allow_user

router = APIRouter(prefix="/users", tags=["users"])

# A path parameter that may hold "/" (sent as %2F, which the router sees decoded); the routes with a
# suffix (/events, /reviews, /allow-list) come before the plain one, which is declared last.
UserId = Annotated[str, Path(min_length=1, max_length=256, description="The user id, percent-encoded.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page.")]
ERRORS = schemas.error_responses(401, 403, 422)
NOT_FOUND = schemas.error_responses(401, 403, 404, 422)


def _unknown(user_id: str) -> HTTPException:
    return HTTPException(404, f"no user {user_id!r} is stored")


@router.get("", response_model=schemas.UserPage, responses=ERRORS)
def list_users(
    state: State,
    _caller: Reader,
    band: Annotated[str | None, Query(pattern="^(low|elevated|high)$")] = None,
    kind: Annotated[str | None, Query(pattern="^(automation|loss_of_control|none)$")] = None,
    since: Annotated[
        datetime | None, Query(description="Only users seen at or after this time (ISO 8601 with offset).")
    ] = None,
    sort: schemas.UserSort = schemas.UserSort.SCORE,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1_000)] = None,
) -> schemas.UserPage:
    """Users, highest score first (sort=score) or most recently seen first (sort=last_seen); keyset paged."""
    if since is not None and since.tzinfo is None:
        raise HTTPException(422, "since needs an offset, e.g. 2026-12-04T10:00:00Z")
    listing = f"users:{sort.value}"
    try:
        after = decode_cursor(cursor, listing, (int, str)) if cursor else None
    except BadCursor as exc:
        raise HTTPException(422, str(exc)) from None
    rows = queries.list_users(
        state.reader,
        sort=sort.value,
        limit=limit + 1,  # one more tells whether a next page exists
        after=after,
        band=band,
        kind=kind,
        since_ms=None if since is None else utc_ms(since),
    )
    page = [views.user_summary(row._mapping) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        key = last.score if sort is schemas.UserSort.SCORE else last.last_seen_ms
        next_cursor = encode_cursor(listing, key, last.user_id)
    return schemas.UserPage(items=page, next_cursor=next_cursor)


@router.get("/{user_id:path}/events", response_model=schemas.EventList, responses=NOT_FOUND)
def get_events(
    state: State, _caller: Reader, user_id: UserId, limit: Limit = DEFAULT_LIMIT
) -> schemas.EventList:
    """A user's latest events, newest first, with gap, rapid flag and session."""
    if not queries.user_exists(state.reader, user_id=user_id):
        raise _unknown(user_id)
    rows = queries.read_events(state.reader, user_id=user_id, limit=limit)
    return schemas.EventList(
        user_id=user_id, items=[schemas.EventOut.model_validate(row._mapping) for row in rows]
    )


@router.get("/{user_id:path}/reviews", response_model=schemas.ReviewList, responses=NOT_FOUND)
def get_reviews(
    state: State, _caller: Reader, user_id: UserId, limit: Limit = DEFAULT_LIMIT
) -> schemas.ReviewList:
    """Every review of the user's alerts, newest first: the history behind the current status."""
    if not queries.user_exists(state.reader, user_id=user_id):
        raise _unknown(user_id)
    rows = queries.read_user_reviews(state.reader, user_id=user_id, limit=limit)
    return schemas.ReviewList(user_id=user_id, items=[views.review_out(r) for r in rows])


@router.post(
    "/{user_id:path}/allow-list",
    response_model=schemas.AllowListOut,
    status_code=201,
    responses=schemas.error_responses(401, 403, 404, 409, 422),
)
def allow_list_user(
    state: State, reviewer: Reviewer, user_id: UserId, body: schemas.AllowListIn
) -> schemas.AllowListOut:
    """Allow-list a user whose alert was resolved as false_positive: still scored, no alert until expiry."""
    if not queries.user_exists(state.reader, user_id=user_id):
        raise _unknown(user_id)
    at = now_ms()
    days = body.days if body.days is not None else state.settings.allow_list_days
    try:
        entry = allow_user(
            state.writer,
            user_id=user_id,
            expires_ms=at + round(days * 86_400_000),
            reviewer=reviewer,
            note=body.note,
            at_ms=at,
        )
    except NotFalsePositive as exc:
        raise HTTPException(409, str(exc)) from None
    return schemas.AllowListOut.model_validate(entry, from_attributes=True)


@router.get("/{user_id:path}", response_model=schemas.UserRisk, responses=NOT_FOUND)
def get_user(state: State, _caller: Reader, user_id: UserId) -> schemas.UserRisk:
    """A user's current score, band and kind, lifetime peak, markers, first and last seen, counts."""
    found = queries.read_user(state.reader, user_id=user_id, now_ms=now_ms())
    if found is None:
        raise _unknown(user_id)
    row, until = found
    return views.user_risk(row, until)
