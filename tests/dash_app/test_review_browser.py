"""The review flow in headless Chromium: the dashboard writes through a real `ecomrisk api` process.

A real worker stores the traffic; the page acknowledges an alert, resolves it as a false positive,
allow-lists the user, and the user then crosses into the high band again without a new alert.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import Engine, select

from cli.redis_server import free_port
from config.settings import Settings
from dash_app import ids
from dash_app.app import create_app
from store.db import create_reader_engine
from store.models import Alert, UserRisk
from tests.api.support import (
    REVIEW_TOKEN,
    TOKENS,
    api_server,
    prepare_store,
    publish,
    recrossing_phases,
    traffic,
    wait_for_batches,
)
from tests.support import REPO_ROOT, celery_worker, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration]
SCREENSHOT = REPO_ROOT / "artifacts" / "dashboard-review.png"
GAMBLER = "gambler-1"


@pytest.fixture(autouse=True)
def _require_chromium() -> None:
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: apt-get install -y chromium chromium-driver")


def texts(dash_duo: Any, css: str) -> list[str]:
    """Texts of every match, read in one script call: refreshes cannot make them stale."""
    script = "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent.trim());"
    return list(dash_duo.driver.execute_script(script, css))


def text(dash_duo: Any, css: str) -> str:
    found = texts(dash_duo, css)
    return found[0] if found else ""


def alert_users(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(select(Alert.user_id).order_by(Alert.id)))


def band(engine: Engine, user_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(select(UserRisk.band).where(UserRisk.user_id == user_id))


def feed_users(dash_duo: Any) -> list[str]:
    return [
        t
        for t in texts(dash_duo, f'#{ids.ALERTS_GRID} .ag-center-cols-container .ag-cell[col-id="user_id"]')
        if t
    ]


def click(dash_duo: Any, css: str) -> None:
    dash_duo.driver.execute_script("document.querySelector(arguments[0]).click();", css)


def test_acknowledge_resolve_allow_list_and_no_new_alert(dash_duo: Any, live_settings: Settings) -> None:
    settings = live_settings.model_copy(
        update={"dashboard_refresh_ms": 1000, "api_tokens": TOKENS, "dashboard_api_token": REVIEW_TOKEN}
    )
    prepare_store(settings)
    engine = create_reader_engine(settings.resolved_database_url)
    phases = recrossing_phases(GAMBLER)
    with celery_worker(settings, name="review"), api_server(settings) as api_url:
        wait_for_batches(settings, publish(settings, [phases[0] + traffic({"bot-2": "bot"})]))
        assert sorted(alert_users(engine)) == ["bot-2", GAMBLER]
        dash_duo.start_server(create_app(settings.model_copy(update={"api_url": api_url})), port=free_port())

        wait_until(lambda: len(feed_users(dash_duo)) == 2, timeout_s=30, what="both alerts in the feed")
        kpi = "#kpi-open-alerts .kpi-value"
        wait_until(lambda: text(dash_duo, kpi) == "2", timeout_s=20, what="two open alerts")
        assert text(dash_duo, "#kpi-ack .kpi-value") == "–"  # nothing acknowledged yet

        # Open the gambler's alert from the feed, then acknowledge it.
        cell = f'#{ids.ALERTS_GRID} .ag-cell[col-id="user_id"]'
        for element in dash_duo.driver.find_elements(By.CSS_SELECTOR, cell):
            if element.text == GAMBLER:
                element.click()
                break
        wait_until(lambda: "open" in text(dash_duo, "#review-target"), timeout_s=20, what="the review form")
        click(dash_duo, f"#{ids.REVIEW_ACK}")
        wait_until(
            lambda: "acknowledged" in text(dash_duo, f"#{ids.REVIEW_MESSAGE}"), timeout_s=20, what="ack"
        )
        wait_until(lambda: text(dash_duo, kpi) == "1", timeout_s=20, what="one open alert left")
        wait_until(
            lambda: text(dash_duo, "#kpi-ack .kpi-value") not in ("", "–"), timeout_s=20, what="a median"
        )

        # Resolve it as a false positive, then allow-list the user.
        click(dash_duo, f"#{ids.REVIEW_LABEL} input[value='false_positive']")
        click(dash_duo, f"#{ids.REVIEW_RESOLVE}")
        wait_until(
            lambda: "resolved as false_positive" in text(dash_duo, f"#{ids.REVIEW_MESSAGE}"),
            timeout_s=20,
            what="resolve",
        )
        click(dash_duo, f"#{ids.ALERTS_STATUS} input[value='resolved']")
        wait_until(lambda: feed_users(dash_duo) == [GAMBLER], timeout_s=20, what="the resolved filter")
        click(dash_duo, f"#{ids.REVIEW_ALLOW}")
        wait_until(
            lambda: "allow-listed" in text(dash_duo, f"#{ids.REVIEW_MESSAGE}"), timeout_s=20, what="allow"
        )
        wait_until(lambda: text(dash_duo, "#review-allowed"), timeout_s=20, what="the allow-list line")
        history = texts(dash_duo, f"#{ids.DRILL_REVIEWS} tbody tr")
        assert len(history) == 2 and "false_positive" in history[0] and "ops" in history[0]

        # The gambler calms down, then bursts again: high once more, but no new alert.
        wait_for_batches(settings, 1 + publish(settings, [phases[1]], source="calm"))
        assert band(engine, GAMBLER) == "low"
        wait_for_batches(settings, 2 + publish(settings, [phases[2]], source="again"))
        assert band(engine, GAMBLER) == "high"
        assert alert_users(engine).count(GAMBLER) == 1
        click(dash_duo, f"#{ids.ALERTS_STATUS} input[value='all']")
        wait_until(lambda: len(feed_users(dash_duo)) == 2, timeout_s=20, what="the whole feed")
        wait_until(
            lambda: "high" in text(dash_duo, f"#{ids.DRILL_SUMMARY} .badge"), timeout_s=20, what="high"
        )
        assert sorted(feed_users(dash_duo)) == ["bot-2", GAMBLER]
        # The false positive shows in the per-marker precision of the markers that fired.
        wait_until(lambda: text(dash_duo, "#precision-table"), timeout_s=20, what="the precision table")
        assert "0.00" in text(dash_duo, "#precision-table")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        dash_duo.driver.save_screenshot(str(SCREENSHOT))
    engine.dispose()
