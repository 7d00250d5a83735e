"""Decoding AG Grid requests and encoding rows."""

from __future__ import annotations

from typing import Any

import pytest

from dash_app import grid
from dash_app import queries as q


def test_default_request() -> None:
    assert grid.risk_query_from_request(None) == q.RiskQuery(offset=0, limit=100)


def test_window_and_sort() -> None:
    query = grid.risk_query_from_request(
        {"startRow": 100, "endRow": 150, "sortModel": [{"colId": "last_seen", "sort": "asc"}]}
    )
    assert (query.offset, query.limit, query.sort) == (100, 50, (("last_seen", False),))


def test_unsortable_columns_keep_the_default_order() -> None:
    query = grid.risk_query_from_request({"sortModel": [{"colId": "events", "sort": "desc"}]})
    assert query.sort == q.RiskQuery().sort


def test_window_is_capped() -> None:
    assert grid.risk_query_from_request({"startRow": 0, "endRow": 10**9}).limit == q.MAX_PAGE_ROWS


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ({"user_id": {"filterType": "text", "type": "contains", "filter": " bot "}}, {"user_text": "bot"}),
        (
            {"user_id": {"filterType": "text", "type": "startsWith", "filter": "u-1"}},
            {"user_text": "u-1", "user_match": "startsWith"},
        ),
        ({"user_id": {"filterType": "text", "type": "notContains", "filter": "x"}}, {}),
        ({"band": {"filterType": "text", "type": "equals", "filter": "High"}}, {"bands": ("high",)}),
        (
            {
                "band": {
                    "filterType": "text",
                    "operator": "OR",
                    "conditions": [{"type": "equals", "filter": "low"}, {"type": "equals", "filter": "high"}],
                }
            },
            {"bands": ("low", "high")},
        ),
        ({"score": {"filterType": "number", "type": "greaterThanOrEqual", "filter": 70}}, {"min_score": 70}),
        ({"score": {"filterType": "number", "type": "greaterThan", "filter": 70}}, {"min_score": 71}),
        ({"score": {"filterType": "number", "type": "lessThanOrEqual", "filter": 20}}, {"max_score": 20}),
        ({"score": {"filterType": "number", "type": "lessThan", "filter": 20}}, {"max_score": 19}),
        ({"score": {"type": "equals", "filter": 50}}, {"min_score": 50, "max_score": 50}),
        ({"score": {"type": "inRange", "filter": 10, "filterTo": 20}}, {"min_score": 10, "max_score": 20}),
        ({"score": {"type": "greaterThanOrEqual", "filter": "abc"}}, {}),
        ({"risk_kind": {"type": "equals", "filter": "Automation"}}, {"risk_kind": "automation"}),
        ({"unknown": {"type": "equals", "filter": "x"}}, {}),
    ],
)
def test_filters(model: dict[str, Any], expected: dict[str, Any]) -> None:
    query = grid.risk_query_from_request({"startRow": 0, "endRow": 50, "filterModel": model})
    defaults = q.RiskQuery(limit=50)
    changed = {k: v for k, v in vars(query).items() if getattr(defaults, k) != v}
    assert changed == expected


def test_risk_response() -> None:
    row = q.RiskRow("u1", 80, "high", "automation", ("a", "b"), 1_767_614_400_000, 12, peak_score=95)
    response = grid.risk_response(q.RiskPage(rows=(row,), total=41))
    assert response["rowCount"] == 41
    assert response["rowData"] == [
        {
            "user_id": "u1",
            "score": 80,
            "band": "high",
            "risk_kind": "automation",
            "top_markers": "a, b",
            "last_seen": "2026-01-05 12:00:00",
            "events": 12,
            "peak": 95,
        }
    ]


def test_quarantine_rows_keep_text_as_is_and_mark_cut_lines() -> None:
    raw = '<script>alert(1)</script>{"bad'
    lines = q.QuarantineLines(
        rows=(
            q.QuarantinedRow(1, "b", 3, "not_json", "not_json", "d", raw, len(raw), 1_767_614_400_000, None),
            q.QuarantinedRow(
                2, "b", 4, "line_too_long", "line_too_long", "d", "x" * 5, 900, 1_767_614_400_000, 1
            ),
            # Held as too old, failing now (after a replay) because the purchase has no amount.
            q.QuarantinedRow(
                3,
                "b",
                5,
                "purchase_without_amount",
                "timestamp_too_old",
                "d",
                "{}",
                2,
                1_767_614_400_000,
                None,
            ),
        )
    )
    rows = grid.quarantine_rows(lines)
    assert [r["reason"] for r in rows] == [
        "not_json",
        "line_too_long",
        "purchase_without_amount (first timestamp_too_old)",
    ]
    assert rows[0]["raw_text"] == raw  # escaping is the browser's job: cells are text nodes
    assert rows[0]["where"] == "b:3" and rows[0]["status"] == "held"
    assert rows[1]["raw_text"] == "xxxxx…" and rows[1]["status"] == "released"
    assert rows[0]["time"] == "01-05 12:00"


def test_alert_rows() -> None:
    feed = q.AlertFeed(
        rows=(
            q.AlertRow(7, "u1", 1_767_614_400_000, 90, "automation", ("a", "b")),
            q.AlertRow(8, "u2", 1_767_614_400_000, 80, "automation", ("a",), "resolved", "false_positive"),
        )
    )
    assert grid.alert_rows(feed) == [
        {
            "id": "7",
            "time": "01-05 12:00",
            "user_id": "u1",
            "score": 90,
            "risk_kind": "automation",
            "reasons": "a, b",
            "status": "open",
        },
        {
            "id": "8",
            "time": "01-05 12:00",
            "user_id": "u2",
            "score": 80,
            "risk_kind": "automation",
            "reasons": "a",
            "status": "resolved (false_positive)",
        },
    ]
