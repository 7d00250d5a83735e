"""The supervisor restarts what fails and stops what it started: politely, then the whole group."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from cli.redis_server import free_port
from cli.services import Service
from cli.supervisor import RestartPolicy, Supervisor, report_exit, tail
from tests.cli.processes import still_running
from tests.support import REPO_ROOT, wait_until

# A parent deaf to INT and TERM, with a grandchild just as deaf: only KILL works.
DEAF = "import signal; [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)]"
STUBBORN = f"""
import subprocess, sys, time
{DEAF}
child = subprocess.Popen([sys.executable, "-c", "{DEAF}; import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


# Fast restarts for tests: 0.1 s, then 0.2 s, 0.4 s ...
QUICK = RestartPolicy(limit=3, window_s=60.0, first_delay_s=0.1)


def last_line(path: Path) -> str:
    return tail(path, 1).strip()


def recording_console() -> tuple[Console, io.StringIO]:
    """A console whose output the test reads back, without colour codes."""
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


def python_service(name: str, code: str) -> Service:
    return Service(name, (sys.executable, "-c", code))


def test_polite_child_stops_on_the_first_signal(tmp_path: Path) -> None:
    supervisor = Supervisor(stop_timeout_s=10)
    child = supervisor.start(
        python_service("sleeper", "import time; time.sleep(600)"), env={}, log=tmp_path / "s.log"
    )
    assert supervisor.exited() is None
    assert supervisor.stop_all() == []
    assert child.process.returncode == -signal.SIGTERM


# A supervisor in a background job of a non-interactive shell, whose SIGINT is ignored (POSIX)
# and so, inherited, the sleeper's too: it must still stop on the first signal.
IN_THE_BACKGROUND = """
import signal, sys
from pathlib import Path
from cli.services import Service
from cli.supervisor import Supervisor
assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN, "not a background job"
supervisor = Supervisor(stop_timeout_s=30)
child = supervisor.start(
    Service("sleeper", (sys.executable, "-c", "import time; time.sleep(600)")), env={}, log=Path(sys.argv[1])
)
print(supervisor.stop_all(), child.process.returncode)
"""


def test_a_child_stops_on_the_first_signal_whatever_the_parent_inherited(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            "bash",
            "-c",
            '"$0" -c "$1" "$2" & wait $!',
            sys.executable,
            IN_THE_BACKGROUND,
            str(tmp_path / "s.log"),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", str(-signal.SIGTERM)]  # not killed after the timeout


def test_stubborn_group_is_killed_after_the_timeout(tmp_path: Path) -> None:
    supervisor = Supervisor(stop_timeout_s=1)
    log = tmp_path / "stubborn.log"
    supervisor.start(python_service("stubborn", STUBBORN), env={}, log=log)
    printed = wait_until(lambda: last_line(log) if last_line(log).isdigit() else None, what="a pid")
    grandchild = psutil.Process(int(printed))

    assert supervisor.stop_all() == ["stubborn"]

    assert still_running([grandchild]) == []


def test_watch_returns_the_child_that_died_when_no_restart_is_allowed(tmp_path: Path) -> None:
    supervisor = Supervisor(stop_timeout_s=5, restarts=RestartPolicy(limit=0))
    supervisor.start(python_service("sleeper", "import time; time.sleep(600)"), env={}, log=tmp_path / "a")
    supervisor.start(
        python_service("crasher", "print('boom'); raise SystemExit(3)"), env={}, log=tmp_path / "b"
    )
    dead = supervisor.watch()
    assert dead is not None
    assert (dead.name, dead.process.returncode) == ("crasher", 3)
    assert "boom" in tail(dead.log)
    supervisor.stop_all()
    assert all(c.process.poll() is not None for c in supervisor.children)


def test_a_failed_child_is_restarted_and_said_so(tmp_path: Path) -> None:
    console, out = recording_console()
    supervisor = Supervisor(stop_timeout_s=5, restarts=QUICK, console=console)
    marker = tmp_path / "second-run"
    # Fails the first time; the restarted copy finds the marker and keeps running.
    code = f"""
import pathlib, sys, time
marker = pathlib.Path({str(marker)!r})
if not marker.exists():
    marker.touch()
    print("crash", flush=True)
    sys.exit(1)
print("second run", flush=True)
time.sleep(600)
"""
    log = tmp_path / "flaky.log"
    child = supervisor.start(python_service("flaky", code), env={}, log=log)
    first = child.process
    try:

        def restarted() -> bool:
            assert supervisor.tend() is None  # one failure is well within the limit
            return "second run" in log.read_text()

        wait_until(restarted, timeout_s=30, interval_s=0.05, what="the restart")
        assert child.process is not first and child.process.poll() is None
        assert first.returncode == 1
        assert len(child.restarted_at) == 1
        printed = out.getvalue()
        assert "flaky exited unexpectedly (exit code 1); restarting it in 0.1s" in printed
        assert "restart 1 of at most 3 within 60s" in printed
        assert log.read_text().count("--- ecomrisk up started flaky") == 2  # one log, both runs
    finally:
        supervisor.stop_all()
    assert child.process.returncode == -signal.SIGTERM  # the restarted copy is the one stopped


def test_a_child_failing_past_the_limit_is_returned_and_reported(tmp_path: Path) -> None:
    console, out = recording_console()
    supervisor = Supervisor(stop_timeout_s=5, restarts=QUICK, console=console)
    supervisor.start(python_service("sleeper", "import time; time.sleep(600)"), env={}, log=tmp_path / "a")
    log = tmp_path / "crasher.log"
    supervisor.start(python_service("crasher", "print('boom'); raise SystemExit(3)"), env={}, log=log)
    started = time.monotonic()
    try:
        dead = supervisor.watch()
        took = time.monotonic() - started
    finally:
        supervisor.stop_all()

    assert dead is not None and dead.name == "crasher"
    assert len(dead.restarted_at) == QUICK.limit
    assert took >= 0.1 + 0.2 + 0.4  # the backoff was waited out
    assert log.read_text().count("boom") == QUICK.limit + 1
    printed = out.getvalue()
    assert [f"restart {n} of at most 3" in printed for n in (1, 2, 3)] == [True] * 3
    assert "restart 4" not in printed
    assert "sleeper" not in printed  # the healthy child was left alone
    report_exit(dead, console)
    assert "crasher exited unexpectedly (exit code 3) after 3 restarts; stopping the rest." in out.getvalue()
    assert "boom" in out.getvalue().rsplit("stopping the rest.", 1)[1]  # the end of its log


def test_restarts_older_than_the_window_are_forgotten(tmp_path: Path) -> None:
    policy = RestartPolicy(limit=1, window_s=0.5, first_delay_s=0.05)
    console, out = recording_console()
    supervisor = Supervisor(stop_timeout_s=5, restarts=policy, console=console)
    # Lives longer than the window, then fails: each failure starts a fresh budget of one.
    supervisor.start(
        python_service("slow", "import time; time.sleep(0.8); raise SystemExit(2)"),
        env={},
        log=tmp_path / "slow.log",
    )

    def restarted_twice() -> bool:
        assert supervisor.tend() is None  # never past the limit of one per window
        return out.getvalue().count("restart 1 of at most 1") >= 2

    try:
        wait_until(restarted_twice, timeout_s=30, interval_s=0.05, what="two restarts")
    finally:
        supervisor.stop_all()


def test_a_child_that_finishes_with_code_0_is_not_restarted(tmp_path: Path) -> None:
    console, out = recording_console()
    supervisor = Supervisor(stop_timeout_s=5, restarts=QUICK, console=console)
    child = supervisor.start(python_service("producer", "print('done')"), env={}, log=tmp_path / "p.log")
    child.process.wait()
    try:
        for _ in range(5):
            assert supervisor.tend() is None
            time.sleep(0.1)
    finally:
        supervisor.stop_all()
    assert child.finished and not child.restarted_at
    assert out.getvalue().count("producer finished (exit code 0); not restarted.") == 1


def test_a_stop_request_ends_the_watch(tmp_path: Path) -> None:
    supervisor = Supervisor(stop_timeout_s=5)
    supervisor.start(python_service("sleeper", "import time; time.sleep(600)"), env={}, log=tmp_path / "a")
    supervisor.stop_requested.set()
    assert supervisor.watch() is None
    supervisor.stop_all()


def test_wait_ready_returns_once_the_port_answers(tmp_path: Path) -> None:
    port = free_port()
    server = Service(
        "http",
        (sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"),
        ready_at=("127.0.0.1", port),
    )
    supervisor = Supervisor(stop_timeout_s=5)
    supervisor.start(server, env={}, log=tmp_path / "http.log")
    try:
        assert supervisor.wait_ready(timeout_s=30) is None
    finally:
        supervisor.stop_all()


def test_wait_ready_gives_up_on_a_silent_port(tmp_path: Path) -> None:
    silent = Service(
        "silent", (sys.executable, "-c", "import time; time.sleep(600)"), ready_at=("127.0.0.1", free_port())
    )
    supervisor = Supervisor(stop_timeout_s=5)
    supervisor.start(silent, env={}, log=tmp_path / "silent.log")
    try:
        with pytest.raises(TimeoutError, match="silent did not answer"):
            supervisor.wait_ready(timeout_s=1)
    finally:
        supervisor.stop_all()
