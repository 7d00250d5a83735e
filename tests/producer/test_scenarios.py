"""The scenario library: each sub-type does what its docstring promises, measured on its own lives."""

from __future__ import annotations

import itertools
import random
import re
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from contract.wire import utc_ms
from producer.catalogue import build_catalogue
from producer.personas import HOUR_MS, MINUTE_MS, Mode, Persona, Step, local_hour
from producer.population import cohort_steps, cohort_window_ms, events_per_user, plan_cohort
from producer.scenarios import (
    DEFAULT_MIX,
    SCENARIOS,
    AgentPool,
    HeadlessAgent,
    LoyalRegular,
    MachineBurst,
    Mix,
    NightOwlGambler,
    QuickPager,
    RecreationalBettor,
    Relapse,
    Scenario,
    StakeChaser,
    TirelessMimic,
    scenario,
)
from producer.simulation import SimEvent, Timeline

S = TypeVar("S", bound=Scenario)
START_MS = utc_ms(datetime(2026, 1, 5, 0, 0, tzinfo=UTC))
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class Life:
    """One simulated life: where its user lives, when it joined, its steps without the LEAVE."""

    offset_min: int
    join_ms: int
    steps: list[Step]

    def sessions(self) -> list[list[Step]]:
        """The steps grouped by session, in order."""
        return [list(group) for _, group in itertools.groupby(self.steps, key=lambda s: s.session)]

    def local_hours(self) -> list[float]:
        """The local hour of every step."""
        return [local_hour(s.ts_ms, self.offset_min) for s in self.steps]


def library(kind: type[S]) -> S:
    """The library's instance of a sub-type class, with its parameters."""
    found = SCENARIOS[kind.name]
    assert isinstance(found, kind)
    return found


def lives(name: str, users: int) -> list[Life]:
    """`users` independent lives of a sub-type, joining at any hour of one day."""
    rng = random.Random(f"scenario-test:{name}")
    kind = scenario(name)
    out = []
    for _ in range(users):
        offset = rng.choice(kind.home_offsets_min)
        join_ms = START_MS + rng.randrange(DAY_MS)
        steps = list(kind.life(rng, join_ms, offset))
        assert steps[-1].mode is Mode.LEAVE
        out.append(Life(offset, join_ms, steps[:-1]))
    return out


def gaps_s(steps: list[Step]) -> list[float]:
    """Gaps between consecutive steps, in seconds."""
    return [(b.ts_ms - a.ts_ms) / 1000 for a, b in itertools.pairwise(steps)]


def in_hours(hour: float, start: float, end: float) -> bool:
    """Whether a local hour lies in [start, end), a window that may wrap midnight."""
    return start <= hour < end if start < end else hour >= start or hour < end


def events_of(name: str, count: int = 6000, seed: int = 3) -> list[SimEvent]:
    """The wire events of a counted run made only of this sub-type."""
    mix = Mix.of({name: 1.0})
    window = cohort_window_ms(mix)
    cohort = plan_cohort(mix, seed=seed, count_events=count, start_ms=START_MS, window_ms=window)
    steps = cohort_steps(cohort, seed=seed)
    return list(Timeline(run_id="t", seed=seed, steps=steps, catalogue=build_catalogue(seed)))


# --- the library as a whole ------------------------------------------------------------------


def test_there_are_at_least_ten_sub_types_and_every_persona_has_several() -> None:
    assert len(SCENARIOS) >= 10
    per_persona = Counter(kind.persona for kind in SCENARIOS.values())
    assert set(per_persona) == set(Persona) and min(per_persona.values()) >= 3
    assert {"browser", "burst_buyer", "metronome"} <= set(SCENARIOS)  # today's three personas


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_sub_type_cites_a_source(name: str) -> None:
    doc = type(scenario(name)).__doc__ or ""
    assert re.search(r"\b(19|20)\d\d\b", doc), f"{name} names no dated source"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_lives_are_in_order_and_end_within_their_bound(name: str) -> None:
    kind = scenario(name)
    for life in lives(name, 120):
        assert life.steps, "every life has an event"
        assert all(a.ts_ms <= b.ts_ms for a, b in itertools.pairwise(life.steps))
        assert life.steps[0].ts_ms >= life.join_ms
        assert life.steps[-1].ts_ms - life.join_ms <= kind.max_life_ms
        assert life.steps[0].opens_session
        assert life.offset_min in kind.home_offsets_min


def test_the_default_mix_covers_every_sub_type() -> None:
    assert DEFAULT_MIX.present() == list(SCENARIOS)
    window = cohort_window_ms(DEFAULT_MIX)
    cohort = plan_cohort(DEFAULT_MIX, seed=1, count_events=100_000, start_ms=START_MS, window_ms=window)
    assert set(u.sub_type for u in cohort.users) == set(SCENARIOS)
    assert sum(u.events for u in cohort.users) == 100_000


def test_a_cohort_holds_whole_lives_inside_its_window_and_exactly_the_count() -> None:
    window = cohort_window_ms(DEFAULT_MIX)
    cohort = plan_cohort(DEFAULT_MIX, seed=4, count_events=30_000, start_ms=START_MS, window_ms=window)
    assert window >= max(k.max_life_ms for k in SCENARIOS.values())  # the longest life fits
    assert sum(u.events for u in cohort.users) == 30_000
    per_user: Counter[int] = Counter()
    last = START_MS
    for key, _, _, step in cohort_steps(cohort, seed=4):
        if step.mode is Mode.LEAVE:
            continue
        assert START_MS <= step.ts_ms <= cohort.end_ms
        assert step.ts_ms >= last  # one merged stream in time order
        last = step.ts_ms
        per_user[key] += 1
    assert all(per_user[i] == u.events for i, u in enumerate(cohort.users))
    # Only the last user is cut to make the count; everyone else lives a whole life.
    whole = [
        sum(
            1
            for s in scenario(u.sub_type).life(random.Random(f"4:life:{u.index}"), u.join_ms, u.offset_min)
            if s.mode is not Mode.LEAVE
        )
        for u in cohort.users[:-1]
    ]
    assert whole == [u.events for u in cohort.users[:-1]]


def test_shares_are_of_users() -> None:
    mix = DEFAULT_MIX
    window = cohort_window_ms(mix)
    cohort = plan_cohort(mix, seed=2, count_events=400_000, start_ms=START_MS, window_ms=window)
    users = Counter(u.sub_type for u in cohort.users)
    total = sum(users.values())
    assert total == pytest.approx(400_000 / events_per_user(mix), rel=0.1)
    for name in SCENARIOS:
        assert users[name] / total == pytest.approx(mix.share(name), abs=0.01), name


def test_a_persona_share_rescales_its_sub_types_and_a_sub_type_share_sets_one() -> None:
    base = DEFAULT_MIX
    bots = [n for n in SCENARIOS if scenario(n).persona is Persona.BOT]
    doubled = base.with_shares({"bot": 2 * sum(base.weights[n] for n in bots)})
    for name in bots:
        assert doubled.weights[name] == pytest.approx(2 * base.weights[name])
    assert doubled.weights["browser"] == base.weights["browser"]
    one = base.with_shares({"bot": 0.0, "tireless_mimic": 0.3})
    assert [n for n in bots if one.weights[n]] == ["tireless_mimic"]
    assert one.weights["tireless_mimic"] == 0.3
    assert base.with_shares({"impulsive": 0.0}).persona_share(Persona.IMPULSIVE) == 0.0
    with pytest.raises(ValueError, match="unknown persona or sub-type"):
        base.with_shares({"robot": 0.5})
    with pytest.raises(ValueError):
        Mix.of({"browser": -1.0})
    with pytest.raises(ValueError):
        base.with_shares({"normal": 0, "impulsive": 0, "bot": 0})


# --- normal ----------------------------------------------------------------------------------


def test_quick_pagers_make_a_few_quick_clicks_in_short_visits() -> None:
    kind = library(QuickPager)
    page_gaps: list[float] = []
    visit_gaps = 0
    for life in lives("quick_pager", 300):
        for visit in life.sessions():
            assert kind.events_per_visit[0] <= len(visit) <= kind.events_per_visit[1]
            gaps = gaps_s(visit)
            visit_gaps += len(gaps)
            page_gaps += [g for g, s in zip(gaps, visit[1:], strict=True) if s.mode is Mode.PAGE]
    # Paging clicks are a response (0.2-0.8 s) plus a glance (median 0.5-1.2 s).
    assert 0.7 < statistics.median(page_gaps) < 2.0
    assert min(page_gaps) >= kind.page_response_s[0]
    low, high = kind.quick_share
    assert low - 0.05 < len(page_gaps) / visit_gaps < high + 0.05


def test_evening_shoppers_shop_in_the_local_evening_which_is_the_utc_night() -> None:
    local, utc = [], []
    for life in lives("evening_shopper", 300):
        local += life.local_hours()
        utc += [local_hour(s.ts_ms, 0) for s in life.steps]
    assert sum(in_hours(h, 19, 2) for h in local) / len(local) > 0.97
    assert sum(h < 8 for h in utc) / len(utc) > 0.97


def test_loyal_regulars_make_many_short_visits_over_weeks() -> None:
    kind = library(LoyalRegular)
    spans, visits = [], []
    for life in lives("loyal_regular", 200):
        sessions = life.sessions()
        visits.append(len(sessions))
        spans.append((life.steps[-1].ts_ms - life.steps[0].ts_ms) / DAY_MS)
        assert all(len(v) <= kind.events_per_visit[1] for v in sessions)
        starts = Life(life.offset_min, 0, [v[0] for v in sessions]).local_hours()
        assert all(in_hours(h, *kind.daytime) for h in starts)  # visits start in the local day
    assert statistics.median(visits) >= 8 and min(visits) >= 3
    assert statistics.median(spans) >= 14


def test_gift_shoppers_check_out_several_times_at_human_pace() -> None:
    for life in lives("gift_shopper", 200):
        for visit in life.sessions():
            assert sum(s.mode is Mode.CHECKOUT for s in visit) >= 3
        assert statistics.median(gaps_s(life.steps)) > 10
    purchases = [e for e in events_of("gift_shopper") if e.fields["action"] == "purchase"]
    assert purchases and all(e.fields["amount"] > 0 for e in purchases)


def test_recreational_bettors_keep_flat_modest_stakes() -> None:
    kind = library(RecreationalBettor)
    for life in lives("recreational_bettor", 200):
        stakes = [s.amount for s in life.steps if s.amount is not None]
        if len(stakes) >= 2:
            assert max(stakes) / min(stakes) <= 1.4 / 0.6 + 0.01
        assert all(s.amount is None or s.amount <= kind.base_stake[1] * 1.4 for s in life.steps)
        assert all(len(v) <= kind.steps_per_session[1] for v in life.sessions())


# --- impulsive -------------------------------------------------------------------------------


def test_stake_chasers_bet_every_few_seconds_for_an_hour_late_at_night_with_rising_stakes() -> None:
    kind = library(StakeChaser)
    rising = ratios = 0
    medians = []
    for life in lives("stake_chaser", 150):
        gaps = [g for visit in life.sessions() for g in gaps_s(visit)]
        assert min(gaps) >= kind.spin_s[0]  # never faster than a slot spin
        medians.append(statistics.median(gaps))
        for visit in life.sessions():
            assert (visit[-1].ts_ms - visit[0].ts_ms) / MINUTE_MS >= kind.session_min[0] - 2
            stakes = [s.amount for s in visit if s.amount is not None]
            third = len(stakes) // 3
            first, last = statistics.fmean(stakes[:third]), statistics.fmean(stakes[-third:])
            rising += last > first
            ratios += 1
        late = sum(in_hours(h, 22, 4) for h in life.local_hours())
        assert late / len(life.steps) > 0.95
    assert 2.5 < statistics.median(medians) < 8  # "every few seconds"
    assert rising / ratios > 0.7  # chasing: most sessions end on higher stakes than they began


def test_night_owl_gamblers_hold_repeated_sessions_in_one_local_night_which_is_the_utc_day() -> None:
    kind = library(NightOwlGambler)
    for life in lives("night_owl_gambler", 200):
        assert life.offset_min in (480, 540)
        assert all(in_hours(h, 23, 6) for h in life.local_hours())
        assert all(12 <= local_hour(s.ts_ms, 0) < 23 for s in life.steps)  # afternoon to evening in UTC
        sessions = life.sessions()
        nights = Counter(
            (s[0].ts_ms + life.offset_min * MINUTE_MS - 12 * HOUR_MS) // DAY_MS for s in sessions
        )
        assert max(nights.values()) >= 2  # repeated sessions in one night
        for a, b in itertools.pairwise(sessions):
            assert (b[0].ts_ms - a[-1].ts_ms) / MINUTE_MS >= kind.break_min[0] - 1
        assert min(g for v in sessions for g in gaps_s(v)) >= kind.min_gap_s


def test_relapse_is_weeks_of_calm_then_a_final_chasing_night() -> None:
    kind = library(Relapse)
    for life in lives("relapse", 150):
        *calm, episode = life.sessions()
        calm_steps = [s for v in calm for s in v]
        assert (episode[0].ts_ms - calm_steps[0].ts_ms) / DAY_MS >= kind.calm_days[0] - 1
        assert statistics.median(gaps_s(episode)) < 10 < statistics.median(gaps_s(calm_steps))
        calm_stakes = [s.amount for s in calm_steps if s.amount is not None]
        episode_stakes = [s.amount for s in episode if s.amount is not None]
        assert statistics.fmean(episode_stakes) > 1.5 * statistics.fmean(calm_stakes)
        assert all(in_hours(h, 22, 4) for h in Life(life.offset_min, 0, episode).local_hours())


# --- bot -------------------------------------------------------------------------------------


def test_machine_bursts_are_dozens_of_irregular_sub_second_actions() -> None:
    kind = library(MachineBurst)
    for life in lives("machine_burst", 150):
        bursts = [list(g) for _, g in itertools.groupby(life.steps, key=lambda s: (s.session, s.burst))]
        for burst in bursts:
            assert kind.burst_len[0] <= len(burst) <= kind.burst_len[1]
            gaps = gaps_s(burst)
            assert max(gaps) < 1.0
            assert statistics.pstdev(gaps) / statistics.fmean(gaps) > 0.2  # not a metronome


def test_poisson_scrapers_are_fast_with_memoryless_gaps() -> None:
    cvs = []
    for life in lives("poisson_scraper", 150):
        gaps = [g for v in life.sessions() for g in gaps_s(v)]
        assert statistics.fmean(gaps) < 3.0
        cvs.append(statistics.pstdev(gaps) / statistics.fmean(gaps))
    assert 0.9 < statistics.median(cvs) < 1.1  # an exponential's CV is 1


def test_tireless_mimics_copy_human_think_times_but_never_rest() -> None:
    kind = library(TirelessMimic)
    for life in lives("tireless_mimic", 60):
        span_h = (life.steps[-1].ts_ms - life.steps[0].ts_ms) / HOUR_MS
        assert span_h >= kind.active_hours[0] - 0.5
        gaps = gaps_s(life.steps)
        assert max(gaps) <= kind.longest_gap_s  # never six hours' rest in two days; not even 30 min
        assert 30 < statistics.median(gaps) < 120  # a reader's pace
    events = events_of("tireless_mimic", count=20_000)
    actions = Counter(e.fields["action"] for e in events)
    assert actions["view"] / actions.total() > 0.9


def test_headless_agents_name_their_tool_and_wait_a_randomised_delay() -> None:
    tools = re.compile(
        r"HeadlessChrome|PhantomJS|python-requests|Python-urllib|curl|Go-http-client|Wget|"
        r"okhttp|aiohttp|Scrapy|AhrefsBot|SemrushBot"
    )
    agents = {e.fields["user_agent"] for e in events_of("headless_agent")}
    assert agents and all(tools.search(a) for a in agents)
    kind = library(HeadlessAgent)
    for life in lives("headless_agent", 150):
        gaps = [g for v in life.sessions() for g in gaps_s(v)]
        low, high = kind.delay_spread
        assert max(gaps) / min(gaps) <= high / low + 0.01


def test_mimics_present_an_ordinary_browser_agent() -> None:
    assert scenario("tireless_mimic").agents is AgentPool.BROWSER
    browsers = set(build_catalogue(3).browser_agents)
    assert all(e.fields["user_agent"] in browsers for e in events_of("tireless_mimic", count=3000))


def test_bets_are_purchases_on_betting_markets_with_the_stake_as_amount() -> None:
    events = events_of("stake_chaser", count=3000)
    bets = [e for e in events if e.fields["action"] == "purchase"]
    assert bets and all(e.fields["category"].startswith("betting.") for e in events)
    assert all(e.fields["amount"] >= 0.1 for e in bets)


def test_sessions_say_z_or_carry_the_home_offset_all_through() -> None:
    events = events_of("browser", count=20_000)
    by_session: dict[str, set[str]] = {}
    for e in events:
        stamp = e.fields["timestamp"]
        by_session.setdefault(e.fields["session_id"], set()).add("Z" if stamp.endswith("Z") else stamp[-6:])
    assert all(len(forms) == 1 for forms in by_session.values())
    z_share = sum(forms == {"Z"} for forms in by_session.values()) / len(by_session)
    assert 0.15 < z_share < 0.35
