"""Persona behaviour: when each simulated user acts, as a lazy stream of timed steps.

A user lives for a few cycles of (session, idle) and then leaves. The timing models are
meant to be plausible, not to match any detector: normal users are slow with the odd quick
click, impulsive users buy in short bursts (more often at night), bots tick like a clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from functools import cache
from itertools import chain, dropwhile
from typing import NamedTuple

_DAY_MS = 86_400_000
_HOUR_S = 3600.0
# Impulsive users lean towards these UTC hours; a behaviour trait, not a detector rule.
NIGHT_START_HOUR = 0
NIGHT_END_HOUR = 6
# A gap this long ends a human session, so gaps inside one are cut well below it (s).
_MAX_HUMAN_GAP_S = 900.0
# Sessions up to this many times the mean are drawn in proportion to their length.
_LENGTH_BIAS_CAP = 3.0


class Persona(StrEnum):
    """Ground-truth behaviour of a simulated user; only ever written to the labels file."""

    NORMAL = "normal"
    IMPULSIVE = "impulsive"
    BOT = "bot"


class Mode(StrEnum):
    """What a step means for the choice of action."""

    BROWSE = "browse"
    BURST = "burst"
    CRAWL = "crawl"
    LEAVE = "leave"


class Step(NamedTuple):
    """One moment a user acts (or leaves, for Mode.LEAVE)."""

    ts_ms: int
    session: int
    mode: Mode
    burst: int
    opens_session: bool


@dataclass(frozen=True, slots=True)
class PersonaMix:
    """Share of users per persona; the values are weights and need not sum to one."""

    normal: float = 0.80
    impulsive: float = 0.12
    bot: float = 0.08

    def __post_init__(self) -> None:
        weights = [getattr(self, f.name) for f in fields(self)]
        if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
            raise ValueError("persona shares must be finite, non-negative and not all zero")

    def share(self, persona: Persona) -> float:
        """The normalised share of one persona."""
        total = self.normal + self.impulsive + self.bot
        return float(getattr(self, persona.value)) / total

    def allocate(self, users: int) -> dict[Persona, int]:
        """Split a population by largest remainder, so small populations keep every persona."""
        exact = {p: self.share(p) * users for p in Persona}
        counts = {p: math.floor(v) for p, v in exact.items()}
        order = sorted(Persona, key=lambda p: (counts[p] - exact[p], list(Persona).index(p)))
        for persona in order[: users - sum(counts.values())]:
            counts[persona] += 1
        return counts

    def with_shares(self, shares: Mapping[str, float]) -> PersonaMix:
        """A copy with some shares replaced; unknown persona names raise ValueError."""
        unknown = set(shares) - {p.value for p in Persona}
        if unknown:
            raise ValueError(f"unknown persona(s): {', '.join(sorted(unknown))}")
        current = {p.value: getattr(self, p.value) for p in Persona}
        return PersonaMix(**{**current, **shares})


@dataclass(frozen=True, slots=True)
class Profile:
    """Long-run averages of one persona, measured on a fixed sample of simulated users."""

    rate_hz: float
    events_per_user: float
    session_share: float
    mean_session_s: float
    mean_idle_s: float


def life_steps(persona: Persona, rng: random.Random, join_ms: int) -> Iterator[Step]:
    """Every step of one user's life from join_ms, ending with a Mode.LEAVE step."""
    if persona is Persona.NORMAL:
        return _normal_life(rng, join_ms)
    if persona is Persona.IMPULSIVE:
        return _impulsive_life(rng, join_ms)
    return _bot_life(rng, join_ms)


def _normal_life(rng: random.Random, join_ms: int) -> Iterator[Step]:
    median_s = rng.uniform(20.0, 40.0)
    # Some people double-click or skim: a few of their gaps are under two seconds.
    fast_share = rng.uniform(0.05, 0.10) if rng.random() < 0.35 else 0.0
    sessions = rng.randint(1, 4)
    t_ms = float(join_ms)
    for session in range(sessions):
        for i in range(rng.randint(5, 40)):
            if i:
                t_ms += 1000.0 * _human_gap_s(rng, median_s, fast_share)
            yield Step(int(t_ms), session, Mode.BROWSE, -1, i == 0)
        t_ms += 1000.0 * _log_uniform(rng, 30 * 60.0, 4 * _HOUR_S)
    yield Step(int(t_ms), sessions, Mode.LEAVE, -1, False)


def _impulsive_life(rng: random.Random, join_ms: int) -> Iterator[Step]:
    # Not every impulsive user is extreme: mild ones browse more and burst less.
    intensity = rng.uniform(0.3, 1.0)
    night_pref = 0.15 + 0.45 * intensity
    sessions = rng.randint(1, 4)
    t_ms = float(join_ms)
    for session in range(sessions):
        next_gap_s = 0.0
        opens = True
        for burst in range(rng.randint(1, 1 + round(4 * intensity))):
            for _ in range(rng.randint(0, round(6 * (1.0 - intensity)))):
                t_ms += 1000.0 * next_gap_s
                yield Step(int(t_ms), session, Mode.BROWSE, -1, opens)
                opens = False
                next_gap_s = _human_gap_s(rng, 25.0, 0.0)
            for _ in range(rng.randint(4, 15)):
                t_ms += 1000.0 * next_gap_s
                yield Step(int(t_ms), session, Mode.BURST, burst, opens)
                opens = False
                next_gap_s = rng.uniform(0.2, 1.9)
            next_gap_s = _log_uniform(rng, 20.0, 600.0)
        t_ms = _next_session_ms(rng, t_ms + 1000.0 * _log_uniform(rng, 30 * 60.0, 6 * _HOUR_S), night_pref)
    yield Step(int(t_ms), sessions, Mode.LEAVE, -1, False)


def _bot_life(rng: random.Random, join_ms: int) -> Iterator[Step]:
    period_ms = 1000.0 * rng.uniform(0.4, 3.0)
    jitter_ms = rng.uniform(1.0, 6.0)  # scheduler noise, a few milliseconds
    sessions = rng.randint(1, 3)
    t_ms = float(join_ms)
    for session in range(sessions):
        for i in range(rng.randint(100, 800)):
            if i:
                t_ms += max(period_ms / 2, rng.gauss(period_ms, jitter_ms))
            yield Step(int(t_ms), session, Mode.CRAWL, -1, i == 0)
        t_ms += 1000.0 * _log_uniform(rng, _HOUR_S, 6 * _HOUR_S)
    yield Step(int(t_ms), sessions, Mode.LEAVE, -1, False)


def _human_gap_s(rng: random.Random, median_s: float, fast_share: float) -> float:
    if fast_share and rng.random() < fast_share:
        return rng.uniform(0.3, 1.9)
    return min(_MAX_HUMAN_GAP_S, rng.lognormvariate(math.log(median_s), 0.7))


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _next_session_ms(rng: random.Random, start_ms: float, night_pref: float) -> float:
    """Keep a daytime start, or with probability night_pref move it into the next night."""
    moves, where = rng.random() < night_pref, rng.random()  # always two draws: stable streams
    hour = int(start_ms // 3_600_000) % 24
    if NIGHT_START_HOUR <= hour < NIGHT_END_HOUR or not moves:
        return start_ms
    next_midnight = (start_ms // _DAY_MS + 1) * _DAY_MS
    window_ms = (NIGHT_END_HOUR - NIGHT_START_HOUR) * 3_600_000
    return next_midnight + NIGHT_START_HOUR * 3_600_000 + where * window_ms


@cache
def persona_profile(persona: Persona, sample_users: int = 100) -> Profile:
    """Measure a persona's long-run event rate and session share on a fixed-seed sample."""
    rng = random.Random(f"profile:{persona.value}")
    events = sessions = 0
    life_ms = session_ms = 0.0
    for _ in range(sample_users):
        join_ms = int(rng.uniform(0, _DAY_MS))
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for step in life_steps(persona, rng, join_ms):
            if step.mode is Mode.LEAVE:
                life_ms += step.ts_ms - join_ms
                break
            events += 1
            first.setdefault(step.session, step.ts_ms)
            last[step.session] = step.ts_ms
        sessions += len(first)
        session_ms += sum(last[s] - first[s] for s in first)
    return Profile(
        rate_hz=events / (life_ms / 1000.0),
        events_per_user=events / sample_users,
        session_share=session_ms / life_ms,
        mean_session_s=session_ms / 1000.0 / sessions,
        mean_idle_s=(life_ms - session_ms) / 1000.0 / sessions,
    )


def natural_rate(counts: Mapping[Persona, int]) -> float:
    """Long-run events per second of a population with these persona counts."""
    return sum(n * persona_profile(p).rate_hz for p, n in counts.items())


def population_for_rate(mix: PersonaMix, rate_hz: float) -> int:
    """The number of concurrent users whose natural event rate is about rate_hz."""
    per_user = sum(mix.share(p) * persona_profile(p).rate_hz for p in Persona)
    return max(1, round(rate_hz / per_user))


def population_for_count(mix: PersonaMix, count: int, *, minimum: int = 20) -> int:
    """A population that spends about one lifetime each on `count` events."""
    per_user = sum(mix.share(p) * persona_profile(p).events_per_user for p in Persona)
    return max(minimum, round(count / per_user))


def steady_steps(
    persona: Persona, *, timing: random.Random, phase: random.Random, start_ms: int
) -> Iterator[Step]:
    """Steps from start_ms of a user met at a random moment, as if the population ran for ever."""
    profile = persona_profile(persona)
    if phase.random() >= profile.session_share:
        return life_steps(persona, timing, start_ms + int(1000 * phase.uniform(0, profile.mean_idle_s)))
    # Mid-session: long sessions are more likely to be under way (length-biased choice),
    # and the user is at a uniform point of it; the earlier steps happened before the run.
    cap_ms = _LENGTH_BIAS_CAP * 1000 * profile.mean_session_s
    while True:
        steps = life_steps(persona, timing, start_ms)
        buffered: list[Step] = []
        for step in steps:
            buffered.append(step)
            if step.session or step.mode is Mode.LEAVE:
                break
        span_ms = buffered[-2].ts_ms - buffered[0].ts_ms  # the first session, 1+ steps
        if phase.random() * cap_ms < span_ms:
            break
    shift_ms = int(phase.random() * span_ms)
    shifted = (s._replace(ts_ms=s.ts_ms - shift_ms) for s in chain(buffered, steps))
    return dropwhile(lambda s: s.ts_ms < start_ms, shifted)


def assign_personas(mix: PersonaMix, users: int, rng: random.Random) -> Sequence[Persona]:
    """A shuffled persona per population slot, in the proportions of the mix."""
    slots = [p for p, n in mix.allocate(users).items() for _ in range(n)]
    rng.shuffle(slots)
    return slots
