"""Who is in a run: a cohort of whole lives for a counted run, or fixed slots for a paced one.

A counted run (`--count` without `--rate`) is a cohort: users drawn from the mix, each with a
home offset, a join time and the number of events it contributes, placed so that every life
ends at or before the run's end (by default the last UTC midnight, so that a seed gives the
same run all day: lives keep to local hours, which a start at another time of day would
move). The run spans the longest life in the mix in whole days, so a sub-type whose history
takes weeks shows all of it, inside the worker's accepted window.
A paced run keeps a fixed population of slots, each refilled by a newcomer of the same
sub-type, met at a random moment of its life as if the population had run for ever.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain, count, dropwhile, islice

from producer.personas import DAY_MS, HOUR_MS, Mode, Step
from producer.scenarios import Mix, scenario

# Sessions up to this many times the mean are drawn in proportion to their length.
_LENGTH_BIAS_CAP = 3.0
# Lives end this long before the end of a cohort's window at the latest.
_WINDOW_MARGIN_MS = HOUR_MS


@dataclass(frozen=True, slots=True)
class Profile:
    """Long-run averages of one sub-type, measured on a fixed sample of simulated users."""

    rate_hz: float
    events_per_user: float
    session_share: float
    mean_session_s: float
    mean_idle_s: float


@dataclass(frozen=True, slots=True)
class UserPlan:
    """One user of a cohort: the life it lives and how many of its events the run takes."""

    index: int  # seeds the user's own random stream
    sub_type: str
    offset_min: int
    join_ms: int
    events: int


@dataclass(frozen=True, slots=True)
class Cohort:
    """The users of a counted run and the window their lives fit in."""

    start_ms: int
    end_ms: int
    users: tuple[UserPlan, ...]


def life_rng(seed: int, index: int) -> random.Random:
    """The random stream of one cohort user's life."""
    return random.Random(f"{seed}:life:{index}")


def life_events(plan: UserPlan, seed: int) -> Iterator[Step]:
    """The steps of a planned user that the run emits (no LEAVE)."""
    life = scenario(plan.sub_type).life(life_rng(seed, plan.index), plan.join_ms, plan.offset_min)
    return islice((s for s in life if s.mode is not Mode.LEAVE), plan.events)


@cache
def scenario_profile(name: str, sample_users: int = 100) -> Profile:
    """Measure a sub-type's long-run event rate and session share on a fixed-seed sample."""
    rng = random.Random(f"profile:{name}")
    kind = scenario(name)
    events = sessions = 0
    life_ms = session_ms = 0.0
    for _ in range(sample_users):
        join_ms = int(rng.uniform(0, DAY_MS))
        offset = rng.choice(kind.home_offsets_min)
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for step in kind.life(rng, join_ms, offset):
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


def natural_rate(counts: Mapping[str, int]) -> float:
    """Long-run events per second of a population with these sub-type counts."""
    return sum(n * scenario_profile(name).rate_hz for name, n in counts.items() if n)


def population_for_rate(mix: Mix, rate_hz: float) -> int:
    """The number of concurrent users whose natural event rate is about rate_hz."""
    per_user = sum(mix.share(name) * scenario_profile(name).rate_hz for name in mix.present())
    return max(1, round(rate_hz / per_user))


def events_per_user(mix: Mix) -> float:
    """The mean number of events of one user of the mix over a whole life."""
    return sum(mix.share(name) * scenario_profile(name).events_per_user for name in mix.present())


def assign_slots(mix: Mix, users: int, rng: random.Random) -> tuple[str, ...]:
    """A shuffled sub-type per population slot, in the proportions of the mix."""
    slots = [name for name, n in mix.allocate(users).items() for _ in range(n)]
    rng.shuffle(slots)
    return tuple(slots)


def cohort_window_ms(mix: Mix) -> int:
    """How long before its end a cohort starts: the longest life in the mix and a margin, in whole days."""
    longest_ms = max(scenario(name).max_life_ms for name in mix.present()) + _WINDOW_MARGIN_MS
    return -(-longest_ms // DAY_MS) * DAY_MS


def plan_cohort(
    mix: Mix, *, seed: int, count_events: int, start_ms: int, window_ms: int, users: int | None = None
) -> Cohort:
    """Users in the mix's proportions until their lives hold count_events events (the last one cut).

    With `users`, exactly that many whole lives instead (the run then stops at whichever ends
    first). Each user joins at a uniform moment that lets its whole life end inside the window.
    """
    block = users or max(1, round(count_events / events_per_user(mix)))
    planned: list[UserPlan] = []
    total = 0
    for index in count():
        if users is not None and index == users:
            break
        if users is None and total >= count_events:
            break
        blocks, slot = divmod(index, block)
        if slot == 0:
            order = list(assign_slots(mix, block, random.Random(f"{seed}:cohort:{blocks}")))
        kind = scenario(order[slot])
        placing = random.Random(f"{seed}:plan:{index}")
        offset = placing.choice(kind.home_offsets_min)
        room_ms = max(0, window_ms - _WINDOW_MARGIN_MS - kind.max_life_ms)
        join_ms = start_ms + int(placing.random() * room_ms)
        life = kind.life(life_rng(seed, index), join_ms, offset)
        events = sum(1 for step in life if step.mode is not Mode.LEAVE)
        if users is None:
            events = min(events, count_events - total)
        planned.append(UserPlan(index, kind.name, offset, join_ms, events))
        total += events
    return Cohort(start_ms, start_ms + window_ms, tuple(planned))


def cohort_steps(cohort: Cohort, *, seed: int) -> Iterator[tuple[int, str, int, Step]]:
    """(user, sub-type, offset, step) of every planned event in time order, and each user's LEAVE."""
    users = cohort.users
    # A user's life is started only when its join time comes up, so few are held at once.
    heap: list[tuple[int, int]] = [(plan.join_ms, i) for i, plan in enumerate(users)]
    heapq.heapify(heap)
    streams: dict[int, Iterator[Step]] = {}
    pending: dict[int, Step] = {}
    while heap:
        _, i = heap[0]
        plan = users[i]
        if i not in streams:
            streams[i] = life_events(plan, seed)
        else:
            step = pending.pop(i)
            yield i, plan.sub_type, plan.offset_min, step
        following = next(streams[i], None)
        if following is None:
            del streams[i]
            heapq.heappop(heap)
            yield i, plan.sub_type, plan.offset_min, Step(0, -1, Mode.LEAVE, -1, False)
            continue
        pending[i] = following
        heapq.heapreplace(heap, (following.ts_ms, i))


def steady_steps(
    name: str, *, timing: random.Random, phase: random.Random, start_ms: int, offset_min: int
) -> Iterator[Step]:
    """Steps from start_ms of a user met at a random moment, as if the population ran for ever."""
    kind = scenario(name)
    profile = scenario_profile(name)
    if phase.random() >= profile.session_share:
        join_ms = start_ms + int(1000 * phase.uniform(0, profile.mean_idle_s))
        return kind.life(timing, join_ms, offset_min)
    # Mid-session: long sessions are more likely to be under way (length-biased choice),
    # and the user is at a uniform point of it; the earlier steps happened before the run.
    cap_ms = _LENGTH_BIAS_CAP * 1000 * profile.mean_session_s
    while True:
        steps = kind.life(timing, start_ms, offset_min)
        buffered: list[Step] = []
        for step in steps:
            buffered.append(step)
            if step.session != buffered[0].session or step.mode is Mode.LEAVE:
                break
        span_ms = buffered[-2].ts_ms - buffered[0].ts_ms if len(buffered) > 1 else 0
        if phase.random() * cap_ms < span_ms:
            break
    shift_ms = int(phase.random() * span_ms)
    shifted = (s._replace(ts_ms=s.ts_ms - shift_ms) for s in chain(buffered, steps))
    return dropwhile(lambda s: s.ts_ms < start_ms, shifted)


def slot_steps(slots: Sequence[str], *, seed: int, start_ms: int) -> Iterator[tuple[int, str, int, Step]]:
    """(slot, sub-type, offset, step) for every population slot in time order; a newcomer follows a LEAVE."""
    timing = random.Random(f"{seed}:timing")
    phase = random.Random(f"{seed}:phase")
    offsets = [timing.choice(scenario(name).home_offsets_min) for name in slots]
    streams = [
        steady_steps(name, timing=timing, phase=phase, start_ms=start_ms, offset_min=offsets[slot])
        for slot, name in enumerate(slots)
    ]
    pending = [next(stream) for stream in streams]
    heap = [(step.ts_ms, slot) for slot, step in enumerate(pending)]
    heapq.heapify(heap)
    while heap:
        slot = heap[0][1]
        step = pending[slot]
        yield slot, slots[slot], offsets[slot], step
        if step.mode is Mode.LEAVE:
            kind = scenario(slots[slot])
            offsets[slot] = timing.choice(kind.home_offsets_min)
            streams[slot] = kind.life(timing, step.ts_ms, offsets[slot])
        pending[slot] = following = next(streams[slot])
        heapq.heapreplace(heap, (following.ts_ms, slot))
