"""`ecomrisk bench`: benchmarks that print figures; never timed tests."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from config.settings import Settings

DASHBOARD_FLOOR_MS = 150.0


def bench_dashboard(
    settings: Settings, *, events: int, users: int, repeats: int, workdir: Path | None = None
) -> dict[str, Any]:
    """Seed a fresh SQLite file with `events` events and time every refresh callback (p95, ms)."""
    from dash_app.bench import measure_refresh, seed_synthetic

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        bench_settings = settings.model_copy(update={"database_url": url, "redis_url": None})
        started = time.perf_counter()
        seeded = seed_synthetic(url, events=events, users=users)
        seed_s = time.perf_counter() - started
        p95 = measure_refresh(bench_settings, repeats=repeats)
    return {
        "kind": "dashboard",
        "events": events,
        "users": users,
        "repeats": repeats,
        "seeded": seeded,
        "seed_s": round(seed_s, 1),
        "p95_ms": p95,
        "floor_ms": DASHBOARD_FLOOR_MS,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
    }


def print_dashboard(result: dict[str, Any], console: Console) -> None:
    """One row per refresh callback, against the floor."""
    table = Table(
        title=f"Dashboard refresh, p95 server time, {result['events']:,} events, "
        f"{result['users']:,} users, {result['repeats']} repeats"
    )
    table.add_column("callback")
    table.add_column("p95 ms", justify="right")
    table.add_column(f"<= {result['floor_ms']:.0f} ms")
    for name, ms in result["p95_ms"].items():
        table.add_row(name, f"{ms:.1f}", "yes" if ms <= result["floor_ms"] else "NO")
    console.print(table)


def write_result(result: dict[str, Any], path: Path) -> None:
    """Keep the figures as JSON beside the printed table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
