"""Persona timing: bots tick, impulsive users burst, normal users are mostly slow."""

from __future__ import annotations

import itertools
import random
import statistics
from collections import Counter
from datetime import UTC, datetime

import pytest

from contract.wire import utc_ms
from producer.catalogue import build_catalogue
from producer.personas import (
    NIGHT_END_HOUR,
    Mode,
    Persona,
    PersonaMix,
    Step,
    life_steps,
    natural_rate,
    persona_profile,
    population_for_rate,
)
from producer.simulation import Timeline

START_MS = utc_ms(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
SESSION_GAP_MS = 30 * 60_000


def lives(persona: Persona, users: int) -> list[list[Step]]:
    """The steps (without LEAVE) of `users` independent lives."""
    rng = random.Random(f"test:{persona}")
    return [[s for s in life_steps(persona, rng, START_MS) if s.mode is not Mode.LEAVE] for _ in range(users)]


def session_gaps_ms(steps: list[Step]) -> list[int]:
    """Gaps between consecutive steps of the same session."""
    return [b.ts_ms - a.ts_ms for a, b in itertools.pairwise(steps) if a.session == b.session]


def test_bots_tick_with_tiny_jitter_and_some_are_two_to_three_seconds_apart() -> None:
    periods = []
    for steps in lives(Persona.BOT, 60):
        gaps = session_gaps_ms(steps)
        mean = statistics.fmean(gaps)
        assert statistics.pstdev(gaps) / mean < 0.05
        periods.append(mean / 1000)
    assert min(periods) >= 0.4 and max(periods) <= 3.0
    assert sum(2.0 <= p < 3.0 for p in periods) >= 5  # the 2-second rule alone misses these


def test_bots_have_long_sessions() -> None:
    sizes = [n for steps in lives(Persona.BOT, 30) for n in Counter(s.session for s in steps).values()]
    assert min(sizes) >= 100


def test_impulsive_users_act_in_bursts_under_two_seconds() -> None:
    for steps in lives(Persona.IMPULSIVE, 80):
        burst_gaps = [
            b.ts_ms - a.ts_ms
            for a, b in itertools.pairwise(steps)
            if a.mode is b.mode is Mode.BURST and a.burst == b.burst and a.session == b.session
        ]
        assert burst_gaps, "every impulsive user has at least one burst"
        assert all(200 <= g < 2000 for g in burst_gaps)
        sizes = Counter((s.session, s.burst) for s in steps if s.mode is Mode.BURST)
        assert all(4 <= n <= 15 for n in sizes.values())


@pytest.mark.parametrize("persona", [Persona.IMPULSIVE, Persona.NORMAL])
def test_only_impulsive_users_lean_to_the_night(persona: Persona) -> None:
    rng = random.Random(9)
    # Users join at any hour, so the first session alone gives no night bias.
    steps = [
        s
        for _ in range(300)
        for s in life_steps(persona, rng, START_MS + rng.randrange(86_400_000))
        if s.mode is not Mode.LEAVE
    ]
    night = sum((s.ts_ms // 3_600_000) % 24 < NIGHT_END_HOUR for s in steps) / len(steps)
    flat = NIGHT_END_HOUR / 24
    if persona is Persona.IMPULSIVE:
        assert night > 1.5 * flat
    else:
        assert night < 1.3 * flat


def test_normal_users_are_mostly_slow_but_some_are_occasionally_fast() -> None:
    all_gaps: list[int] = []
    with_fast = 0
    for steps in lives(Persona.NORMAL, 200):
        gaps = session_gaps_ms(steps)
        all_gaps += gaps
        with_fast += any(g < 2000 for g in gaps)
        assert max(gaps) < SESSION_GAP_MS
    assert 15_000 < statistics.median(all_gaps) < 45_000
    assert sum(g < 2000 for g in all_gaps) / len(all_gaps) < 0.10
    assert with_fast >= 20


def test_normal_sessions_are_separated_by_idle_periods() -> None:
    for steps in lives(Persona.NORMAL, 50):
        sizes = Counter(s.session for s in steps)
        assert all(5 <= n <= 40 for n in sizes.values())
        for a, b in itertools.pairwise(steps):
            if a.session != b.session:
                assert b.ts_ms - a.ts_ms >= SESSION_GAP_MS


def test_impulsive_users_buy_more_than_normal_ones() -> None:
    personas = [Persona.NORMAL] * 40 + [Persona.IMPULSIVE] * 40
    timeline = Timeline(
        seed=5, run_id="t", start_ms=START_MS, personas=personas, catalogue=build_catalogue(5)
    )
    actions: dict[Persona, Counter[str]] = {p: Counter() for p in Persona}
    for n, event in enumerate(timeline):
        if n == 8000:
            break
        actions[event.persona][event.fields["action"]] += 1
    share = {p: c["purchase"] / max(1, c.total()) for p, c in actions.items()}
    assert share[Persona.IMPULSIVE] > 3 * share[Persona.NORMAL] > 0


@pytest.mark.parametrize("users", [1, 7, 13, 20, 100, 1001])
def test_allocation_adds_up_and_keeps_every_persona_from_thirteen_users(users: int) -> None:
    counts = PersonaMix().allocate(users)
    assert sum(counts.values()) == users
    if users >= 13:
        assert all(counts.values())


def test_mix_rejects_unknown_and_negative_shares() -> None:
    with pytest.raises(ValueError, match="unknown persona"):
        PersonaMix().with_shares({"robot": 0.5})
    with pytest.raises(ValueError):
        PersonaMix(normal=-1.0)
    assert PersonaMix().with_shares({"bot": 0.0}).allocate(50)[Persona.BOT] == 0


def test_population_for_a_rate_has_that_natural_rate() -> None:
    mix = PersonaMix()
    users = population_for_rate(mix, 200.0)
    assert natural_rate(mix.allocate(users)) == pytest.approx(200.0, rel=0.02)
    assert all(persona_profile(p).rate_hz > 0 for p in Persona)


def test_a_steady_population_emits_about_the_requested_rate_from_the_start() -> None:
    mix = PersonaMix()
    rng = random.Random(3)
    personas = [p for p, n in mix.allocate(population_for_rate(mix, 40.0)).items() for _ in range(n)]
    rng.shuffle(personas)
    timeline = Timeline(
        seed=3, run_id="t", start_ms=START_MS, personas=personas, catalogue=build_catalogue(3)
    )
    window_ms = 120_000
    events = 0
    for event in timeline:
        assert event.ts_ms >= START_MS
        if event.ts_ms >= START_MS + window_ms:
            break
        events += 1
    assert 0.7 * 40 < events / (window_ms / 1000) < 1.3 * 40
