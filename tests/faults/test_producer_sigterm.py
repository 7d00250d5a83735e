"""`ecomrisk produce` stops on SIGTERM as on Ctrl-C: partial batch flushed, summary printed, exit 0."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.services import child_env, cli_argv
from harness.fleet import WorkerFleet
from producer.reconcile import count_event_lines, iter_raw_batches
from tests.faults.harness import PrivateRedis, fault_settings
from tests.faults.invariant import assert_invariant
from tests.support import REPO_ROOT, wait_until

pytestmark = pytest.mark.integration

COUNT = 60_000  # unpaced: about ten seconds of publishing, stopped after the first few batches
PUBLISHED = re.compile(r"Published ([\d,]+) batches, ([\d,]+) lines from ([\d,]+) events")


# SQLite only: the producer never opens the database, so PostgreSQL would add nothing here.
def test_sigterm_flushes_the_partial_batch_and_exits_zero(
    tmp_path: Path, private_redis: PrivateRedis, fleet_factory: Callable[..., WorkerFleet]
) -> None:
    settings = fault_settings(tmp_path, private_redis.url)
    fleet = fleet_factory(settings, concurrency=2)
    fleet.start("t1")
    producer = subprocess.Popen(
        cli_argv("produce", f"--count={COUNT}", "--seed=5", "--no-progress"),
        env=child_env(settings, os.environ),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: len(list(iter_raw_batches(settings.raw_dir))) >= 4, timeout_s=60, what="a few batches"
        )
        producer.send_signal(signal.SIGTERM)  # what docker stop, systemd and kill send
        out, err = producer.communicate(timeout=60)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.communicate()
    assert producer.returncode == 0, err[-2000:]
    assert "interrupted" in out
    match = PUBLISHED.search(out)
    assert match, out
    batches, lines, events = (int(g.replace(",", "")) for g in match.groups())
    assert 0 < events < COUNT  # stopped early, after a summary of what went out
    raw = list(iter_raw_batches(settings.raw_dir))
    # Every published line is in the raw log; only a signal that lands between writing a batch's
    # raw file and enqueueing it leaves one batch more there, for reconcile.
    assert len(raw) in (batches, batches + 1)
    assert sum(count_event_lines(p) for p in raw) >= lines
    fleet.wait_ready()
    assert_invariant(settings)
