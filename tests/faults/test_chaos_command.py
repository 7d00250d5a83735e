"""`ecomrisk chaos` end to end, shortened: kill -9 of workers and a Redis restart, then PASS."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cli.services import ENV_PREFIX, cli_argv
from tests.support import REPO_ROOT

pytestmark = pytest.mark.integration


def test_chaos_for_twenty_seconds_passes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["COLUMNS"] = "120"
    result = subprocess.run(
        cli_argv("chaos", "--duration=20", "--kill-every=3", f"--data-dir={tmp_path / 'chaos'}"),
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "PASS" in result.stdout and "FAIL" not in result.stdout
    assert "kill -9 Redis" in result.stdout and "Redis is back" in result.stdout
    assert "kill -9 pool process" in result.stdout and "kill -9 worker" in result.stdout
