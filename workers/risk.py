"""Per-user risk: features of a window of buckets, a declarative table of markers, a 0-100 score and a band.

The current score reads the buckets of a trailing window of event time (ECOMRISK_RISK_WINDOW_S)
ending at the user's latest bucket; the lifetime peak is the highest score any such window
ever had, each window ending at one of the user's buckets. Lifetime counts are kept beside them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple, cast

from config.settings import Settings
from workers.sequence import (
    ADDITIVE,
    AGENT,
    BET_GAPS,
    BROWSE,
    BUCKET_FIELDS,
    EVENTS,
    FAST,
    GAP_SUM,
    GAP_SUMSQ,
    GAPS,
    LOGINS,
    MAX_AWAKE_MS,
    MAX_BURST,
    MAX_PURCHASES,
    MAX_SESSION_MS,
    MAX_SPEND,
    MAXIMA,
    NIGHT,
    NIGHT_SESSIONS,
    RAISED_BETS,
    RAPID,
    RAPID_TRADES,
    SESSIONS,
    STAKE_BETS,
    STEADY,
    STEADY_BETS,
    TRADES,
    Bucket,
    UserDelta,
)

_HOUR_S = 3600.0


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
    """The exact, incrementally maintained lifetime counters of one user (see store.models.UserRisk)."""

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
    """What the markers read, derived from the sums of a window's buckets; a pure function of them."""

    events: int
    gap_count: int
    sessions: int
    stake_bets: int
    trade_events: int
    bet_gap_count: int
    rapid_share: float
    rapid_trade_share: float
    fast_share: float
    gap_mean_s: float | None
    gap_cv: float | None
    steady_share: float
    night_share: float
    night_sessions: int
    raised_share: float
    browse_share: float
    agent_share: float
    login_share: float
    steady_bet_share: float
    browse_per_session: float
    avg_session_s: float
    max_burst: int
    max_session_h: float
    max_awake_h: float
    max_purchases_window: int
    max_spend_window: float  # currency units


class Comparison(StrEnum):
    """How a marker's value meets its threshold."""

    AT_LEAST = "at least"
    BELOW = "below"
    # The share's one-sided Wilson lower bound is at least the threshold: a few quick clicks do
    # not count like hundreds, because the bound of a share over few events stays low.
    SHARE_AT_LEAST = "share, lower bound at least"


@dataclass(frozen=True, slots=True)
class MarkerRule:
    """One marker, as data: the feature it reads, how it compares, and the evidence it needs.

    Its threshold and weight are the settings ECOMRISK_MARKER_<NAME>_THRESHOLD and _WEIGHT.
    """

    name: str
    family: RiskKind
    feature: str  # a Features field
    comparison: Comparison
    evidence: str | None  # the Features count the value rests on
    min_evidence: int
    description: str
    # Not counted when one of these fired before it: the same evidence is better explained by that one.
    unless: tuple[str, ...] = ()


# The one table of markers; `assess` loops over it and the README's marker table is printed from it
# (`python scripts/marker_table.py`).
MARKER_RULES: tuple[MarkerRule, ...] = (
    MarkerRule(
        "automation_agent", RiskKind.AUTOMATION, "agent_share", Comparison.SHARE_AT_LEAST, "events", 3,
        "share of events sent by an automation tool's user agent (headless browser, HTTP library, robot)",
    ),
    MarkerRule(
        "login_flood", RiskKind.AUTOMATION, "login_share", Comparison.SHARE_AT_LEAST, "events", 20,
        "share of events that are logins: credential cracking or stuffing, not a person signing in",
    ),
    MarkerRule(
        "regular_bets", RiskKind.AUTOMATION, "steady_bet_share", Comparison.SHARE_AT_LEAST,
        "bet_gap_count", 20,
        "share of gaps between a session's bets nearly equal to the gap before: a betting clock",
    ),
    MarkerRule(
        "machine_speed", RiskKind.AUTOMATION, "fast_share", Comparison.SHARE_AT_LEAST, "gap_count", 10,
        "share of within-session gaps under a person's motor limit (ECOMRISK_MACHINE_GAP_S)",
    ),
    MarkerRule(
        "regular_timing", RiskKind.AUTOMATION, "gap_cv", Comparison.BELOW, "gap_count", 20,
        "coefficient of variation of within-session gaps: a clock, not a person",
    ),
    MarkerRule(
        "steady_rhythm", RiskKind.AUTOMATION, "steady_share", Comparison.SHARE_AT_LEAST, "gap_count", 20,
        "share of gaps nearly equal to the gap before (robust to missing events)",
    ),
    MarkerRule(
        "inhuman_volume", RiskKind.AUTOMATION, "gap_mean_s", Comparison.BELOW, "gap_count", 20,
        "mean gap within sessions, seconds",
    ),
    MarkerRule(
        "no_rest", RiskKind.AUTOMATION, "max_awake_h", Comparison.AT_LEAST, "events", 50,
        "longest run of activity without a rest (ECOMRISK_REST_GAP_S), hours",
    ),
    MarkerRule(
        "crawling", RiskKind.AUTOMATION, "browse_per_session", Comparison.AT_LEAST, "events", 100,
        "views and searches per session: crawling a catalogue, not shopping",
    ),
    MarkerRule(
        "rapid_buying", RiskKind.LOSS_OF_CONTROL, "rapid_trade_share", Comparison.SHARE_AT_LEAST,
        "trade_events", 5,
        "share of cart and purchase actions under the rapid gap: buying on impulse",
        unless=("machine_speed", "regular_bets", "crawling"),
    ),
    MarkerRule(
        "rapid_share", RiskKind.LOSS_OF_CONTROL, "rapid_share", Comparison.SHARE_AT_LEAST, "events", 10,
        "share of actions under the rapid gap (ECOMRISK_RAPID_GAP_S)",
        unless=("machine_speed", "crawling"),
    ),
    MarkerRule(
        "burst", RiskKind.LOSS_OF_CONTROL, "max_burst", Comparison.AT_LEAST, None, 0,
        "longest run of consecutive rapid actions",
        unless=("machine_speed", "crawling"),
    ),
    MarkerRule(
        "purchase_velocity", RiskKind.LOSS_OF_CONTROL, "max_purchases_window", Comparison.AT_LEAST, None, 0,
        "most purchases or bets in a rolling window (ECOMRISK_VELOCITY_WINDOW_S)",
        unless=("regular_bets",),
    ),
    MarkerRule(
        "spend_escalation", RiskKind.LOSS_OF_CONTROL, "max_spend_window", Comparison.AT_LEAST, None, 0,
        "most spend in a rolling window (ECOMRISK_VELOCITY_WINDOW_S)",
    ),
    MarkerRule(
        "stake_chasing", RiskKind.LOSS_OF_CONTROL, "raised_share", Comparison.SHARE_AT_LEAST,
        "stake_bets", 20,
        "share of a session's later bets at ECOMRISK_CHASE_STAKE_MULTIPLE times its opening stake or more:"
        " chasing losses with bigger stakes",
    ),
    MarkerRule(
        "unsociable_hours", RiskKind.LOSS_OF_CONTROL, "night_share", Comparison.SHARE_AT_LEAST, "events", 10,
        "share of activity in the night hours of the user's own local time",
    ),
    MarkerRule(
        "night_sessions", RiskKind.LOSS_OF_CONTROL, "night_sessions", Comparison.AT_LEAST, None, 0,
        "sessions started in the night hours of the user's local time, within the window",
    ),
    MarkerRule(
        "long_session", RiskKind.LOSS_OF_CONTROL, "max_session_h", Comparison.AT_LEAST, None, 0,
        "longest session without a break of ECOMRISK_SESSION_GAP_S, hours",
    ),
)  # fmt: skip


class Marker(NamedTuple):
    """A rule that fired: its value against its threshold, the evidence, its weight and its family."""

    name: str
    value: float
    threshold: float
    weight: int
    kind: RiskKind
    description: str
    evidence: int | None  # how many events, gaps or stake steps the value rests on
    bound: float | None  # a share marker's lower confidence bound, which met the threshold


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
                "evidence": m.evidence,
                "bound": m.bound,
            }
            for m in self.markers
        ]


@dataclass(frozen=True, slots=True)
class ResolvedMarker:
    """A marker rule with its configured threshold and weight, and where assess finds its inputs."""

    rule: MarkerRule
    threshold: float
    weight: int

    @property
    def feature_index(self) -> int:
        return _FEATURE_INDEX[self.rule.feature]

    @property
    def evidence_index(self) -> int | None:
        return None if self.rule.evidence is None else _FEATURE_INDEX[self.rule.evidence]


@dataclass(frozen=True, slots=True)
class RiskRules:
    """The marker table with its thresholds and weights, the confidence of share bounds, and the bands."""

    markers: tuple[ResolvedMarker, ...]
    confidence_z: float
    band_elevated: int
    band_high: int
    window_buckets: int  # buckets in the trailing window, the latest included
    # Per marker with points, what assess reads: (marker, feature index, evidence index or -1,
    # bucket field of a share or -1, comparison, counts for automation).
    plan: tuple[tuple[ResolvedMarker, int, int, int, Comparison, bool], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        plan = tuple(
            (
                m,
                m.feature_index,
                -1 if m.evidence_index is None else m.evidence_index,
                _SHARES.get(m.rule.feature, -1),
                m.rule.comparison,
                m.rule.family is RiskKind.AUTOMATION,
            )
            for m in self.markers
            if m.weight > 0
        )
        object.__setattr__(self, "plan", plan)

    @classmethod
    def from_settings(cls, settings: Settings) -> RiskRules:
        return cls(
            tuple(
                ResolvedMarker(
                    rule,
                    float(getattr(settings, f"marker_{rule.name}_threshold")),
                    int(getattr(settings, f"marker_{rule.name}_weight")),
                )
                for rule in MARKER_RULES
            ),
            settings.share_confidence_z,
            settings.band_elevated,
            settings.band_high,
            round(settings.risk_window_s / settings.risk_bucket_s),
        )

    def band_of(self, score: int) -> Band:
        """High from band_high, elevated from band_elevated, else low."""
        if score >= self.band_high:
            return Band.HIGH
        if score >= self.band_elevated:
            return Band.ELEVATED
        return Band.LOW

    def marker(self, name: str) -> ResolvedMarker:
        """The configured marker of this name."""
        return next(m for m in self.markers if m.rule.name == name)


def wilson_lower_bound(successes: int, trials: int, z: float) -> float:
    """The one-sided Wilson score lower bound of a share (0 with no trials)."""
    if trials <= 0:
        return 0.0
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, (centre - margin) / (1 + z2 / trials))


def fold_buckets(buckets: Sequence[Sequence[int]]) -> Bucket:
    """The figures of several buckets together: additive counts summed, maxima the largest."""
    if len(buckets) == 1:  # a window of one bucket, the commonest
        return list(buckets[0])
    if not buckets:
        return [0] * len(BUCKET_FIELDS)
    columns = list(zip(*buckets, strict=True))
    return [sum(columns[i]) for i in ADDITIVE] + [max(columns[i]) for i in MAXIMA]


def derive_features(window: Sequence[int]) -> Features:
    """Shares, rates, gap statistics and peaks of a window's summed buckets."""
    events = window[EVENTS]
    gaps = window[GAPS]
    sessions = window[SESSIONS]
    stake_bets = window[STAKE_BETS]
    bet_gaps = window[BET_GAPS]
    per_event = max(events, 1)
    if gaps:
        mean_ms = window[GAP_SUM] / gaps
        variance = max(window[GAP_SUMSQ] / gaps - mean_ms * mean_ms, 0.0)
        gap_mean_s: float | None = mean_ms / 1000
        gap_cv: float | None = math.sqrt(variance) / mean_ms if mean_ms > 0 else 0.0
    else:
        gap_mean_s = gap_cv = None
    return Features(
        events=events,
        gap_count=gaps,
        sessions=sessions,
        stake_bets=stake_bets,
        trade_events=window[TRADES],
        bet_gap_count=bet_gaps,
        rapid_share=window[RAPID] / per_event,
        rapid_trade_share=window[RAPID_TRADES] / window[TRADES] if window[TRADES] else 0.0,
        fast_share=window[FAST] / gaps if gaps else 0.0,
        gap_mean_s=gap_mean_s,
        gap_cv=gap_cv,
        steady_share=window[STEADY] / gaps if gaps else 0.0,
        night_share=window[NIGHT] / per_event,
        night_sessions=window[NIGHT_SESSIONS],
        raised_share=window[RAISED_BETS] / stake_bets if stake_bets else 0.0,
        browse_share=window[BROWSE] / per_event,
        agent_share=window[AGENT] / per_event,
        login_share=window[LOGINS] / per_event,
        steady_bet_share=window[STEADY_BETS] / bet_gaps if bet_gaps else 0.0,
        browse_per_session=window[BROWSE] / max(sessions, 1),
        # A session's length is the sum of its within-session gaps.
        avg_session_s=window[GAP_SUM] / 1000 / max(sessions, 1),
        max_burst=window[MAX_BURST],
        max_session_h=window[MAX_SESSION_MS] / 1000 / _HOUR_S,
        max_awake_h=window[MAX_AWAKE_MS] / 1000 / _HOUR_S,
        max_purchases_window=window[MAX_PURCHASES],
        max_spend_window=window[MAX_SPEND] / 100,
    )


_FEATURE_INDEX = {name: i for i, name in enumerate(Features._fields)}
# What the share markers count, by feature: the bucket field of the numerator.
_SHARES = {
    "agent_share": AGENT,
    "login_share": LOGINS,
    "steady_bet_share": STEADY_BETS,
    "fast_share": FAST,
    "steady_share": STEADY,
    "rapid_share": RAPID,
    "rapid_trade_share": RAPID_TRADES,
    "raised_share": RAISED_BETS,
    "night_share": NIGHT,
}


_SHARE = Comparison.SHARE_AT_LEAST
_BELOW = Comparison.BELOW


def assess(window: Sequence[int], rules: RiskRules) -> Assessment:
    """Score a window of buckets: the stronger of automation and loss of control, with its markers."""
    features = derive_features(window)
    automation = loss = 0
    fired: list[Marker] = []
    names: set[str] = set()
    z = rules.confidence_z
    for marker, feature, evidence_at, share_field, comparison, is_automation in rules.plan:
        rule = marker.rule
        evidence = cast(int, features[evidence_at]) if evidence_at >= 0 else None
        if evidence is not None and evidence < rule.min_evidence:
            continue
        value = features[feature]
        if value is None:
            continue
        threshold = marker.threshold
        bound = None
        if comparison is _SHARE:
            # The lower bound never exceeds the share: below the threshold, no bound can meet it.
            if value < threshold:
                continue
            bound = wilson_lower_bound(window[share_field], evidence or 0, z)
            if bound < threshold:
                continue
        elif comparison is _BELOW:
            if not value < threshold:
                continue
        elif value < threshold:
            continue
        if rule.unless and not names.isdisjoint(rule.unless):
            continue
        names.add(rule.name)
        fired.append(
            Marker(
                rule.name,
                round(value, 4),
                threshold,
                marker.weight,
                rule.family,
                rule.description,
                evidence,
                None if bound is None else round(bound, 4),
            )
        )
        if is_automation:
            automation += marker.weight
        else:
            loss += marker.weight
    automation, loss = min(100, automation), min(100, loss)
    score = max(automation, loss)
    if score == 0:
        kind = RiskKind.NONE
    elif automation >= loss:
        kind = RiskKind.AUTOMATION  # the weight of evidence decides; ties go to automation
    else:
        kind = RiskKind.LOSS_OF_CONTROL
    markers = tuple(sorted(fired, key=lambda m: -m.weight)) if fired else ()
    return Assessment(features, automation, loss, score, rules.band_of(score), kind, markers)


def merge_aggregates(stored: Sequence[Any] | None, delta: UserDelta) -> UserAggregates:
    """Stored lifetime aggregates (values in UserAggregates field order) plus a batch's delta.

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


class Peak(NamedTuple):
    """The highest score a user's window ever had, and the bucket that window ended with."""

    score: int
    band: Band
    kind: RiskKind
    bucket_ms: int


def higher_peak(first: Peak | None, second: Peak | None) -> Peak | None:
    """The higher of two peaks; on a tie the earlier window, so the offline recompute agrees."""
    if first is None:
        return second
    if second is None:
        return first
    if second.score > first.score or (second.score == first.score and second.bucket_ms < first.bucket_ms):
        return second
    return first


# The user_risk columns risk_values fills, in its order: lifetime counts, current window, peak.
RISK_COLUMNS = (
    *UserAggregates._fields,
    "window_events",
    "rapid_share",
    "fast_share",
    "gap_mean_s",
    "gap_cv",
    "steady_share",
    "night_share",
    "night_sessions",
    "raised_share",
    "browse_share",
    "agent_share",
    "avg_session_s",
    "max_session_s",
    "max_awake_s",
    "automation_score",
    "loss_of_control_score",
    "score",
    "band",
    "risk_kind",
    "peak_score",
    "peak_band",
    "peak_kind",
    "peak_ms",
)


def risk_values(agg: UserAggregates, result: Assessment, peak: Peak) -> tuple[Any, ...]:
    """A user's lifetime aggregates, current features, scores, band, kind and peak, in RISK_COLUMNS order."""
    f = result.features
    return (
        *agg,
        f.events,
        f.rapid_share,
        f.fast_share,
        f.gap_mean_s,
        f.gap_cv,
        f.steady_share,
        f.night_share,
        f.night_sessions,
        f.raised_share,
        f.browse_share,
        f.agent_share,
        f.avg_session_s,
        f.max_session_h * _HOUR_S,
        f.max_awake_h * _HOUR_S,
        result.automation_score,
        result.loss_of_control_score,
        result.score,
        result.band.value,
        result.kind.value,
        peak.score,
        peak.band.value,
        peak.kind.value,
        peak.bucket_ms,
    )


def risk_columns(agg: UserAggregates, result: Assessment, peak: Peak) -> dict[str, Any]:
    """The user-risk columns of one user, by name."""
    return dict(zip(RISK_COLUMNS, risk_values(agg, result, peak), strict=True))
