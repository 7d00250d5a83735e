"""`ecomrisk chaos`: steady load while workers die by kill -9 and Redis restarts; then prove no loss.

The run owns everything it touches: a private Redis (append-only file) and a fresh SQLite file in
its own data directory, or the PostgreSQL database of ECOMRISK_DATABASE_URL, which must hold no
batches yet (the invariant counts the whole ledger against this run's raw logs).

The load is generated before the clock starts (as `ecomrisk bench` stages its batches: Faker is
slower than ingest) and a producer process publishes it through the real Publisher at the
offered rate, in batches of a quarter second of load, as a live producer flushes them. Each kill
records how many batches were in flight (delivered to a worker, in kombu's unacked hash, not yet
in the ledger) and whether its victim was inside a batch's write transaction.

At the end it waits for the queue to drain, runs reconcile, waits again and checks the invariant:
every raw line is stored, a duplicate or quarantined exactly once, no raw batch is missing from
the ledger, every valid event id is stored, no dead letter is left, and the stored flags and user
figures equal a from-scratch recompute. A run passes only if the invariant holds and at least one
kill in three cut a batch in flight: faults that land between batches prove nothing.
"""

from __future__ import annotations

import base64
import json
import math
import random
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
from kombu.compression import decompress
from kombu.serialization import loads
from kombu.transport.redis import Channel
from rich.console import Console
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from bench.pipeline import ProducerProcess, stage_batches
from bench.producer import Staged
from cli.redis_server import RedisProcess, start_redis
from cli.reports import status_table
from config.settings import Settings
from contract.wire import register_wire_formats
from harness.fleet import POLL_S, WORKER_LOST, WorkerFleet
from harness.invariant import Invariant, check_invariant, invariant_table, settle
from producer.generator import FLUSH_INTERVAL_S
from producer.reconcile import account_raw_logs
from store.db import create_reader_engine, create_writer_engine, init_schema, is_sqlite
from store.models import Batch
from store.summaries import ledger_totals

# Short, so that a batch stranded by a killed worker comes back within the run (s).
CHAOS_VISIBILITY_TIMEOUT_S = 10
CHAOS_PUBLISH_RETRY_MAX_S = 2.0
REDIS_DOWN_S = 3.0
WRITER_SEARCH_S = 3.0  # how long a kill waits for a victim inside a transaction before it takes any
PRODUCER_EXIT_TIMEOUT_S = 120.0  # a producer blocked by a Redis outage retries up to this long
# A run passes only if at least this share of its kills cut a batch in flight.
MIN_CUT_SHARE = 1 / 3
SETTLE_LINES_PER_S = 2_000  # the drain after the load waits at least lines / this (s), and 120 s


def restart_redis(server: RedisProcess, *, down_s: float = REDIS_DOWN_S) -> RedisProcess:
    """kill -9 Redis, leave it down for down_s, start it again on the same port and files."""
    server.process.kill()
    server.process.wait()
    time.sleep(down_s)
    return start_redis(server.workdir, port=server.port, appendonly=True)


# --- the run ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KillRecord:
    """One kill -9 of a pool process or a whole worker, and the work in flight when it struck."""

    at_s: float
    main: bool  # the whole worker, else one pool process
    in_writer: bool  # the victim was inside a batch's write transaction: it cut that batch
    in_flight: int | None  # batches delivered and not in the ledger; None if Redis did not answer

    @property
    def cut_in_flight(self) -> bool:
        """The kill cut a batch in flight (seen: its victim held the batch's write transaction)."""
        return self.in_writer


def faults_hit_work(kills: Sequence[KillRecord], *, share: float = MIN_CUT_SHARE) -> bool:
    """True when there were kills and at least `share` of them cut a batch in flight."""
    return bool(kills) and sum(k.cut_in_flight for k in kills) >= share * len(kills)


@dataclass
class ChaosLog:
    """What the run did, printed as it happens."""

    console: Console
    t0: float = field(default_factory=time.monotonic)
    kills: list[KillRecord] = field(default_factory=list)
    redis_restarts: int = 0
    worker_exits: int = 0  # workers that died by themselves and were started again

    @property
    def pool_kills(self) -> int:
        return sum(not k.main for k in self.kills)

    @property
    def main_kills(self) -> int:
        return sum(k.main for k in self.kills)

    def elapsed_s(self) -> float:
        return time.monotonic() - self.t0

    def say(self, message: str) -> None:
        self.console.print(f"[dim]t+{self.elapsed_s():6.1f}s[/] {message}", highlight=False)


def delivered_batch_ids(client: redis.Redis[bytes]) -> list[str]:
    """Batch ids of the messages delivered to a worker and not acknowledged (kombu's unacked hash)."""
    register_wire_formats()
    ids = []
    for packed in client.hvals(Channel.unacked_key):
        message = json.loads(packed)[0]  # [message, exchange, routing key]
        body = base64.b64decode(message["body"])
        if compression := message["headers"].get("compression"):
            body = decompress(body, compression)  # type: ignore[no-untyped-call]
        # kombu's serialization registry is untyped.
        _, kwargs, _ = loads(  # type: ignore[no-untyped-call]
            body, message["content-type"], message["content-encoding"], accept=None
        )
        ids.append(str(kwargs["batch_id"]))
    return ids


def batches_in_flight(client: redis.Redis[bytes], engine: Engine) -> int | None:
    """Batches delivered to a worker and not yet in the ledger; None when Redis or the store is away."""
    try:
        delivered = set(delivered_batch_ids(client))
        if not delivered:
            return 0
        with engine.connect() as conn:
            committed = set(conn.scalars(select(Batch.batch_id).where(Batch.batch_id.in_(delivered))))
    except (redis.RedisError, SQLAlchemyError):
        return None
    return len(delivered - committed)


def chaos_batch_size(settings: Settings, rate: float) -> int:
    """A quarter second of load per batch, as a live producer flushes it; at most ECOMRISK_BATCH_SIZE."""
    return max(1, min(settings.batch_size, math.ceil(rate * FLUSH_INTERVAL_S)))


def chaos_database_url(base: Settings, data_dir: Path) -> str:
    """The base settings' PostgreSQL database, else a fresh SQLite file in data_dir."""
    url = base.database_url
    return url if url and not is_sqlite(url) else f"sqlite:///{data_dir / 'ecomrisk.db'}"


def chaos_settings(base: Settings, *, data_dir: Path, redis_url: str) -> Settings:
    """The base settings on a private Redis and the chaos database, with short timeouts."""
    return base.model_copy(
        update={
            "data_dir": data_dir,
            "redis_url": redis_url,
            "database_url": chaos_database_url(base, data_dir),
            "visibility_timeout_s": CHAOS_VISIBILITY_TIMEOUT_S,
            "publish_retry_max_s": CHAOS_PUBLISH_RETRY_MAX_S,
        }
    )


def stage_load(settings: Settings, directory: Path, *, rate: float, duration_s: float, seed: int) -> Staged:
    """rate x duration_s events of the default persona mix and faults, as raw batch files in directory."""
    batch_size = chaos_batch_size(settings, rate)
    events = max(1, math.ceil(rate * duration_s))
    return stage_batches(
        settings.model_copy(update={"batch_size": batch_size}), directory, events=events, seed=seed
    )


def inflict(
    fleet: WorkerFleet,
    log: ChaosLog,
    rng: random.Random,
    *,
    main: bool,
    engine: Engine,
    client: redis.Redis[bytes],
) -> None:
    """kill -9 a pool process in mid-transaction, or its whole worker (then start it again)."""
    found = fleet.writing_pool_process(rng, within_s=WRITER_SEARCH_S)
    when = "inside a write transaction" if found else "between batches"
    if found:
        name, victim = found
    else:
        name = rng.choice(sorted(fleet.mains))
        pool = fleet.pool(name)
        if not pool:
            return
        victim = rng.choice(pool)
    in_flight = batches_in_flight(client, engine)  # read just before the kill; the victim's batch among them
    record = KillRecord(round(log.elapsed_s(), 1), main, found is not None, in_flight)
    flight = "batches in flight unknown" if in_flight is None else f"batches in flight: {in_flight}"
    if main:
        pid = fleet.kill_main(name)
        fleet.start(name)
        log.kills.append(record)
        log.say(f"kill -9 worker {name} (main pid {pid} and its pool) {when}, {flight}; restarted")
        return
    fleet.kill_pool_process(victim)
    log.kills.append(record)
    log.say(f"kill -9 pool process {victim.pid} of worker {name} {when}, {flight}")


def drive_faults(
    fleet: WorkerFleet,
    server: RedisProcess,
    log: ChaosLog,
    rng: random.Random,
    *,
    duration_s: float,
    kill_every_s: float,
    engine: Engine,
) -> RedisProcess:
    """kill -9 a pool process or a worker in turn, restart Redis half-way; return the live Redis."""
    next_kill, kills = kill_every_s, 0
    client: redis.Redis[bytes] = redis.Redis.from_url(server.url, socket_timeout=5)
    while (elapsed := log.elapsed_s()) < duration_s:
        if log.redis_restarts == 0 and elapsed >= duration_s / 2:
            log.say(f"kill -9 Redis (pid {server.process.pid})")
            server = restart_redis(server)
            log.redis_restarts += 1
            log.say(f"Redis is back on port {server.port} (pid {server.process.pid})")
        for name, code in fleet.revive():
            log.worker_exits += 1
            log.say(f"worker {name} exited by itself (code {code}); restarted")
        if elapsed >= next_kill:
            inflict(fleet, log, rng, main=kills % 2 == 1, engine=engine, client=client)
            kills += 1
            next_kill = elapsed + kill_every_s * rng.uniform(0.5, 1.5)
        time.sleep(POLL_S)
    return server


@dataclass(frozen=True, slots=True)
class Offered:
    """What the producer published: lines, and the rate it kept from its first send to its last."""

    lines: int
    rate: float
    span_s: float


def offered_load(producer: ProducerProcess, staged: Staged) -> Offered:
    """The producer's summary; its last send starts the last batch, so that batch is not in the rate."""
    figures = producer.summary()
    span_s = max((figures["last_ms"] - figures["first_ms"]) / 1000, 1e-3)
    before_last = figures["lines"] - (staged.batches[-1].lines if staged.batches else 0)
    return Offered(figures["lines"], before_last / span_s, span_s)


def describe_kills(kills: Sequence[KillRecord]) -> str:
    """How many kills cut a batch in flight, and how many batches were in flight at the kills."""
    cut = sum(k.cut_in_flight for k in kills)
    known = [k.in_flight for k in kills if k.in_flight is not None]
    spread = ""
    if known:
        median = statistics.median(known)
        spread = f"; batches in flight at the kills: min {min(known)}, median {median:g}, max {max(known)}"
    return f"{cut} of {len(kills)} kills cut a batch in flight (inside its write transaction){spread}"


def report(
    console: Console, log: ChaosLog, fleet: WorkerFleet, invariant: Invariant, producer_log: Path
) -> int:
    """Print what was done and the invariant with its verdict; 0 on PASS, 1 on FAIL."""
    logs = fleet.log_text()
    produced = producer_log.read_text(errors="replace")
    console.print(
        f"faults: {log.pool_kills} pool processes and {log.main_kills} workers killed -9, "
        f"{log.redis_restarts} Redis kill -9 and restart, {log.worker_exits} workers exited by themselves "
        f"and were restarted; {logs.count(WORKER_LOST)} batches cut off "
        f"by a dying pool process and requeued, {produced.count('Redis unavailable')} publish retries, "
        f"{logs.count('storage error on attempt')} storage retries"
    )
    console.print(f"kills: {describe_kills(log.kills)}")
    console.print(invariant_table(invariant))
    for problem in invariant.problems():
        console.print(f"  [red]{problem}[/]", highlight=False)
    hit = faults_hit_work(log.kills)
    if not hit:
        console.print(
            f"  [red]fewer than one kill in {round(1 / MIN_CUT_SHARE)} cut a batch in flight: the faults"
            " missed the work[/]",
            highlight=False,
        )
    if invariant.ok and hit:
        console.print(
            "[bold green]PASS[/]: nothing lost, nothing stored twice, flags exact; kills cut work in flight."
        )
        return 0
    console.print(f"[bold red]FAIL[/]: see the logs in {fleet.log_dir}")
    return 1


def run_chaos(
    base: Settings,
    console: Console,
    *,
    data_dir: Path,
    duration_s: float,
    kill_every_s: float,
    rate: float,
    seed: int,
    workers: int = 2,
    concurrency: int = 2,
) -> int:
    """Run the scenario and print the ledger and the invariant; 0 on PASS, 1 on FAIL."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    engine = create_writer_engine(chaos_database_url(base, data_dir))
    init_schema(engine)
    in_use = ledger_totals(engine).batches
    engine.dispose()
    if in_use:
        console.print(f"[bold red]FAIL[/]: the database holds {in_use:,} batches; chaos needs an empty one")
        return 1
    console.print(
        f"chaos: {duration_s:g}s at {rate:g} events/s, {workers} workers x {concurrency} processes, "
        f"kill -9 every ~{kill_every_s:g}s, Redis kill -9 and restart at {duration_s / 2:g}s; "
        f"seed {seed}; data in {data_dir}"
    )
    server = start_redis(data_dir / "redis", appendonly=True)
    settings = chaos_settings(base, data_dir=data_dir, redis_url=server.url)
    staged = stage_load(settings, data_dir / "staged", rate=rate, duration_s=duration_s, seed=seed)
    console.print(
        f"staged {staged.lines:,} lines ({staged.events:,} events) in {len(staged.batches):,} batches of up"
        f" to {chaos_batch_size(settings, rate):,} events in {staged.seconds:.1f}s, before the clock starts"
    )
    fleet = WorkerFleet(settings, log_dir=data_dir / "logs", concurrency=concurrency)
    producer_log = data_dir / "logs" / "producer.log"
    producer: ProducerProcess | None = None
    log = ChaosLog(console)
    watch_engine = create_reader_engine(settings.resolved_database_url)
    try:
        for n in range(1, workers + 1):
            fleet.start(f"chaos{n}")
        fleet.wait_ready()
        producer = ProducerProcess.start(settings, staged, lines=staged.lines, log=producer_log, rate=rate)
        log.t0 = time.monotonic()
        server = drive_faults(
            fleet, server, log, rng, duration_s=duration_s, kill_every_s=kill_every_s, engine=watch_engine
        )
        log.say("load finished; waiting for the producer to send the rest")
        producer.process.wait(timeout=PRODUCER_EXIT_TIMEOUT_S)
        offered = offered_load(producer, staged)
        log.say(
            f"the producer sent {offered.lines:,} lines in {offered.span_s:.1f}s: {offered.rate:,.0f} lines/s"
            f" offered of {rate:,.0f}; waiting for the queue to drain, then reconcile"
        )
        # A worker that exits while the queue drains is started again, as its process manager would.
        with fleet.kept_running() as exits:
            settled = settle(settings, console, timeout_s=max(120.0, staged.lines / SETTLE_LINES_PER_S))
        for name, code in exits:
            log.worker_exits += 1
            log.say(f"worker {name} exited by itself (code {code}) while settling; restarted")
        log.say(
            f"settled: {settled.missing_before_reconcile} batches were missing after the drain, "
            f"reconcile re-sent {settled.resent}; checking the invariant"
        )
        engine = create_reader_engine(settings.resolved_database_url)
        invariant = check_invariant(settings, engine)
        console.print(
            status_table(
                ledger_totals(engine), account_raw_logs(settings.raw_dir, engine), invariant.dead_letters
            )
        )
    except (TimeoutError, subprocess.TimeoutExpired) as exc:
        console.print(f"[bold red]FAIL[/]: {exc}; logs in {fleet.log_dir}")
        return 1
    finally:
        if producer is not None:
            producer.stop()
        fleet.stop()
        server.stop()
        watch_engine.dispose()
    return report(console, log, fleet, invariant, producer_log)
