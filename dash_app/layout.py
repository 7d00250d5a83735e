"""The page: header, KPI row, then panels in a grid; one interval per refresh region."""

from __future__ import annotations

from dash import dcc, html

from config.settings import Settings
from dash_app import components as c
from dash_app import ids
from dash_app.queries import Kpis

REGION_INTERVALS = (
    ids.KPI_INTERVAL,
    ids.PIPELINE_INTERVAL,
    ids.TIMELINE_INTERVAL,
    ids.ACTIVITY_INTERVAL,
    ids.QUALITY_INTERVAL,
    ids.ALERTS_INTERVAL,
    ids.DRILL_INTERVAL,
)


def flower_url(settings: Settings) -> str:
    """Flower's address, from settings only."""
    host = f"[{settings.flower_host}]" if ":" in settings.flower_host else settings.flower_host
    return f"http://{host}:{settings.flower_port}"


def build_layout(settings: Settings, *, database: str) -> html.Div:
    """The whole dashboard, with every panel blank until its first refresh."""
    refresh_ms = settings.dashboard_refresh_ms
    return html.Div(
        [
            *(c.refresh_interval(i, refresh_ms=refresh_ms) for i in REGION_INTERVALS),
            dcc.Store(id=ids.SELECTED_USER, data=None),
            dcc.Store(id=ids.SELECTED_ALERT, data=None),
            c.header(database=database, refresh_ms=refresh_ms, flower_url=flower_url(settings)),
            html.Main(
                [
                    html.Div(c.kpi_cards(Kpis()), id=ids.KPI_ROW, className="kpi-row"),
                    html.Div(
                        [
                            c.panel(
                                "Events per minute",
                                c.graph(ids.TIMELINE_GRAPH),
                                html.Div(id=ids.TIMELINE_NOTE, className="panel-foot"),
                                subtitle="rapid = gap under "
                                f"{settings.rapid_gap_s:g} s to the user's previous event",
                                class_name="span-8",
                            ),
                            c.panel(
                                "Pipeline health",
                                html.Div(id=ids.PIPELINE_BODY, className="pipeline-body"),
                                actions=[c.flower_link(flower_url(settings), "Flower ↗")],
                                class_name="span-4",
                            ),
                            c.panel(
                                "Users by risk",
                                c.risk_grid(),
                                html.Div(id=ids.RISK_NOTE, className="panel-foot"),
                                subtitle="click a row for the user's timeline and reasons",
                                actions=[
                                    html.Button(
                                        "Reload",
                                        id=ids.RISK_RELOAD,
                                        n_clicks=0,
                                        className="button button-ghost",
                                    )
                                ],
                                class_name="span-8",
                            ),
                            c.panel(
                                "Alerts",
                                c.status_filter(),
                                c.alerts_grid(),
                                html.Div(id=ids.ALERTS_MESSAGE, className="review-message"),
                                html.Div(id=ids.ALERTS_NOTE, className="panel-foot"),
                                subtitle="newest crossings into the high band, UTC; click one to review it",
                                actions=[
                                    html.Button(
                                        "Acknowledge",
                                        id=ids.ALERTS_ACK,
                                        n_clicks=0,
                                        className="button button-ghost",
                                        title="Acknowledge the alert last clicked",
                                    )
                                ],
                                class_name="span-4",
                            ),
                            c.drill_panel(allow_list_days=settings.allow_list_days),
                            c.panel(
                                "Marker precision",
                                html.Div(id=ids.PRECISION_BODY),
                                subtitle="from analysts' labels of resolved alerts",
                                class_name="span-4",
                            ),
                            c.panel("Events by action", c.graph(ids.ACTION_GRAPH), class_name="span-4"),
                            c.panel("Top categories", c.graph(ids.CATEGORY_GRAPH), class_name="span-4"),
                            c.panel(
                                "Weekday × hour",
                                c.graph(ids.HEATMAP_GRAPH),
                                subtitle="event time, UTC",
                                class_name="span-4",
                            ),
                            c.panel(
                                "Quarantine by reason",
                                c.graph(ids.QUARANTINE_GRAPH, height=320),
                                subtitle="last 60 min",
                                class_name="span-4",
                            ),
                            c.panel(
                                "Latest quarantined lines",
                                c.quarantine_grid(),
                                html.Div(id=ids.QUARANTINE_NOTE, className="panel-foot"),
                                subtitle="newest first, UTC, shown verbatim as text",
                                class_name="span-8",
                            ),
                        ],
                        className="page-grid",
                    ),
                ],
                className="page-main",
            ),
        ],
        className="page",
    )
