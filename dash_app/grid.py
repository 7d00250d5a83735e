"""The AG Grid edge: getRowsRequest in as a RiskQuery, RiskPage out as rows and a count."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

from dash_app.formats import utc_text
from dash_app.queries import (
    MAX_PAGE_ROWS,
    SORTABLE_COLUMNS,
    AlertFeed,
    QuarantineLines,
    RiskPage,
    RiskQuery,
    SortColumn,
    UserMatch,
)

USER_MATCHES = ("contains", "startsWith", "equals")


def _conditions(model: Any) -> list[Mapping[str, Any]]:
    """The simple conditions of one column filter; AND/OR combinations are flattened."""
    if not isinstance(model, Mapping):
        return []
    if isinstance(model.get("conditions"), list):
        return [c for c in model["conditions"] if isinstance(c, Mapping)]
    return [model]


def _number(value: Any) -> int | None:
    try:
        return round(float(value))
    except (TypeError, ValueError):
        return None


def risk_query_from_request(request: Mapping[str, Any] | None) -> RiskQuery:
    """Decode an AG Grid infinite-model request; unknown sorts and filters are ignored."""
    request = request or {}
    start = max(0, int(request.get("startRow") or 0))
    end = int(request.get("endRow") or start + 100)
    query = RiskQuery(offset=start, limit=max(1, min(end - start, MAX_PAGE_ROWS)))

    sort = tuple(
        (cast(SortColumn, s["colId"]), s.get("sort") == "desc")
        for s in request.get("sortModel") or []
        if isinstance(s, Mapping) and s.get("colId") in SORTABLE_COLUMNS
    )
    if sort:
        query = replace(query, sort=sort)

    filters = request.get("filterModel") or {}
    for cond in _conditions(filters.get("user_id")):
        text = str(cond.get("filter") or "").strip()
        kind = cond.get("type")
        if text and kind in USER_MATCHES:
            query = replace(query, user_text=text, user_match=cast(UserMatch, kind))
    bands = tuple(
        str(c.get("filter")).strip().lower() for c in _conditions(filters.get("band")) if c.get("filter")
    )
    if bands:
        query = replace(query, bands=bands)
    for cond in _conditions(filters.get("risk_kind")):
        if cond.get("filter"):
            query = replace(query, risk_kind=str(cond["filter"]).strip().lower())
    for cond in _conditions(filters.get("score")):
        low, kind = _number(cond.get("filter")), cond.get("type")
        if low is None:
            continue
        if kind == "greaterThanOrEqual":
            query = replace(query, min_score=low)
        elif kind == "greaterThan":
            query = replace(query, min_score=low + 1)
        elif kind == "lessThanOrEqual":
            query = replace(query, max_score=low)
        elif kind == "lessThan":
            query = replace(query, max_score=low - 1)
        elif kind == "equals":
            query = replace(query, min_score=low, max_score=low)
        elif kind == "inRange":
            query = replace(query, min_score=low, max_score=_number(cond.get("filterTo")))
    return query


def risk_rows(page: RiskPage) -> list[dict[str, Any]]:
    """Grid rows of one risk page."""
    return [
        {
            "user_id": r.user_id,
            "score": r.score,
            "band": r.band,
            "risk_kind": r.risk_kind,
            "top_markers": ", ".join(r.top_markers),
            "last_seen": utc_text(r.last_seen_ms),
            "events": r.events,
            "peak": r.peak_score,
        }
        for r in page.rows
    ]


def risk_response(page: RiskPage) -> dict[str, Any]:
    """The getRowsResponse for one page: its rows and the number of matching users."""
    # Never 0: AG Grid's infinite model stops rendering a later refresh after an empty answer
    # (ag-grid#4415, dash-ag-grid#59); the note beside the grid carries the true count.
    return {"rowData": risk_rows(page), "rowCount": max(page.total, 1)}


def alert_rows(feed: AlertFeed) -> list[dict[str, Any]]:
    """Grid rows of the alerts feed."""
    return [
        {
            "id": str(a.id),
            "time": utc_text(a.created_ms, seconds=False)[5:],
            "user_id": a.user_id,
            "score": a.score,
            "risk_kind": a.risk_kind,
            "reasons": ", ".join(a.reasons),
            "status": a.status + (f" ({a.label})" if a.label else ""),
        }
        for a in feed.rows
    ]


def quarantine_rows(lines: QuarantineLines) -> list[dict[str, Any]]:
    """Grid rows of the newest quarantined lines; raw text stays text."""
    return [
        {
            "id": str(q.id),
            "time": utc_text(q.quarantined_ms, seconds=False)[5:],
            "reason": q.reason if q.reason == q.first_reason else f"{q.reason} (first {q.first_reason})",
            "raw_text": q.raw_text + ("…" if q.raw_length > len(q.raw_text) else ""),
            "detail": q.detail,
            "where": f"{q.batch_id}:{q.line_no}",
            "status": "released" if q.released_ms is not None else "held",
        }
        for q in lines.rows
    ]
