"""Pipeline runs of `ecomrisk bench`: staged batches, a real publisher process, real workers, the ledger.

Generating events with Faker is slower than ingesting them, so every batch is generated and
written to a staging directory before anything is timed. A run then starts real Celery workers
on a fresh store, starts a producer process that publishes the staged batches through the real
Publisher (raw log and fsync, then the queue), and polls the ledger until every batch is there.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import redis
from sqlalchemy import Engine, func, select

from bench.producer import MANIFEST, Staged, StagedBatch, peak_rss
from cli.services import cli_argv, start_logged
from config.settings import Settings
from contract.wire import is_blank_line, now_ms
from harness.fleet import WorkerFleet, stop_process, wait_for
from harness.invariant import pending_messages
from producer.generator import generate_batches, plan_run
from producer.publisher import write_raw_batch
from producer.reconcile import account_raw_logs
from store.db import create_reader_engine
from store.models import Batch, Event, QuarantinedLine
from store.summaries import ledger_totals

READY_MARK = " ready."  # what a Celery worker logs once it consumes
STALL_S = 300.0  # a run in which nothing new is stored for this long has failed
WATCH_WINDOW = 512  # unseen batches looked up per poll; far more than are ever in flight
MB = 1_000_000


# --- staging ------------------------------------------------------------------------------------


def stage_batches(settings: Settings, directory: Path, *, events: int, seed: int) -> Staged:
    """Generate `events` events (default persona mix and fault rates) as raw batch files."""
    started = time.perf_counter()
    config = plan_run(settings, count=events, seed=seed)
    staged = []
    for batch in generate_batches(config, count=events):
        write_raw_batch(directory, batch.batch_id, "\n".join(batch.texts))
        lines = sum(1 for text in batch.texts if not is_blank_line(text))  # blank lines are not received
        staged.append(
            StagedBatch(batch.batch_id, lines, dict(Counter(line.expected for line in batch.lines)))
        )
    (directory / MANIFEST).write_text(json.dumps([asdict(b) for b in staged]))
    return Staged(directory, tuple(staged), events, time.perf_counter() - started)


# --- the producer process -------------------------------------------------------------------------


@dataclass
class ProducerProcess:
    """The producer of a run: `ecomrisk bench publish` in its own process, so its memory is its own."""

    process: subprocess.Popen[bytes]
    summary_path: Path

    @classmethod
    def start(
        cls,
        settings: Settings,
        staged: Staged,
        *,
        lines: int,
        log: Path,
        rate: float | None = None,
        per_line_task: str | None = None,
    ) -> ProducerProcess:
        summary = log.with_suffix(".json")
        argv = cli_argv("bench", "publish", str(staged.directory), f"--lines={lines}", f"--summary={summary}")
        argv += [f"--rate={rate}"] if rate else []
        argv += [f"--per-line-task={per_line_task}"] if per_line_task else []
        return cls(start_logged(argv, settings, log), summary)

    def exited(self) -> bool:
        """True once the producer has sent everything and exited; a failure raises."""
        code = self.process.poll()
        if code not in (None, 0):
            raise RuntimeError(
                f"the producer exited with {code}; see {self.summary_path.with_suffix('.log')}"
            )
        return code == 0

    def summary(self) -> dict[str, Any]:
        """What the producer sent: first and last send (epoch ms), lines, and its peak RSS (bytes)."""
        figures: dict[str, Any] = json.loads(self.summary_path.read_text())
        return figures

    def stop(self) -> None:
        stop_process(self.process)


# --- watching the store ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seen:
    """A batch as the ledger holds it: when it was committed, its lines, when it was enqueued."""

    at_ms: int
    received: int
    produced_ms: int


@dataclass
class LedgerWatcher:
    """Collects each expected batch's ledger row; committed_ms is stamped just before its commit."""

    engine: Engine
    pending: list[str]
    seen: dict[str, Seen] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return not self.pending

    def poll(self) -> int:
        """Look the oldest unseen batches up; returns how many showed since the last poll."""
        head, rest = self.pending[:WATCH_WINDOW], self.pending[WATCH_WINDOW:]
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Batch.batch_id, Batch.received, Batch.produced_ms, Batch.committed_ms).where(
                    Batch.batch_id.in_(head)
                )
            ).all()
        for row in rows:
            produced_ms = row.produced_ms or row.committed_ms
            self.seen[row.batch_id] = Seen(row.committed_ms, row.received, produced_ms)
        self.pending = [b for b in head if b not in self.seen] + rest
        return len(rows)


def watch(watcher: LedgerWatcher, producer: ProducerProcess, *, poll_s: float) -> None:
    """Poll until every batch is stored; fail when the producer fails or nothing is stored for STALL_S."""
    progress_at = time.monotonic()
    while not watcher.done:
        time.sleep(poll_s)
        producer.exited()
        if watcher.poll():
            progress_at = time.monotonic()
        elif time.monotonic() - progress_at > STALL_S:
            raise TimeoutError(f"nothing stored for {STALL_S:g}s; {len(watcher.pending)} batches missing")
    producer.process.wait(timeout=STALL_S)
    producer.exited()


# --- figures --------------------------------------------------------------------------------------


def fleet_memory(fleet: WorkerFleet) -> dict[str, Any]:
    """Peak RSS (MB) of each worker's main process and of each of its pool processes."""
    memory: dict[str, Any] = {}
    for name, main in fleet.mains.items():
        pool = [peak_rss(p.pid) for p in fleet.pool(name)]
        memory[name] = {
            "main_mb": _mb(peak_rss(main.pid)),
            "pool_mb": [_mb(rss) for rss in pool],
        }
    return memory


def fleet_cpu_s(fleet: WorkerFleet, *, broker_pid: int | None) -> dict[str, float]:
    """CPU seconds (user + system) so far of the workers' main processes, their pools and the broker."""
    mains = [psutil.Process(main.pid) for main in fleet.mains.values()]
    pools = [p for name in fleet.mains for p in fleet.pool(name)]
    spent = {"worker_main": _cpu_s(mains), "worker_pool": _cpu_s(pools)}
    if broker_pid is not None:
        spent["broker"] = _cpu_s([psutil.Process(broker_pid)])
    return spent


def _cpu_s(processes: Sequence[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def cpu_per_line(
    before: dict[str, float], after: dict[str, float], producer_s: float, *, lines: int, seconds: float
) -> dict[str, Any]:
    """CPU µs per line of each process over a run, and how busy that kept the machine's cores."""
    spent = {name: after[name] - before[name] for name in after}
    spent["producer"] = producer_s
    total = sum(spent.values())
    per_line = {name: round(s / lines * 1e6, 2) for name, s in spent.items()}
    return {
        "us_per_line": {**per_line, "total": round(total / lines * 1e6, 2)},
        "cores_busy": round(total / seconds, 2) if seconds > 0 else None,
        "measures": (
            "user + system CPU seconds from the workers' start of consuming to the last batch stored"
            " (pool processes that were replaced are not counted), the producer over its publishing"
            " loop, the broker over the same span; the benchmark's own polling is not counted"
        ),
    }


def _mb(size: int | None) -> float | None:
    return None if size is None else round(size / MB, 1)


def segment_rates(seen: Sequence[Seen], *, start_ms: int, parts: int = 5) -> list[dict[str, Any]]:
    """Lines/s over each successive 1/parts of the lines, in the order batches were stored."""
    ordered = sorted(seen, key=lambda s: s.at_ms)
    total = sum(s.received for s in ordered)
    segments = []
    done, prev_lines, prev_ms, part = 0, 0, start_ms, 1
    for s in ordered:
        done += s.received
        while part <= parts and done >= math.ceil(total * part / parts):
            elapsed_s = (s.at_ms - prev_ms) / 1000
            segments.append(
                {
                    "lines": f"{100 * (part - 1) // parts}-{100 * part // parts}%",
                    # None when the whole part showed in one poll: a run too short to tell
                    "lines_per_s": round((done - prev_lines) / elapsed_s, 1) if elapsed_s > 0 else None,
                }
            )
            prev_lines, prev_ms, part = done, s.at_ms, part + 1
    return segments


def latency_percentiles(seen: Sequence[Seen], *, skip_until_ms: int) -> dict[str, float]:
    """p50, p95, p99 and max (ms) from enqueue to stored, per line, after the warm-up."""
    kept = [s for s in seen if s.produced_ms >= skip_until_ms] or list(seen)
    latencies = np.repeat([s.at_ms - s.produced_ms for s in kept], [s.received for s in kept])
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    return {
        "p50_ms": round(float(p50), 1),
        "p95_ms": round(float(p95), 1),
        "p99_ms": round(float(p99), 1),
        "max_ms": round(float(latencies.max()), 1),
        "lines_measured": int(latencies.size),
    }


def check_ledger(
    settings: Settings, engine: Engine, batches: Sequence[StagedBatch], *, table_size: int
) -> dict[str, Any]:
    """The ledger against what was published and what the generator expects; ok only if all hold."""
    totals = ledger_totals(engine)
    missing = len(account_raw_logs(settings.raw_dir, engine).missing)
    with engine.connect() as conn:
        event_rows = int(conn.scalar(select(func.count()).select_from(Event)) or 0)
    lines = sum(b.lines for b in batches)
    expected = sum((Counter(b.expected) for b in batches), Counter())
    expected_held = lines - expected["stored"] - expected["duplicate"]
    accounted = totals.stored_new + totals.duplicates + totals.held
    checks = {
        "received = published lines": (totals.received == lines, f"{totals.received:,} = {lines:,}"),
        "received = stored + duplicates + quarantined": (
            totals.balanced,
            f"{totals.received:,} = {totals.stored_new:,} + {totals.duplicates:,} + {totals.held:,}",
        ),
        "raw batches missing from the ledger": (missing == 0, f"{missing:,}"),
        "event rows = seeded + stored": (
            event_rows == table_size + totals.stored_new,
            f"{event_rows:,} = {table_size:,} + {totals.stored_new:,}",
        ),
        "outcomes = the generator's expectation": (
            (totals.stored_new, totals.duplicates, totals.held)
            == (expected["stored"], expected["duplicate"], expected_held),
            f"{expected['stored']:,} + {expected['duplicate']:,} + {expected_held:,} = {accounted:,}",
        ),
    }
    return {
        "ok": all(ok for ok, _ in checks.values()),
        "checks": {name: {"ok": ok, "figures": figures} for name, (ok, figures) in checks.items()},
        "stored_new": totals.stored_new,
        "duplicates": totals.duplicates,
        "quarantined": totals.held,
    }


# --- runs -----------------------------------------------------------------------------------------


def start_fleet(
    settings: Settings, log_dir: Path, *, workers: int, include: tuple[str, ...] = ()
) -> WorkerFleet:
    """One Celery worker with `workers` pool processes, consuming once this returns."""
    fleet = WorkerFleet(settings, log_dir=log_dir, concurrency=workers, include=include)
    fleet.start("bench")
    fleet.wait_ready()
    if not wait_for(lambda: READY_MARK in fleet.log_text(), timeout_s=60.0):
        fleet.stop()
        raise TimeoutError(f"the worker did not start consuming; see {log_dir}")
    return fleet


@dataclass(frozen=True)
class PipelineRun:
    """The figures of a run, and when each batch was enqueued and stored (for latency)."""

    figures: dict[str, Any]
    seen: list[Seen]


def run_pipeline(
    settings: Settings,
    staged: Staged,
    *,
    lines: int,
    workers: int,
    table_size: int,
    rate: float | None = None,
    poll_s: float = 0.1,
    broker_pid: int | None = None,
) -> PipelineRun:
    """Publish the staged batches holding `lines` lines to real workers; time them into the ledger."""
    run_dir = settings.data_dir
    batches = staged.prefix(lines)
    engine = create_reader_engine(settings.resolved_database_url)
    watcher = LedgerWatcher(engine, [b.batch_id for b in batches])
    fleet = start_fleet(settings, run_dir / "logs", workers=workers)
    producer: ProducerProcess | None = None
    try:
        cpu_before = fleet_cpu_s(fleet, broker_pid=broker_pid)
        producer = ProducerProcess.start(
            settings, staged, lines=lines, rate=rate, log=run_dir / "producer.log"
        )
        watch(watcher, producer, poll_s=poll_s)
        cpu_after = fleet_cpu_s(fleet, broker_pid=broker_pid)
        memory = fleet_memory(fleet)
    finally:
        if producer is not None:
            producer.stop()
        fleet.stop()
    seen = list(watcher.seen.values())
    first_ms = min(s.produced_ms for s in seen)
    seconds = (max(s.at_ms for s in seen) - first_ms) / 1000
    total = sum(s.received for s in seen)
    sent = producer.summary()
    ledger = check_ledger(settings, engine, batches, table_size=table_size)
    engine.dispose()
    figures = {
        "workers": workers,
        "table_size": table_size,
        "stored_after": table_size + ledger["stored_new"],
        "lines": total,
        "batches": len(seen),
        "seconds": round(seconds, 3),
        "lines_per_s": round(total / seconds, 1),
        "stored_per_s": round(ledger["stored_new"] / seconds, 1),
        "publish_s": round((sent["last_ms"] - sent["first_ms"]) / 1000, 3),
        "segments": segment_rates(seen, start_ms=first_ms),
        "ledger": ledger,
        "memory": {"workers": memory, "producer_mb": _mb(sent["peak_rss"])},
        "cpu": cpu_per_line(cpu_before, cpu_after, sent["cpu_s"], lines=total, seconds=seconds),
    }
    return PipelineRun(figures, seen)


def run_naive(settings: Settings, staged: Staged, *, lines: int, workers: int) -> dict[str, Any]:
    """One task per line through `workers` processes of the naive task; lines/s until the queue drains."""
    from bench import naive  # loads the workers' Celery app: only this run needs it

    run_dir = settings.data_dir
    assert settings.redis_url
    client: redis.Redis[bytes] = redis.Redis.from_url(settings.redis_url)
    fleet = start_fleet(settings, run_dir / "logs", workers=workers, include=(naive.__name__,))
    producer: ProducerProcess | None = None
    try:
        producer = ProducerProcess.start(
            settings, staged, lines=lines, per_line_task=naive.NAIVE_TASK, log=run_dir / "producer.log"
        )
        quiet, end_ms = 0, 0
        progress_at, last_pending = time.monotonic(), -1
        while quiet < 3:  # three empty polls in a row: no message is between queue and unacked
            time.sleep(0.05)
            sent_all = producer.exited()  # first: every message it sent is counted below
            at_ms = now_ms()
            pending = pending_messages(client, settings.queue_name)
            if sent_all and pending == 0:
                end_ms = at_ms if quiet == 0 else end_ms
                quiet += 1
            else:
                quiet = 0
            if pending != last_pending:
                progress_at, last_pending = time.monotonic(), pending
            elif time.monotonic() - progress_at > STALL_S:
                raise TimeoutError(f"the naive queue did not move for {STALL_S:g}s")
    finally:
        if producer is not None:
            producer.stop()
        fleet.stop()
    sent = producer.summary()
    seconds = (end_ms - sent["first_ms"]) / 1000
    engine = create_reader_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        stored = int(conn.scalar(select(func.count()).select_from(Event)) or 0)
        quarantined = int(conn.scalar(select(func.count()).select_from(QuarantinedLine)) or 0)
    engine.dispose()
    return {
        "workers": workers,
        "lines": sent["lines"],
        "seconds": round(seconds, 3),
        "lines_per_s": round(sent["lines"] / seconds, 1),
        "event_rows": stored,
        "quarantined_rows": quarantined,
        "what": "one Celery task per line: validate_line, previous-event lookup, session.merge, commit",
    }
