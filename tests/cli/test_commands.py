"""Commands refuse a configuration they cannot run with: exit code 2 and a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.errors import NO_BROKER

ECOMRISK = str(Path(sys.executable).with_name("ecomrisk"))


def run_cli(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `ecomrisk` with only these ECOMRISK_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOMRISK_")}
    env.update({f"ECOMRISK_{k.upper()}": v for k, v in settings.items()})
    env["ECOMRISK_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [ECOMRISK, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("command", "host_var", "auth_var"),
    [
        ("flower", "flower_host", "ECOMRISK_FLOWER_BASIC_AUTH"),
        ("dashboard", "dashboard_host", "ECOMRISK_DASHBOARD_AUTH"),
    ],
)
def test_non_local_host_without_auth_is_refused(
    tmp_path: Path, command: str, host_var: str, auth_var: str
) -> None:
    result = run_cli(tmp_path, command, redis_url="redis://127.0.0.1:1/0", **{host_var: "0.0.0.0"})
    assert result.returncode == 2
    assert "Invalid configuration" in result.stderr
    assert f"{host_var} is not local: set {auth_var}=user:password first" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_bad_value_names_its_variable(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "up", batch_size="0")
    assert result.returncode == 2
    assert "ECOMRISK_BATCH_SIZE" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("args", [["worker"], ["flower"], ["produce"], ["import", "events.ndjson"]])
def test_broker_commands_without_redis_url_explain_what_to_do(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "events.ndjson").write_text("")
    result = run_cli(tmp_path, *args)
    assert result.returncode == 2
    assert NO_BROKER in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("up", "worker", "flower", "dashboard", "produce", "import"):
        assert command in result.stdout
