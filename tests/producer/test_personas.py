"""Today's three personas, now the browser, burst_buyer and metronome sub-types, keep their timing."""

from __future__ import annotations

import itertools
import random
import statistics
from collections import Counter
from datetime import UTC, datetime

import pytest

from contract.wire import utc_ms
from producer.catalogue import build_catalogue
from producer.personas import NIGHT_END_HOUR, Mode, Persona, Step, local_hour
from producer.population import (
    assign_slots,
    natural_rate,
    population_for_rate,
    scenario_profile,
    slot_steps,
)
from producer.scenarios import DEFAULT_MIX, LEGACY_MIX, SCENARIOS, scenario
from producer.simulation import Timeline

START_MS = utc_ms(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
SESSION_GAP_MS = 30 * 60_000


def lives(name: str, users: int, *, offset_min: int = 0) -> list[list[Step]]:
    """The steps (without LEAVE) of `users` independent lives."""
    rng = random.Random(f"test:{name}")
    kind = scenario(name)
    return [
        [s for s in kind.life(rng, START_MS, offset_min) if s.mode is not Mode.LEAVE] for _ in range(users)
    ]


def session_gaps_ms(steps: list[Step]) -> list[int]:
    """Gaps between consecutive steps of the same session."""
    return [b.ts_ms - a.ts_ms for a, b in itertools.pairwise(steps) if a.session == b.session]


def test_bots_tick_with_tiny_jitter_and_some_are_two_to_three_seconds_apart() -> None:
    periods = []
    for steps in lives("metronome", 60):
        gaps = session_gaps_ms(steps)
        mean = statistics.fmean(gaps)
        assert statistics.pstdev(gaps) / mean < 0.05
        periods.append(mean / 1000)
    assert min(periods) >= 0.4 and max(periods) <= 3.0
    assert sum(2.0 <= p < 3.0 for p in periods) >= 5  # the 2-second rule alone misses these


def test_bots_have_long_sessions() -> None:
    sizes = [n for steps in lives("metronome", 30) for n in Counter(s.session for s in steps).values()]
    assert min(sizes) >= 100


def test_impulsive_users_act_in_bursts_under_two_seconds() -> None:
    for steps in lives("burst_buyer", 80):
        burst_gaps = [
            b.ts_ms - a.ts_ms
            for a, b in itertools.pairwise(steps)
            if a.mode is b.mode is Mode.BURST and a.burst == b.burst and a.session == b.session
        ]
        assert burst_gaps, "every impulsive user has at least one burst"
        assert all(200 <= g < 2000 for g in burst_gaps)
        sizes = Counter((s.session, s.burst) for s in steps if s.mode is Mode.BURST)
        assert all(4 <= n <= 15 for n in sizes.values())


@pytest.mark.parametrize(("name", "offset_min"), [("burst_buyer", 0), ("burst_buyer", -300), ("browser", 60)])
def test_only_impulsive_users_lean_to_their_local_night(name: str, offset_min: int) -> None:
    rng = random.Random(9)
    kind = scenario(name)
    # Users join at any hour, so the first session alone gives no night bias.
    steps = [
        s
        for _ in range(300)
        for s in kind.life(rng, START_MS + rng.randrange(86_400_000), offset_min)
        if s.mode is not Mode.LEAVE
    ]
    night = sum(local_hour(s.ts_ms, offset_min) < NIGHT_END_HOUR for s in steps) / len(steps)
    flat = NIGHT_END_HOUR / 24
    if kind.persona is Persona.IMPULSIVE:
        assert night > 1.5 * flat
    else:
        assert night < 1.3 * flat


def test_normal_users_are_mostly_slow_but_some_are_occasionally_fast() -> None:
    all_gaps: list[int] = []
    with_fast = 0
    for steps in lives("browser", 200):
        gaps = session_gaps_ms(steps)
        all_gaps += gaps
        with_fast += any(g < 2000 for g in gaps)
        assert max(gaps) < SESSION_GAP_MS
    assert 15_000 < statistics.median(all_gaps) < 45_000
    assert sum(g < 2000 for g in all_gaps) / len(all_gaps) < 0.10
    assert with_fast >= 20


def test_normal_sessions_are_separated_by_idle_periods() -> None:
    for steps in lives("browser", 50):
        sizes = Counter(s.session for s in steps)
        assert all(5 <= n <= 40 for n in sizes.values())
        for a, b in itertools.pairwise(steps):
            if a.session != b.session:
                assert b.ts_ms - a.ts_ms >= SESSION_GAP_MS


def test_impulsive_users_buy_more_than_normal_ones() -> None:
    slots = ["browser"] * 40 + ["burst_buyer"] * 40
    steps = slot_steps(slots, seed=5, start_ms=START_MS)
    timeline = Timeline(run_id="t", seed=5, steps=steps, catalogue=build_catalogue(5))
    actions: dict[str, Counter[str]] = {name: Counter() for name in set(slots)}
    for n, event in enumerate(timeline):
        if n == 8000:
            break
        actions[event.sub_type][event.fields["action"]] += 1
    share = {name: c["purchase"] / max(1, c.total()) for name, c in actions.items()}
    assert share["burst_buyer"] > 3 * share["browser"] > 0


@pytest.mark.parametrize("users", [1, 7, 13, 20, 100, 1001])
def test_allocation_adds_up_and_keeps_every_persona_from_thirteen_users(users: int) -> None:
    for mix in (DEFAULT_MIX, LEGACY_MIX):
        counts = mix.allocate(users)
        assert sum(counts.values()) == users
        if users >= 13:
            personas = {scenario(name).persona for name, n in counts.items() if n}
            assert personas == set(Persona)


def test_population_for_a_rate_has_that_natural_rate() -> None:
    users = population_for_rate(DEFAULT_MIX, 200.0)
    assert natural_rate(DEFAULT_MIX.allocate(users)) == pytest.approx(200.0, rel=0.02)
    assert all(scenario_profile(name).rate_hz > 0 for name in SCENARIOS)


def test_a_steady_population_emits_about_the_requested_rate_from_the_start() -> None:
    slots = assign_slots(DEFAULT_MIX, population_for_rate(DEFAULT_MIX, 40.0), random.Random(3))
    timeline = Timeline(
        run_id="t", seed=3, steps=slot_steps(slots, seed=3, start_ms=START_MS), catalogue=build_catalogue(3)
    )
    window_ms = 120_000
    events = 0
    for event in timeline:
        assert event.ts_ms >= START_MS
        if event.ts_ms >= START_MS + window_ms:
            break
        events += 1
    assert 0.7 * 40 < events / (window_ms / 1000) < 1.3 * 40
