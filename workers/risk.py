"""Per-user risk: features from exact aggregates, named markers, a 0-100 score and a band."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from config.settings import Settings
from workers.sequence import UserDelta


class RiskKind(StrEnum):
    """Which family of markers drives a score."""

    AUTOMATION = "automation"
    LOSS_OF_CONTROL = "loss_of_control"
    NONE = "none"


class Band(StrEnum):
    """Risk bands, in the spirit of Stripe Radar."""

    LOW = "low"
    ELEVATED = "elevated"
    HIGH = "high"


# Named tuples, not frozen dataclasses: a batch builds several per user, and a frozen
# dataclass's __init__ costs a microsecond or more each.
class UserAggregates(NamedTuple):
    """The exact, incrementally maintained counters of one user (see store.models.UserRisk)."""

    events: int
    rapid_events: int
    max_burst: int
    gap_count: int
    gap_sum_ms: int
    gap_sumsq_ms: int
    steady_gaps: int
    purchases: int
    spend_cents: int
    max_purchases_window: int
    max_spend_window_cents: int
    night_events: int
    sessions: int
    first_seen_ms: int
    last_seen_ms: int


class Features(NamedTuple):
    """Ratios derived from the aggregates; a pure function of them."""

    rapid_share: float
    gap_mean_s: float | None
    gap_cv: float | None
    steady_share: float
    night_share: float
    avg_session_s: float


class Marker(NamedTuple):
    """A rule that fired: its value against its threshold, its weight and its family."""

    name: str
    value: float
    threshold: float
    weight: int
    kind: RiskKind
    description: str


class Assessment(NamedTuple):
    """A user's score with its reasons; never a bare number."""

    features: Features
    automation_score: int
    loss_of_control_score: int
    score: int
    band: Band
    kind: RiskKind
    markers: tuple[Marker, ...]

    def markers_json(self) -> list[dict[str, Any]]:
        """Markers as JSON-ready dicts, strongest first."""
        return [
            {
                "name": m.name,
                "value": m.value,
                "threshold": m.threshold,
                "weight": m.weight,
                "kind": m.kind.value,
                "description": m.description,
            }
            for m in self.markers
        ]


@dataclass(frozen=True, slots=True)
class RiskRules:
    """Thresholds, weights and bands, named and read from settings."""

    min_events_for_share: int
    min_gaps_for_regularity: int
    regular_timing_cv: float
    regular_timing_weight: int
    steady_share_threshold: float
    steady_rhythm_weight: int
    inhuman_mean_gap_s: float
    inhuman_volume_weight: int
    rapid_share_threshold: float
    rapid_share_weight: int
    burst_threshold: int
    burst_weight: int
    purchase_velocity_threshold: int
    purchase_velocity_weight: int
    spend_velocity_threshold: float
    spend_velocity_weight: int
    night_share_threshold: float
    night_share_weight: int
    band_elevated: int
    band_high: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RiskRules:
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})

    def band_of(self, score: int) -> Band:
        """High from band_high, elevated from band_elevated, else low."""
        if score >= self.band_high:
            return Band.HIGH
        if score >= self.band_elevated:
            return Band.ELEVATED
        return Band.LOW


def merge_aggregates(stored: Sequence[Any] | None, delta: UserDelta) -> UserAggregates:
    """Stored aggregates (values in UserAggregates field order) plus a batch's delta.

    Sums add, peaks take the max, seen-times widen. Spelled out field by field: it runs once
    per user and batch.
    """
    if stored is None:
        return UserAggregates(
            events=delta.events,
            rapid_events=delta.rapid_events,
            max_burst=max(0, delta.max_burst),
            gap_count=delta.gap_count,
            gap_sum_ms=delta.gap_sum_ms,
            gap_sumsq_ms=delta.gap_sumsq_ms,
            steady_gaps=delta.steady_gaps,
            purchases=delta.purchases,
            spend_cents=delta.spend_cents,
            max_purchases_window=max(0, delta.max_purchases_window),
            max_spend_window_cents=max(0, delta.max_spend_window_cents),
            night_events=delta.night_events,
            sessions=delta.sessions,
            first_seen_ms=delta.first_seen_ms,  # type: ignore[arg-type]  # a delta of new events has both
            last_seen_ms=delta.last_seen_ms,  # type: ignore[arg-type]
        )
    old = UserAggregates._make(stored)
    first, last = delta.first_seen_ms, delta.last_seen_ms
    return UserAggregates(
        events=old.events + delta.events,
        rapid_events=old.rapid_events + delta.rapid_events,
        max_burst=max(old.max_burst, delta.max_burst),
        gap_count=old.gap_count + delta.gap_count,
        gap_sum_ms=old.gap_sum_ms + delta.gap_sum_ms,
        gap_sumsq_ms=old.gap_sumsq_ms + delta.gap_sumsq_ms,
        steady_gaps=old.steady_gaps + delta.steady_gaps,
        purchases=old.purchases + delta.purchases,
        spend_cents=old.spend_cents + delta.spend_cents,
        max_purchases_window=max(old.max_purchases_window, delta.max_purchases_window),
        max_spend_window_cents=max(old.max_spend_window_cents, delta.max_spend_window_cents),
        night_events=old.night_events + delta.night_events,
        sessions=old.sessions + delta.sessions,
        first_seen_ms=old.first_seen_ms if first is None else min(old.first_seen_ms, first),
        last_seen_ms=old.last_seen_ms if last is None else max(old.last_seen_ms, last),
    )


def derive_features(agg: UserAggregates) -> Features:
    """Shares, mean and coefficient of variation of within-session gaps, mean session length."""
    events = max(agg.events, 1)
    if agg.gap_count:
        mean_ms = agg.gap_sum_ms / agg.gap_count
        variance = max(agg.gap_sumsq_ms / agg.gap_count - mean_ms * mean_ms, 0.0)
        gap_mean_s: float | None = mean_ms / 1000
        gap_cv: float | None = math.sqrt(variance) / mean_ms if mean_ms > 0 else 0.0
    else:
        gap_mean_s = gap_cv = None
    return Features(
        rapid_share=agg.rapid_events / events,
        gap_mean_s=gap_mean_s,
        gap_cv=gap_cv,
        steady_share=agg.steady_gaps / agg.gap_count if agg.gap_count else 0.0,
        night_share=agg.night_events / events,
        # A session's length is the sum of its within-session gaps.
        avg_session_s=agg.gap_sum_ms / 1000 / max(agg.sessions, 1),
    )


def assess(agg: UserAggregates, rules: RiskRules) -> Assessment:
    """Score a user from their aggregates: the stronger of automation and loss-of-control."""
    features = derive_features(agg)
    fired = _fired_markers(agg, features, rules)
    automation = loss = 0
    for m in fired:
        if m.kind is RiskKind.AUTOMATION:
            automation += m.weight
        else:
            loss += m.weight
    markers = tuple(sorted(fired, key=lambda m: -m.weight)) if fired else ()
    automation, loss = min(100, automation), min(100, loss)
    score = max(automation, loss)
    if score == 0:
        kind = RiskKind.NONE
    elif automation >= loss or automation >= rules.band_elevated:
        # Humans are not metronomes: timing evidence that alone reaches a risk band means a
        # machine, whose speed also trips the loss-of-control markers; ties go to automation too.
        kind = RiskKind.AUTOMATION
    else:
        kind = RiskKind.LOSS_OF_CONTROL
    return Assessment(features, automation, loss, score, rules.band_of(score), kind, markers)


# The user_risk columns risk_values fills, in its order.
RISK_COLUMNS = (
    *UserAggregates._fields,
    "rapid_share",
    "gap_mean_s",
    "gap_cv",
    "steady_share",
    "night_share",
    "avg_session_s",
    "automation_score",
    "loss_of_control_score",
    "score",
    "band",
    "risk_kind",
)


def risk_values(agg: UserAggregates, result: Assessment) -> tuple[Any, ...]:
    """A user's aggregates, derived features, scores, band and kind, in RISK_COLUMNS order."""
    f = result.features
    return (
        *agg,
        f.rapid_share,
        f.gap_mean_s,
        f.gap_cv,
        f.steady_share,
        f.night_share,
        f.avg_session_s,
        result.automation_score,
        result.loss_of_control_score,
        result.score,
        result.band.value,
        result.kind.value,
    )


def risk_columns(agg: UserAggregates, result: Assessment) -> dict[str, Any]:
    """The user-risk columns of one user, by name."""
    return dict(zip(RISK_COLUMNS, risk_values(agg, result), strict=True))


def _fired_markers(agg: UserAggregates, f: Features, rules: RiskRules) -> list[Marker]:
    fired: list[Marker] = []
    enough_gaps = agg.gap_count >= rules.min_gaps_for_regularity
    enough_events = agg.events >= rules.min_events_for_share
    if enough_gaps and f.gap_cv is not None and f.gap_cv < rules.regular_timing_cv:
        fired.append(
            Marker(
                "regular_timing",
                round(f.gap_cv, 4),
                rules.regular_timing_cv,
                rules.regular_timing_weight,
                RiskKind.AUTOMATION,
                "inter-event gaps are machine-regular (coefficient of variation)",
            )
        )
    if enough_gaps and f.steady_share >= rules.steady_share_threshold:
        fired.append(
            Marker(
                "steady_rhythm",
                round(f.steady_share, 4),
                rules.steady_share_threshold,
                rules.steady_rhythm_weight,
                RiskKind.AUTOMATION,
                "share of gaps nearly equal to the gap before (robust to missing events)",
            )
        )
    if enough_gaps and f.gap_mean_s is not None and f.gap_mean_s < rules.inhuman_mean_gap_s:
        fired.append(
            Marker(
                "inhuman_volume",
                round(f.gap_mean_s, 4),
                rules.inhuman_mean_gap_s,
                rules.inhuman_volume_weight,
                RiskKind.AUTOMATION,
                "mean gap within sessions, seconds",
            )
        )
    if enough_events and f.rapid_share >= rules.rapid_share_threshold:
        fired.append(
            Marker(
                "rapid_share",
                round(f.rapid_share, 4),
                rules.rapid_share_threshold,
                rules.rapid_share_weight,
                RiskKind.LOSS_OF_CONTROL,
                "share of actions under the rapid gap",
            )
        )
    if agg.max_burst >= rules.burst_threshold:
        fired.append(
            Marker(
                "burst",
                agg.max_burst,
                rules.burst_threshold,
                rules.burst_weight,
                RiskKind.LOSS_OF_CONTROL,
                "longest run of consecutive rapid actions",
            )
        )
    if agg.max_purchases_window >= rules.purchase_velocity_threshold:
        fired.append(
            Marker(
                "purchase_velocity",
                agg.max_purchases_window,
                rules.purchase_velocity_threshold,
                rules.purchase_velocity_weight,
                RiskKind.LOSS_OF_CONTROL,
                "most purchases in a rolling window",
            )
        )
    if agg.max_spend_window_cents / 100 >= rules.spend_velocity_threshold:
        fired.append(
            Marker(
                "spend_escalation",
                agg.max_spend_window_cents / 100,
                rules.spend_velocity_threshold,
                rules.spend_velocity_weight,
                RiskKind.LOSS_OF_CONTROL,
                "most spend in a rolling window",
            )
        )
    if enough_events and f.night_share >= rules.night_share_threshold:
        fired.append(
            Marker(
                "unsociable_hours",
                round(f.night_share, 4),
                rules.night_share_threshold,
                rules.night_share_weight,
                RiskKind.LOSS_OF_CONTROL,
                "share of activity in the night hours",
            )
        )
    return fired
