"""Fault-injection fixtures: a private Redis per test and worker fleets that are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from harness.fleet import WorkerFleet
from tests.faults.harness import PrivateRedis


@pytest.fixture()
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private Redis with an append-only file, stopped at the end of the test."""
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def fleet_factory(tmp_path: Path) -> Iterator[Callable[..., WorkerFleet]]:
    """Build worker fleets (logs in tmp_path/logs); every one is stopped at the end."""
    fleets: list[WorkerFleet] = []

    def make(settings: Settings, *, concurrency: int = 2) -> WorkerFleet:
        fleet = WorkerFleet(settings, log_dir=tmp_path / "logs", concurrency=concurrency)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.stop(timeout_s=15)
