"""Pure figure builders: data in, go.Figure out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest

from dash_app import figures as f
from dash_app import queries as q

PROBLEM = "No database yet at /x/ecomrisk.db: start the workers."


def _annotation(fig: go.Figure) -> str:
    return str(fig.layout.annotations[0].text)


def _timeline() -> q.Timeline:
    minutes = pd.date_range("2026-01-05 11:57", periods=3, freq="min", tz="UTC")
    return q.Timeline(per_minute=pd.DataFrame({"minute": minutes, "events": [5, 0, 9], "rapid": [1, 0, 4]}))


def _mix() -> q.ActivityMix:
    frame = pd.DataFrame({"name": ["view", "purchase"], "events": [30, 4], "rapid": [10, 1]})
    return q.ActivityMix(by_action=frame, by_category=frame.assign(name=["Books", "<b>Toys</b>"]))


def _heatmap() -> q.ActivityHeatmap:
    counts = pd.DataFrame(0, index=list(q.WEEKDAYS), columns=list(range(24)))
    counts.loc["Mon", 12] = 7
    return q.ActivityHeatmap(counts=counts)


def _counts() -> q.QuarantineCounts:
    minute = pd.Timestamp("2026-01-05 11:59", tz="UTC")
    frame = pd.DataFrame(
        {"minute": [minute, minute], "reason": ["not_json", "missing_field"], "lines": [3, 1]}
    )
    return q.QuarantineCounts(per_minute=frame)


def _detail(*, markers: list[dict[str, Any]] | None = None) -> q.UserDetail:
    ts = pd.to_datetime([0, 1_000, 60_000, 60_500], unit="ms", utc=True)
    events = pd.DataFrame(
        {
            "ts": ts,
            "event_id": ["e0", "e1", "e2", "e3"],
            "action": ["view", "view", "purchase", '<a href="x">go</a>'],
            "category": ["Books", None, "Books", None],
            "product": ["p", None, "<img src=x onerror=alert(1)>", None],
            "amount_cents": [None, None, 100, None],
            "gap_s": [None, 1.0, 59.0, 0.5],
            "is_rapid": [False, True, False, True],
            "session_no": [1, 1, 1, 1],
            "burst_len": [0, 1, 0, 1],
            "utc_offset_min": [0, 0, 120, 120],
        }
    )
    events["local"] = events["ts"] + pd.to_timedelta(events["utc_offset_min"], unit="min")
    risk = {
        "score": 95,
        "automation_score": 100,
        "loss_of_control_score": 0,
        "markers": markers
        if markers is not None
        else [
            {"name": "regular_timing", "value": 0.1, "threshold": 0.25, "weight": 80, "kind": "automation"},
            {"name": "inhuman_volume", "value": 0.5, "threshold": 1.0, "weight": 30, "kind": "automation"},
        ],
    }
    return q.UserDetail(user_id="u", risk=risk, events=events, sessions=q.sessions_of(events))


BUILDERS: dict[str, tuple[Callable[[Any], go.Figure], Callable[[str], Any], Any]] = {
    "timeline": (f.timeline_figure, lambda p: q.Timeline(problem=p), q.Timeline()),
    "action": (f.action_figure, lambda p: q.ActivityMix(problem=p), q.ActivityMix()),
    "category": (f.category_figure, lambda p: q.ActivityMix(problem=p), q.ActivityMix()),
    "heatmap": (f.heatmap_figure, lambda p: q.ActivityHeatmap(problem=p), q.ActivityHeatmap()),
    "quarantine": (f.quarantine_figure, lambda p: q.QuarantineCounts(problem=p), q.QuarantineCounts()),
    "user_timeline": (f.user_timeline_figure, lambda p: q.UserDetail(problem=p), q.UserDetail()),
    "explanation": (f.risk_explanation_figure, lambda p: q.UserDetail(problem=p), q.UserDetail()),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_empty_data_says_no_data_yet(name: str) -> None:
    build, _, empty = BUILDERS[name]
    fig = build(empty)
    assert isinstance(fig, go.Figure)
    assert fig.data == ()
    assert _annotation(fig).startswith(f.NO_DATA)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_a_problem_is_shown_in_words(name: str) -> None:
    build, with_problem, _ = BUILDERS[name]
    fig = build(with_problem(PROBLEM))
    assert fig.data == () and _annotation(fig) == PROBLEM


def test_empty_figure_hides_axes() -> None:
    fig = f.empty_figure()
    assert _annotation(fig) == "No data yet"
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False


def test_timeline_figure_overlays_rapid_on_events() -> None:
    fig = f.timeline_figure(_timeline())
    assert [t.name for t in fig.data] == ["events", "rapid (high-frequency)"]
    assert list(fig.data[0].y) == [5, 0, 9] and list(fig.data[1].y) == [1, 0, 4]
    assert fig.layout.barmode == "overlay"


def test_timeline_of_only_zeros_is_empty() -> None:
    frame = _timeline().per_minute.assign(events=0, rapid=0)
    assert _annotation(f.timeline_figure(q.Timeline(per_minute=frame))) == f.NO_DATA


def test_action_figure_splits_normal_and_rapid() -> None:
    fig = f.action_figure(_mix())
    normal, rapid = fig.data
    assert list(normal.y) == ["purchase", "view"]  # ascending: the largest bar on top
    assert list(normal.x) == [3, 20] and list(rapid.x) == [1, 10]
    assert fig.layout.barmode == "stack"


def test_category_labels_from_data_are_made_inert() -> None:
    labels = list(f.category_figure(_mix()).data[0].y)
    assert "&lt;b&gt;Toys&lt;/b&gt;" in labels
    assert not any("<" in label for label in labels)


def test_heatmap_figure() -> None:
    trace = f.heatmap_figure(_heatmap()).data[0]
    assert trace.type == "heatmap"
    assert len(trace.y) == 7 and len(trace.x) == 24
    assert trace.z[0][12] == 7 and sum(map(sum, trace.z)) == 7


def test_quarantine_figure_stacks_one_trace_per_reason() -> None:
    fig = f.quarantine_figure(_counts())
    assert {t.name: list(t.y) for t in fig.data} == {"missing_field": [1], "not_json": [3]}
    assert fig.layout.barmode == "stack"


def test_user_timeline_highlights_rapid_events() -> None:
    fig = f.user_timeline_figure(_detail(), rapid_gap_s=2.0)
    normal, rapid = fig.data
    assert normal.name == "event" and rapid.name == "rapid (gap < 2 s)"
    assert len(normal.x) == 2 and len(rapid.x) == 2
    assert list(rapid.y) == ["view", '&lt;a href="x"&gt;go&lt;/a&gt;']


def test_user_timeline_hover_shows_each_events_local_time() -> None:
    fig = f.user_timeline_figure(_detail())
    hover = [str(row[1]) for trace in fig.data for row in trace.customdata]
    assert "1970-01-01 00:00:00 (UTC+00:00)" in hover
    assert "1970-01-01 02:01:00 (UTC+02:00)" in hover  # 60 s after the epoch, written at UTC+2


def test_user_timeline_hover_text_from_data_is_inert() -> None:
    fig = f.user_timeline_figure(_detail())
    hover = [str(cell) for trace in fig.data for row in trace.customdata for cell in row]
    assert any("&lt;img" in cell for cell in hover)
    assert not any("<img" in cell or "<a " in cell for cell in hover)


def test_risk_explanation_shows_markers_and_scores() -> None:
    fig = f.risk_explanation_figure(_detail())
    markers, scores = fig.data
    assert list(markers.y) == ["inhuman_volume", "regular_timing"]
    assert list(markers.x) == [30, 80]
    assert [row[:2] for row in markers.customdata] == [["0.5", "1"], ["0.1", "0.25"]]
    assert dict(zip(scores.y, scores.x, strict=True)) == {
        "total": 95,
        "loss of control": 0,
        "automation": 100,
    }


def test_risk_explanation_without_markers_says_so() -> None:
    fig = f.risk_explanation_figure(_detail(markers=[]))
    assert len(fig.data) == 1  # scores only
    assert "no marker fired" in [a.text for a in fig.layout.annotations]


def test_risk_explanation_without_risk_row() -> None:
    detail = q.UserDetail(user_id="u", risk=None)
    assert _annotation(f.risk_explanation_figure(detail)).startswith(f.NO_DATA)
