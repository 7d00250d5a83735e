"""Named sequence rules at their edges: rapid gap, session gap, night hours, rolling window."""

from __future__ import annotations

import pytest

from config.settings import Settings
from workers.sequence import (
    BUCKET_FIELDS,
    Anchor,
    SeqRow,
    SequenceRules,
    add_purchase_peaks,
    is_automation_agent,
    purchase_windows,
    recompute_tail,
    window_peaks,
)

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


@pytest.mark.parametrize(
    ("offset_min", "night"),
    # 05:30 UTC is night in UTC (05:30) and UTC-5 (00:30), evening in UTC-7 (22:30), day in UTC+8 (13:30).
    [(0, True), (-300, True), (-420, False), (480, False)],
)
def test_night_is_the_events_own_local_time(offset_min: int, night: bool) -> None:
    ts = 1_700_006_400_000 // 86_400_000 * 86_400_000 + 5 * HOUR + 30 * 60_000
    assert RULES.is_night(ts, offset_min) is night


def test_session_length_runs_from_the_first_event_and_restarts_after_a_break() -> None:
    touched, _ = recompute_tail(rows(0, 60_000, 120_000, 120_000 + 1_800_000), None, RULES)
    assert [r.session_ms for r in touched] == [0, 60_000, 120_000, 0]


@pytest.mark.parametrize(("gap_ms", "rested"), [(RULES.rest_gap_ms - 1, False), (RULES.rest_gap_ms, True)])
def test_a_rest_is_a_gap_of_at_least_the_rest_gap(gap_ms: int, rested: bool) -> None:
    touched, _ = recompute_tail(rows(0, 1_000, 1_000 + gap_ms), None, RULES)
    assert touched[-1].awake_ms == (0 if rested else 1_000 + gap_ms)


def bets(*stakes: tuple[int, int | None]) -> list[SeqRow]:
    return [SeqRow(f"p{i}", "u", ts, "purchase", cents, is_new=True) for i, (ts, cents) in enumerate(stakes)]


def test_a_bet_is_raised_at_the_chase_multiple_of_its_sessions_opening_stake() -> None:
    assert RULES.chase_multiple_pct == 200  # the default: double the opening stake
    later = 40_000 + 1_800_000  # a new session, with an opening stake of its own
    touched, delta = recompute_tail(
        bets(
            (0, 100),
            (10_000, 50),
            (20_000, 200),
            (25_000, 199),
            (30_000, None),
            (40_000, 100),
            (later, 900),
            (later + 1, 1_800),
        ),
        None,
        RULES,
    )
    assert [r.stake_raised for r in touched] == [None, 0, 1, 0, None, 0, None, 1]
    assert delta.buckets is not None
    figures = [0] * len(BUCKET_FIELDS)
    for bucket in delta.buckets.values():
        figures = [a + b for a, b in zip(figures, bucket, strict=True)]
    assert (figures[BUCKET_FIELDS.index("stake_bets")], figures[BUCKET_FIELDS.index("raised_bets")]) == (5, 2)


def test_a_multiple_of_one_raises_any_bet_above_the_opening_stake() -> None:
    rules = SequenceRules.from_settings(Settings(chase_stake_multiple=1.0))
    touched, _ = recompute_tail(bets((0, 100), (1_000, 100), (2_000, 101)), None, rules)
    assert [r.stake_raised for r in touched] == [None, 0, 1]


def test_the_first_stake_of_a_tail_continues_from_the_anchor() -> None:
    anchor = Anchor(ts_ms=0, gap_ms=None, session_no=1, burst_len=0, open_stake=500)
    touched, _ = recompute_tail(bets((10_000, 999), (11_000, 1_000)), anchor, RULES)
    assert [r.stake_raised for r in touched] == [0, 1]


def test_a_betting_clock_is_steady_between_bets_whatever_is_read_in_between() -> None:
    # A bet every 20 s, each but the first read 300 ms before: event gaps alternate, bet gaps do not.
    stream = [SeqRow("b0", "u", 0, "purchase", 500, is_new=True)]
    for i in range(1, 6):
        stream.append(SeqRow(f"r{i}", "u", i * 20_000 - 300, "view", None, is_new=True))
        stream.append(SeqRow(f"b{i}", "u", i * 20_000, "purchase", 500, is_new=True))
    touched, delta = recompute_tail(stream, None, RULES)
    by_id = {r.event_id: r for r in touched}
    assert [by_id[f"b{i}"].bet_rhythm for i in range(6)] == [None, 0, 1, 1, 1, 1]
    assert not any(r.is_steady for r in touched)  # the event rhythm sees nothing regular
    assert (by_id["r3"].last_bet_ms, by_id["r3"].bet_gap_ms) == (40_000, 20_000)
    assert delta.buckets is not None
    figures = [sum(b[i] for b in delta.buckets.values()) for i in range(len(BUCKET_FIELDS))]
    assert (figures[BUCKET_FIELDS.index("bet_gaps")], figures[BUCKET_FIELDS.index("steady_bets")]) == (5, 4)


def test_a_person_betting_at_varying_gaps_is_not_steady() -> None:
    touched, _ = recompute_tail(bets((0, 500), (20_000, 500), (41_500, 500), (57_000, 500)), None, RULES)
    assert [r.bet_rhythm for r in touched] == [None, 0, 0, 0]  # 21.5 s after 20 s is 7.5 % off


def test_the_bet_rhythm_starts_again_with_each_session_and_continues_from_the_anchor() -> None:
    anchor = Anchor(
        ts_ms=40_000, gap_ms=20_000, session_no=1, burst_len=0, last_bet_ms=40_000, bet_gap_ms=20_000
    )
    after_break = 60_000 + 1_800_000
    touched, _ = recompute_tail(
        bets((60_000, 500), (after_break, 500), (after_break + 20_000, 500)), anchor, RULES
    )
    assert [r.bet_rhythm for r in touched] == [1, None, 0]


def test_logins_are_counted_per_bucket() -> None:
    stream = [SeqRow(f"l{i}", "u", i * 1_000, "login", None, is_new=True) for i in range(5)]
    _, delta = recompute_tail([*stream, *rows(10_000)], None, RULES)
    assert delta.buckets is not None
    assert sum(b[BUCKET_FIELDS.index("logins")] for b in delta.buckets.values()) == 5


def test_buckets_carry_each_events_figures_and_the_lifetime_delta_sums_them() -> None:
    late_night = 1_700_006_400_000 // 86_400_000 * 86_400_000 + 2 * HOUR  # 02:00 UTC
    stream = rows(late_night, late_night + 500, late_night + 900, late_night + 7 * HOUR)
    touched, delta = recompute_tail(stream, None, RULES)
    assert delta.buckets is not None
    first, second = (delta.buckets[RULES.bucket_of(r.ts_ms)] for r in (touched[0], touched[-1]))
    field = BUCKET_FIELDS.index
    assert (first[field("events")], first[field("night_events")], first[field("fast_gaps")]) == (3, 3, 1)
    assert (first[field("rapid_events")], first[field("max_burst")], first[field("sessions")]) == (2, 2, 1)
    assert (second[field("events")], second[field("night_events")], second[field("sessions")]) == (1, 0, 1)
    assert (delta.events, delta.rapid_events, delta.sessions, delta.night_events) == (4, 2, 2, 3)


def test_purchase_windows_raise_the_peaks_of_the_bucket_they_end_in() -> None:
    touched, delta = recompute_tail(bets((0, 100), (60_000, 200), (7 * HOUR, 50)), None, RULES)
    add_purchase_peaks(
        delta, purchase_windows([(r.ts_ms, r.amount_cents or 0) for r in touched], 0, RULES), RULES
    )
    assert delta.buckets is not None
    field = BUCKET_FIELDS.index
    early, late = delta.buckets[RULES.bucket_of(0)], delta.buckets[RULES.bucket_of(7 * HOUR)]
    assert (early[field("max_purchases_window")], early[field("max_spend_window_cents")]) == (2, 300)
    assert (late[field("max_purchases_window")], late[field("max_spend_window_cents")]) == (1, 50)
    assert (delta.max_purchases_window, delta.max_spend_window_cents) == (2, 300)


def test_automation_agents_are_named_by_their_tool() -> None:
    assert is_automation_agent("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0.0.0 Safari/537.36")
    assert is_automation_agent("python-requests/2.31.0")
    assert is_automation_agent("curl/8.4.0")
    assert is_automation_agent("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)")
    assert is_automation_agent("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    assert not is_automation_agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36")
    assert not is_automation_agent(None)


ROBOTS_IN_BROWSER_CLOTHES = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/41.0.2272.96 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
    " Chrome/116.0.1938.76 Safari/537.36",
    "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0; +http://example.com/crawler)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0"
    " Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
    " Safari/537.36 PTST/240101",
)


def test_the_plain_browser_shortcut_never_hides_what_the_lists_find() -> None:
    from faker import Faker

    from workers.sequence import _PLAIN_BROWSER, _ROBOTS, AUTOMATION_AGENT

    fake = Faker()
    fake.seed_instance(7)
    agents = [fake.user_agent() for _ in range(400)] + list(ROBOTS_IN_BROWSER_CLOTHES)
    for agent in agents:
        by_lists = AUTOMATION_AGENT.search(agent) is not None or bool(_ROBOTS.isCrawler(agent))
        if _PLAIN_BROWSER.fullmatch(agent):
            assert not by_lists, agent
        assert is_automation_agent(agent) == by_lists, agent
    for agent in ROBOTS_IN_BROWSER_CLOTHES:
        assert is_automation_agent(agent), agent
