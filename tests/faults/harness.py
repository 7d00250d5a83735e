"""Pieces the fault tests share: a Redis each test owns (and may restart), settings with short timeouts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.redis_server import RedisProcess, free_port, start_redis
from config.settings import Settings
from store.db import create_writer_engine, init_schema

# Short, so that a batch stranded by a killed worker is redelivered within a test (s).
VISIBILITY_TIMEOUT_S = 10
# A worker that reconnects to Redis but takes nothing is restarted well within a settle timeout.
WORKER_STALL_S = 15.0


@dataclass
class PrivateRedis:
    """A real redis-server owned by one test, stopped and started again on the same port."""

    workdir: Path
    appendonly: bool = True
    port: int = field(default_factory=free_port)
    server: RedisProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.server = start_redis(self.workdir, port=self.port, appendonly=self.appendonly)

    def stop(self) -> None:
        """Stop as an operator would (SIGTERM): with appendonly, Redis writes its file first."""
        if self.server is not None:
            self.server.stop()
            self.server = None

    def restart(self, *, down_s: float) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


def fault_settings(tmp_path: Path, redis_url: str, **overrides: Any) -> Settings:
    """Settings on this Redis and a SQLite file in tmp_path (or database_url), with short timeouts."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": f"sqlite:///{tmp_path / 'faults.db'}",
        "redis_url": redis_url,
        "queue_name": "faults",
        "visibility_timeout_s": VISIBILITY_TIMEOUT_S,
        "publish_retry_max_s": 1.0,
        "worker_stall_s": WORKER_STALL_S,
        "batch_size": 500,
        **overrides,
    }
    settings = Settings(**values)
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)  # readers and checks find the tables from the start
    engine.dispose()
    return settings
