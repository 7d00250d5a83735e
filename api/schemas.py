"""The API's request and response models: the OpenAPI schema is the contract."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, Field, model_validator


class ReviewStatus(StrEnum):
    """What an analyst did with an alert."""

    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertStatus(StrEnum):
    """An alert's current status: open until its first review, then its latest review's status."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class ReviewLabel(StrEnum):
    """The analyst's verdict on a resolved alert."""

    CONFIRMED_AUTOMATION = "confirmed_automation"
    CONFIRMED_HARM = "confirmed_harm"
    FALSE_POSITIVE = "false_positive"


class UserSort(StrEnum):
    """Orders of the user list: highest score first, or most recently seen first."""

    SCORE = "score"
    LAST_SEEN = "last_seen"


class Marker(BaseModel):
    """A marker that fired: its value against its threshold, its points and family."""

    name: str
    value: float
    threshold: float
    weight: int
    kind: str
    description: str | None = None
    evidence: int | None = Field(
        default=None, description="How many events, gaps or bets the value rests on."
    )
    bound: float | None = Field(
        default=None, description="A share's lower confidence bound, which met the threshold."
    )


class Peak(BaseModel):
    """The highest score any window of the user's ever had, and the start of that window's last bucket."""

    score: int
    band: str
    kind: str
    at_ms: int


class UserSummary(BaseModel):
    """One user in a list."""

    user_id: str
    score: int
    band: str
    kind: str
    top_markers: list[str]
    events: int
    last_seen_ms: int
    peak: Peak


class UserRisk(BaseModel):
    """One user's current risk with its reasons."""

    user_id: str
    score: int
    band: str
    kind: str
    automation_score: int
    loss_of_control_score: int
    window_events: int = Field(description="Events in the current window, which the score reads.")
    peak: Peak
    markers: list[Marker]
    first_seen_ms: int
    last_seen_ms: int
    events: int
    rapid_events: int
    purchases: int
    sessions: int
    updated_ms: int
    allow_listed_until_ms: int | None = Field(description="Alerts are not raised until then.")


class UserPage(BaseModel):
    """A page of users; pass next_cursor back for the next page (null: this was the last)."""

    items: list[UserSummary]
    next_cursor: str | None


class EventOut(BaseModel):
    """One stored event with its derived flags."""

    event_id: str
    ts_ms: int
    action: str
    category: str | None
    product: str | None
    amount_cents: int | None
    session_id: str | None
    session_no: int
    gap_ms: int | None
    is_rapid: bool
    is_steady: bool
    burst_len: int


class EventList(BaseModel):
    """A user's newest events, newest first."""

    user_id: str
    items: list[EventOut]


class ReviewOut(BaseModel):
    """One review of an alert."""

    id: int
    alert_id: int
    user_id: str
    status: ReviewStatus
    label: ReviewLabel | None
    note: str | None
    reviewer: str
    created_ms: int


class AlertOut(BaseModel):
    """A crossing into the high band and its current review state."""

    alert_id: int
    user_id: str
    created_ms: int
    score: int
    band: str
    kind: str
    markers: list[Marker]
    status: AlertStatus
    label: ReviewLabel | None
    reviewed_ms: int | None
    link: str


class AlertDetail(AlertOut):
    """An alert with its whole review history, oldest first."""

    reviews: list[ReviewOut]


class AlertPage(BaseModel):
    """A page of alerts, newest first; pass next_cursor back for the next page."""

    items: list[AlertOut]
    next_cursor: str | None


class ReviewList(BaseModel):
    """Every review of a user's alerts, newest first."""

    user_id: str
    items: list[ReviewOut]


class AllowListOut(BaseModel):
    """An allow-list entry: the user raises no alert until expires_ms."""

    id: int
    user_id: str
    alert_id: int | None
    expires_ms: int
    reviewer: str
    note: str | None
    created_ms: int


class ReviewIn(BaseModel):
    """A review: acknowledge, or resolve with a label; resolving as false_positive may allow-list the user."""

    model_config = {"extra": "forbid"}

    status: ReviewStatus
    label: ReviewLabel | None = None
    note: str | None = Field(default=None, max_length=2_000)
    allow_list_days: float | None = Field(
        default=None, gt=0, le=3_650, description="With label false_positive: allow-list the user this long."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.label is not None and self.status is not ReviewStatus.RESOLVED:
            raise ValueError("a label goes with status resolved")
        if self.allow_list_days is not None and self.label is not ReviewLabel.FALSE_POSITIVE:
            raise ValueError("allow_list_days goes with label false_positive")
        return self


class ReviewResult(BaseModel):
    """The stored review, the alert's new state and any allow-list entry it made."""

    review: ReviewOut
    alert: AlertOut
    allow_list: AllowListOut | None = None


class AllowListIn(BaseModel):
    """Allow-list a user whose alert was resolved as false_positive."""

    model_config = {"extra": "forbid"}

    days: float | None = Field(default=None, gt=0, le=3_650, description="Default ECOMRISK_ALLOW_LIST_DAYS.")
    note: str | None = Field(default=None, max_length=2_000)


class Check(BaseModel):
    """One health check: ok, and why not."""

    ok: bool | None = Field(description="null: not checked yet (probes run in the background).")
    problem: str | None = None


class Health(BaseModel):
    """Store, broker, queue, workers, lag and webhook dead letters."""

    status: str = Field(description="ok, or degraded when a check failed.")
    store: Check
    broker: Check
    queue_depth: int | None
    workers_online: list[str] | None
    event_lag_ms: int | None
    last_commit_ms: int | None
    webhook_endpoints: int
    webhook_dead_letters: int | None


class ErrorBody(BaseModel):
    """Every error: its HTTP status, a sentence, and for bad parameters what was wrong where."""

    status: int
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorOut(BaseModel):
    """The JSON of every error response."""

    error: ErrorBody


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of an endpoint that can answer these error codes."""
    return {code: {"model": ErrorOut} for code in codes}
