"""`ecomrisk chaos` end to end, shortened: kill -9 of workers and a Redis restart, then PASS."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cli.services import ENV_PREFIX, cli_argv
from config.settings import Settings
from contract.wire import RawBatch
from store.db import create_writer_engine, init_schema
from tests.support import REPO_ROOT
from workers.ingest import ingest_batch

pytestmark = pytest.mark.integration


def run_chaos(
    data_dir: Path, *args: str, database_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`ecomrisk chaos` with no ECOMRISK_* setting but the database URL, if given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["COLUMNS"] = "120"
    if database_url is not None:
        env[f"{ENV_PREFIX}DATABASE_URL"] = database_url
    return subprocess.run(
        cli_argv("chaos", *args, f"--data-dir={data_dir}"),
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def assert_passed(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "PASS" in result.stdout and "FAIL" not in result.stdout
    assert "kill -9 Redis" in result.stdout and "Redis is back" in result.stdout
    assert "kill -9 pool process" in result.stdout and "kill -9 worker" in result.stdout
    # The load was staged first and offered at its rate; the kills cut batches in flight.
    assert "before the clock starts" in result.stdout and "lines/s offered" in result.stdout
    assert "kills cut a batch in flight" in result.stdout and "batches in flight: " in result.stdout


def test_chaos_for_twenty_seconds_passes(tmp_path: Path) -> None:
    assert_passed(run_chaos(tmp_path / "chaos", "--duration=20", "--kill-every=3"))


# A full run on PostgreSQL takes 27-57 s here (the worker kill strands a batch for the visibility
# timeout); the fault tests run each of its faults on PostgreSQL, so this only proves the URL is used.
def test_chaos_uses_the_postgresql_of_the_settings_and_refuses_one_in_use(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url)
    engine = create_writer_engine(postgres_url)
    init_schema(engine)
    ingest_batch(engine, RawBatch("earlier", "{}", "test"), settings=settings)
    engine.dispose()
    result = run_chaos(tmp_path / "chaos", "--duration=5", database_url=postgres_url)
    assert result.returncode == 1, (result.stdout + result.stderr)[-3000:]
    assert "the database holds 1 batches; chaos needs an empty one" in result.stdout
    assert not (tmp_path / "chaos" / "redis").exists()  # refused before starting anything
