"""Layout pieces: the refresh intervals, panels, KPI cards, grids and the drill-down.

Every text child is a plain string, which React escapes; nothing here renders HTML or
markdown, and the only link target (Flower) comes from settings.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import dash_ag_grid as dag
import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html
from dash.development.base_component import Component

from dash_app import figures, ids
from dash_app.formats import (
    count_text,
    duration_text,
    local_text,
    rate_text,
    share_text,
    utc_text,
)
from dash_app.probes import QueueDepth, WorkerStatus
from dash_app.queries import (
    BANDS,
    Kpis,
    MarkerPrecision,
    PipelineStats,
    Timeline,
    UserDetail,
    UserReviews,
)

GRAPH_CONFIG: dcc.Graph.Config = {"displaylogo": False, "displayModeBar": False}
CHILD = Component | str


def refresh_interval(interval_id: str, *, refresh_ms: int) -> dcc.Interval:
    """The timer of one refresh region; its callback disables it while running."""
    return dcc.Interval(id=interval_id, interval=refresh_ms, n_intervals=0)


def graph(graph_id: str, *, height: int = 280) -> dcc.Graph:
    """A graph slot, blank until its first refresh."""
    return dcc.Graph(
        id=graph_id,
        figure=figures.empty_figure("Loading…", height=height),
        config=GRAPH_CONFIG,
        style={"height": f"{height}px"},
    )


def panel(
    title: str,
    *children: CHILD,
    subtitle: str | None = None,
    actions: list[CHILD] | None = None,
    class_name: str = "",
    panel_id: str | None = None,
) -> html.Section:
    """A titled card in the page grid."""
    head: list[CHILD] = [html.H2(title, className="panel-title")]
    if subtitle:
        head.append(html.Span(subtitle, className="panel-subtitle"))
    header = html.Header(
        [html.Div(head, className="panel-heading"), html.Div(actions or [], className="panel-actions")],
        className="panel-header",
    )
    kwargs: dict[str, Any] = {"id": panel_id} if panel_id else {}
    return html.Section([header, *children], className=f"panel {class_name}".strip(), **kwargs)


def notice(message: str | None, *, tone: str = "muted") -> html.P | str:
    """A one-line message under a panel ('' when there is nothing to say)."""
    return html.P(message, className=f"notice notice-{tone}") if message else ""


# --- header and KPI cards ----------------------------------------------------------------


def flower_link(flower_url: str, label: str) -> html.A:
    """A link to Flower; its target comes from settings, never from data."""
    return html.A(
        label, href=flower_url, target="_blank", rel="noopener noreferrer", className="button button-ghost"
    )


def header(*, database: str, refresh_ms: int, flower_url: str) -> html.Header:
    """The page header: name, data source, refresh clock and the Flower link."""
    return html.Header(
        [
            html.Div(
                [
                    html.Div("ER", className="brand-mark"),
                    html.Div(
                        [
                            html.H1("ecomrisk", className="brand-name"),
                            html.P("Live clickstream risk", className="brand-tagline"),
                        ]
                    ),
                ],
                className="brand",
            ),
            html.Div(
                [
                    html.Span(["Data ", html.Code(database)], className="meta-item"),
                    html.Span(f"Refresh every {refresh_ms / 1000:g} s", className="meta-item"),
                    html.Span("Waiting for data…", id=ids.REFRESHED_AT, className="meta-item"),
                    flower_link(flower_url, "Open Flower"),
                ],
                className="header-meta",
            ),
        ],
        className="page-header",
    )


def _card(label: str, value: str, note: str, *, tone: str = "") -> html.Div:
    return html.Div(
        [
            html.Div(label, className="kpi-label"),
            html.Div(value, className="kpi-value"),
            html.Div(note, className="kpi-note"),
        ],
        className=f"kpi-card {tone}".strip(),
    )


def _band_card(kpis: Kpis) -> html.Div:
    total = kpis.users
    segments = []
    legend = []
    for band in BANDS:
        n = kpis.band_counts.get(band, 0)
        width = f"{100 * n / total:.2f}%" if total else "0%"
        segments.append(html.Div(className=f"band-segment band-{band}", style={"width": width}))
        legend.append(
            html.Div(
                [html.Span(className=f"dot band-{band}"), html.Span(band), html.B(count_text(n))],
                className="band-legend-item",
                id=f"kpi-band-{band}",
            )
        )
    return html.Div(
        [
            html.Div(f"Users by risk band · {count_text(total)}", className="kpi-label"),
            html.Div(segments, className="band-bar"),
            html.Div(legend, className="band-legend"),
        ],
        className="kpi-card kpi-wide",
    )


def kpi_cards(kpis: Kpis) -> list[Component]:
    """The KPI row: stored events, rate, quarantined and rapid shares, users per band."""
    cards: list[Component] = []
    if kpis.problem:
        cards.append(html.Div(kpis.problem, className="banner banner-warn", id="kpi-problem"))
    q_share = kpis.quarantined_share
    cards += [
        html.Div(
            _card(
                "Events stored",
                count_text(kpis.events_stored),
                f"{count_text(kpis.received)} lines received",
            ),
            id="kpi-events",
        ),
        _card("Events / s", rate_text(kpis.events_per_s), "stored in the last 10 s"),
        _card(
            "Quarantined",
            share_text(q_share),
            f"{count_text(kpis.quarantined)} lines held back",
            tone="tone-warn" if q_share and q_share > 0.05 else "",
        ),
        _card(
            "Rapid actions",
            share_text(kpis.rapid_share),
            f"{count_text(kpis.rapid_events)} under the rapid gap",
        ),
        html.Div(
            _card(
                "Open alerts",
                count_text(kpis.open_alerts),
                f"{count_text(kpis.reviewed_alerts)} reviewed",
                tone="tone-warn" if kpis.open_alerts else "",
            ),
            id="kpi-open-alerts",
        ),
        html.Div(
            _card("Time to acknowledge", duration_text(kpis.median_ack_ms), "median, alert → first review"),
            id="kpi-ack",
        ),
        _band_card(kpis),
    ]
    return cards


def refreshed_text(now_ms: int) -> str:
    """The header's 'updated at' text."""
    return f"Updated {utc_text(now_ms)[11:]} UTC"


# --- pipeline health -----------------------------------------------------------------------


def _stat(label: str, value: str, *, tone: str = "ok", detail: str | None = None) -> html.Div:
    return html.Div(
        [
            html.Dt([html.Span(className=f"dot status-{tone}"), label]),
            html.Dd([value, html.Small(detail) if detail else ""]),
        ],
        className="stat",
    )


def pipeline_view(
    stats: PipelineStats, queue: QueueDepth, workers: WorkerStatus, *, queue_name: str
) -> list[CHILD]:
    """Queue depth, workers online, lag and last batch, each with a status dot."""
    if not queue.checked:
        queue_stat = _stat("Queue depth", "checking…", tone="idle")
    elif queue.problem:
        queue_stat = _stat("Queue depth", "unknown", tone="bad", detail=queue.problem)
    else:
        depth = queue.depth or 0
        queue_stat = _stat(
            "Queue depth",
            f"{count_text(depth)} batches",
            tone="ok" if depth < 50 else "warn",
            detail=f"queue '{queue_name}'",
        )
    if not workers.checked:
        worker_stat = _stat("Workers online", "checking…", tone="idle")
    elif workers.problem:
        worker_stat = _stat("Workers online", "unknown", tone="bad", detail=workers.problem)
    else:
        n = len(workers.workers)
        worker_stat = _stat(
            "Workers online",
            str(n),
            tone="ok" if n else "bad",
            detail=", ".join(workers.workers) if n else "no worker answered the ping",
        )
    items: list[CHILD] = [queue_stat, worker_stat]
    if stats.problem:
        items.append(_stat("Batches", "unknown", tone="bad", detail=stats.problem))
        return [html.Dl(items, className="stats")]
    since = stats.since_commit_ms
    items += [
        _stat(
            "Last batch committed",
            utc_text(stats.last_committed_ms),
            tone="idle" if since is None else ("ok" if since < 60_000 else "warn"),
            detail=None if since is None else f"{duration_text(since)} ago",
        ),
        _stat(
            "Event-time lag",
            duration_text(stats.event_lag_ms),
            tone="idle" if stats.event_lag_ms is None else "ok",
            detail="newest produced vs newest stored event",
        ),
        _stat(
            "Last batch latency",
            duration_text(stats.last_batch_latency_ms),
            tone="idle" if stats.last_batch_latency_ms is None else "ok",
            detail="produced → committed",
        ),
        _stat("Batches committed", count_text(stats.batches), tone="ok" if stats.batches else "idle"),
        _stat(
            "Webhook dead letters",
            count_text(stats.webhook_dead_letters),
            tone="bad" if stats.webhook_dead_letters else "ok",
            detail="`ecomrisk webhooks retry` sends them again" if stats.webhook_dead_letters else None,
        ),
    ]
    return [html.Dl(items, className="stats")]


def timeline_note(timeline: Timeline) -> str:
    """What the timeline window covers."""
    if timeline.end_ms is None:
        return ""
    return f"Last {timeline.minutes} min of event time, up to {utc_text(timeline.end_ms)} UTC"


# --- grids ----------------------------------------------------------------------------------

_BAND_CLASSES = {f"cell-band-{b}": f"params.value === '{b}'" for b in BANDS}
_GRID_DEFAULTS = {"resizable": True, "sortable": False, "suppressHeaderMenuButton": True}


def risk_grid(*, page_size: int = 50) -> dag.AgGrid:
    """The user risk table: infinite row model, so only the shown page is queried."""
    text_filter = {"filter": "agTextColumnFilter", "floatingFilter": True}
    columns = [
        {
            "field": "user_id",
            "headerName": "User",
            "sortable": True,
            "width": 160,
            "minWidth": 120,
            **text_filter,
            "filterParams": {
                "filterOptions": ["contains", "startsWith", "equals"],
                "maxNumConditions": 1,
                "debounceMs": 400,
            },
        },
        {
            "field": "score",
            "headerName": "Score",
            "sortable": True,
            "initialSort": "desc",  # the server's default order, shown on the header
            "width": 130,
            "filter": "agNumberColumnFilter",
            "floatingFilter": True,
            "filterParams": {
                "filterOptions": ["greaterThanOrEqual", "lessThanOrEqual", "equals", "inRange"],
                "maxNumConditions": 1,
                "debounceMs": 400,
            },
            "type": "numericColumn",
        },
        {
            "field": "band",
            "headerName": "Band",
            "sortable": True,
            "width": 120,
            **text_filter,
            "suppressFloatingFilterButton": True,
            "filterParams": {"filterOptions": ["equals"], "maxNumConditions": 1, "debounceMs": 400},
            "cellClassRules": _BAND_CLASSES,
        },
        {
            "field": "risk_kind",
            "headerName": "Kind",
            "width": 150,
            **text_filter,
            "suppressFloatingFilterButton": True,
            "filterParams": {"filterOptions": ["equals"], "maxNumConditions": 1, "debounceMs": 400},
        },
        {
            "field": "top_markers",
            "headerName": "Top markers",
            "width": 240,
            "minWidth": 140,
            "tooltipField": "top_markers",
        },
        {
            "field": "last_seen",
            "headerName": "Last seen (UTC)",
            "sortable": True,
            "width": 170,
            "minWidth": 160,
        },
        {"field": "events", "headerName": "Events", "type": "numericColumn", "width": 100},
        {
            "field": "peak",
            "headerName": "Peak",
            "type": "numericColumn",
            "width": 90,
            "headerTooltip": "The highest score of any window of the user's history; Score: the current one",
        },
    ]
    return dag.AgGrid(
        id=ids.RISK_GRID,
        rowModelType="infinite",
        columnDefs=columns,
        defaultColDef=_GRID_DEFAULTS,
        columnSize="responsiveSizeToFit",
        getRowId="params.data.user_id",
        dashGridOptions={
            "pagination": True,
            "paginationPageSize": page_size,
            "paginationPageSizeSelector": False,
            "cacheBlockSize": page_size,
            "maxBlocksInCache": 10,
            "rowBuffer": 0,
            "suppressMultiSort": True,
            "rowClass": "clickable-row",
            "localeText": {"noRowsToShow": "No users match"},
        },
        className="ag-theme-quartz grid",
        style={"height": "480px", "width": "100%"},
    )


def alerts_grid() -> dag.AgGrid:
    """The newest alerts; a click on a row opens that user."""
    columns = [
        {"field": "time", "headerName": "Time", "width": 110, "minWidth": 108},
        {"field": "user_id", "headerName": "User", "width": 115, "minWidth": 95, "tooltipField": "user_id"},
        {"field": "score", "headerName": "Score", "width": 70, "minWidth": 60, "type": "numericColumn"},
        {"field": "status", "headerName": "Status", "width": 100, "minWidth": 80, "tooltipField": "status"},
        {
            "field": "reasons",
            "headerName": "Reasons",
            "width": 160,
            "minWidth": 90,
            "tooltipField": "reasons",
        },
    ]
    return dag.AgGrid(
        id=ids.ALERTS_GRID,
        rowData=[],
        columnDefs=columns,
        defaultColDef=_GRID_DEFAULTS,
        columnSize="responsiveSizeToFit",
        getRowId="params.data.id",
        dashGridOptions={"rowClass": "clickable-row", "localeText": {"noRowsToShow": "No alerts yet"}},
        className="ag-theme-quartz grid",
        style={"height": "480px", "width": "100%"},
    )


def quarantine_grid() -> dag.AgGrid:
    """The newest quarantined lines; raw text is shown as text, never as markup."""
    columns = [
        {"field": "time", "headerName": "Time", "width": 110, "minWidth": 108},
        {"field": "reason", "headerName": "Reason", "width": 130, "minWidth": 100, "tooltipField": "reason"},
        {
            "field": "raw_text",
            "headerName": "Raw line",
            "width": 420,
            "minWidth": 200,
            "cellClass": "mono",
            "tooltipField": "raw_text",
        },
        {"field": "detail", "headerName": "Detail", "width": 150, "minWidth": 100, "tooltipField": "detail"},
        {"field": "where", "headerName": "Batch:line", "width": 110, "minWidth": 90, "tooltipField": "where"},
        {"field": "status", "headerName": "Status", "width": 75, "minWidth": 70},
    ]
    return dag.AgGrid(
        id=ids.QUARANTINE_GRID,
        rowData=[],
        columnDefs=columns,
        defaultColDef=_GRID_DEFAULTS,
        columnSize="responsiveSizeToFit",
        getRowId="params.data.id",
        dashGridOptions={
            "localeText": {"noRowsToShow": "No quarantined lines"},
            "tooltipShowDelay": 300,
        },
        className="ag-theme-quartz grid",
        style={"height": "320px", "width": "100%"},
    )


# --- user drill-down ------------------------------------------------------------------------


class DrillView(NamedTuple):
    """The drill-down outputs, in the order the callback declares them."""

    panel_class: str
    title: str
    summary: CHILD | list[CHILD]
    timeline: go.Figure
    explanation: go.Figure
    markers: CHILD
    sessions: CHILD
    reviews: CHILD | list[CHILD]


DRILL_OPEN = "panel panel-full drill"
DRILL_CLOSED = "panel panel-full drill is-hidden"


def drill_panel(*, allow_list_days: float = 30.0) -> html.Section:
    """The drill-down panel, hidden until a user is selected."""
    return html.Section(
        [
            html.Header(
                [
                    html.Div(
                        [
                            html.H2("User", id=ids.DRILL_TITLE, className="panel-title"),
                            html.Div(id=ids.DRILL_SUMMARY, className="drill-summary"),
                        ],
                        className="panel-heading",
                    ),
                    html.Button("Close", id=ids.DRILL_CLOSE, className="button button-ghost", n_clicks=0),
                ],
                className="panel-header",
            ),
            html.Div(
                [
                    html.Div(
                        [html.H3("Event timeline"), graph(ids.DRILL_TIMELINE_GRAPH, height=300)],
                        className="drill-cell drill-wide",
                    ),
                    html.Div(
                        [html.H3("Risk explanation"), graph(ids.DRILL_EXPLAIN_GRAPH, height=300)],
                        className="drill-cell",
                    ),
                    html.Div(
                        [html.H3("Markers"), html.Div(id=ids.DRILL_MARKERS)],
                        className="drill-cell",
                    ),
                    html.Div(
                        [html.H3("Sessions"), html.Div(id=ids.DRILL_SESSIONS)],
                        className="drill-cell drill-wide",
                    ),
                    html.Div(
                        [
                            html.H3("Review"),
                            review_form(allow_list_days=allow_list_days),
                            html.Div(id=ids.DRILL_REVIEWS),
                        ],
                        className="drill-cell drill-wide",
                    ),
                ],
                className="drill-grid",
            ),
        ],
        id=ids.DRILL_PANEL,
        className=DRILL_CLOSED,
    )


def _table(headers: list[str], rows: list[list[str]], *, numeric: set[int] | None = None) -> html.Table:
    numeric = numeric or set()
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in headers])),
            html.Tbody(
                [
                    html.Tr([html.Td(c, className="num" if i in numeric else "") for i, c in enumerate(r)])
                    for r in rows
                ]
            ),
        ],
        className="table",
    )


def markers_table(detail: UserDetail) -> CHILD:
    """Each fired marker of the current window: value against threshold, its evidence, weight and family."""
    markers = [m for m in ((detail.risk or {}).get("markers") or []) if isinstance(m, dict)]
    if not markers:
        return notice("No marker fired in the current window.")
    rows = [
        [
            str(m.get("name", "?")),
            f"{m.get('value', 0):g}",
            "–" if m.get("bound") is None else f"{m['bound']:g}",
            f"{m.get('threshold', 0):g}",
            "–" if m.get("evidence") is None else count_text(int(m["evidence"])),
            str(m.get("weight", 0)),
            str(m.get("kind", "")),
        ]
        for m in markers
    ]
    return html.Div(
        [
            _table(
                ["Marker", "Value", "Lower bound", "Threshold", "Evidence", "Points", "Kind"],
                rows,
                numeric={1, 2, 3, 4, 5},
            ),
            notice(
                "A share fires when its lower confidence bound, over that much evidence, meets the threshold."
            ),
        ]
    )


def sessions_table(detail: UserDetail, *, limit: int = 12) -> CHILD:
    """The user's newest sessions among the fetched events."""
    sessions = detail.sessions
    if sessions.empty:
        return notice("No sessions among the stored events.")
    newest = sessions.sort_values("session_no", ascending=False).head(limit)
    rows = [
        [
            str(int(s["session_no"])),
            local_text(int(pd.Timestamp(s["start"]).timestamp() * 1000), int(s["offset_min"])),
            duration_text(round(float(s["duration_s"]) * 1000)),
            count_text(int(s["events"])),
            count_text(int(s["rapid"])),
            count_text(int(s["purchases"])),
        ]
        for s in newest.to_dict("records")
    ]
    note = f"Newest {len(newest)} of {len(sessions)} sessions" + (
        " in the latest events shown" if detail.truncated else ""
    )
    return html.Div(
        [
            _table(
                ["Session", "Start (local time)", "Duration", "Events", "Rapid", "Purchases"],
                rows,
                numeric={3, 4, 5},
            ),
            notice(note),
        ]
    )


def drill_summary(detail: UserDetail) -> list[CHILD]:
    """Band badge and the user's headline numbers."""
    if detail.problem:
        return [notice(detail.problem, tone="warn")]
    risk = detail.risk
    shown = f"{count_text(len(detail.events))} events shown"
    if detail.truncated:
        shown += " (the latest only)"
    if risk is None:
        return [html.Span("no risk row yet", className="badge"), html.Span(shown, className="meta-item")]
    band = str(risk.get("band", ""))
    peak_band = str(risk.get("peak_band", ""))
    return [
        html.Span(f"now {band} · {risk.get('score', 0)}", className=f"badge badge-{band}"),
        html.Span(f"kind {risk.get('risk_kind', '')}", className="meta-item"),
        html.Span(
            f"peak {peak_band} · {risk.get('peak_score', 0)} ({risk.get('peak_kind', '')}),"
            f" window ending {utc_text(risk.get('peak_ms'))} UTC",
            className=f"badge badge-{peak_band}",
            title="The highest score of any window of this user's history",
        ),
        html.Span(
            f"{count_text(int(risk.get('window_events') or 0))} events in the current window",
            className="meta-item",
        ),
        html.Span(f"{count_text(int(risk.get('events') or 0))} events in all", className="meta-item"),
        html.Span(f"{count_text(int(risk.get('sessions') or 0))} sessions", className="meta-item"),
        html.Span(f"last seen {utc_text(risk.get('last_seen_ms'))} UTC", className="meta-item"),
        html.Span(shown, className="meta-item"),
    ]


def drill_view(
    user_id: str | None,
    detail: UserDetail | None,
    *,
    rapid_gap_s: float,
    reviews: UserReviews | None = None,
    selected_alert: int | None = None,
) -> DrillView:
    """Everything the drill-down shows for one user, or a closed panel for none."""
    if not user_id or detail is None:
        blank = figures.empty_figure("Select a user", height=300)
        return DrillView(DRILL_CLOSED, "User", [], blank, blank, "", "", [])
    return DrillView(
        panel_class=DRILL_OPEN,
        title=f"User {user_id}",
        summary=drill_summary(detail),
        # uirevision per user: a refresh keeps the zoom, a new user resets it.
        timeline=figures.user_timeline_figure(detail, rapid_gap_s=rapid_gap_s).update_layout(
            uirevision=user_id
        ),
        explanation=figures.risk_explanation_figure(detail).update_layout(uirevision=user_id),
        markers=markers_table(detail),
        sessions=sessions_table(detail),
        reviews=review_view(reviews or UserReviews(), selected_alert=selected_alert),
    )


# --- analyst review --------------------------------------------------------------------------------

REVIEW_LABELS = (
    ("confirmed automation", "confirmed_automation"),
    ("confirmed harm", "confirmed_harm"),
    ("false positive", "false_positive"),
)
STATUS_FILTERS = (
    ("All", "all"),
    ("Open", "open"),
    ("Acknowledged", "acknowledged"),
    ("Resolved", "resolved"),
)


def status_filter() -> dcc.RadioItems:
    """The alerts feed's status filter."""
    return dcc.RadioItems(
        id=ids.ALERTS_STATUS,
        options=[{"label": label, "value": value} for label, value in STATUS_FILTERS],
        value="all",
        inline=True,
        className="radio-row",
    )


def review_form(*, allow_list_days: float = 30.0) -> html.Div:
    """Label, note and the actions on the selected alert; they write through the API."""
    return html.Div(
        [
            dcc.RadioItems(
                id=ids.REVIEW_LABEL,
                options=[{"label": label, "value": value} for label, value in REVIEW_LABELS],
                value=None,
                inline=True,
                className="radio-row",
            ),
            dcc.Textarea(id=ids.REVIEW_NOTE, placeholder="Note (optional)", className="review-note"),
            html.Div(
                [
                    html.Button("Acknowledge", id=ids.REVIEW_ACK, n_clicks=0, className="button"),
                    html.Button("Resolve", id=ids.REVIEW_RESOLVE, n_clicks=0, className="button"),
                    html.Button(
                        "Allow-list", id=ids.REVIEW_ALLOW, n_clicks=0, className="button button-ghost"
                    ),
                    dcc.Input(
                        id=ids.REVIEW_DAYS,
                        type="number",
                        min=0.01,
                        value=allow_list_days,
                        className="review-days",
                    ),
                    html.Span("days", className="meta-item"),
                ],
                className="review-actions",
            ),
            html.Div(id=ids.REVIEW_MESSAGE, className="review-message"),
        ],
        className="review-form",
    )


def target_alert(reviews: UserReviews, selected_alert: int | None) -> int | None:
    """The alert an action applies to: the one clicked in the feed if it is this user's, else the newest."""
    ids_ = [a.id for a in reviews.alerts]
    if selected_alert in ids_:
        return selected_alert
    return ids_[0] if ids_ else None


def review_view(reviews: UserReviews, *, selected_alert: int | None) -> list[CHILD]:
    """Which alert the form acts on, the allow-list state, and the review history."""
    if reviews.problem:
        return [notice(reviews.problem, tone="warn")]
    target = target_alert(reviews, selected_alert)
    parts: list[CHILD] = []
    if target is None:
        parts.append(notice("This user has raised no alert."))
    else:
        alert = next(a for a in reviews.alerts if a.id == target)
        state = alert.status + (f" as {alert.label}" if alert.label else "")
        parts.append(
            html.P(
                f"Acting on alert {alert.id} ({utc_text(alert.created_ms)} UTC): {state}", id="review-target"
            )
        )
    if reviews.allow_listed_until_ms is not None:
        parts.append(
            html.P(
                f"Allow-listed until {utc_text(reviews.allow_listed_until_ms)} UTC: no new alerts.",
                id="review-allowed",
            )
        )
    if reviews.history:
        rows = [
            [utc_text(r.created_ms), str(r.alert_id), r.status, r.label or "", r.reviewer, r.note or ""]
            for r in reviews.history
        ]
        parts.append(_table(["Time (UTC)", "Alert", "Status", "Label", "Reviewer", "Note"], rows))
    else:
        parts.append(notice("No review yet."))
    return parts


def precision_table(precision: MarkerPrecision) -> CHILD:
    """Per-marker precision from analyst labels: the lowest first, the weights to look at."""
    if precision.problem:
        return notice(precision.problem, tone="warn")
    if precision.by_marker.empty:
        return notice("No resolved alert carries a label yet.")
    rows = [
        [
            str(name),
            count_text(int(r["true_positives"])),
            count_text(int(r["false_positives"])),
            f"{r['precision']:.2f}",
        ]
        for name, r in precision.by_marker.iterrows()
    ]
    return html.Div(
        [
            _table(["Marker", "Confirmed", "False positives", "Precision"], rows, numeric={1, 2, 3}),
            notice(
                f"From {count_text(precision.labelled)} labelled alerts (ecomrisk evaluate --source reviews)."
            ),
        ],
        id="precision-table",
    )
