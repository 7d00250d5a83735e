"""API timings of `ecomrisk bench`: p95 of one user and of a page of users from a real `ecomrisk api`."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
from sqlalchemy import select

from api.paging import encode_cursor
from cli.redis_server import free_port
from cli.services import cli_argv, start_logged
from cli.supervisor import answers
from config.settings import Settings
from harness.fleet import stop_process, wait_for
from store.db import create_reader_engine
from store.models import UserRisk

API_FLOOR_MS = 20.0
PAGE = 50


def _timings_ms(call: Callable[[int], httpx.Response], requests: int) -> tuple[float, float]:
    """(p50, p95) wall time (ms) of `requests` calls seen by a keep-alive client, after a warm-up call."""
    call(0).raise_for_status()
    samples = []
    for n in range(requests):
        started = time.perf_counter()
        response = call(n)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    p50, p95 = np.percentile(samples, [50, 95])
    return round(float(p50), 2), round(float(p95), 2)


def measure_api(settings: Settings, *, requests: int = 200, seed: int = 0) -> dict[str, dict[str, float]]:
    """p50 and p95 (ms) of GET /api/v1/users/{id} for random users and of pages of GET /api/v1/users."""
    token = secrets.token_urlsafe(16)
    port = free_port()
    served = settings.model_copy(update={"api_tokens": f"bench:{token}:read", "api_port": port})
    engine = create_reader_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        ranked = conn.execute(
            select(UserRisk.score, UserRisk.user_id).order_by(UserRisk.score.desc(), UserRisk.user_id.desc())
        ).all()
    engine.dispose()
    rng = np.random.default_rng(seed)
    picks = [ranked[i].user_id for i in rng.integers(0, len(ranked), requests + 1)]
    middle = ranked[len(ranked) // 2]
    deep = encode_cursor("users:score", middle.score, middle.user_id)
    process = start_logged(
        cli_argv("api", "--port", str(port)), served, settings.data_dir / "logs" / "bench-api.log"
    )
    try:
        if (
            not wait_for(lambda: answers("127.0.0.1", port) or process.poll() is not None, timeout_s=60)
            or process.poll() is not None
        ):
            raise RuntimeError(
                f"ecomrisk api did not start; see {settings.data_dir / 'logs' / 'bench-api.log'}"
            )
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            calls: dict[str, Callable[[int], httpx.Response]] = {
                "user": lambda n: http.get(f"/api/v1/users/{quote(picks[n], safe='')}"),
                "users_page": lambda _n: http.get("/api/v1/users", params={"limit": PAGE}),
                "users_page_high": lambda _n: http.get(
                    "/api/v1/users", params={"limit": PAGE, "band": "high"}
                ),
                "users_page_deep": lambda _n: http.get(
                    "/api/v1/users", params={"limit": PAGE, "cursor": deep}
                ),
                "users_page_last_seen": lambda _n: http.get(
                    "/api/v1/users", params={"limit": PAGE, "sort": "last_seen"}
                ),
            }
            timings = {name: _timings_ms(call, requests) for name, call in calls.items()}
            return {
                "p50_ms": {name: p50 for name, (p50, _) in timings.items()},
                "p95_ms": {name: p95 for name, (_, p95) in timings.items()},
            }
    finally:
        stop_process(process)


def api_verdicts(entry: dict[str, Any]) -> list[tuple[str, float]]:
    """(figure, p95 ms) of the two figures with a floor: one user, and the slowest page of users."""
    p95 = entry["api_p95_ms"]
    pages = max(v for k, v in p95.items() if k.startswith("users_page"))
    return [
        (f"API p95, GET /api/v1/users/{{id}}, {entry['events']:,} events", p95["user"]),
        (f"API p95, one page of GET /api/v1/users (slowest kind), {entry['events']:,} events", pages),
    ]
