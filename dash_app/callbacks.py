"""Callbacks: each one queries, then builds a figure or component; nothing else.

Pile-up guard: every refresh region has its own `dcc.Interval` and one callback, declared
with `running=[(Output(<its interval>, "disabled"), True, False)]`. The renderer disables the
interval when the request leaves and re-enables it when the answer (or an error status)
arrives, and a re-enabled interval starts a full period again. A slow query therefore
stretches that region's refresh period instead of stacking requests behind it: each open
tab has at most one request in flight per region, and a slow region never delays another.
Redis and Celery probes never block a refresh at all (see `probes.Refreshing`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dash import Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import Engine

from config.settings import Settings
from contract.wire import now_ms
from dash_app import components, figures, grid, ids, queries
from dash_app.api_client import ActionResult, ReviewClient
from dash_app.formats import count_text
from dash_app.probes import PipelineProbe

TIMELINE_MINUTES = 60
QUARANTINE_MINUTES = 60
FEED_ROWS = 50
DRILL_EVENTS = 2_000


@dataclass(frozen=True)
class Deps:
    """What the callbacks read from: one engine, the settings, the probes and a clock."""

    engine: Engine
    settings: Settings
    probe: PipelineProbe
    clock: Callable[[], int] = field(default=now_ms)
    reviews: ReviewClient | None = None  # the API, for the one kind of write the page makes


# --- refresh regions: plain functions, so `bench` times exactly what the page runs ----------


def refresh_kpis(deps: Deps) -> tuple[Any, ...]:
    """KPI cards and the header clock."""
    now = deps.clock()
    kpis = queries.fetch_kpis(engine=deps.engine, now_ms=now)
    return components.kpi_cards(kpis), components.refreshed_text(now)


def refresh_pipeline(deps: Deps) -> tuple[Any, ...]:
    """Queue depth, workers, lag and last batch."""
    stats = queries.fetch_pipeline_stats(engine=deps.engine, now_ms=deps.clock())
    probe = deps.probe
    view = components.pipeline_view(
        stats, probe.queue_depth(), probe.workers(), queue_name=deps.settings.queue_name
    )
    return (view,)


def refresh_timeline(deps: Deps) -> tuple[Any, ...]:
    """Events per minute with rapid events overlaid."""
    timeline = queries.fetch_timeline(engine=deps.engine, minutes=TIMELINE_MINUTES)
    return figures.timeline_figure(timeline), components.timeline_note(timeline)


def refresh_activity(deps: Deps) -> tuple[Any, ...]:
    """Events by action and category, and the weekday × hour heatmap."""
    mix = queries.fetch_activity_mix(engine=deps.engine)
    heatmap = queries.fetch_activity_heatmap(engine=deps.engine)
    return figures.action_figure(mix), figures.category_figure(mix), figures.heatmap_figure(heatmap)


def refresh_quality(deps: Deps) -> tuple[Any, ...]:
    """Quarantine counts by reason over time and the newest quarantined lines."""
    counts = queries.fetch_quarantine_counts(
        engine=deps.engine, now_ms=deps.clock(), minutes=QUARANTINE_MINUTES
    )
    lines = queries.fetch_latest_quarantined(engine=deps.engine, limit=FEED_ROWS)
    return figures.quarantine_figure(counts), grid.quarantine_rows(lines), lines.problem or ""


def refresh_alerts(deps: Deps, status: str | None = None) -> tuple[Any, ...]:
    """The newest alerts (of one review status, or all), and the per-marker precision of reviews."""
    feed = queries.fetch_alerts(
        engine=deps.engine, limit=FEED_ROWS, status=None if status == "all" else status
    )
    precision = queries.fetch_marker_precision(engine=deps.engine)
    return grid.alert_rows(feed), feed.problem or "", components.precision_table(precision)


def serve_risk_page(deps: Deps, request: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """One page of the risk table for an AG Grid getRowsRequest."""
    page = queries.fetch_risk_page(engine=deps.engine, query=grid.risk_query_from_request(request))
    return grid.risk_response(page), page.problem or f"{count_text(page.total)} users match"


def refresh_drill(deps: Deps, user_id: str | None, selected_alert: int | None = None) -> tuple[Any, ...]:
    """The drill-down of one user, with their alerts and review history, or a closed panel."""
    if not user_id:
        return tuple(components.drill_view(None, None, rapid_gap_s=deps.settings.rapid_gap_s))
    detail = queries.fetch_user_detail(engine=deps.engine, user_id=user_id, limit=DRILL_EVENTS)
    reviews = queries.fetch_user_reviews(engine=deps.engine, user_id=user_id, now_ms=deps.clock())
    view = components.drill_view(
        user_id, detail, rapid_gap_s=deps.settings.rapid_gap_s, reviews=reviews, selected_alert=selected_alert
    )
    return tuple(view)


REVIEW_ACTIONS = {ids.REVIEW_ACK, ids.REVIEW_RESOLVE, ids.REVIEW_ALLOW, ids.ALERTS_ACK}


def act_on_alert(
    deps: Deps,
    trigger: str | None,
    *,
    user_id: str | None,
    selected_alert: int | None,
    label: str | None,
    note: str | None,
    days: float | None,
) -> ActionResult:
    """Run one review action through the API; the answer as a sentence."""
    if deps.reviews is None:
        return ActionResult(False, "No API configured (ECOMRISK_API_URL).")
    if trigger == ids.ALERTS_ACK:
        if selected_alert is None:
            return ActionResult(False, "Click an alert first.")
        return deps.reviews.review(selected_alert, status="acknowledged", note=note)
    if not user_id:
        return ActionResult(False, "Select a user first.")
    if trigger == ids.REVIEW_ALLOW:
        return deps.reviews.allow_list(user_id, days=float(days or deps.settings.allow_list_days), note=note)
    reviews = queries.fetch_user_reviews(engine=deps.engine, user_id=user_id, now_ms=deps.clock())
    target = components.target_alert(reviews, selected_alert)
    if target is None:
        return ActionResult(False, reviews.problem or "This user has raised no alert.")
    if trigger == ids.REVIEW_RESOLVE:
        if not label:
            return ActionResult(False, "Choose a label to resolve with.")
        return deps.reviews.review(target, status="resolved", label=label, note=note)
    return deps.reviews.review(target, status="acknowledged", note=note)


REGIONS: dict[str, tuple[str, list[Output], Callable[[Deps], tuple[Any, ...]]]] = {
    "kpis": (
        ids.KPI_INTERVAL,
        [Output(ids.KPI_ROW, "children"), Output(ids.REFRESHED_AT, "children")],
        refresh_kpis,
    ),
    "pipeline": (ids.PIPELINE_INTERVAL, [Output(ids.PIPELINE_BODY, "children")], refresh_pipeline),
    "timeline": (
        ids.TIMELINE_INTERVAL,
        [Output(ids.TIMELINE_GRAPH, "figure"), Output(ids.TIMELINE_NOTE, "children")],
        refresh_timeline,
    ),
    "activity": (
        ids.ACTIVITY_INTERVAL,
        [
            Output(ids.ACTION_GRAPH, "figure"),
            Output(ids.CATEGORY_GRAPH, "figure"),
            Output(ids.HEATMAP_GRAPH, "figure"),
        ],
        refresh_activity,
    ),
    "quality": (
        ids.QUALITY_INTERVAL,
        [
            Output(ids.QUARANTINE_GRAPH, "figure"),
            Output(ids.QUARANTINE_GRID, "rowData"),
            Output(ids.QUARANTINE_NOTE, "children"),
        ],
        refresh_quality,
    ),
    "alerts": (
        ids.ALERTS_INTERVAL,
        [
            Output(ids.ALERTS_GRID, "rowData"),
            Output(ids.ALERTS_NOTE, "children"),
            Output(ids.PRECISION_BODY, "children"),
        ],
        refresh_alerts,
    ),
}
# Regions with more inputs than their interval, passed on to refresh after deps; `bench` calls
# refresh(deps) alone (the alerts feed unfiltered).
REGION_INPUTS: dict[str, list[Input]] = {"alerts": [Input(ids.ALERTS_STATUS, "value")]}

DRILL_OUTPUTS = [
    Output(ids.DRILL_PANEL, "className"),
    Output(ids.DRILL_TITLE, "children"),
    Output(ids.DRILL_SUMMARY, "children"),
    Output(ids.DRILL_TIMELINE_GRAPH, "figure"),
    Output(ids.DRILL_EXPLAIN_GRAPH, "figure"),
    Output(ids.DRILL_MARKERS, "children"),
    Output(ids.DRILL_SESSIONS, "children"),
    Output(ids.DRILL_REVIEWS, "children"),
]


def selected_user(
    trigger: str | None,
    risk_click: Mapping[str, Any] | None,
    alert_click: Mapping[str, Any] | None,
    alert_rows: Sequence[Mapping[str, Any]] | None,
) -> str | None:
    """The user a click selects: a risk row, an alert row, or none after Close."""
    if trigger == ids.RISK_GRID and risk_click and risk_click.get("rowId"):
        return str(risk_click["rowId"])
    if trigger == ids.ALERTS_GRID and alert_click:
        for row in alert_rows or []:
            if row.get("id") == alert_click.get("rowId"):
                return str(row["user_id"])
        raise PreventUpdate
    if trigger == ids.DRILL_CLOSE:
        return None
    raise PreventUpdate


RELOAD_RISK_GRID_JS = f"""
function(n) {{
    if (n) {{ dash_ag_grid.getApi("{ids.RISK_GRID}").refreshInfiniteCache(); }}
    return window.dash_clientside.no_update;
}}
"""


def _register_region(
    app: Dash,
    deps: Deps,
    interval_id: str,
    outputs: list[Output],
    refresh: Callable[..., Any],
    inputs: Sequence[Input] = (),
) -> None:
    def tick(_n_intervals: int, *values: Any) -> Any:
        return refresh(deps, *values)

    app.callback(
        outputs,
        Input(interval_id, "n_intervals"),
        *inputs,
        running=[(Output(interval_id, "disabled"), True, False)],  # the pile-up guard
    )(tick)


def register_callbacks(app: Dash, deps: Deps) -> None:
    """Wire every region, the risk grid, row selection and the drill-down to `app`."""
    for name, (interval_id, outputs, refresh) in REGIONS.items():
        _register_region(app, deps, interval_id, outputs, refresh, REGION_INPUTS.get(name, ()))

    @app.callback(
        Output(ids.RISK_GRID, "getRowsResponse"),
        Output(ids.RISK_NOTE, "children"),
        Input(ids.RISK_GRID, "getRowsRequest"),
        prevent_initial_call=True,
    )
    def risk_page(request: dict[str, Any] | None) -> tuple[Any, ...]:
        return serve_risk_page(deps, request)

    app.clientside_callback(  # type: ignore[no-untyped-call]
        RELOAD_RISK_GRID_JS,
        Output(ids.RISK_RELOAD, "title"),
        Input(ids.RISK_RELOAD, "n_clicks"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.SELECTED_USER, "data"),
        Input(ids.RISK_GRID, "cellClicked"),
        Input(ids.ALERTS_GRID, "cellClicked"),
        Input(ids.DRILL_CLOSE, "n_clicks"),
        State(ids.ALERTS_GRID, "rowData"),
        prevent_initial_call=True,
    )
    def select_user(
        risk_click: dict[str, Any] | None,
        alert_click: dict[str, Any] | None,
        _close: int,
        alert_rows: list[dict[str, Any]] | None,
    ) -> str | None:
        return selected_user(ctx.triggered_id, risk_click, alert_click, alert_rows)

    @app.callback(
        Output(ids.SELECTED_ALERT, "data"),
        Input(ids.ALERTS_GRID, "cellClicked"),
        Input(ids.RISK_GRID, "cellClicked"),
        prevent_initial_call=True,
    )
    def select_alert(alert_click: dict[str, Any] | None, _risk_click: dict[str, Any] | None) -> int | None:
        if ctx.triggered_id == ids.ALERTS_GRID and alert_click and alert_click.get("rowId"):
            return int(alert_click["rowId"])
        return None  # a user picked from the risk table: act on their newest alert

    @app.callback(
        DRILL_OUTPUTS,
        Input(ids.SELECTED_USER, "data"),
        Input(ids.SELECTED_ALERT, "data"),
        Input(ids.DRILL_INTERVAL, "n_intervals"),
        running=[(Output(ids.DRILL_INTERVAL, "disabled"), True, False)],
    )
    def drill(user_id: str | None, selected_alert: int | None, _n_intervals: int) -> tuple[Any, ...]:
        if not user_id and ctx.triggered_id == ids.DRILL_INTERVAL:
            return tuple(no_update for _ in DRILL_OUTPUTS)  # nothing open: nothing to redraw
        return refresh_drill(deps, user_id, selected_alert)

    @app.callback(
        Output(ids.REVIEW_MESSAGE, "children"),
        Output(ids.ALERTS_MESSAGE, "children"),
        *(Input(action, "n_clicks") for action in sorted(REVIEW_ACTIONS)),
        State(ids.SELECTED_USER, "data"),
        State(ids.SELECTED_ALERT, "data"),
        State(ids.REVIEW_LABEL, "value"),
        State(ids.REVIEW_NOTE, "value"),
        State(ids.REVIEW_DAYS, "value"),
        prevent_initial_call=True,
    )
    def review(*values: Any) -> tuple[Any, Any]:
        user_id, selected_alert, label, note, days = values[len(REVIEW_ACTIONS) :]
        trigger = ctx.triggered_id
        done = act_on_alert(
            deps, trigger, user_id=user_id, selected_alert=selected_alert, label=label, note=note, days=days
        )
        message = components.notice(done.message, tone="ok" if done.ok else "warn")
        return (no_update, message) if trigger == ids.ALERTS_ACK else (message, no_update)
