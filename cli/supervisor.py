"""`ecomrisk up`: run the stack as child processes, restart those that fail, stop them cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import redis
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.redis_server import RedisProcess, start_redis
from cli.services import Service, child_env, log_path, stack_services
from config.settings import Settings, hide_password
from store.db import open_writer

READY_TIMEOUT_S = 90.0  # first start of the dashboard imports pandas, plotly and dash
POLL_S = 0.2
LOG_TAIL_LINES = 20
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Not SIGINT: a background job of a non-interactive shell inherits SIGINT ignored (POSIX), and
# so does every child it starts before installing a handler. Nobody inherits SIGTERM ignored,
# and every child handles it: Celery makes a warm shutdown, the producer flushes its batch,
# Flower and the dashboard exit.
CHILD_STOP_SIGNAL = signal.SIGTERM


@dataclass(frozen=True)
class RestartPolicy:
    """How often a child that fails is started again before `up` gives up on the stack."""

    limit: int = 5  # restarts of one child within window_s
    window_s: float = 60.0
    first_delay_s: float = 1.0  # doubled for each restart of that child still in the window

    def delay_s(self, recent: int) -> float:
        """Seconds to wait before the next restart of a child restarted `recent` times lately."""
        return self.first_delay_s * 2.0**recent


@dataclass
class Child:
    """A started service: its process leads a process group of its own."""

    service: Service
    process: subprocess.Popen[bytes]
    log: Path
    env: Mapping[str, str]
    restarted_at: deque[float] = field(default_factory=deque)  # monotonic, within the window
    restart_due: float | None = None  # monotonic time of a pending restart
    finished: bool = False  # exited with code 0 on its own: done, not restarted

    @property
    def name(self) -> str:
        return self.service.name

    def recent_restarts(self, now: float, window_s: float) -> int:
        """Restarts within the last window_s, forgetting older ones."""
        while self.restarted_at and self.restarted_at[0] <= now - window_s:
            self.restarted_at.popleft()
        return len(self.restarted_at)


def describe_exit(code: int | None) -> str:
    """'exit code 1' or, for a negative Popen code, 'killed by SIGKILL'."""
    if code is not None and code < 0:
        with suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def answers(host: str, port: int) -> bool:
    """True when host:port accepts a TCP connection now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, or '' when there is none."""
    try:
        with path.open(errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except OSError:
        return ""


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send sig to every process left in a process group, if any is left."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Supervisor:
    """Starts children in their own process groups, restarts failed ones, stops them TERM-wait-KILL."""

    def __init__(
        self,
        *,
        stop_timeout_s: float,
        restarts: RestartPolicy | None = None,
        console: Console | None = None,
    ) -> None:
        self.stop_timeout_s = stop_timeout_s
        self.restarts = restarts or RestartPolicy()
        self.console = console or Console()
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self.stop_signal: signal.Signals | None = None
        self._force = threading.Event()

    @contextmanager
    def signals_handled(self) -> Iterator[None]:
        """While inside, SIGINT and SIGTERM request a stop; a second one skips the wait."""
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only set flags: printing from a handler can re-enter a half-written stdout buffer.
        if self.stop_requested.is_set():
            self._force.set()
        self.stop_signal = signal.Signals(signum)
        self.stop_requested.set()

    def start(self, service: Service, *, env: Mapping[str, str], log: Path) -> Child:
        """Start one service with its output appended to log."""
        child = Child(service=service, process=spawn(service, env=env, log=log), log=log, env=env)
        self.children.append(child)
        return child

    def exited(self) -> Child | None:
        """The first child that is no longer running, if any."""
        return next((c for c in self.children if c.process.poll() is not None), None)

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> Child | None:
        """Block until every child's port answers; return a child that exited meanwhile."""
        pending = [c for c in self.children if c.service.ready_at]
        deadline = time.monotonic() + timeout_s
        while pending and not self.stop_requested.is_set():
            dead = self.exited()
            if dead is not None:
                return dead
            pending = [c for c in pending if c.service.ready_at and not answers(*c.service.ready_at)]
            if pending and time.monotonic() > deadline:
                names = ", ".join(c.name for c in pending)
                raise TimeoutError(f"{names} did not answer within {timeout_s:g}s")
            self.stop_requested.wait(POLL_S)
        return None

    def watch(self) -> Child | None:
        """Block until a stop is requested (None) or a child fails past its restarts (that child)."""
        while not self.stop_requested.wait(POLL_S):
            failed = self.tend()
            if failed is not None:
                return failed
        return None

    def tend(self) -> Child | None:
        """Schedule or make due restarts of failed children; return one that used up its restarts."""
        now = time.monotonic()
        for child in self.children:
            code = child.process.poll()
            if code is None or child.finished:
                continue
            if child.restart_due is not None:
                if now >= child.restart_due:
                    self.restart(child)
                continue
            if code == 0:
                child.finished = True
                self.console.print(f"{child.name} finished (exit code 0); not restarted.")
                continue
            # Whatever the dead leader left in its group (a worker's pool) goes now.
            signal_group(child.process.pid, signal.SIGKILL)
            recent = child.recent_restarts(now, self.restarts.window_s)
            if recent >= self.restarts.limit:
                return child
            delay = self.restarts.delay_s(recent)
            child.restart_due = now + delay
            self.console.print(
                f"[yellow]{child.name} exited unexpectedly ({describe_exit(code)}); restarting it in"
                f" {delay:g}s[/] (restart {recent + 1} of at most {self.restarts.limit}"
                f" within {self.restarts.window_s:g}s). Log: {escape(str(child.log))}"
            )
        return None

    def restart(self, child: Child) -> None:
        """Start a failed child again, with the same command, environment and log."""
        child.process = spawn(child.service, env=child.env, log=child.log)
        child.restarted_at.append(time.monotonic())
        child.restart_due = None

    def stop_all(self) -> list[str]:
        """Stop every child, newest first; return the names that had to be killed."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                # To the leader only: a worker stops its own pool, which a signal to every
                # pool process would cut short.
                child.process.send_signal(CHILD_STOP_SIGNAL)
        deadline = time.monotonic() + self.stop_timeout_s
        while (
            any(c.process.poll() is None for c in self.children)
            and time.monotonic() < deadline
            and not self._force.is_set()
        ):
            time.sleep(0.1)
        killed = []
        for child in self.children:
            if child.process.poll() is None:
                killed.append(child.name)
            # Whatever is left in the group (a stuck leader, orphaned pool children) goes now.
            signal_group(child.process.pid, signal.SIGKILL)
            child.process.wait()
        return killed


def spawn(service: Service, *, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Run service with its output appended to log, in a new session of its own."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        out.write(f"--- ecomrisk up started {service.name} at {stamp} ---\n".encode())
        out.flush()
        return subprocess.Popen(
            service.argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Own session and process group: the terminal's Ctrl-C reaches only `up`,
            # which stops children in order, and a group kill reaches pool children too.
            start_new_session=True,
        )


def prepare_database(settings: Settings) -> None:
    """Create missing tables, so the read-only dashboard has a database from the start."""
    open_writer(settings).dispose()


def summary_table(settings: Settings, children: list[Child], redis_server: RedisProcess | None) -> Table:
    """Where everything is: URLs, process ids and log files."""
    table = Table(title="ecomrisk is up", title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("where", overflow="fold")
    table.add_column("pid", justify="right")
    table.add_column("log", overflow="fold")
    redis_url = hide_password(settings.redis_url or "")
    if redis_server is not None:
        table.add_row(
            "redis",
            f"{redis_url} (private, append-only file in {redis_server.workdir})",
            str(redis_server.process.pid),
            str(redis_server.workdir / "redis.log"),
        )
    else:
        table.add_row("redis", redis_url, "", "")
    for child in children:
        table.add_row(child.name, child.service.where, str(child.process.pid), str(child.log))
    table.add_row("database", hide_password(settings.resolved_database_url), "", "")
    table.add_row("raw logs", str(settings.raw_dir), "", "")
    return table


def warn_if_unreachable(url: str, console: Console) -> None:
    """Say so when an external Redis does not answer; workers keep retrying it."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        console.print(
            f"[yellow]warning:[/] Redis at {hide_password(url)} does not answer ({escape(str(exc))}); "
            "workers and the producer keep retrying it."
        )


def report_exit(child: Child, console: Console) -> None:
    """Say which child died for good, with the end of its log."""
    restarts = len(child.restarted_at)
    again = f" after {restarts} restarts" if restarts else ""
    console.print(
        f"[red]{child.name} exited unexpectedly ({describe_exit(child.process.returncode)}){again};"
        f" stopping the rest.[/] Last lines of {child.log}:"
    )
    console.print(tail(child.log), markup=False, highlight=False, end="")


def run_stack(
    settings: Settings,
    *,
    with_producer: bool,
    stop_timeout_s: float,
    inherited_env: Mapping[str, str],
    console: Console,
) -> int:
    """Run Redis (unless configured), worker, Flower, dashboard and producer; return an exit code."""
    # Absolute, so that a child started from anywhere sees the same files.
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    supervisor = Supervisor(stop_timeout_s=stop_timeout_s, console=console)
    redis_server: RedisProcess | None = None
    with supervisor.signals_handled():
        try:
            if not settings.redis_url:
                redis_server = start_redis(settings.data_dir / "redis", appendonly=True)
                settings = settings.model_copy(update={"redis_url": redis_server.url})
            else:
                warn_if_unreachable(settings.redis_url, console)
            prepare_database(settings)
            env = child_env(settings, inherited_env)
            for service in stack_services(settings, with_producer=with_producer):
                if supervisor.stop_requested.is_set():
                    break
                supervisor.start(service, env=env, log=log_path(settings, service.name))
            dead = supervisor.wait_ready()
            if dead is None and not supervisor.stop_requested.is_set():
                console.print(summary_table(settings, supervisor.children, redis_server))
                console.print("Ctrl-C stops everything.")
                dead = supervisor.watch()
            if dead is not None:
                report_exit(dead, console)
                return 1
            name = supervisor.stop_signal.name if supervisor.stop_signal else "signal"
            console.print(f"{name}: stopping.")
            return 0
        except (TimeoutError, RuntimeError, OSError) as exc:
            console.print(f"[red]ecomrisk up failed:[/] {escape(str(exc))}")
            for child in supervisor.children:
                console.print(f"  {child.name} log: {child.log}", markup=False, highlight=False)
            return 1
        finally:
            killed = supervisor.stop_all()
            if killed:
                console.print(
                    f"[yellow]killed after {stop_timeout_s:g}s without stopping:[/] {', '.join(killed)}"
                )
            if redis_server is not None:
                redis_server.stop()  # last: the others may still flush to it while stopping
            console.print("All processes stopped.")
