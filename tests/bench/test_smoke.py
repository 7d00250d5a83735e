"""`ecomrisk bench --smoke` end to end: every figure is produced and well-formed, never how fast it is."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cli.services import ENV_PREFIX, cli_argv
from tests.support import PostgresServer

pytestmark = pytest.mark.integration

CALLBACKS = {"kpis", "pipeline", "timeline", "activity", "quality", "alerts", "risk_page_top", "drill_down"}


def run_bench(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """`ecomrisk bench --smoke` with no ECOMRISK_* setting; the JSON figures and the printed output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["COLUMNS"] = "160"
    output = tmp_path / "bench.json"
    result = subprocess.run(
        cli_argv("bench", "--smoke", f"--output={output}", *args),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed[-6000:]

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON figures")

    return json.loads(output.read_text(), parse_constant=refuse), printed


def positive(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def assert_well_formed(result: dict[str, Any], *, workers: list[int], table_sizes: list[int]) -> None:
    assert result["kind"] == "pipeline" and result["command"].startswith("ecomrisk bench ")
    machine = result["machine"]
    assert positive(machine["cores"]) and positive(machine["batch_size"]) and positive(machine["prefetch"])
    assert machine["workers"] == workers and machine["cpu"] and machine["database_url"]

    runs = result["throughput"]
    assert [(r["workers"], r["table_size"]) for r in runs] == [(w, t) for w in workers for t in table_sizes]
    for run in runs:
        assert run["ledger"]["ok"], run["ledger"]["checks"]
        for key in ("lines", "seconds", "lines_per_s", "stored_per_s", "ratio", "publish_s"):
            assert positive(run[key]), (key, run)
        assert run["stored_after"] == run["table_size"] + run["ledger"]["stored_new"]
        assert run["ceiling"]["rows"] == run["ledger"]["stored_new"]
        assert positive(run["ceiling"]["rows_per_s"]) and run["ceiling"]["table_size"] == run["table_size"]
        assert len(run["segments"]) == 5
        assert all(s["lines_per_s"] is None or positive(s["lines_per_s"]) for s in run["segments"])
        (worker,) = run["memory"]["workers"].values()
        assert positive(worker["main_mb"]) and len(worker["pool_mb"]) == run["workers"]
        assert all(positive(mb) for mb in worker["pool_mb"]) and positive(run["memory"]["producer_mb"])
        cpu = run["cpu"]["us_per_line"]
        assert set(cpu) == {"worker_main", "worker_pool", "broker", "producer", "total"}
        # CPU clocks tick every 10 ms: in a smoke run the broker or main process may show none.
        assert all(us >= 0 for us in cpu.values()) and positive(cpu["worker_pool"])
        assert positive(cpu["total"]) and positive(run["cpu"]["cores_busy"])
        assert cpu["total"] == pytest.approx(sum(us for name, us in cpu.items() if name != "total"), abs=0.05)

    naive = result["naive"]
    assert naive["lines"] == 200 and positive(naive["lines_per_s"]) and positive(naive["speedup"])
    assert 0 < naive["event_rows"] + naive["quarantined_rows"] <= naive["lines"]

    latency = result["latency"]
    assert latency["ledger"]["ok"] and positive(latency["achieved_rate"])
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert positive(latency["lines_measured"]) and latency["measures"]
    # What a live producer flushes in 0.25 s at the offered rate, never more than a full batch.
    offered_per_flush = round(latency["offered_rate"] * 0.25)
    assert latency["batch_size"] == min(result["machine"]["batch_size"], offered_per_flush)

    for row in result["floors"]:
        assert row["figure"] and row["unit"] and row["ok"] in (True, False, None)
        assert row["value"] is None or isinstance(row["value"], int | float)
    assert positive(result["total_s"])


def test_smoke_run_on_sqlite_produces_every_figure(tmp_path: Path) -> None:
    result, printed = run_bench(tmp_path, "--workers=2")
    assert_well_formed(result, workers=[2], table_sizes=[0, 5_000])
    (dashboard,) = result["dashboard"]
    assert dashboard["events"] == 20_000 and set(dashboard["p95_ms"]) >= CALLBACKS
    assert all(positive(ms) for ms in dashboard["p95_ms"].values())
    # The API against a real `ecomrisk api` process on the same store: one user, pages of users.
    assert set(dashboard["api_p95_ms"]) == set(dashboard["api_p50_ms"]) >= {"user", "users_page"}
    assert all(0 < dashboard["api_p50_ms"][k] <= ms for k, ms in dashboard["api_p95_ms"].items())
    floors = {row["figure"] for row in result["floors"]}
    assert "API p95, GET /api/v1/users/{id}, 20,000 events" in floors
    assert "speed-up over the naive baseline" in floors and "worker peak RSS, largest process" in floors
    assert "Figures against the floors" in printed and "Figures written to" in printed


def test_smoke_scaling_run_on_postgresql_uses_fresh_schemas(tmp_path: Path, postgres: PostgresServer) -> None:
    result, _ = run_bench(
        tmp_path, "--workers=1,2", "--table-size=0", "--dashboard-events=0", f"--database-url={postgres.url}"
    )
    assert_well_formed(result, workers=[1, 2], table_sizes=[0])
    assert result["dashboard"] == [] and result["machine"]["postgresql"]
    assert all("COPY" in run["ceiling"]["method"] for run in result["throughput"])
