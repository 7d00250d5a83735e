"""The scenario library: sub-types of the three personas, each a set of named parameters and a life.

Every sub-type is written from published or observed behaviour (the source is in its docstring
and in docs/detection.md), never from the detector's thresholds. A life is a lazy stream of
steps from the moment the user joins, in the user's home time zone, ending with Mode.LEAVE;
`max_life_ms` bounds when its last event can happen, so a run can place whole lives before now.
Each at-risk life ends in its risky behaviour: what a current score sees at the end is true.

The parameters were frozen before the detector was run on them (docs/detection.md): change one
only to fix a life that does not do what its docstring says, in a commit of its own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Protocol, TypeVar

from producer.personas import (
    DAY_MS,
    HOUR_MS,
    HUMAN_GAP_CAP_S,
    MINUTE_MS,
    Mode,
    Persona,
    Step,
    human_gap_s,
    local_window_ms,
    log_uniform,
    next_local_hour_ms,
    next_night_ms,
    window_length_ms,
)

K = TypeVar("K")
Range = tuple[float, float]
IntRange = tuple[int, int]
# Home UTC offsets (minutes) of users who could live anywhere: Western Europe, India,
# the Americas, East Asia.
WORLD_OFFSETS_MIN: tuple[int, ...] = (0, 60, 120, 330, -300, -180, 540, -480)
_CAP_MS = HUMAN_GAP_CAP_S * 1000
_LEAVE_AFTER_MS = HOUR_MS  # a counted run keeps whole lives; this only paces a slot's refill


class AgentPool(StrEnum):
    """Which user agents a sub-type presents (the catalogue holds the strings)."""

    BROWSER = "browser"  # ordinary browsers
    BOT = "bot"  # crawler and HTTP-library agents, a quarter disguised as Chrome
    TOOL = "tool"  # automation tools that name themselves: HeadlessChrome, python-requests, curl...


class Scenario(Protocol):
    """A sub-type: what it is, who it belongs to, and the life it lives."""

    name: ClassVar[str]
    persona: ClassVar[Persona]
    agents: ClassVar[AgentPool]

    @property
    def home_offsets_min(self) -> tuple[int, ...]:
        """The UTC offsets (minutes) its users live at."""
        ...

    @property
    def max_life_ms(self) -> int:
        """No event of a life comes later than this after the user joins."""
        ...

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Every step from join_ms, in a home zone offset_min from UTC, ending with Mode.LEAVE."""
        ...


def _later_day_ms(
    rng: random.Random, after_ms: float, offset_min: int, window: Range, days: IntRange
) -> float:
    """A moment of the local window on a day `days` after after_ms (1 = the next day or so)."""
    return local_window_ms(rng, after_ms + (rng.randint(*days) - 0.5) * DAY_MS, offset_min, window)


def _later_day_bound_ms(days: IntRange) -> float:
    """How far after a moment `_later_day_ms` can land."""
    return (days[1] - 0.5) * DAY_MS + DAY_MS


def _on_days_bound_ms(sessions: int, days: IntRange, session_ms: float) -> int:
    """The longest life of at most `sessions` sessions, each on a day `days` after the last.

    The first waits up to a day for its local window; each session lasts at most session_ms.
    """
    later = (sessions - 1) * (_later_day_bound_ms(days) + session_ms)
    return int(DAY_MS + session_ms + later)


def _human_session(
    rng: random.Random, t_ms: float, session: int, events: int, median_s: float, mode: Mode = Mode.BROWSE
) -> Iterator[Step]:
    """A visit of `events` actions at human think times, starting at t_ms."""
    for i in range(events):
        if i:
            t_ms += 1000.0 * human_gap_s(rng, median_s)
        yield Step(int(t_ms), session, mode, -1, i == 0)


def _flat_stake(rng: random.Random, base: float) -> float:
    """A recreational stake: about the usual amount, rounded to the cent."""
    return round(max(0.1, base * rng.uniform(0.6, 1.4)), 2)


# --- normal --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Browser:
    """A shopper browsing at human pace, with the odd double-click: today's normal user.

    Think times are log-normal around a personal median of 20-40 s (heavy-tailed dwell times:
    Liu, White & Dumais 2010); a third of people double-click or skim, so a few of their gaps
    are under two seconds (Weinreich et al. 2008: web browsing is a rapid activity).
    1-4 visits of 5-40 actions, 30 min to 4 h apart.
    """

    name: ClassVar[str] = "browser"
    persona: ClassVar[Persona] = Persona.NORMAL
    agents: ClassVar[AgentPool] = AgentPool.BROWSER
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    median_gap_s: Range = (20.0, 40.0)
    fast_user_share: float = 0.35
    fast_gap_share: Range = (0.05, 0.10)
    sessions: IntRange = (1, 4)
    events_per_session: IntRange = (5, 40)
    idle_s: Range = (30 * 60.0, 4 * 3600.0)

    @property
    def max_life_ms(self) -> int:
        """Every visit at its longest, every pause at its longest."""
        visit_ms = (self.events_per_session[1] - 1) * _CAP_MS
        return int(self.sessions[1] * visit_ms + (self.sessions[1] - 1) * 1000 * self.idle_s[1])

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Visits at any hour, each a run of human-paced actions."""
        median_s = rng.uniform(*self.median_gap_s)
        fast_share = rng.uniform(*self.fast_gap_share) if rng.random() < self.fast_user_share else 0.0
        sessions = rng.randint(*self.sessions)
        t_ms = float(join_ms)
        for session in range(sessions):
            for i in range(rng.randint(*self.events_per_session)):
                if i:
                    t_ms += 1000.0 * human_gap_s(rng, median_s, fast_share)
                yield Step(int(t_ms), session, Mode.BROWSE, -1, i == 0)
            t_ms += 1000.0 * log_uniform(rng, *self.idle_s)
        yield Step(int(t_ms), sessions, Mode.LEAVE, -1, False)


@dataclass(frozen=True, slots=True)
class QuickPager:
    """A person paging quickly through a listing: a few quick clicks in a short visit.

    Paging a product grid needs no pointing, only a click on the control under the pointer
    (a keystroke-level action, about 0.2 s: Card, Moran & Newell 1983), the page's response
    (0.2-0.8 s) and a glance (median 0.5-1.2 s): Weinreich et al. 2008 found most page
    visits last only seconds. Half to most gaps of a visit are such paging clicks, the rest
    human think times. 1-3 visits of 4-12 actions, hours apart.
    """

    name: ClassVar[str] = "quick_pager"
    persona: ClassVar[Persona] = Persona.NORMAL
    agents: ClassVar[AgentPool] = AgentPool.BROWSER
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    visits: IntRange = (1, 3)
    events_per_visit: IntRange = (4, 12)
    quick_share: Range = (0.5, 0.85)
    page_response_s: Range = (0.2, 0.8)
    glance_median_s: Range = (0.5, 1.2)
    browse_median_s: Range = (10.0, 25.0)
    idle_s: Range = (3600.0, 24 * 3600.0)

    @property
    def max_life_ms(self) -> int:
        """Every visit at its longest, every pause at its longest."""
        visit_ms = (self.events_per_visit[1] - 1) * _CAP_MS
        return int(self.visits[1] * visit_ms + (self.visits[1] - 1) * 1000 * self.idle_s[1])

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Short visits in which most steps are the next page of a listing."""
        quick_share = rng.uniform(*self.quick_share)
        glance_s = rng.uniform(*self.glance_median_s)
        browse_s = rng.uniform(*self.browse_median_s)
        visits = rng.randint(*self.visits)
        t_ms = float(join_ms)
        for visit in range(visits):
            for i in range(rng.randint(*self.events_per_visit)):
                quick = False
                if i:
                    quick = rng.random() < quick_share
                    if quick:
                        gap_s = rng.uniform(*self.page_response_s) + rng.lognormvariate(
                            math.log(glance_s), 0.45
                        )
                    else:
                        gap_s = human_gap_s(rng, browse_s)
                    t_ms += 1000.0 * min(HUMAN_GAP_CAP_S, gap_s)
                yield Step(int(t_ms), visit, Mode.PAGE if quick else Mode.BROWSE, -1, i == 0)
            t_ms += 1000.0 * log_uniform(rng, *self.idle_s)
        yield Step(int(t_ms), visits, Mode.LEAVE, -1, False)


@dataclass(frozen=True, slots=True)
class EveningShopper:
    """A shopper in the Americas who shops in the local evening, which is the UTC night.

    Retail site visits peak at 8-10 pm local time (Compete 2011, US panel); purchases peak
    at 8-9 pm (SaleCycle 2020). Visits start between 19:00 and 22:30 local on 1-4 evenings
    a few days apart; inside a visit the pace is the browser's.
    """

    name: ClassVar[str] = "evening_shopper"
    persona: ClassVar[Persona] = Persona.NORMAL
    agents: ClassVar[AgentPool] = AgentPool.BROWSER
    home_offsets_min: tuple[int, ...] = (-300, -360, -420, -480)  # US Eastern to Pacific
    evening: Range = (19.0, 22.5)
    evenings: IntRange = (1, 4)
    days_between: IntRange = (1, 5)
    events_per_visit: IntRange = (5, 30)
    median_gap_s: Range = (20.0, 40.0)

    @property
    def max_life_ms(self) -> int:
        """The wait for the first evening, the later evenings, every visit at its longest."""
        visit_ms = (self.events_per_visit[1] - 1) * _CAP_MS
        return _on_days_bound_ms(self.evenings[1], self.days_between, visit_ms)

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """One visit on each of a few evenings."""
        median_s = rng.uniform(*self.median_gap_s)
        evenings = rng.randint(*self.evenings)
        t_ms = local_window_ms(rng, join_ms, offset_min, self.evening)
        for session in range(evenings):
            if session:
                t_ms = _later_day_ms(rng, t_ms, offset_min, self.evening, self.days_between)
            for step in _human_session(rng, t_ms, session, rng.randint(*self.events_per_visit), median_s):
                t_ms = step.ts_ms
                yield step
        yield Step(int(t_ms) + _LEAVE_AFTER_MS, evenings, Mode.LEAVE, -1, False)


@dataclass(frozen=True, slots=True)
class LoyalRegular:
    """A regular who drops in for a few actions every day or two for weeks.

    Repeat visitors make many short visits over weeks before and between purchases
    (Moe & Fader 2004, "Dynamic conversion behavior at e-commerce sites"). Active for 2-6
    weeks; the next visit 0.5-4 days later (spread log-uniformly), in local daytime or evening
    (08:00-22:00); 3-10 human-paced actions a visit.
    """

    name: ClassVar[str] = "loyal_regular"
    persona: ClassVar[Persona] = Persona.NORMAL
    agents: ClassVar[AgentPool] = AgentPool.BROWSER
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    active_days: Range = (14.0, 42.0)
    visit_interval_days: Range = (0.5, 4.0)
    daytime: Range = (8.0, 22.0)
    events_per_visit: IntRange = (3, 10)
    median_gap_s: Range = (15.0, 35.0)

    @property
    def max_life_ms(self) -> int:
        """No visit starts after the active span; the last one at its longest."""
        visit_ms = (self.events_per_visit[1] - 1) * _CAP_MS
        return int(max(self.active_days[1] * DAY_MS, DAY_MS) + visit_ms)

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Short visits until the active span is over."""
        median_s = rng.uniform(*self.median_gap_s)
        until_ms = join_ms + rng.uniform(*self.active_days) * DAY_MS
        t_ms = local_window_ms(rng, join_ms, offset_min, self.daytime)
        session = 0
        while True:
            for step in _human_session(rng, t_ms, session, rng.randint(*self.events_per_visit), median_s):
                t_ms = step.ts_ms
                yield step
            after_ms = t_ms + log_uniform(rng, *self.visit_interval_days) * DAY_MS
            following = local_window_ms(rng, after_ms, offset_min, self.daytime)
            if following > until_ms:
                break
            t_ms, session = following, session + 1
        yield Step(int(t_ms) + _LEAVE_AFTER_MS, session + 1, Mode.LEAVE, -1, False)


@dataclass(frozen=True, slots=True)
class GiftShopper:
    """A legitimate heavy buyer: several separate checkouts in one or two long evening visits.

    In the holiday peak, evening visits to retail sites run far above the hourly average
    (Hitwise 2016, Thanksgiving 8-11 pm); November and December carry the year's largest
    sales volumes (SaleCycle 2020). Each checkout follows 4-12 human-paced browsing steps
    (views, searches, cart); 3-8 checkouts a visit, on 1-2 evenings (18:00-21:30 local) a few
    days apart.
    """

    name: ClassVar[str] = "gift_shopper"
    persona: ClassVar[Persona] = Persona.NORMAL
    agents: ClassVar[AgentPool] = AgentPool.BROWSER
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    evening: Range = (18.0, 21.5)
    evenings: IntRange = (1, 2)
    days_between: IntRange = (1, 3)
    checkouts: IntRange = (3, 8)
    steps_per_checkout: IntRange = (4, 12)
    median_gap_s: Range = (20.0, 45.0)

    @property
    def max_life_ms(self) -> int:
        """The wait for the first evening, the later evenings, every visit at its longest."""
        visit_ms = self.checkouts[1] * (self.steps_per_checkout[1] + 1) * _CAP_MS
        return _on_days_bound_ms(self.evenings[1], self.days_between, visit_ms)

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Evening visits made of browse-then-checkout rounds."""
        median_s = rng.uniform(*self.median_gap_s)
        evenings = rng.randint(*self.evenings)
        t_ms = local_window_ms(rng, join_ms, offset_min, self.evening)
        for session in range(evenings):
            if session:
                t_ms = _later_day_ms(rng, t_ms, offset_min, self.evening, self.days_between)
            opens = True
            for _ in range(rng.randint(*self.checkouts)):
                for _ in range(rng.randint(*self.steps_per_checkout)):
                    if not opens:
                        t_ms += 1000.0 * human_gap_s(rng, median_s)
                    yield Step(int(t_ms), session, Mode.BROWSE, -1, opens)
                    opens = False
                t_ms += 1000.0 * human_gap_s(rng, median_s)
                yield Step(int(t_ms), session, Mode.CHECKOUT, -1, False)
        yield Step(int(t_ms) + _LEAVE_AFTER_MS, evenings, Mode.LEAVE, -1, False)


@dataclass(frozen=True, slots=True)
class RecreationalBettor:
    """A recreational bettor: a few short sessions of flat, modest stakes over a few weeks.

    Most subscribers of an Internet sports-betting site bet moderately: few bets on few days,
    small stakes that do not escalate (LaBrie et al. 2007; LaPlante et al. 2008, bwin data).
    2-6 sessions 1-4 days apart, 12:00-23:00 local; 3-20 steps a session, a third of them looks
    at a game rather than bets, 30-90 s (median) apart; stakes within 40 % of a personal 2-20.
    """

    name: ClassVar[str] = "recreational_bettor"
    persona: ClassVar[Persona] = Persona.NORMAL
    agents: ClassVar[AgentPool] = AgentPool.BROWSER
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    hours: Range = (12.0, 23.0)
    sessions: IntRange = (2, 6)
    days_between: IntRange = (1, 4)
    steps_per_session: IntRange = (3, 20)
    look_share: float = 0.3
    median_gap_s: Range = (30.0, 90.0)
    base_stake: Range = (2.0, 20.0)

    @property
    def max_life_ms(self) -> int:
        """The wait for the first session, the later ones, every session at its longest."""
        visit_ms = (self.steps_per_session[1] - 1) * _CAP_MS
        return _on_days_bound_ms(self.sessions[1], self.days_between, visit_ms)

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Short sessions of flat bets on a few days."""
        base = rng.uniform(*self.base_stake)
        median_s = rng.uniform(*self.median_gap_s)
        sessions = rng.randint(*self.sessions)
        t_ms = local_window_ms(rng, join_ms, offset_min, self.hours)
        for session in range(sessions):
            if session:
                t_ms = _later_day_ms(rng, t_ms, offset_min, self.hours, self.days_between)
            for i in range(rng.randint(*self.steps_per_session)):
                if i:
                    t_ms += 1000.0 * human_gap_s(rng, median_s)
                stake = None if rng.random() < self.look_share else _flat_stake(rng, base)
                yield Step(int(t_ms), session, Mode.BET, -1, i == 0, stake)
        yield Step(int(t_ms) + _LEAVE_AFTER_MS, sessions, Mode.LEAVE, -1, False)


# --- impulsive (loss of control) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BurstBuyer:
    """An impulse buyer: short bursts of cart and "buy now" actions, leaning to the local night.

    Impulse buying is sudden, compelling and hedonically complex (Rook 1987); online, it
    comes in quick runs of unplanned purchases (Verhagen & van Dolen 2011), and
    self-control is weakest late in the day (Vohs & Faber 2007). Today's impulsive user:
    1-5 bursts of 4-15 actions 0.2-1.9 s apart per visit, each purchase of a burst dearer
    than the last; intense users browse less and move more visits into the local night.
    """

    name: ClassVar[str] = "burst_buyer"
    persona: ClassVar[Persona] = Persona.IMPULSIVE
    agents: ClassVar[AgentPool] = AgentPool.BROWSER
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    intensity: Range = (0.3, 1.0)
    sessions: IntRange = (1, 4)
    burst_len: IntRange = (4, 15)
    burst_gap_s: Range = (0.2, 1.9)
    idle_s: Range = (30 * 60.0, 6 * 3600.0)

    @property
    def max_life_ms(self) -> int:
        """Every visit at its longest; each pause may also wait for the next local night."""
        bursts = 1 + round(4 * self.intensity[1])
        browse = round(6 * (1.0 - self.intensity[0]))
        burst_ms = browse * _CAP_MS + self.burst_len[1] * 1000 * self.burst_gap_s[1] + 600_000
        pause_ms = 1000 * self.idle_s[1] + DAY_MS
        return int(self.sessions[1] * (bursts * burst_ms + pause_ms))

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Visits of browsing and bursts; later visits often moved into the local night."""
        intensity = rng.uniform(*self.intensity)
        night_pref = 0.15 + 0.45 * intensity
        sessions = rng.randint(*self.sessions)
        t_ms = float(join_ms)
        for session in range(sessions):
            next_gap_s = 0.0
            opens = True
            for burst in range(rng.randint(1, 1 + round(4 * intensity))):
                for _ in range(rng.randint(0, round(6 * (1.0 - intensity)))):
                    t_ms += 1000.0 * next_gap_s
                    yield Step(int(t_ms), session, Mode.BROWSE, -1, opens)
                    opens = False
                    next_gap_s = human_gap_s(rng, 25.0)
                for _ in range(rng.randint(*self.burst_len)):
                    t_ms += 1000.0 * next_gap_s
                    yield Step(int(t_ms), session, Mode.BURST, burst, opens)
                    opens = False
                    next_gap_s = rng.uniform(*self.burst_gap_s)
                next_gap_s = log_uniform(rng, 20.0, 600.0)
            pause_ms = 1000.0 * log_uniform(rng, *self.idle_s)
            t_ms = next_night_ms(rng, t_ms + pause_ms, night_pref, offset_min)
        yield Step(int(t_ms), sessions, Mode.LEAVE, -1, False)


@dataclass(frozen=True, slots=True)
class StakeChaser:
    """A gambler chasing losses: bets every few seconds for an hour or more, late at night.

    High-risk Internet bettors bet frequently and intensively with rising wager sizes
    (Braverman & Shaffer 2012; LaBrie & Shaffer 2011, bwin data); within a session, stakes
    are raised to win back what was lost (within-session chasing: Zhang & Clark 2020).
    Long sessions, high bet frequency and unsociable hours are the markers of problem play in
    operator data (Parke & Parke 2017; UKGC customer-interaction guidance 2019). A slot spin
    takes at least 2.5 s (UKGC Remote Technical Standard 14, since 2021), so a bet follows the
    last one after the spin (2.5-4 s per game) plus a decision (median 0.4-2 s), with a rare
    longer pause. Each stake is the personal base plus a share of the session's net loss.
    1-2 sessions of 60-120 min on nights 1-2 days apart, starting 22:00-01:00 local.
    """

    name: ClassVar[str] = "stake_chaser"
    persona: ClassVar[Persona] = Persona.IMPULSIVE
    agents: ClassVar[AgentPool] = AgentPool.BROWSER
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    night: Range = (22.0, 1.0)
    sessions: IntRange = (1, 2)
    days_between: IntRange = (1, 2)
    session_min: Range = (60.0, 120.0)
    spin_s: Range = (2.5, 4.0)
    decision_median_s: Range = (0.4, 2.0)
    pause_share: float = 0.03
    pause_s: Range = (10.0, 90.0)
    look_share: float = 0.06
    base_stake: Range = (1.0, 10.0)
    chase_ratio: Range = (0.03, 0.12)
    win_probability: float = 0.47  # an even-money bet with a house edge of 6 %
    stake_cap: Range = (100.0, 500.0)

    @property
    def max_life_ms(self) -> int:
        """The wait for the first night, the later nights, every session at its longest."""
        session_ms = self.session_min[1] * MINUTE_MS
        return _on_days_bound_ms(self.sessions[1], self.days_between, session_ms)

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Long late-night sessions of fast bets whose stakes follow the session's losses."""
        spin_s = rng.uniform(*self.spin_s)
        decision_s = rng.uniform(*self.decision_median_s)
        base = rng.uniform(*self.base_stake)
        chase = rng.uniform(*self.chase_ratio)
        cap = rng.uniform(*self.stake_cap)
        sessions = rng.randint(*self.sessions)
        t_ms = local_window_ms(rng, join_ms, offset_min, self.night)
        for session in range(sessions):
            if session:
                t_ms = _later_day_ms(rng, t_ms, offset_min, self.night, self.days_between)
            until_ms = t_ms + rng.uniform(*self.session_min) * MINUTE_MS
            for step in chase_bets(rng, t_ms, until_ms, session, spin_s, decision_s, self, base, chase, cap):
                t_ms = step.ts_ms
                yield step
        yield Step(int(t_ms) + _LEAVE_AFTER_MS, sessions, Mode.LEAVE, -1, False)


def chase_bets(
    rng: random.Random,
    t_ms: float,
    until_ms: float,
    session: int,
    spin_s: float,
    decision_s: float,
    rules: StakeChaser,
    base: float,
    chase: float,
    cap: float,
) -> Iterator[Step]:
    """One chasing session from t_ms to until_ms: bets after each spin, stakes up with the loss."""
    loss = 0.0
    opens = True
    while True:
        if not opens:
            gap_s = spin_s + rng.lognormvariate(math.log(decision_s), 0.6)
            if rng.random() < rules.pause_share:
                gap_s += rng.uniform(*rules.pause_s)
            t_ms += 1000.0 * gap_s
            if t_ms > until_ms:
                return
        if rng.random() < rules.look_share:
            yield Step(int(t_ms), session, Mode.BET, -1, opens)
        else:
            stake = round(min(cap, base * rng.uniform(0.8, 1.25) + chase * max(0.0, loss)), 2)
            yield Step(int(t_ms), session, Mode.BET, -1, opens, stake)
            loss += -stake if rng.random() < rules.win_probability else stake
        opens = False


@dataclass(frozen=True, slots=True)
class NightOwlGambler:
    """A gambler in East Asia with session after session in one local night, on a few nights.

    Overnight gamblers are more often problem gamblers, and time of day is among the
    indicators operators must watch (UKGC customer-interaction guidance 2019, from PwC 2017;
    SR Code 3.4.3: time spent gambling); unsociable-hours play is a category of problem play
    (Parke & Parke 2017), and stakes rise from one session to the next (between-session
    chasing: Zhang & Clark 2020). Home UTC+8/+9, so the local night is the UTC afternoon.
    A night starts 23:00-01:30 local and holds sessions of 8-25 min separated by breaks of
    35-80 min (longer than the 30-minute inactivity that web analytics takes as a session's
    end), until 05:00 local; bets a median 8-25 s apart (never under a 2.5 s spin); 1-3 nights.
    """

    name: ClassVar[str] = "night_owl_gambler"
    persona: ClassVar[Persona] = Persona.IMPULSIVE
    agents: ClassVar[AgentPool] = AgentPool.BROWSER
    home_offsets_min: tuple[int, ...] = (480, 540)
    night: Range = (23.0, 1.5)
    night_ends_hour: float = 5.0
    nights: IntRange = (1, 3)
    days_between: IntRange = (1, 3)
    session_min: Range = (8.0, 25.0)
    break_min: Range = (35.0, 80.0)
    median_gap_s: Range = (8.0, 25.0)
    min_gap_s: float = 2.5
    look_share: float = 0.15
    base_stake: Range = (2.0, 25.0)
    session_escalation: Range = (1.1, 1.5)

    @property
    def max_life_ms(self) -> int:
        """The wait for the first night, the later nights, every night at its longest."""
        night_ms = window_length_ms((self.night[0], self.night_ends_hour)) + self.session_min[1] * MINUTE_MS
        return _on_days_bound_ms(self.nights[1], self.days_between, night_ms)

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Nights of repeated betting sessions, the stake rising with each session."""
        base = rng.uniform(*self.base_stake)
        median_s = rng.uniform(*self.median_gap_s)
        nights = rng.randint(*self.nights)
        t_ms = local_window_ms(rng, join_ms, offset_min, self.night)
        session = 0
        for night in range(nights):
            if night:
                t_ms = _later_day_ms(rng, t_ms, offset_min, self.night, self.days_between)
            night_ends_ms = next_local_hour_ms(t_ms, offset_min, self.night_ends_hour)
            stake = base
            while True:
                until_ms = t_ms + rng.uniform(*self.session_min) * MINUTE_MS
                opens = True
                while opens or t_ms <= until_ms:
                    amount = (
                        None if rng.random() < self.look_share else round(stake * rng.uniform(0.8, 1.25), 2)
                    )
                    yield Step(int(t_ms), session, Mode.BET, -1, opens, amount)
                    opens = False
                    gap_s = max(self.min_gap_s, rng.lognormvariate(math.log(median_s), 0.7))
                    t_ms += 1000.0 * min(HUMAN_GAP_CAP_S, gap_s)
                session += 1
                stake *= rng.uniform(*self.session_escalation)
                following = t_ms + log_uniform(rng, *self.break_min) * MINUTE_MS
                if following >= night_ends_ms:
                    break
                t_ms = following
        yield Step(int(t_ms) + _LEAVE_AFTER_MS, session, Mode.LEAVE, -1, False)


@dataclass(frozen=True, slots=True)
class Relapse:
    """A calm recreational bettor for weeks who relapses at the end: one late night of chasing.

    Relapse is common after a period of controlled gambling (Hodgins & el-Guebaly 2004);
    before problem gamblers close their accounts, their losses and stake per bet rise over
    the last days (Xuan & Shaffer 2009, bwin data). 3-5 weeks of short sessions every 2-6
    days (12:00-22:00 local, flat modest stakes, human pace), then, 1-3 nights after the calm
    weeks end, a final session of 30-75 min from 22:00-01:00 local: bets after each 2.5-4 s
    spin, stakes starting at 2-4 times the usual and chasing the session's losses, as the
    stake chaser's do.
    """

    name: ClassVar[str] = "relapse"
    persona: ClassVar[Persona] = Persona.IMPULSIVE
    agents: ClassVar[AgentPool] = AgentPool.BROWSER
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    calm_days: Range = (21.0, 35.0)
    calm_interval_days: Range = (2.0, 6.0)
    calm_hours: Range = (12.0, 22.0)
    calm_steps: IntRange = (3, 12)
    calm_look_share: float = 0.3
    calm_median_gap_s: Range = (30.0, 90.0)
    base_stake: Range = (2.0, 15.0)
    episode_days_after: IntRange = (1, 3)
    episode_night: Range = (22.0, 1.0)
    episode_min: Range = (30.0, 75.0)
    episode_stake_multiple: Range = (2.0, 4.0)
    chasing: StakeChaser = StakeChaser()

    @property
    def max_life_ms(self) -> int:
        """The calm weeks, the wait for the episode's night, the episode at its longest."""
        calm_ms = max(self.calm_days[1] * DAY_MS, DAY_MS) + (self.calm_steps[1] - 1) * _CAP_MS
        return int(calm_ms + _later_day_bound_ms(self.episode_days_after) + self.episode_min[1] * MINUTE_MS)

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Weeks of calm sessions, then one chasing night that ends the life."""
        base = rng.uniform(*self.base_stake)
        median_s = rng.uniform(*self.calm_median_gap_s)
        until_ms = join_ms + rng.uniform(*self.calm_days) * DAY_MS
        t_ms = local_window_ms(rng, join_ms, offset_min, self.calm_hours)
        session = 0
        while True:
            for i in range(rng.randint(*self.calm_steps)):
                if i:
                    t_ms += 1000.0 * human_gap_s(rng, median_s)
                stake = None if rng.random() < self.calm_look_share else _flat_stake(rng, base)
                yield Step(int(t_ms), session, Mode.BET, -1, i == 0, stake)
            session += 1
            after_ms = t_ms + rng.uniform(*self.calm_interval_days) * DAY_MS
            following = local_window_ms(rng, after_ms, offset_min, self.calm_hours)
            if following > until_ms:
                break
            t_ms = following
        rules = self.chasing
        # The calm weeks run their full span; the episode comes 1-3 nights after they end.
        t_ms = _later_day_ms(
            rng, max(t_ms, until_ms), offset_min, self.episode_night, self.episode_days_after
        )
        until = t_ms + rng.uniform(*self.episode_min) * MINUTE_MS
        spin_s = rng.uniform(*rules.spin_s)
        decision_s = rng.uniform(*rules.decision_median_s)
        episode_base = base * rng.uniform(*self.episode_stake_multiple)
        chase = rng.uniform(*rules.chase_ratio)
        cap = rng.uniform(*rules.stake_cap)
        for step in chase_bets(
            rng, t_ms, until, session, spin_s, decision_s, rules, episode_base, chase, cap
        ):
            t_ms = step.ts_ms
            yield step
        yield Step(int(t_ms) + _LEAVE_AFTER_MS, session + 1, Mode.LEAVE, -1, False)


# --- bot (automation) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metronome:
    """A scraper on a timer: one request every 0.4-3 s with millisecond jitter; today's bot.

    Robots request pages on a schedule, walk a site breadth-first and keep long sessions
    (Tan & Kumar 2002; Doran & Gokhale 2011); a crawler visits each object once (Almeida et
    al. 2001), so it walks the catalogue in order. 1-3 sessions of 100-800 requests, 1-6 h
    apart; a quarter of them hide behind an ordinary browser agent.
    """

    name: ClassVar[str] = "metronome"
    persona: ClassVar[Persona] = Persona.BOT
    agents: ClassVar[AgentPool] = AgentPool.BOT
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    period_s: Range = (0.4, 3.0)
    jitter_ms: Range = (1.0, 6.0)  # scheduler noise
    sessions: IntRange = (1, 3)
    requests: IntRange = (100, 800)
    idle_s: Range = (3600.0, 6 * 3600.0)

    @property
    def max_life_ms(self) -> int:
        """Every session at its longest (a gap is at most twice the period), every pause too."""
        session_ms = (self.requests[1] - 1) * 2 * 1000 * self.period_s[1]
        return int(self.sessions[1] * session_ms + (self.sessions[1] - 1) * 1000 * self.idle_s[1])

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Sessions of requests one period apart."""
        period_ms = 1000.0 * rng.uniform(*self.period_s)
        jitter_ms = rng.uniform(*self.jitter_ms)
        sessions = rng.randint(*self.sessions)
        t_ms = float(join_ms)
        for session in range(sessions):
            for i in range(rng.randint(*self.requests)):
                if i:
                    t_ms += min(2 * period_ms, max(period_ms / 2, rng.gauss(period_ms, jitter_ms)))
                yield Step(int(t_ms), session, Mode.CRAWL, -1, i == 0)
            t_ms += 1000.0 * log_uniform(rng, *self.idle_s)
        yield Step(int(t_ms), sessions, Mode.LEAVE, -1, False)


@dataclass(frozen=True, slots=True)
class MachineBurst:
    """A scalping bot: dozens of cart actions a fraction of a second apart, in bursts.

    Scalping and denial-of-inventory bots grab limited items at machine speed, adding them
    to carts and rarely buying (OWASP Automated Threats OAT-005, OAT-021). A person needs
    about 1.1 s to point at a new target and 0.2 s per keystroke (Card, Moran & Newell 1983),
    so dozens of actions 15-680 ms apart, gaps varying by +-70 % around a personal mean of
    0.05-0.4 s, are beyond human motor speed however irregular they are. 3-12 bursts of
    20-60 actions, 5-120 s apart, in 1-2 sessions hours apart.
    """

    name: ClassVar[str] = "machine_burst"
    persona: ClassVar[Persona] = Persona.BOT
    agents: ClassVar[AgentPool] = AgentPool.BOT
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    mean_gap_s: Range = (0.05, 0.4)
    gap_spread: Range = (0.3, 1.7)  # multiples of the mean
    sessions: IntRange = (1, 2)
    bursts: IntRange = (3, 12)
    burst_len: IntRange = (20, 60)
    pause_s: Range = (5.0, 120.0)
    idle_s: Range = (3600.0, 8 * 3600.0)

    @property
    def max_life_ms(self) -> int:
        """Every burst, pause and session at its longest."""
        burst_ms = (self.burst_len[1] - 1) * 1000 * self.mean_gap_s[1] * self.gap_spread[1]
        session_ms = self.bursts[1] * (burst_ms + 1000 * self.pause_s[1])
        return int(self.sessions[1] * session_ms + (self.sessions[1] - 1) * 1000 * self.idle_s[1])

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Sessions of bursts of sub-second, irregular cart actions."""
        mean_s = rng.uniform(*self.mean_gap_s)
        sessions = rng.randint(*self.sessions)
        t_ms = float(join_ms)
        for session in range(sessions):
            for burst in range(rng.randint(*self.bursts)):
                if burst:
                    t_ms += 1000.0 * log_uniform(rng, *self.pause_s)
                for i in range(rng.randint(*self.burst_len)):
                    if i:
                        t_ms += 1000.0 * mean_s * rng.uniform(*self.gap_spread)
                    yield Step(int(t_ms), session, Mode.RUSH, burst, burst == 0 and i == 0)
            t_ms += 1000.0 * log_uniform(rng, *self.idle_s)
        yield Step(int(t_ms), sessions, Mode.LEAVE, -1, False)


@dataclass(frozen=True, slots=True)
class PoissonScraper:
    """A scraper with random, memoryless gaps: fast, but not regular.

    Scraping (OWASP OAT-011) with exponential delays: the request inter-arrival times of
    Web robots are light-tailed, unlike humans' (Doran & Gokhale 2010), while their pauses
    between sessions are heavy-tailed like humans'. Gaps exponential around a personal mean
    of 0.3-2.5 s (cut at 20 means), 150-500 requests a session, 1-2 sessions 1-12 h apart.
    """

    name: ClassVar[str] = "poisson_scraper"
    persona: ClassVar[Persona] = Persona.BOT
    agents: ClassVar[AgentPool] = AgentPool.BOT
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    mean_gap_s: Range = (0.3, 2.5)
    sessions: IntRange = (1, 2)
    requests: IntRange = (150, 500)
    idle_s: Range = (3600.0, 12 * 3600.0)
    network_floor_s: float = 0.005

    @property
    def max_life_ms(self) -> int:
        """Every session and pause at its longest (a gap is at most 20 means)."""
        session_ms = (self.requests[1] - 1) * 1000 * (20 * self.mean_gap_s[1] + self.network_floor_s)
        return int(self.sessions[1] * session_ms + (self.sessions[1] - 1) * 1000 * self.idle_s[1])

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Sessions of requests with exponential gaps."""
        mean_s = rng.uniform(*self.mean_gap_s)
        sessions = rng.randint(*self.sessions)
        t_ms = float(join_ms)
        for session in range(sessions):
            for i in range(rng.randint(*self.requests)):
                if i:
                    t_ms += 1000.0 * (self.network_floor_s + min(20 * mean_s, rng.expovariate(1.0 / mean_s)))
                yield Step(int(t_ms), session, Mode.CRAWL, -1, i == 0)
            t_ms += 1000.0 * log_uniform(rng, *self.idle_s)
        yield Step(int(t_ms), sessions, Mode.LEAVE, -1, False)


@dataclass(frozen=True, slots=True)
class TirelessMimic:
    """A bot that copies human think times but never rests: page views for days on end.

    Robots keep long sessions and request mostly pages (Tan & Kumar 2002); robots that
    imitate human timing defeat timing-only detection (Doran & Gokhale 2011), but they lack
    the daily rhythm of human traffic (Jacob et al. 2012, PUBCRAWL). Think times log-normal
    around a median of 45-90 s like a reader's, cut at 20 min so it never pauses longer,
    for 36-60 h; almost only views in catalogue order; a new session id every 30-120 min, as a
    cookie that expires; an ordinary browser agent.
    """

    name: ClassVar[str] = "tireless_mimic"
    persona: ClassVar[Persona] = Persona.BOT
    agents: ClassVar[AgentPool] = AgentPool.BROWSER
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    active_hours: Range = (36.0, 60.0)
    median_gap_s: Range = (45.0, 90.0)
    gap_sigma: float = 0.8
    longest_gap_s: float = 1200.0
    session_id_min: Range = (30.0, 120.0)

    @property
    def max_life_ms(self) -> int:
        """The active span and one last gap."""
        return int(self.active_hours[1] * HOUR_MS + 1000 * self.longest_gap_s)

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Views at human-like intervals without a break until the active span is over."""
        median_s = rng.uniform(*self.median_gap_s)
        rotate_ms = rng.uniform(*self.session_id_min) * MINUTE_MS
        until_ms = join_ms + rng.uniform(*self.active_hours) * HOUR_MS
        t_ms = float(join_ms)
        rotation_ms = t_ms + rotate_ms
        session = 0
        opens = True
        while t_ms <= until_ms:
            yield Step(int(t_ms), session, Mode.SKIM, -1, opens)
            opens = False
            t_ms += 1000.0 * min(self.longest_gap_s, rng.lognormvariate(math.log(median_s), self.gap_sigma))
            if t_ms >= rotation_ms:
                session, opens, rotation_ms = session + 1, True, rotation_ms + rotate_ms
        yield Step(int(t_ms), session + 1, Mode.LEAVE, -1, False)


@dataclass(frozen=True, slots=True)
class HeadlessAgent:
    """An automation tool that names itself in its user agent, throttled like Scrapy.

    Headless Chrome announces "HeadlessChrome", HTTP libraries send their own name by default
    (python-requests, curl, Go-http-client, Wget, okhttp, aiohttp, Scrapy), and declared
    crawlers say who they are (AhrefsBot, SemrushBot); a user
    agent is the first thing robot detection looks at (Doran & Gokhale 2011). Scrapy waits
    0.5-1.5 times DOWNLOAD_DELAY between requests by default (RANDOMIZE_DOWNLOAD_DELAY);
    delays of 1-5 s per crawl, 40-250 requests a session, 1-3 sessions 0.5-6 h apart.
    """

    name: ClassVar[str] = "headless_agent"
    persona: ClassVar[Persona] = Persona.BOT
    agents: ClassVar[AgentPool] = AgentPool.TOOL
    home_offsets_min: tuple[int, ...] = WORLD_OFFSETS_MIN
    download_delay_s: Range = (1.0, 5.0)
    delay_spread: Range = (0.5, 1.5)
    sessions: IntRange = (1, 3)
    requests: IntRange = (40, 250)
    idle_s: Range = (1800.0, 6 * 3600.0)

    @property
    def max_life_ms(self) -> int:
        """Every session and pause at its longest."""
        session_ms = (self.requests[1] - 1) * 1000 * self.download_delay_s[1] * self.delay_spread[1]
        return int(self.sessions[1] * session_ms + (self.sessions[1] - 1) * 1000 * self.idle_s[1])

    def life(self, rng: random.Random, join_ms: int, offset_min: int) -> Iterator[Step]:
        """Sessions of requests a randomised download delay apart."""
        delay_s = rng.uniform(*self.download_delay_s)
        sessions = rng.randint(*self.sessions)
        t_ms = float(join_ms)
        for session in range(sessions):
            for i in range(rng.randint(*self.requests)):
                if i:
                    t_ms += 1000.0 * delay_s * rng.uniform(*self.delay_spread)
                yield Step(int(t_ms), session, Mode.CRAWL, -1, i == 0)
            t_ms += 1000.0 * log_uniform(rng, *self.idle_s)
        yield Step(int(t_ms), sessions, Mode.LEAVE, -1, False)


# --- the library and the mix ---------------------------------------------------------------

SCENARIOS: Mapping[str, Scenario] = {
    s.name: s
    for s in (
        Browser(),
        QuickPager(),
        EveningShopper(),
        LoyalRegular(),
        GiftShopper(),
        RecreationalBettor(),
        BurstBuyer(),
        StakeChaser(),
        NightOwlGambler(),
        Relapse(),
        Metronome(),
        MachineBurst(),
        PoissonScraper(),
        TirelessMimic(),
        HeadlessAgent(),
    )
}
# Share of users per sub-type in the default mix (weights; they need not sum to one).
# At-risk sub-types get equal-ish numbers of users, so each has enough to be judged.
DEFAULT_SHARES: Mapping[str, float] = {
    "browser": 0.30,
    "quick_pager": 0.12,
    "evening_shopper": 0.10,
    "loyal_regular": 0.09,
    "gift_shopper": 0.06,
    "recreational_bettor": 0.09,
    "burst_buyer": 0.04,
    "stake_chaser": 0.025,
    "night_owl_gambler": 0.03,
    "relapse": 0.025,
    "metronome": 0.025,
    "machine_burst": 0.025,
    "poisson_scraper": 0.025,
    "tireless_mimic": 0.02,
    "headless_agent": 0.025,
}
# The sub-types that are today's three personas, for runs that must behave as before.
LEGACY_SHARES: Mapping[str, float] = {"browser": 0.80, "burst_buyer": 0.12, "metronome": 0.08}


def scenario(name: str) -> Scenario:
    """The sub-type called name."""
    return SCENARIOS[name]


@dataclass(frozen=True, slots=True)
class Mix:
    """Share of users per sub-type; the values are weights and need not sum to one."""

    shares: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        unknown = [name for name, _ in self.shares if name not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown sub-type(s): {', '.join(unknown)}")
        weights = [w for _, w in self.shares]
        if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
            raise ValueError("shares must be finite, non-negative and not all zero")

    @classmethod
    def of(cls, shares: Mapping[str, float]) -> Mix:
        """A mix from sub-type weights, in library order."""
        return cls(tuple((name, float(shares[name])) for name in SCENARIOS if name in shares))

    @property
    def weights(self) -> dict[str, float]:
        """Sub-type to weight, zero weights included."""
        return dict(self.shares)

    def share(self, name: str) -> float:
        """The normalised share of one sub-type."""
        total = sum(w for _, w in self.shares)
        return self.weights.get(name, 0.0) / total

    def persona_share(self, persona: Persona) -> float:
        """The normalised share of one persona (all of its sub-types)."""
        return sum(self.share(name) for name, _ in self.shares if SCENARIOS[name].persona is persona)

    def present(self) -> list[str]:
        """The sub-types with a share above zero, in library order."""
        return [name for name, w in self.shares if w > 0]

    def allocate(self, users: int) -> dict[str, int]:
        """Split a population by persona, then by sub-type, each by largest remainder.

        Splitting by persona first keeps every persona in populations of a dozen users.
        """
        names = [name for name, _ in self.shares]
        by_persona = {p: [n for n in names if SCENARIOS[n].persona is p] for p in Persona}
        persona_counts = _largest_remainder({p: self.persona_share(p) for p in Persona}, users)
        counts: dict[str, int] = {}
        for persona, members in by_persona.items():
            weights = {n: self.share(n) for n in members}
            if sum(weights.values()) > 0:
                counts.update(_largest_remainder(weights, persona_counts[persona]))
            else:
                counts.update(dict.fromkeys(members, 0))
        return {name: counts[name] for name in names}

    def with_shares(self, assignments: Mapping[str, float]) -> Mix:
        """A copy with shares replaced: a persona name rescales its sub-types, a sub-type name sets it.

        Persona totals are applied first, then sub-types; an unknown name raises ValueError.
        """
        personas = {p.value: p for p in Persona}
        unknown = set(assignments) - set(personas) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown persona or sub-type: {', '.join(sorted(unknown))}")
        weights = self.weights
        for name, share in assignments.items():
            if name not in personas:
                continue
            members = [s for s in SCENARIOS if SCENARIOS[s].persona is personas[name]]
            current = sum(weights.get(s, 0.0) for s in members)
            for s in members:
                # A persona that had no weight gets its sub-types in equal parts.
                part = weights.get(s, 0.0) / current if current > 0 else 1.0 / len(members)
                weights[s] = share * part
        for name, share in assignments.items():
            if name in SCENARIOS:
                weights[name] = share
        return Mix.of(weights)


def _largest_remainder(weights: Mapping[K, float], total: int) -> dict[K, int]:
    """Whole numbers in proportion to the weights that add up to total (ties go to the first)."""
    keys = list(weights)
    mass = sum(weights.values())
    exact = {k: weights[k] / mass * total if mass else 0.0 for k in keys}
    counts = {k: math.floor(v) for k, v in exact.items()}
    order = sorted(keys, key=lambda k: (counts[k] - exact[k], keys.index(k)))
    for key in order[: total - sum(counts.values())]:
        counts[key] += 1
    return counts


DEFAULT_MIX = Mix.of(DEFAULT_SHARES)
LEGACY_MIX = Mix.of(LEGACY_SHARES)
