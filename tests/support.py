"""Helpers for tests that run real processes: Celery workers and polling."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from config.settings import Settings

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parent.parent


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment for a subprocess that must see exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOMRISK_")}
    for name, value in settings.model_dump(exclude_unset=True).items():
        if value is not None:
            env[f"ECOMRISK_{name.upper()}"] = str(value)
    env["ECOMRISK_DATABASE_URL"] = settings.resolved_database_url
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


@contextmanager
def celery_worker(
    settings: Settings, *, concurrency: int = 1, name: str = "w1", log_path: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a real `celery worker` subprocess (prefork pool, -E) for the duration of the block."""
    log_path = log_path or settings.data_dir / f"worker-{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "worker",
        "-E",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        "--pool=prefork",
        "-Q",
        settings.queue_name,
        "-n",
        f"{name}@%h",
        "--without-mingle",
        "--without-gossip",
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            env=settings_env(settings),
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(
    probe: Callable[[], T | None], *, timeout_s: float = 120.0, interval_s: float = 0.2, what: str = ""
) -> T:
    """Poll probe until it returns a truthy value; fail with `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what or probe}; last={last!r}")


# CI clones the repo elsewhere with shared/ beside it, as here.
REES46_SAMPLE = REPO_ROOT.parent / "shared" / "datasets" / "rees46_2019-10_first5k.csv"
