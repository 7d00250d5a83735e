"""Risk markers, bands and kinds at their edges; the marker table drives every case."""

from __future__ import annotations

from dataclasses import replace

import pytest

from config.settings import Settings
from workers.risk import (
    MARKER_RULES,
    Band,
    Comparison,
    MarkerRule,
    RiskKind,
    RiskRules,
    assess,
    derive_features,
    fold_buckets,
    wilson_lower_bound,
)
from workers.sequence import BUCKET_FIELDS, Bucket

RULES = RiskRules.from_settings(Settings())
QUIET = {
    "events": 40,
    "gap_count": 39,
    "gap_sum_ms": 39 * 30_000,
    "gap_sumsq_ms": 39 * 30_000**2 * 4,
    "sessions": 1,
}
# Which bucket counts a share marker's evidence and successes are.
EVIDENCE_FIELD = {
    "events": "events",
    "gap_count": "gap_count",
    "stake_bets": "stake_bets",
    "trade_events": "trade_events",
    "bet_gap_count": "bet_gaps",
}
SHARE_FIELD = {
    "agent_share": "agent_events",
    "fast_share": "fast_gaps",
    "steady_share": "steady_gaps",
    "rapid_share": "rapid_events",
    "rapid_trade_share": "rapid_trades",
    "raised_share": "raised_bets",
    "night_share": "night_events",
    "login_share": "logins",
    "steady_bet_share": "steady_bets",
}


def window(**fields: int) -> Bucket:
    """A window's figures: QUIET, with these fields set."""
    values = {**QUIET, **fields}
    unknown = set(values) - set(BUCKET_FIELDS)
    assert not unknown, unknown
    return [values.get(name, 0) for name in BUCKET_FIELDS]


def names(figures: Bucket, rules: RiskRules = RULES) -> set[str]:
    return {m.name for m in assess(figures, rules).markers}


def test_a_quiet_window_is_low_with_no_markers() -> None:
    result = assess(window(), RULES)
    assert (result.score, result.band, result.kind, result.markers) == (0, Band.LOW, RiskKind.NONE, ())


@pytest.mark.parametrize(
    ("score", "band"),
    [(39, Band.LOW), (40, Band.ELEVATED), (69, Band.ELEVATED), (70, Band.HIGH), (100, Band.HIGH)],
)
def test_band_edges(score: int, band: Band) -> None:
    assert RULES.band_of(score) is band


def _count_at(rule: MarkerRule, value: float) -> Bucket:
    """A window whose count feature (no share) is exactly value."""
    feature = rule.feature
    if feature == "gap_cv":  # gaps of m(1 - v) and m(1 + v) alternate: the CV is v, exactly
        n, mean = 40, 20_000
        low, high = round(mean * (1 - value)), round(mean * (1 + value))
        return window(gap_count=n, gap_sum_ms=n * mean, gap_sumsq_ms=n // 2 * (low * low + high * high))
    if feature == "gap_mean_s":
        return window(
            gap_count=40, gap_sum_ms=round(40 * value * 1000), gap_sumsq_ms=round(40 * (value * 1000) ** 2)
        )
    if feature == "max_awake_h":
        return window(events=60, max_awake_ms=round(value * 3_600_000))
    if feature == "max_session_h":
        return window(max_session_ms=round(value * 3_600_000))
    if feature == "browse_per_session":
        return window(events=20_000, browse_events=round(value * 100), sessions=100)
    if feature == "max_spend_window":
        return window(max_spend_window_cents=round(value * 100))
    fields = {
        "max_burst": "max_burst",
        "max_purchases_window": "max_purchases_window",
        "night_sessions": "night_sessions",
    }
    return window(**{fields[feature]: round(value)})


COUNT_RULES = [r for r in MARKER_RULES if r.comparison is not Comparison.SHARE_AT_LEAST]
SHARE_RULES = [r for r in MARKER_RULES if r.comparison is Comparison.SHARE_AT_LEAST]


@pytest.mark.parametrize("rule", COUNT_RULES, ids=[r.name for r in COUNT_RULES])
def test_count_markers_fire_exactly_from_their_threshold(rule: MarkerRule) -> None:
    threshold = RULES.marker(rule.name).threshold
    counted = isinstance(Settings.model_fields[f"marker_{rule.name}_threshold"].default, int)
    step = 1 if counted else 0.01
    on, off = (
        (threshold - step, threshold)
        if rule.comparison is Comparison.BELOW
        else (threshold, threshold - step)
    )
    fired = assess(_count_at(rule, on), RULES).markers
    assert rule.name in {m.name for m in fired}
    assert rule.name not in names(_count_at(rule, off))
    marker = next(m for m in fired if m.name == rule.name)
    assert (marker.threshold, marker.weight, marker.kind) == (
        threshold,
        RULES.marker(rule.name).weight,
        rule.family,
    )


def _share(rule: MarkerRule, successes: int, trials: int) -> Bucket:
    evidence = EVIDENCE_FIELD[rule.evidence or ""]
    fields = {evidence: trials, SHARE_FIELD[rule.feature]: successes}
    if evidence == "gap_count":
        fields["gap_sum_ms"] = trials * 30_000
        fields["gap_sumsq_ms"] = trials * 30_000**2 * 4
    if evidence == "events":
        fields["gap_count"] = max(trials - 1, 0)
    return window(**fields)


def _fewest_successes(threshold: float, trials: int) -> int | None:
    return next(
        (k for k in range(trials + 1) if wilson_lower_bound(k, trials, RULES.confidence_z) >= threshold), None
    )


@pytest.mark.parametrize("rule", SHARE_RULES, ids=[r.name for r in SHARE_RULES])
def test_share_markers_compare_the_lower_bound_with_their_threshold(rule: MarkerRule) -> None:
    threshold = RULES.marker(rule.name).threshold
    trials = max(rule.min_evidence, 10) * 4
    fewest = _fewest_successes(threshold, trials)
    assert fewest is not None and fewest > threshold * trials  # the bound asks for more than the share
    assert rule.name in names(_share(rule, fewest, trials))
    assert rule.name not in names(_share(rule, fewest - 1, trials))


@pytest.mark.parametrize("rule", SHARE_RULES, ids=[r.name for r in SHARE_RULES])
def test_a_share_needs_its_minimum_evidence(rule: MarkerRule) -> None:
    enough = rule.min_evidence
    assert rule.name not in names(_share(rule, enough - 1, enough - 1))
    if _fewest_successes(RULES.marker(rule.name).threshold, enough) is not None:
        assert rule.name in names(_share(rule, enough, enough))


def test_a_few_quick_clicks_do_not_count_like_hundreds() -> None:
    short_visit = _share(RULES.marker("rapid_share").rule, 6, 12)  # half of a dozen clicks
    long_session = _share(RULES.marker("rapid_share").rule, 150, 300)  # half of three hundred
    assert "rapid_share" not in names(short_visit)
    assert "rapid_share" in names(long_session)


def test_the_kind_goes_to_the_family_with_more_evidence() -> None:
    fast_machine = window(events=300, rapid_events=290, max_burst=60, gap_count=299, fast_gaps=250,
                          gap_sum_ms=299 * 300, gap_sumsq_ms=299 * 300**2 * 2)  # fmt: skip
    result = assess(fast_machine, RULES)
    # Speed beyond a person's motor limit explains the rapid actions: they are not also loss of control.
    assert "machine_speed" in {m.name for m in result.markers}
    assert not {"rapid_share", "burst"} & {m.name for m in result.markers}
    assert result.kind is RiskKind.AUTOMATION and result.loss_of_control_score == 0
    human_speed = assess([*fast_machine[:6], 0, *fast_machine[7:]], RULES)  # no gap under the motor limit
    assert {"rapid_share", "burst"} <= {m.name for m in human_speed.markers}
    steady_bettor = window(
        stake_bets=40,
        raised_bets=34,
        max_purchases_window=40,
        max_session_ms=2 * 3_600_000,
        night_sessions=3,
    )
    assert assess(steady_bettor, RULES).kind is RiskKind.LOSS_OF_CONTROL


def test_ties_between_families_go_to_automation() -> None:
    rules = replace(
        RULES,
        markers=tuple(
            replace(m, weight=40) if m.rule.name in ("no_rest", "long_session") else m for m in RULES.markers
        ),
    )
    both = window(events=60, max_awake_ms=21 * 3_600_000, max_session_ms=2 * 3_600_000)
    result = assess(both, rules)
    assert result.automation_score == result.loss_of_control_score == 40
    assert result.kind is RiskKind.AUTOMATION


def test_markers_serialise_with_value_threshold_and_evidence() -> None:
    payload = assess(_share(RULES.marker("rapid_share").rule, 200, 300), RULES).markers_json()
    rapid = next(m for m in payload if m["name"] == "rapid_share")
    assert (
        rapid["value"] == round(200 / 300, 4) and rapid["threshold"] == RULES.marker("rapid_share").threshold
    )
    assert rapid["evidence"] == 300 and rapid["bound"] < rapid["value"]
    assert rapid["kind"] == "loss_of_control" and rapid["weight"] == RULES.marker("rapid_share").weight


def test_folding_sums_counts_and_keeps_the_largest_peaks() -> None:
    first, second = window(events=3, max_burst=7), window(events=5, max_burst=2)
    folded = fold_buckets([first, second])
    assert folded[BUCKET_FIELDS.index("events")] == 8
    assert folded[BUCKET_FIELDS.index("max_burst")] == 7
    assert fold_buckets([]) == [0] * len(BUCKET_FIELDS)
    assert derive_features(folded).events == 8


def test_every_marker_is_configured_by_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    for rule in MARKER_RULES:
        monkeypatch.setenv(f"ECOMRISK_MARKER_{rule.name.upper()}_WEIGHT", "7")
    assert {m.weight for m in RiskRules.from_settings(Settings()).markers} == {7}


@pytest.mark.parametrize(
    ("old", "field", "value"),
    [
        ("ECOMRISK_REGULAR_TIMING_CV", "marker_regular_timing_threshold", 0.2),
        ("ECOMRISK_STEADY_SHARE_THRESHOLD", "marker_steady_rhythm_threshold", 0.6),
        ("ECOMRISK_RAPID_SHARE_WEIGHT", "marker_rapid_share_weight", 9),
        ("ECOMRISK_SPEND_VELOCITY_THRESHOLD", "marker_spend_escalation_threshold", 250.0),
        ("ECOMRISK_NIGHT_SHARE_WEIGHT", "marker_unsociable_hours_weight", 11),
    ],
)
def test_old_setting_names_still_work(
    monkeypatch: pytest.MonkeyPatch, old: str, field: str, value: float
) -> None:
    monkeypatch.setenv(old, str(value))
    assert getattr(Settings(), field) == value
