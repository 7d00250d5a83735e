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
from collections.abc import Callable, Iterator, Sequence
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
from producer.personas import (
    Persona,
    PersonaMix,
    assign_personas,
    natural_rate,
    population_for_count,
    population_for_rate,
)
from producer.publisher import Publisher
from producer.simulation import SimEvent, Timeline, last_event_ms

# A partly filled batch is published after this long, so a slow stream still flows (s).
FLUSH_INTERVAL_S = 0.25
_ANCHOR_ATTEMPTS = 3
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything that decides a generated run's output."""

    seed: int
    run_id: str
    start_ms: int
    personas: tuple[Persona, ...]
    rates: FaultRates
    limits: FaultLimits
    batch_size: int
    horizon_ms: int  # about the latest valid event time; far-future faults land beyond it
    paced: bool
    count: int | None = None
    duration_s: float | None = None

    @property
    def natural_rate_hz(self) -> float:
        """Long-run events per second of this population."""
        return natural_rate(Counter(self.personas))


@dataclass
class RunSummary:
    """What a run published."""

    run_id: str
    seed: int
    population: int
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
    mix: PersonaMix | None = None,
    rates: FaultRates | None = None,
    now: datetime | None = None,
) -> RunConfig:
    """Decide population, pacing and time anchor; only `--count` without `--rate` runs unpaced."""
    mix = mix or PersonaMix()
    now = now or datetime.now(UTC)
    paced = count is None or rate is not None
    rate_hz = rate or settings.producer_rate
    seed, run_id = make_run_id(seed, start or now)
    if users is None:
        users = population_for_rate(mix, rate_hz) if paced else population_for_count(mix, count or 0)
    personas = tuple(assign_personas(mix, users, random.Random(f"{seed}:personas")))
    if start is not None:
        start_ms = utc_ms(start)
    elif paced:
        start_ms = utc_ms(now)
    else:
        start_ms = anchor_start(personas, seed=seed, count=count or 0, now_ms=utc_ms(now))
    span_ms = 0 if paced else math.ceil(1000 * (count or 0) / natural_rate(Counter(personas)))
    return RunConfig(
        seed=seed,
        run_id=run_id,
        start_ms=start_ms,
        personas=personas,
        rates=rates or FaultRates(),
        limits=FaultLimits.from_settings(settings),
        batch_size=settings.batch_size,
        horizon_ms=start_ms + span_ms,
        paced=paced,
        count=count,
        duration_s=duration_s,
    )


def anchor_start(personas: Sequence[Persona], *, seed: int, count: int, now_ms: int) -> int:
    """A start from which an unpaced run's count-th event falls at or before now_ms."""
    start_ms = now_ms - math.ceil(1000 * count / natural_rate(Counter(personas)))
    for _ in range(_ANCHOR_ATTEMPTS):
        over_ms = last_event_ms(personas, seed=seed, start_ms=start_ms, count=count) - now_ms
        if over_ms <= 0:
            return start_ms
        # Moving the start moves UTC night hours too, so impulsive users may shift a little.
        start_ms -= over_ms
    over_ms = last_event_ms(personas, seed=seed, start_ms=start_ms, count=count) - now_ms
    # Whole days keep every hour-of-day decision, so the timeline moves back unchanged.
    return start_ms - max(0, math.ceil(over_ms / _DAY_MS)) * _DAY_MS


def make_timeline(config: RunConfig) -> Timeline:
    """The event stream of a run."""
    return Timeline(
        seed=config.seed,
        run_id=config.run_id,
        start_ms=config.start_ms,
        personas=config.personas,
        catalogue=build_catalogue(config.seed),
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
    # within half a year of its end (true for runs anchored to now, or a recent --start).
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
    summary = RunSummary(config.run_id, config.seed, len(config.personas))
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
