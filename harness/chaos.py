"""`ecomrisk chaos`: steady load while workers die by kill -9 and Redis restarts; then prove no loss.

The run owns everything it touches: a private Redis (append-only file) and a fresh SQLite file in
its own data directory, or the PostgreSQL database of ECOMRISK_DATABASE_URL, which must hold no
batches yet (the invariant counts the whole ledger against this run's raw logs). At the end it
waits for the queue to drain, runs reconcile, waits again and checks the invariant: every raw line
is stored, a duplicate or quarantined exactly once, no raw batch is missing from the ledger, every
valid event id is stored, no dead letter is left, and the stored flags and user figures equal a
from-scratch recompute.
"""

from __future__ import annotations

import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from cli.redis_server import RedisProcess, start_redis
from cli.reports import status_table
from cli.services import cli_argv, start_logged
from config.settings import Settings
from harness.fleet import POLL_S, WORKER_LOST, WorkerFleet, stop_process
from harness.invariant import Invariant, check_invariant, invariant_table, settle
from producer.reconcile import account_raw_logs
from store.db import create_reader_engine, create_writer_engine, init_schema, is_sqlite
from store.summaries import ledger_totals

# Short, so that a batch stranded by a killed worker comes back within the run (s).
CHAOS_VISIBILITY_TIMEOUT_S = 10
CHAOS_PUBLISH_RETRY_MAX_S = 2.0
REDIS_DOWN_S = 3.0
WRITER_SEARCH_S = 3.0  # how long a kill waits for a victim inside a transaction before it takes any
PRODUCER_EXIT_TIMEOUT_S = 120.0  # a producer blocked by a Redis outage retries up to this long


def restart_redis(server: RedisProcess, *, down_s: float = REDIS_DOWN_S) -> RedisProcess:
    """kill -9 Redis, leave it down for down_s, start it again on the same port and files."""
    server.process.kill()
    server.process.wait()
    time.sleep(down_s)
    return start_redis(server.workdir, port=server.port, appendonly=True)


# --- the run ------------------------------------------------------------------------------------------


@dataclass
class ChaosLog:
    """What the run did, printed as it happens."""

    console: Console
    t0: float = field(default_factory=time.monotonic)
    pool_kills: int = 0
    main_kills: int = 0
    redis_restarts: int = 0
    worker_exits: int = 0  # workers that died by themselves and were started again

    def say(self, message: str) -> None:
        self.console.print(f"[dim]t+{time.monotonic() - self.t0:6.1f}s[/] {message}", highlight=False)


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


def start_producer(
    settings: Settings, *, rate: float, duration_s: float, seed: int, log: Path
) -> subprocess.Popen[bytes]:
    """`ecomrisk produce` at a steady rate for duration_s, in its own process."""
    argv = cli_argv(
        "produce", f"--rate={rate}", f"--duration={duration_s}", f"--seed={seed}", "--no-progress"
    )
    return start_logged(argv, settings, log)


def inflict(fleet: WorkerFleet, log: ChaosLog, rng: random.Random, *, main: bool) -> None:
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
    if main:
        pid = fleet.kill_main(name)
        fleet.start(name)
        log.main_kills += 1
        log.say(f"kill -9 worker {name} (main pid {pid} and its pool) {when}; restarted")
        return
    fleet.kill_pool_process(victim)
    log.pool_kills += 1
    log.say(f"kill -9 pool process {victim.pid} of worker {name} {when}")


def drive_faults(
    fleet: WorkerFleet,
    server: RedisProcess,
    log: ChaosLog,
    rng: random.Random,
    *,
    duration_s: float,
    kill_every_s: float,
) -> RedisProcess:
    """kill -9 a pool process or a worker in turn, restart Redis half-way; return the live Redis."""
    next_kill, kills = kill_every_s, 0
    while (elapsed := time.monotonic() - log.t0) < duration_s:
        if log.redis_restarts == 0 and elapsed >= duration_s / 2:
            log.say(f"kill -9 Redis (pid {server.process.pid})")
            server = restart_redis(server)
            log.redis_restarts += 1
            log.say(f"Redis is back on port {server.port} (pid {server.process.pid})")
        for name, code in fleet.revive():
            log.worker_exits += 1
            log.say(f"worker {name} exited by itself (code {code}); restarted")
        if elapsed >= next_kill:
            inflict(fleet, log, rng, main=kills % 2 == 1)
            kills += 1
            next_kill = elapsed + kill_every_s * rng.uniform(0.5, 1.5)
        time.sleep(POLL_S)
    return server


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
    console.print(invariant_table(invariant))
    for problem in invariant.problems():
        console.print(f"  [red]{problem}[/]", highlight=False)
    if invariant.ok:
        console.print("[bold green]PASS[/]: nothing lost, nothing stored twice, flags exact.")
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
    server = start_redis(data_dir / "redis", appendonly=True)
    settings = chaos_settings(base, data_dir=data_dir, redis_url=server.url)
    fleet = WorkerFleet(settings, log_dir=data_dir / "logs", concurrency=concurrency)
    producer_log = data_dir / "logs" / "producer.log"
    producer: subprocess.Popen[bytes] | None = None
    log = ChaosLog(console)
    console.print(
        f"chaos: {duration_s:g}s at {rate:g} events/s, {workers} workers x {concurrency} processes, "
        f"kill -9 every ~{kill_every_s:g}s, Redis kill -9 and restart at {duration_s / 2:g}s; "
        f"seed {seed}; data in {data_dir}"
    )
    try:
        for n in range(1, workers + 1):
            fleet.start(f"chaos{n}")
        fleet.wait_ready()
        producer = start_producer(settings, rate=rate, duration_s=duration_s, seed=seed, log=producer_log)
        log.t0 = time.monotonic()
        server = drive_faults(fleet, server, log, rng, duration_s=duration_s, kill_every_s=kill_every_s)
        log.say("load finished; waiting for the producer to flush")
        producer.wait(timeout=PRODUCER_EXIT_TIMEOUT_S)
        log.say("waiting for the queue to drain, then reconcile")
        settled = settle(settings, console)
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
            stop_process(producer)
        fleet.stop()
        server.stop()
    return report(console, log, fleet, invariant, producer_log)
