"""Helpers for tests that run real processes (Celery workers, PostgreSQL schemas) and polling."""

from __future__ import annotations

import base64
import itertools
import os
import secrets
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kombu.compression import decompress
from kombu.serialization import loads
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from cli.services import child_env
from config.settings import Settings, hide_password

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parent.parent


def task_message_body(message: dict[str, Any]) -> Any:
    """The decoded body of a kombu message as kombu's Redis transport stores it: [args, kwargs, embed]."""
    body = base64.b64decode(message["body"])
    if compression := message["headers"].get("compression"):
        body = decompress(body, compression)
    return loads(body, message["content-type"], message["content-encoding"], accept=None)


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment for a subprocess that must see exactly these settings, importing this checkout."""
    return child_env(settings, os.environ) | {"PYTHONPATH": str(REPO_ROOT)}


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
        "workers",
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


BACKENDS = ("sqlite", "postgresql")
# The PostgreSQL the tests use: this URL if set, else the first of the defaults that answers.
POSTGRES_URL_VARIABLE = "ECOMRISK_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


def in_ci() -> bool:
    """True under CI, where a missing PostgreSQL fails the PostgreSQL tests instead of skipping them."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def find_postgres() -> tuple[str | None, list[str]]:
    """The first PostgreSQL URL that accepts a connection, and why the others did not."""
    configured = os.environ.get(POSTGRES_URL_VARIABLE)
    errors: list[str] = []
    for url in [configured] if configured else DEFAULT_POSTGRES_URLS:
        engine = create_engine(url, connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return url, errors
        except SQLAlchemyError as exc:
            errors.append(f"{hide_password(url)}: {exc.__cause__ or exc}")
        finally:
            engine.dispose()
    return None, errors


@dataclass
class PostgresServer:
    """A reachable PostgreSQL database in which every test gets a schema of its own."""

    url: str
    prefix: str = field(default_factory=lambda: f"ecomrisk_test_{secrets.token_hex(4)}")
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def _admin(self, *statements: str) -> None:
        engine = create_engine(self.url)
        try:
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '20s'"))
                for statement in statements:
                    conn.execute(text(statement))
        finally:
            engine.dispose()

    @contextmanager
    def schema(self) -> Iterator[str]:
        """A URL whose search_path is a new, empty schema, dropped again afterwards."""
        name = f"{self.prefix}_{next(self._numbers)}"
        self._admin(f"CREATE SCHEMA {name}")
        try:
            yield (
                make_url(self.url)
                .update_query_dict({"options": f"-csearch_path={name}"})
                .render_as_string(hide_password=False)
            )
        finally:
            try:
                self._admin(f"DROP SCHEMA IF EXISTS {name} CASCADE")
            except SQLAlchemyError as exc:  # a leaked connection still holds a lock: leave it
                warnings.warn(f"could not drop schema {name}: {exc}", stacklevel=1)
