"""Every component id of the dashboard, in one place."""

from __future__ import annotations

# --- refresh: one interval per region, each paused while its callback runs -----
KPI_INTERVAL = "kpi-interval"
PIPELINE_INTERVAL = "pipeline-interval"
TIMELINE_INTERVAL = "timeline-interval"
ACTIVITY_INTERVAL = "activity-interval"
QUALITY_INTERVAL = "quality-interval"
ALERTS_INTERVAL = "alerts-interval"
DRILL_INTERVAL = "drill-interval"

# --- header and KPI cards --------------------------------------------------------
REFRESHED_AT = "refreshed-at"
KPI_ROW = "kpi-row"

# --- panels ------------------------------------------------------------------------
PIPELINE_BODY = "pipeline-body"
TIMELINE_GRAPH = "timeline-graph"
TIMELINE_NOTE = "timeline-note"
ACTION_GRAPH = "action-graph"
CATEGORY_GRAPH = "category-graph"
HEATMAP_GRAPH = "heatmap-graph"
QUARANTINE_GRAPH = "quarantine-graph"
QUARANTINE_GRID = "quarantine-grid"
QUARANTINE_NOTE = "quarantine-note"
ALERTS_GRID = "alerts-grid"
ALERTS_NOTE = "alerts-note"
ALERTS_STATUS = "alerts-status"
ALERTS_ACK = "alerts-ack"
ALERTS_MESSAGE = "alerts-message"
PRECISION_BODY = "precision-body"

# --- risk table --------------------------------------------------------------------
RISK_GRID = "risk-grid"
RISK_RELOAD = "risk-reload"
RISK_NOTE = "risk-note"

# --- user drill-down -----------------------------------------------------------------
SELECTED_USER = "selected-user"
SELECTED_ALERT = "selected-alert"
DRILL_PANEL = "drill-panel"
DRILL_TITLE = "drill-title"
DRILL_SUMMARY = "drill-summary"
DRILL_CLOSE = "drill-close"
DRILL_TIMELINE_GRAPH = "drill-timeline-graph"
DRILL_EXPLAIN_GRAPH = "drill-explain-graph"
DRILL_MARKERS = "drill-markers"
DRILL_SESSIONS = "drill-sessions"

# --- analyst review (in the drill-down; writes go through the API) -------------------------
DRILL_REVIEWS = "drill-reviews"
REVIEW_LABEL = "review-label"
REVIEW_NOTE = "review-note"
REVIEW_DAYS = "review-days"
REVIEW_ACK = "review-ack"
REVIEW_RESOLVE = "review-resolve"
REVIEW_ALLOW = "review-allow"
REVIEW_MESSAGE = "review-message"
