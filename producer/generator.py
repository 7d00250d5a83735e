"""Generated runs: plan a run from the options, make its batches, pace and publish them.

`generate_batches` is pure (no clock, no broker): the same RunConfig gives the same lines,
each with the outcome the worker should reach for it. `run_generator` adds the wall clock,
the labels file and the publisher.
"""

from __future__ import annotations

import math
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice

from tqdm import tqdm

from config.settings import Settings
from contract.wire import utc_ms
from producer.catalogue import build_catalogue
from producer.delivery import Batch, Delivery, expected_counts
from producer.faults import FaultLimits, FaultRates
from producer.labels import LabelWriter
from producer.population import (
    Cohort,
    UserPlan,
    assign_slots,
    cohort_steps,
    cohort_window_ms,
    natural_rate,
    plan_cohort,
    population_for_rate,
    slot_steps,
)
from producer.publisher import Publisher
from producer.scenarios import DEFAULT_MIX, Mix
from producer.simulation import SimEvent, Timeline

# A partly filled batch is published after this long, so a slow stream still flows (s).
FLUSH_INTERVAL_S = 0.25
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything that decides a generated run's output."""

    seed: int
    run_id: str
    start_ms: int
    rates: FaultRates
    limits: FaultLimits
    batch_size: int
    horizon_ms: int  # the latest valid event time; far-future faults land beyond it
    paced: bool
    count: int | None = None
    duration_s: float | None = None
    slots: tuple[str, ...] = ()  # paced: the sub-type of each concurrent user
    cohort: tuple[UserPlan, ...] = ()  # counted: every user of the run, with its whole life

    @property
    def population(self) -> int:
        """Concurrent users of a paced run, or all users of a counted one."""
        return len(self.slots) or len(self.cohort)

    @property
    def natural_rate_hz(self) -> float:
        """Long-run events per second of a paced population."""
        return natural_rate(Counter(self.slots))


@dataclass
class RunSummary:
    """What a run published."""

    run_id: str
    seed: int
    population: int
    cohort: bool = False  # a counted run: population is every user of the run
    events: int = 0
    batches: int = 0
    lines: int = 0
    users: int = 0
    first_batch: str | None = None
    last_batch: str | None = None
    expected: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False

    def add(self, batch: Batch, *, events: int) -> None:
        """Count one published batch."""
        self.events += events
        self.batches += 1
        self.lines += len(batch.lines)
        self.first_batch = self.first_batch or batch.batch_id
        self.last_batch = batch.batch_id
        self.expected.update(expected_counts([batch]))


def make_run_id(seed: int | None, start: datetime) -> tuple[int, str]:
    """The seed to use and a filename-safe run id: from the seed, or from the start time."""
    if seed is not None:
        return seed, f"s{seed}"
    drawn = secrets.randbelow(2**31)
    return drawn, f"t{utc_ms(start)}-{drawn:08x}"


def plan_run(
    settings: Settings,
    *,
    count: int | None = None,
    rate: float | None = None,
    duration_s: float | None = None,
    seed: int | None = None,
    start: datetime | None = None,
    users: int | None = None,
    mix: Mix | None = None,
    rates: FaultRates | None = None,
    now: datetime | None = None,
) -> RunConfig:
    """Decide population, pacing and time window; only `--count` without `--rate` runs unpaced.

    A paced run starts now (or at `start`) and follows the wall clock. A counted run is a
    cohort of whole lives that ends at the last UTC midnight (or starts at `start`): it spans
    the longest life in the mix in whole days, six weeks for the default one.
    """
    mix = mix or DEFAULT_MIX
    now = now or datetime.now(UTC)
    paced = count is None or rate is not None
    seed, run_id = make_run_id(seed, start or now)
    slots: tuple[str, ...] = ()
    cohort: tuple[UserPlan, ...] = ()
    if paced:
        users = users or population_for_rate(mix, rate or settings.producer_rate)
        slots = assign_slots(mix, users, random.Random(f"{seed}:personas"))
        start_ms = horizon_ms = utc_ms(start or now)
    else:
        window_ms = cohort_window_ms(mix)
        # Ending at a UTC midnight keeps a seed's run the same whatever the time of day.
        end_ms = utc_ms(now) // _DAY_MS * _DAY_MS
        start_ms = utc_ms(start) if start is not None else end_ms - window_ms
        horizon_ms = start_ms + window_ms
        cohort = plan_cohort(
            mix, seed=seed, count_events=count or 0, start_ms=start_ms, window_ms=window_ms, users=users
        ).users
    return RunConfig(
        seed=seed,
        run_id=run_id,
        start_ms=start_ms,
        rates=rates or FaultRates(),
        limits=FaultLimits.from_settings(settings),
        batch_size=settings.batch_size,
        horizon_ms=horizon_ms,
        paced=paced,
        count=count,
        duration_s=duration_s,
        slots=slots,
        cohort=cohort,
    )


def make_timeline(config: RunConfig) -> Timeline:
    """The event stream of a run."""
    if config.paced:
        steps = slot_steps(config.slots, seed=config.seed, start_ms=config.start_ms)
    else:
        cohort = Cohort(config.start_ms, config.horizon_ms, config.cohort)
        steps = cohort_steps(cohort, seed=config.seed)
    return Timeline(
        run_id=config.run_id, seed=config.seed, steps=steps, catalogue=build_catalogue(config.seed)
    )


def make_delivery(config: RunConfig) -> Delivery:
    """The batch assembler of a run."""
    return Delivery(
        run_id=config.run_id,
        seed=config.seed,
        rates=config.rates,
        limits=config.limits,
        horizon_ms=config.horizon_ms,
    )


def generate_batches(config: RunConfig, *, count: int) -> Iterator[Batch]:
    """The first `count` events as batches of lines, each line with its expected outcome."""
    # The outcomes assume validation within ECOMRISK_MAX_PAST_SKEW_DAYS of the run's start and
    # within half a year of its end (true for runs that end at now, or a recent --start).
    events = iter(make_timeline(config))
    delivery = make_delivery(config)
    remaining = count
    while remaining > 0:
        chunk = list(islice(events, min(config.batch_size, remaining)))
        remaining -= len(chunk)
        batch = delivery.assemble(chunk)
        if batch:
            yield batch
    last = delivery.finish()
    if last:
        yield last


def run_generator(
    config: RunConfig,
    *,
    publisher: Publisher,
    labels: LabelWriter,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunSummary:
    """Publish a run: paced to the wall clock, or as fast as possible for a plain --count."""
    summary = RunSummary(config.run_id, config.seed, config.population, cohort=not config.paced)
    delivery = make_delivery(config)
    source = f"generator:{config.run_id}"
    bar = tqdm(total=config.count, unit="ev", file=sys.stderr, disable=not progress)
    pending: list[SimEvent] = []

    def send(batch: Batch | None, events: int) -> None:
        if batch is None:
            return
        labels.write(batch.new_users)
        publisher.publish(batch.batch_id, batch.texts, source=source)
        summary.add(batch, events=events)
        bar.update(events)

    def flush() -> None:
        chunk = list(pending)
        pending.clear()
        send(delivery.assemble(chunk), len(chunk))

    wall0 = clock()
    flush_at = math.inf
    try:
        for event in make_timeline(config):
            if config.count is not None and summary.events + len(pending) >= config.count:
                break
            if config.paced:
                due = wall0 + (event.ts_ms - config.start_ms) / 1000
                if config.duration_s is not None and due - wall0 > config.duration_s:
                    break
                while (now := clock()) < due:
                    if pending and now >= flush_at:
                        flush()
                    sleep(min(due, flush_at if pending else due) - now)
            elif config.duration_s is not None and clock() - wall0 > config.duration_s:
                break
            pending.append(event)
            if len(pending) == 1:
                flush_at = clock() + FLUSH_INTERVAL_S
            if len(pending) >= config.batch_size or (config.paced and clock() >= flush_at):
                flush()
    except KeyboardInterrupt:
        summary.interrupted = True
    if pending:
        flush()
    send(delivery.finish(), 0)
    bar.close()
    summary.users = labels.written
    return summary
