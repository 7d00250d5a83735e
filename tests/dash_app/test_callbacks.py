"""Refresh functions, row selection, components and callback wiring, without a browser."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dash import Dash
from dash._utils import to_json
from dash.exceptions import PreventUpdate
from sqlalchemy import Engine

from config.settings import Settings
from dash_app import callbacks as cb
from dash_app import components, ids
from dash_app.app import create_app
from dash_app.layout import REGION_INTERVALS
from dash_app.probes import QueueDepth, WorkerStatus
from dash_app.queries import Kpis, PipelineStats
from tests.dash_app.seed import NOW_MS, XSS_LINE, Facts


class StubProbe:
    """A probe with fixed answers, so no test waits on Redis."""

    def __init__(self, queue: QueueDepth | None = None, workers: WorkerStatus | None = None) -> None:
        self._queue = queue or QueueDepth(depth=3)
        self._workers = workers or WorkerStatus(workers=("w1@host",))

    def queue_depth(self) -> QueueDepth:
        return self._queue

    def workers(self) -> WorkerStatus:
        return self._workers


def _deps(settings: Settings, reader: Engine, probe: Any = None) -> cb.Deps:
    return cb.Deps(engine=reader, settings=settings, probe=probe or StubProbe(), clock=lambda: NOW_MS)


def _text(value: Any) -> str:
    """Every string inside a component tree, joined."""
    return str(json.loads(to_json(value)))


# --- refresh regions ---------------------------------------------------------------------------


@pytest.mark.parametrize("region", sorted(cb.REGIONS))
def test_every_region_refreshes_on_a_seeded_database(
    region: str, seeded: Facts, settings: Settings, reader: Engine
) -> None:
    _, outputs, refresh = cb.REGIONS[region]
    result = refresh(_deps(settings, reader))
    assert len(result) == len(outputs)
    assert "No database" not in _text(result)


@pytest.mark.parametrize("region", sorted(cb.REGIONS))
def test_every_region_says_the_database_is_missing(region: str, settings: Settings, reader: Engine) -> None:
    _, _, refresh = cb.REGIONS[region]
    assert "No database yet at" in _text(refresh(_deps(settings, reader)))


def test_kpi_refresh(seeded: Facts, settings: Settings, reader: Engine) -> None:
    cards, clock = cb.refresh_kpis(_deps(settings, reader))
    text = _text(cards)
    assert "180" in text and "8.0" in text and "2.7%" in text and "17.8%" in text
    assert clock == "Updated 12:00:00 UTC"


def test_quality_refresh_passes_raw_lines_as_text(seeded: Facts, settings: Settings, reader: Engine) -> None:
    _, rows, note = cb.refresh_quality(_deps(settings, reader))
    assert rows[0]["raw_text"] == XSS_LINE
    assert note == ""


def test_serve_risk_page(seeded: Facts, settings: Settings, reader: Engine) -> None:
    request = {
        "startRow": 0,
        "endRow": 2,
        "sortModel": [{"colId": "score", "sort": "desc"}],
        "filterModel": {"band": {"filterType": "text", "type": "equals", "filter": "high"}},
    }
    response, note = cb.serve_risk_page(_deps(settings, reader), request)
    assert [r["user_id"] for r in response["rowData"]] == ["bot-001", "bot-002"]
    assert response["rowCount"] == 2 and note == "2 users match"


def test_serve_risk_page_without_database(settings: Settings, reader: Engine) -> None:
    response, note = cb.serve_risk_page(_deps(settings, reader), {"startRow": 0, "endRow": 50})
    assert response == {"rowData": [], "rowCount": 1}  # never 0: see grid.risk_response
    assert note.startswith("No database yet at")


def test_drill_refresh_opens_and_closes(seeded: Facts, settings: Settings, reader: Engine) -> None:
    view = components.DrillView(*cb.refresh_drill(_deps(settings, reader), "bot-001"))
    assert view.panel_class == components.DRILL_OPEN
    assert view.title == "User bot-001"
    assert len(view.timeline.data) == 2 and view.timeline.layout.uirevision == "bot-001"
    assert "regular_timing" in _text(view.markers)
    closed = components.DrillView(*cb.refresh_drill(_deps(settings, reader), None))
    assert closed.panel_class == components.DRILL_CLOSED


def test_drill_refresh_without_database(settings: Settings, reader: Engine) -> None:
    view = components.DrillView(*cb.refresh_drill(_deps(settings, reader), "bot-001"))
    assert view.panel_class == components.DRILL_OPEN
    assert "No database yet at" in _text(view.summary)


# --- selection ---------------------------------------------------------------------------------------


def test_a_risk_row_click_selects_its_user() -> None:
    assert cb.selected_user(ids.RISK_GRID, {"rowId": "u7", "colId": "score"}, None, None) == "u7"


def test_an_alert_row_click_selects_the_alerted_user() -> None:
    rows = [{"id": "1", "user_id": "u1"}, {"id": "2", "user_id": "u2"}]
    assert cb.selected_user(ids.ALERTS_GRID, None, {"rowId": "2", "colId": "time"}, rows) == "u2"


def test_close_clears_the_selection() -> None:
    assert cb.selected_user(ids.DRILL_CLOSE, None, None, None) is None


@pytest.mark.parametrize(
    ("trigger", "risk_click", "alert_click"),
    [(ids.RISK_GRID, None, None), (ids.ALERTS_GRID, None, {"rowId": "404"}), (None, None, None)],
)
def test_other_clicks_change_nothing(trigger: str | None, risk_click: Any, alert_click: Any) -> None:
    with pytest.raises(PreventUpdate):
        cb.selected_user(trigger, risk_click, alert_click, [{"id": "1", "user_id": "u1"}])


# --- components ----------------------------------------------------------------------------------------


def test_kpi_cards_show_a_problem_banner() -> None:
    cards = components.kpi_cards(Kpis(problem="No database yet at /x: start the workers."))
    assert cards[0].children == "No database yet at /x: start the workers."
    assert "–" in _text(cards)  # shares are unknown, not 0 %


def test_pipeline_view_states() -> None:
    stats = PipelineStats(batches=2, last_committed_ms=NOW_MS - 90_000, now_ms=NOW_MS)
    down = _text(
        components.pipeline_view(
            stats,
            QueueDepth(problem="Redis unreachable at redis://127.0.0.1:1/0 (ConnectionError)."),
            WorkerStatus(problem="Redis unreachable at redis://127.0.0.1:1/0 (ConnectionError)."),
            queue_name="q",
        )
    )
    assert "Redis unreachable at redis://127.0.0.1:1/0" in down
    assert "1 min 30 s ago" in down
    up = _text(
        components.pipeline_view(stats, QueueDepth(depth=7), WorkerStatus(workers=("a", "b")), queue_name="q")
    )
    assert "7 batches" in up and "a, b" in up
    waiting = _text(
        components.pipeline_view(
            stats, QueueDepth(checked=False), WorkerStatus(checked=False), queue_name="q"
        )
    )
    assert waiting.count("checking") == 2


# --- wiring ----------------------------------------------------------------------------------------------


@pytest.fixture()
def app(settings: Settings) -> Dash:
    return create_app(settings, probe=StubProbe())  # type: ignore[arg-type]


def test_every_interval_is_paused_while_its_callback_runs(app: Dash) -> None:
    guarded = {}
    for callback in app._callback_list:
        running = callback.get("running")
        if running:
            (interval_prop,) = running["running"]
            assert running["running"][interval_prop] is True
            assert running["runningOff"][interval_prop] is False
            inputs = {i["id"] for i in callback["inputs"]}
            interval = interval_prop.split(".")[0]
            assert interval in inputs, "a callback must pause the interval that triggers it"
            guarded[interval] = callback["output"]
    assert set(guarded) == set(REGION_INTERVALS)


def test_a_region_callback_over_http(app: Dash, seeded: Facts) -> None:
    def alerts(status: str) -> list[dict[str, Any]]:
        payload = {
            "output": "..alerts-grid.rowData...alerts-note.children...precision-body.children..",
            "outputs": [
                {"id": ids.ALERTS_GRID, "property": "rowData"},
                {"id": ids.ALERTS_NOTE, "property": "children"},
                {"id": ids.PRECISION_BODY, "property": "children"},
            ],
            "inputs": [
                {"id": ids.ALERTS_INTERVAL, "property": "n_intervals", "value": 1},
                {"id": ids.ALERTS_STATUS, "property": "value", "value": status},
            ],
            "changedPropIds": [f"{ids.ALERTS_INTERVAL}.n_intervals"],
            "state": [],
        }
        response = app.server.test_client().post("/_dash-update-component", json=payload)
        assert response.status_code == 200
        return list(response.get_json()["response"][ids.ALERTS_GRID]["rowData"])

    assert [r["user_id"] for r in alerts("all")] == ["bot-002", "bot-001"]
    assert [r["user_id"] for r in alerts("open")] == ["bot-002", "bot-001"]  # nobody reviewed them
    assert alerts("resolved") == []
