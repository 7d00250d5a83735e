"""The supervisor stops what it started: politely first, then the whole process group."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import psutil
import pytest

from cli.redis_server import free_port
from cli.services import Service
from cli.supervisor import Supervisor, tail
from tests.cli.processes import still_running
from tests.support import wait_until

# A parent deaf to INT and TERM, with a grandchild just as deaf: only KILL works.
DEAF = "import signal; [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)]"
STUBBORN = f"""
import subprocess, sys, time
{DEAF}
child = subprocess.Popen([sys.executable, "-c", "{DEAF}; import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


def last_line(path: Path) -> str:
    return tail(path, 1).strip()


def python_service(name: str, code: str) -> Service:
    return Service(name, (sys.executable, "-c", code))


def test_polite_child_stops_on_the_first_signal(tmp_path: Path) -> None:
    supervisor = Supervisor(stop_timeout_s=10)
    child = supervisor.start(
        python_service("sleeper", "import time; time.sleep(600)"), env={}, log=tmp_path / "s.log"
    )
    assert supervisor.exited() is None
    assert supervisor.stop_all() == []
    assert child.process.returncode == -signal.SIGINT  # Python's KeyboardInterrupt exit


def test_stubborn_group_is_killed_after_the_timeout(tmp_path: Path) -> None:
    supervisor = Supervisor(stop_timeout_s=1)
    log = tmp_path / "stubborn.log"
    supervisor.start(python_service("stubborn", STUBBORN), env={}, log=log)
    printed = wait_until(lambda: last_line(log) if last_line(log).isdigit() else None, what="a pid")
    grandchild = psutil.Process(int(printed))

    assert supervisor.stop_all() == ["stubborn"]

    assert still_running([grandchild]) == []


def test_watch_returns_the_child_that_died(tmp_path: Path) -> None:
    supervisor = Supervisor(stop_timeout_s=5)
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
