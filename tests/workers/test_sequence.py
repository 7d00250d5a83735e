"""Named sequence rules at their edges: rapid gap, session gap, night hours, rolling window."""

from __future__ import annotations

import pytest

from config.settings import Settings
from workers.sequence import Anchor, SeqRow, SequenceRules, recompute_tail, window_peaks

RULES = SequenceRules.from_settings(Settings())
HOUR = 3_600_000


def rows(*times: int, user: str = "u") -> list[SeqRow]:
    return [SeqRow(f"e{i:03d}", user, ts, "view", None, is_new=True) for i, ts in enumerate(times)]


@pytest.mark.parametrize(("gap_ms", "rapid"), [(0, True), (1999, True), (2000, False), (2001, False)])
def test_rapid_is_strictly_under_two_seconds(gap_ms: int, rapid: bool) -> None:
    touched, delta = recompute_tail(rows(1_000_000, 1_000_000 + gap_ms), None, RULES)
    assert [r.is_rapid for r in touched] == [False, rapid]
    assert touched[1].gap_ms == gap_ms
    assert delta.rapid_events == int(rapid)


@pytest.mark.parametrize(("gap_ms", "sessions"), [(1_799_999, 1), (1_800_000, 2), (1_800_001, 2)])
def test_session_starts_after_thirty_minutes_of_silence(gap_ms: int, sessions: int) -> None:
    touched, delta = recompute_tail(rows(0, gap_ms), None, RULES)
    assert touched[-1].session_no == sessions
    assert delta.sessions == sessions
    assert delta.gap_count == (1 if sessions == 1 else 0)


def test_out_of_order_input_is_ordered_by_time_then_id() -> None:
    shuffled = [
        SeqRow("b", "u", 5000, "view", None, is_new=True),
        SeqRow("a", "u", 5000, "view", None, is_new=True),
        SeqRow("c", "u", 1000, "view", None, is_new=True),
    ]
    touched, _ = recompute_tail(shuffled, None, RULES)
    assert [(r.event_id, r.gap_ms, r.is_rapid) for r in touched] == [
        ("c", None, False),
        ("a", 4000, False),
        ("b", 0, True),
    ]


def test_first_event_is_never_rapid_and_starts_session_one() -> None:
    touched, delta = recompute_tail(rows(42), None, RULES)
    assert (touched[0].gap_ms, touched[0].is_rapid, touched[0].session_no, touched[0].burst_len) == (
        None,
        False,
        1,
        0,
    )
    assert (delta.events, delta.sessions, delta.gap_count) == (1, 1, 0)


def test_burst_counts_consecutive_rapid_events_from_the_anchor() -> None:
    anchor = Anchor(ts_ms=10_000, gap_ms=None, session_no=3, burst_len=2)
    touched, delta = recompute_tail(rows(11_000, 12_000, 20_000, 21_000), anchor, RULES)
    assert [r.burst_len for r in touched] == [3, 4, 0, 1]
    assert [r.session_no for r in touched] == [3, 3, 3, 3]
    assert delta.max_burst == 4


def test_late_event_updates_its_successor_and_the_delta_is_exact() -> None:
    stored = [
        SeqRow("a", "u", 0, "view", None, is_new=False, gap_ms=None, is_rapid=False, session_no=1),
        SeqRow("c", "u", 3000, "view", None, is_new=False, gap_ms=3000, is_rapid=False, session_no=1),
    ]
    late = SeqRow("b", "u", 1500, "view", None, is_new=True)
    tail = [stored[1], late]
    touched, delta = recompute_tail(tail, Anchor(0, None, 1, 0), RULES)
    by_id = {r.event_id: r for r in touched}
    assert by_id["b"].gap_ms == 1500 and by_id["b"].is_rapid
    assert by_id["c"].gap_ms == 1500 and by_id["c"].is_rapid and by_id["c"].changed
    assert by_id["c"].burst_len == 2
    assert delta.rapid_events == 2
    assert delta.gap_count == 1  # two within-session gaps now, one before
    assert delta.gap_sum_ms == 0  # 1500 + 1500 replaces 3000


@pytest.mark.parametrize(("hour", "night"), [(0, True), (5, True), (6, False), (23, False)])
def test_night_hours_are_start_inclusive_end_exclusive(hour: int, night: bool) -> None:
    assert RULES.is_night(1_700_006_400_000 // 86_400_000 * 86_400_000 + hour * HOUR) is night


def test_window_is_open_on_the_left_and_closed_on_the_right() -> None:
    purchases = [(0, 100), (HOUR, 200)]
    assert window_peaks(purchases, 0, RULES) == (1, 200)
    assert window_peaks([(0, 100), (HOUR - 1, 200)], 0, RULES) == (2, 300)


def test_window_peaks_only_consider_windows_ending_after_the_start() -> None:
    purchases = [(0, 1), (1, 1), (2, 1), (10 * HOUR, 5)]
    assert window_peaks(purchases, 10 * HOUR, RULES) == (1, 5)
    assert window_peaks(purchases, 0, RULES) == (3, 5)


@pytest.mark.parametrize(
    ("second_gap", "steady"), [(10_500, True), (10_501, False), (9_500, True), (9_499, False)]
)
def test_steady_gap_is_within_five_percent_of_the_previous_gap(second_gap: int, steady: bool) -> None:
    touched, delta = recompute_tail(rows(0, 10_000, 10_000 + second_gap), None, RULES)
    assert [r.is_steady for r in touched] == [False, False, steady]
    assert delta.steady_gaps == int(steady)


def test_steady_needs_both_gaps_inside_a_session() -> None:
    touched, _ = recompute_tail(rows(0, 1_800_000, 3_600_000), None, RULES)
    assert not any(r.is_steady for r in touched)


def test_steady_continues_from_the_anchor_gap() -> None:
    touched, _ = recompute_tail(
        rows(20_000), Anchor(ts_ms=10_000, gap_ms=10_000, session_no=1, burst_len=0), RULES
    )
    assert touched[0].is_steady
