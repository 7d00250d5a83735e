"""Risk markers, bands and kinds at their edges."""

from __future__ import annotations

from dataclasses import replace

import pytest

from config.settings import Settings
from workers.risk import Band, RiskKind, RiskRules, UserAggregates, assess, derive_features

RULES = RiskRules.from_settings(Settings())
QUIET = UserAggregates(
    events=20,
    rapid_events=0,
    max_burst=0,
    gap_count=19,
    gap_sum_ms=19 * 30_000,
    gap_sumsq_ms=19 * 30_000**2 * 4,
    steady_gaps=0,
    purchases=0,
    spend_cents=0,
    max_purchases_window=0,
    max_spend_window_cents=0,
    night_events=0,
    sessions=1,
    first_seen_ms=0,
    last_seen_ms=19 * 30_000,
)


def names(agg: UserAggregates) -> set[str]:
    return {m.name for m in assess(agg, RULES).markers}


def test_a_quiet_user_is_low_with_no_markers() -> None:
    result = assess(QUIET, RULES)
    assert (result.score, result.band, result.kind, result.markers) == (0, Band.LOW, RiskKind.NONE, ())


@pytest.mark.parametrize(
    ("score", "band"),
    [(64, Band.LOW), (65, Band.ELEVATED), (74, Band.ELEVATED), (75, Band.HIGH), (100, Band.HIGH)],
)
def test_band_edges(score: int, band: Band) -> None:
    assert RULES.band_of(score) is band


def test_perfectly_regular_gaps_flag_automation() -> None:
    bot = QUIET._replace(gap_sumsq_ms=19 * 30_000**2)  # every gap exactly 30 s: CV 0
    result = assess(bot, RULES)
    assert derive_features(bot).gap_cv == 0.0
    assert result.kind is RiskKind.AUTOMATION
    assert result.score == RULES.regular_timing_weight
    assert result.band is Band.HIGH
    assert result.markers[0].threshold == RULES.regular_timing_cv


def test_regularity_needs_enough_gaps() -> None:
    few = QUIET._replace(gap_count=9, gap_sum_ms=9 * 30_000, gap_sumsq_ms=9 * 30_000**2)
    assert "regular_timing" not in names(few)
    assert "regular_timing" in names(
        few._replace(gap_count=10, gap_sum_ms=10 * 30_000, gap_sumsq_ms=10 * 30_000**2)
    )


@pytest.mark.parametrize(("rapid", "fires"), [(5, False), (6, True)])
def test_rapid_share_edge(rapid: int, fires: bool) -> None:
    assert ("rapid_share" in names(QUIET._replace(rapid_events=rapid))) is fires  # 6/20 = 0.30


@pytest.mark.parametrize(("burst", "fires"), [(4, False), (5, True)])
def test_burst_edge(burst: int, fires: bool) -> None:
    assert ("burst" in names(QUIET._replace(max_burst=burst))) is fires


def test_loss_of_control_markers_add_up_and_name_their_kind() -> None:
    impulsive = QUIET._replace(
        rapid_events=10,
        max_burst=8,
        max_purchases_window=5,
        max_spend_window_cents=50_000,
        night_events=10,
    )
    result = assess(impulsive, RULES)
    assert result.kind is RiskKind.LOSS_OF_CONTROL
    assert result.automation_score == 0
    assert result.loss_of_control_score == 100  # 45 + 30 + 20 + 15 + 15, capped
    assert {m.kind for m in result.markers} == {RiskKind.LOSS_OF_CONTROL}
    assert [m.weight for m in result.markers] == sorted((m.weight for m in result.markers), reverse=True)


def test_ties_between_families_go_to_automation() -> None:
    rules = replace(RULES, regular_timing_weight=45)
    both = QUIET._replace(gap_sumsq_ms=19 * 30_000**2, rapid_events=10)
    assert assess(both, rules).kind is RiskKind.AUTOMATION


def test_markers_serialise_with_value_and_threshold() -> None:
    payload = assess(QUIET._replace(max_burst=7), RULES).markers_json()
    assert payload[0]["name"] == "burst"
    assert payload[0]["value"] == 7 and payload[0]["threshold"] == 5
    assert payload[0]["kind"] == "loss_of_control"


@pytest.mark.parametrize(("steady", "fires"), [(9, False), (10, True)])
def test_steady_rhythm_edge_flags_automation_despite_a_high_cv(steady: int, fires: bool) -> None:
    result = assess(QUIET._replace(steady_gaps=steady, gap_count=20), RULES)  # 10/20 = 0.5
    assert ("steady_rhythm" in {m.name for m in result.markers}) is fires
    assert (result.kind is RiskKind.AUTOMATION) is fires


def test_timing_evidence_that_reaches_a_band_names_automation_over_speed_markers() -> None:
    fast_bot = QUIET._replace(steady_gaps=19, rapid_events=19, max_burst=19, night_events=20)
    result = assess(fast_bot, RULES)
    assert result.loss_of_control_score > RULES.steady_rhythm_weight
    assert result.kind is RiskKind.AUTOMATION
