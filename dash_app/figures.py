"""Pure figure builders: query results in, `go.Figure` out, no I/O.

Plotly renders a subset of HTML (including <a href>) in labels and hover text, so every
string that comes from event data passes through `plain` first.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dash_app.formats import offset_text
from dash_app.queries import (
    ActivityHeatmap,
    ActivityMix,
    QuarantineCounts,
    Timeline,
    UserDetail,
)

NO_DATA = "No data yet"
FONT = "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
BLUE = "#2563eb"
BLUE_LIGHT = "#93c5fd"
RED = "#dc2626"
SLATE = "#64748b"
GRID = "#e2e8f0"
KIND_COLORS = {"automation": "#7c3aed", "loss_of_control": "#ea580c"}
REASON_COLORS = (
    "#dc2626", "#f59e0b", "#7c3aed", "#0891b2", "#16a34a",
    "#db2777", "#4f46e5", "#ca8a04", "#0d9488", "#9333ea",
)  # fmt: skip


# A small template instead of "plotly_white": validating that one costs ~20 ms per figure.
TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": FONT, "size": 12, "color": "#334155"},
        "colorway": [BLUE, RED, "#f59e0b", "#7c3aed", "#0891b2", "#16a34a"],
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "xaxis": {"gridcolor": GRID, "linecolor": GRID, "zeroline": False, "automargin": True},
        "yaxis": {"gridcolor": GRID, "linecolor": GRID, "zeroline": False, "automargin": True},
        "hoverlabel": {"font": {"family": FONT}, "bgcolor": "white"},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        "bargap": 0.15,
    }
)


def plain(value: object) -> str:
    """Text from data made inert for Plotly's HTML-like label rendering."""
    return html.escape(str(value), quote=False)


def _figure(data: Any = None) -> go.Figure:
    # The template goes in at construction: set later, it is validated a second time.
    return go.Figure(data, layout={"template": TEMPLATE})


def _style(fig: go.Figure, *, height: int = 280) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 48, "r": 16, "t": 24, "b": 40},
        uirevision="live",  # a refresh keeps the viewer's zoom and hidden traces
    )
    return fig


def empty_figure(message: str = NO_DATA, *, height: int = 280) -> go.Figure:
    """A blank figure that says, in words, why there is nothing to plot."""
    fig = _figure()
    fig.add_annotation(
        text=plain(message),
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 14, "color": SLATE},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _style(fig, height=height)


def _names(values: Iterable[Any]) -> list[str]:
    return [plain(v) for v in values]


def timeline_figure(timeline: Timeline) -> go.Figure:
    """Events per minute with the rapid (high-frequency) events overlaid."""
    if timeline.problem:
        return empty_figure(timeline.problem)
    frame = timeline.per_minute
    if frame.empty or int(frame["events"].sum()) == 0:
        return empty_figure()
    fig = _figure(
        [
            go.Bar(
                x=frame["minute"],
                y=frame["events"],
                name="events",
                marker_color=BLUE_LIGHT,
                hovertemplate="%{x|%H:%M} UTC<br>%{y:,} events<extra></extra>",
            ),
            go.Bar(
                x=frame["minute"],
                y=frame["rapid"],
                name="rapid (high-frequency)",
                marker_color=RED,
                hovertemplate="%{x|%H:%M} UTC<br>%{y:,} rapid<extra></extra>",
            ),
        ]
    )
    fig.update_layout(barmode="overlay", bargap=0.1)
    fig.update_yaxes(title_text="events / min")
    return _style(fig)


def _mix_figure(frame: pd.DataFrame, *, problem: str | None, height: int) -> go.Figure:
    if problem:
        return empty_figure(problem, height=height)
    if frame.empty or int(frame["events"].sum()) == 0:
        return empty_figure(height=height)
    ordered = frame.sort_values("events")  # horizontal bars: largest on top
    names = _names(ordered["name"])
    fig = _figure(
        [
            go.Bar(
                y=names,
                x=ordered["events"] - ordered["rapid"],
                name="normal pace",
                orientation="h",
                marker_color=BLUE,
                hovertemplate="%{y}<br>%{x:,} at normal pace<extra></extra>",
            ),
            go.Bar(
                y=names,
                x=ordered["rapid"],
                name="rapid",
                orientation="h",
                marker_color=RED,
                hovertemplate="%{y}<br>%{x:,} rapid<extra></extra>",
            ),
        ]
    )
    fig.update_layout(barmode="stack", legend_traceorder="normal")
    fig.update_xaxes(title_text="events")
    return _style(fig, height=height)


def action_figure(mix: ActivityMix) -> go.Figure:
    """Events by action, split into normal-pace and rapid events."""
    return _mix_figure(mix.by_action, problem=mix.problem, height=280)


def category_figure(mix: ActivityMix) -> go.Figure:
    """Events by the busiest categories, split into normal-pace and rapid events."""
    return _mix_figure(mix.by_category, problem=mix.problem, height=280)


def heatmap_figure(heatmap: ActivityHeatmap) -> go.Figure:
    """Events by weekday and hour of day, each in its own local time."""
    if heatmap.problem:
        return empty_figure(heatmap.problem)
    if heatmap.total == 0:
        return empty_figure()
    counts = heatmap.counts
    fig = _figure(
        go.Heatmap(
            z=counts.to_numpy(),
            x=[f"{h:02d}" for h in counts.columns],
            y=list(counts.index),
            colorscale="Blues",
            colorbar={"title": {"text": "events"}, "thickness": 10},
            hovertemplate="%{y} %{x}:00 local time<br>%{z:,} events<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    fig.update_yaxes(autorange="reversed", gridcolor="rgba(0,0,0,0)")
    fig.update_xaxes(title_text="hour of day (each event's local time)", gridcolor="rgba(0,0,0,0)")
    return _style(fig)


def quarantine_figure(counts: QuarantineCounts) -> go.Figure:
    """Quarantined lines per minute, stacked by reason."""
    if counts.problem:
        return empty_figure(counts.problem)
    frame = counts.per_minute
    if frame.empty:
        return empty_figure(f"{NO_DATA}: no line quarantined in the last {counts.minutes} min")
    fig = _figure()
    for i, (reason, rows) in enumerate(frame.groupby("reason", sort=True)):
        fig.add_bar(
            x=rows["minute"],
            y=rows["lines"],
            name=plain(reason),
            marker_color=REASON_COLORS[i % len(REASON_COLORS)],
            hovertemplate="%{x|%H:%M} UTC<br>%{y:,} lines<extra>%{fullData.name}</extra>",
        )
    fig.update_layout(barmode="stack", legend={"font": {"size": 10}})
    fig.update_yaxes(title_text="lines / min")
    return _style(fig)


def user_timeline_figure(detail: UserDetail, *, rapid_gap_s: float = 2.0) -> go.Figure:
    """One user's events: time vs action, rapid events and their gaps in red."""
    if detail.problem:
        return empty_figure(detail.problem, height=300)
    events = detail.events
    if events.empty:
        return empty_figure(f"{NO_DATA}: no stored events for this user", height=300)
    actions = _names(events["action"])
    hover = pd.DataFrame(
        {
            "session": events["session_no"],
            "local": [
                f"{t:%Y-%m-%d %H:%M:%S} (UTC{offset_text(int(o))})"
                for t, o in zip(events["local"], events["utc_offset_min"], strict=True)
            ],
            "gap": events["gap_s"].map(lambda g: "first event" if pd.isna(g) else f"{g:.2f} s"),
            "what": [
                plain(" · ".join(str(v) for v in (c, p) if isinstance(v, str) and v))
                for c, p in zip(events["category"], events["product"], strict=True)
            ],
        }
    ).to_numpy()
    rapid = events["is_rapid"].to_numpy(dtype=bool)
    template = (
        "%{customdata[1]} local<br>%{y} · session %{customdata[0]}"
        "<br>gap %{customdata[2]}<br>%{customdata[3]}<extra></extra>"
    )
    fig = _figure()
    for name, keep, marker in (
        ("event", ~rapid, {"color": BLUE, "size": 7, "opacity": 0.7}),
        (f"rapid (gap < {rapid_gap_s:g} s)", rapid, {"color": RED, "size": 8, "symbol": "diamond"}),
    ):
        fig.add_scatter(
            x=events["ts"][keep],
            y=[a for a, k in zip(actions, keep, strict=True) if k],
            customdata=hover[keep],
            mode="markers",
            name=name,
            marker=marker,
            hovertemplate=template,
        )
    fig.update_yaxes(type="category", categoryorder="category ascending", automargin=True)
    return _style(fig, height=300)


def risk_explanation_figure(detail: UserDetail) -> go.Figure:
    """Marker weights (value vs threshold on hover) and the two family scores."""
    if detail.problem:
        return empty_figure(detail.problem, height=300)
    risk = detail.risk
    if risk is None:
        return empty_figure(f"{NO_DATA}: this user has no risk row", height=300)
    markers = [m for m in (risk.get("markers") or []) if isinstance(m, dict)]
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.6, 0.4],
        horizontal_spacing=0.2,
        subplot_titles=("marker points", "scores (0-100)"),
    )
    fig.update_layout(template=TEMPLATE)
    fig.update_annotations(font={"size": 12, "color": SLATE})
    if markers:
        markers = sorted(markers, key=lambda m: float(m.get("weight") or 0))
        fig.add_bar(
            row=1,
            col=1,
            y=[plain(m.get("name", "?")) for m in markers],
            x=[m.get("weight", 0) for m in markers],
            orientation="h",
            marker_color=[KIND_COLORS.get(str(m.get("kind")), SLATE) for m in markers],
            text=[m.get("weight", 0) for m in markers],
            textposition="outside",
            cliponaxis=False,
            customdata=[
                [f"{m.get('value', 0):g}", f"{m.get('threshold', 0):g}", plain(m.get("kind", ""))]
                for m in markers
            ],
            hovertemplate="%{y}: %{x} points<br>value %{customdata[0]} vs threshold "
            "%{customdata[1]}<br>%{customdata[2]}<extra></extra>",
            showlegend=False,
        )
    else:
        fig.add_annotation(
            text="no marker fired",
            x=0.5,
            y=0.5,
            xref="x domain",
            yref="y domain",
            showarrow=False,
            font={"color": SLATE},
        )
    scores = [
        ("total", int(risk.get("score") or 0), "#0f172a"),
        ("loss of control", int(risk.get("loss_of_control_score") or 0), KIND_COLORS["loss_of_control"]),
        ("automation", int(risk.get("automation_score") or 0), KIND_COLORS["automation"]),
    ]
    fig.add_bar(
        row=1,
        col=2,
        y=[name for name, _, _ in scores],
        x=[value for _, value, _ in scores],
        orientation="h",
        marker_color=[color for _, _, color in scores],
        text=[value for _, value, _ in scores],
        textposition="outside",
        cliponaxis=False,
        hovertemplate="%{y}: %{x}<extra></extra>",
        showlegend=False,
    )
    fig.update_xaxes(range=[0, 100], row=1, col=2)
    return _style(fig, height=300)
