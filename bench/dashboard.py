"""Dashboard timings of `ecomrisk bench`: p95 server time of every refresh callback."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from config.settings import Settings
from contract.wire import now_ms
from dash_app.callbacks import REGIONS, Deps, refresh_drill, serve_risk_page
from dash_app.probes import PipelineProbe
from dash_app.queries import RiskQuery, fetch_kpis, fetch_risk_page
from store.db import create_reader_engine


def _p95_ms(work: Callable[[], Any], repeats: int) -> float:
    work()  # warm-up: imports, plan caches, first probe
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return round(float(np.percentile(samples, 95)), 2)


def measure_refresh(settings: Settings, *, repeats: int = 20) -> dict[str, float]:
    """p95 server-side time (ms) of each refresh callback's query + figure work."""
    engine = create_reader_engine(settings.resolved_database_url)
    deps = Deps(engine=engine, settings=settings, probe=PipelineProbe(settings))
    results = {name: _p95_ms(partial(refresh, deps), repeats) for name, (_, _, refresh) in REGIONS.items()}
    users = fetch_kpis(engine=engine, now_ms=now_ms()).users
    requests: dict[str, dict[str, Any]] = {
        "risk_page_top": {"startRow": 0, "endRow": 50, "sortModel": [{"colId": "score", "sort": "desc"}]},
        "risk_page_deep": {
            "startRow": max(0, users - 50),
            "endRow": max(50, users),
            "sortModel": [{"colId": "last_seen", "sort": "asc"}],
        },
        "risk_page_filtered": {
            "startRow": 0,
            "endRow": 50,
            "sortModel": [{"colId": "score", "sort": "desc"}],
            "filterModel": {
                "user_id": {"filterType": "text", "type": "contains", "filter": "42"},
                "score": {"filterType": "number", "type": "greaterThanOrEqual", "filter": 50},
            },
        },
    }
    for name, request in requests.items():
        results[name] = _p95_ms(partial(serve_risk_page, deps, request), repeats)
    top = fetch_risk_page(engine=engine, query=RiskQuery(limit=1)).rows
    if top:
        results["drill_down"] = _p95_ms(partial(refresh_drill, deps, top[0].user_id), repeats)
    engine.dispose()
    return results
