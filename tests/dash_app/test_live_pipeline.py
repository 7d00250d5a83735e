"""The dashboard in headless Chromium on the live pipeline: real Redis, worker and producer."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cli.redis_server import free_port
from config.settings import Settings
from dash_app import ids
from dash_app.app import create_app
from store.db import create_writer_engine, init_schema
from tests.support import REPO_ROOT, celery_worker, settings_env, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration]
SCREENSHOT = REPO_ROOT / "artifacts" / "dashboard-live.png"


@contextmanager
def running_producer(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """`ecomrisk produce` in continuous mode, with malformed lines switched up."""
    log = settings.data_dir / "producer.log"
    cmd = [
        sys.executable,
        "-m",
        "cli.main",
        "produce",
        "--rate",
        "150",
        "--duration",
        "120",
        "--seed",
        "5",
        "--fault",
        "not_json=0.03",
        "--no-progress",
    ]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, env=settings_env(settings), cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def texts(dash_duo: Any, css: str) -> list[str]:
    """Texts of every match, read in one script call: refreshes cannot make them stale."""
    script = "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent.trim());"
    return list(dash_duo.driver.execute_script(script, css))


def kpi_events(dash_duo: Any) -> int:
    found = texts(dash_duo, "#kpi-events .kpi-value")
    digits = found[0].replace(",", "") if found else ""
    return int(digits) if digits.isdigit() else 0


def first_cell(dash_duo: Any, grid_id: str, col_id: str) -> str | None:
    found = texts(dash_duo, f'#{grid_id} .ag-row[row-index="0"] .ag-cell[col-id="{col_id}"]')
    return next((text for text in found if text), None)


def test_dashboard_follows_the_live_pipeline(dash_duo: Any, live_settings: Settings) -> None:
    settings = live_settings.model_copy(update={"dashboard_refresh_ms": 1000})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    init_schema(create_writer_engine(settings.resolved_database_url))
    with celery_worker(settings, concurrency=2, name="live"), running_producer(settings):
        dash_duo.start_server(create_app(settings), port=free_port())
        dash_duo.wait_for_element(f"#{ids.KPI_ROW}", timeout=20)

        # KPI numbers rise while the producer runs.
        first = wait_until(lambda: kpi_events(dash_duo), timeout_s=60, what="first stored events")
        wait_until(lambda: kpi_events(dash_duo) > first, timeout_s=60, what="the KPI to rise")
        dash_duo.wait_for_contains_text(f"#{ids.PIPELINE_BODY}", "online", timeout=30)

        # The quarantine panel shows a malformed line verbatim, as text.
        wait_until(
            lambda: first_cell(dash_duo, ids.QUARANTINE_GRID, "raw_text"),
            timeout_s=60,
            what="a quarantined line",
        )
        assert any(texts(dash_duo, f'#{ids.QUARANTINE_GRID} .ag-cell[col-id="reason"]'))
        assert not dash_duo.driver.find_elements(By.XPATH, "//h1[contains(., '502 Bad Gateway')]")

        # The risk table sorts on the server: score descending puts the top score first.
        dash_duo.find_element(f"#{ids.RISK_RELOAD}").click()
        top = wait_until(
            lambda: first_cell(dash_duo, ids.RISK_GRID, "user_id"), timeout_s=30, what="risk rows"
        )
        cells = texts(dash_duo, f'#{ids.RISK_GRID} .ag-center-cols-container .ag-cell[col-id="score"]')
        scores = [int(c) for c in cells if c.isdigit()]
        assert scores and max(scores) == int(first_cell(dash_duo, ids.RISK_GRID, "score") or -1)

        # Filtering by a user id narrows the table to that user.
        user_filter = f'#{ids.RISK_GRID} .ag-floating-filter[col-id="user_id"] input'
        dash_duo.find_element(user_filter).send_keys(top)
        dash_duo.wait_for_text_to_equal(f"#{ids.RISK_NOTE}", "1 users match", timeout=20)

        # Clicking the user opens the drill-down with their timeline and reasons.
        dash_duo.find_element(f'#{ids.RISK_GRID} .ag-row[row-index="0"] .ag-cell[col-id="user_id"]').click()
        dash_duo.wait_for_text_to_equal(f"#{ids.DRILL_TITLE}", f"User {top}", timeout=20)
        dash_duo.wait_for_element(f"#{ids.DRILL_TIMELINE_GRAPH} .scatterlayer .trace", timeout=20)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        dash_duo.driver.save_screenshot(str(SCREENSHOT))
