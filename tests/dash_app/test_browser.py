"""The dashboard in headless Chromium, on a SQLite file seeded directly (no pipeline yet)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from bench.synthetic import seed_synthetic
from cli.redis_server import free_port
from config.settings import Settings
from contract.wire import now_ms
from dash_app import ids
from dash_app import queries as q
from dash_app.app import create_app
from store.db import create_reader_engine
from tests.dash_app.seed import XSS_LINE, add_rows, quarantined, user_risk
from tests.support import REPO_ROOT

pytestmark = pytest.mark.browser

T = TypeVar("T")
SCREENSHOT = REPO_ROOT / "artifacts" / "dashboard.png"
EVENTS = 150_000
USERS = 1_200


@pytest.fixture(autouse=True)
def _require_chromium() -> None:
    """Fail, never skip, when the browser is missing: CI must run these tests."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: apt-get install -y chromium chromium-driver")


def _until(dash_duo: Any, probe: Callable[[], T | None], *, timeout: float = 20, what: str = "") -> T:
    """Wait for probe() to return something truthy; the grid re-renders, so retry stale nodes."""

    def attempt(_driver: Any) -> T | None:
        try:
            return probe()
        except StaleElementReferenceException:
            return None

    return WebDriverWait(dash_duo.driver, timeout).until(attempt, message=what)  # type: ignore[no-any-return]


def _column(dash_duo: Any, grid_id: str, col_id: str) -> list[str]:
    """The texts of one column's rendered cells, in row order."""
    rows = dash_duo.driver.find_elements(By.CSS_SELECTOR, f"#{grid_id} .ag-center-cols-container .ag-row")
    ordered = sorted(rows, key=lambda r: int(r.get_attribute("row-index")))
    return [r.find_element(By.CSS_SELECTOR, f'.ag-cell[col-id="{col_id}"]').text for r in ordered]


def _first_cell(dash_duo: Any, grid_id: str, col_id: str) -> str | None:
    cells = _column(dash_duo, grid_id, col_id)
    return cells[0] if cells and cells[0] else None


def _save_full_page(dash_duo: Any, path: Path) -> None:
    driver = dash_duo.driver
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, full)
    dash_duo.wait_for_element(f"#{ids.DRILL_TIMELINE_GRAPH} .main-svg")
    driver.execute_script("window.scrollTo(0, 0)")
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path))
    driver.set_window_size(width, height)


def test_dashboard_end_to_end(dash_duo: Any, settings: Settings) -> None:
    url = settings.resolved_database_url
    seed_synthetic(url, events=EVENTS, users=USERS, minutes=2 * 24 * 60, seed=7)
    add_rows(url, [quarantined("b-xss", 1, reason="not_json", raw_text=XSS_LINE, quarantined_ms=now_ms())])
    engine = create_reader_engine(url)
    top = q.fetch_risk_page(engine=engine, query=q.RiskQuery(limit=1)).rows[0].user_id
    filtered = q.fetch_risk_page(engine=engine, query=q.RiskQuery(user_text="00042", bands=("high",)))

    dash_duo.start_server(create_app(settings), port=free_port())

    # KPI: the seeded number of stored events.
    dash_duo.wait_for_text_to_equal("#kpi-events .kpi-value", f"{EVENTS:,}", timeout=20)
    dash_duo.wait_for_contains_text(f"#{ids.PIPELINE_BODY}", "Redis is not configured", timeout=20)

    # The risk table's first page: highest score first, as the server sorts.
    _until(dash_duo, lambda: _first_cell(dash_duo, ids.RISK_GRID, "user_id") == top, what="first page")
    dash_duo.wait_for_text_to_equal(f"#{ids.RISK_NOTE}", f"{USERS:,} users match")

    # Clicking a user opens the drill-down with their events and reasons.
    dash_duo.find_element(f'#{ids.RISK_GRID} .ag-row[row-index="0"] .ag-cell[col-id="user_id"]').click()
    dash_duo.wait_for_text_to_equal(f"#{ids.DRILL_TITLE}", f"User {top}", timeout=20)
    panel = dash_duo.find_element(f"#{ids.DRILL_PANEL}")
    assert "is-hidden" not in panel.get_attribute("class")
    dash_duo.wait_for_contains_text(f"#{ids.DRILL_SUMMARY}", "events shown")
    dash_duo.wait_for_element(f"#{ids.DRILL_TIMELINE_GRAPH} .scatterlayer .trace")
    dash_duo.wait_for_element(f"#{ids.DRILL_SESSIONS} table tbody tr")
    dash_duo.wait_for_contains_text(f"#{ids.DRILL_MARKERS}", "regular_timing")

    # A malformed line with markup is shown as literal text and never runs.
    _until(
        dash_duo,
        lambda: _first_cell(dash_duo, ids.QUARANTINE_GRID, "raw_text") == XSS_LINE,
        what="quarantined line as text",
    )
    with pytest.raises(NoAlertPresentException):
        _ = dash_duo.driver.switch_to.alert.text
    scripts = dash_duo.driver.find_elements(By.XPATH, "//script[contains(., 'alert(1)')]")
    assert scripts == []
    dash_duo.wait_for_element(f"#{ids.ACTION_GRAPH} .barlayer .trace")
    dash_duo.wait_for_element(f"#{ids.HEATMAP_GRAPH} .hm")

    _save_full_page(dash_duo, SCREENSHOT)

    # Sorting: User ascending, then descending, served by the database.
    header = f'#{ids.RISK_GRID} .ag-header-cell[col-id="user_id"] .ag-header-cell-label'
    dash_duo.find_element(header).click()
    _until(dash_duo, lambda: _first_cell(dash_duo, ids.RISK_GRID, "user_id") == "user-000000", what="asc")
    dash_duo.find_element(header).click()
    last = f"user-{USERS - 1:06d}"
    _until(dash_duo, lambda: _first_cell(dash_duo, ids.RISK_GRID, "user_id") == last, what="desc")

    # Filtering: a user-id substring and a band, counted by the database.
    user_filter = f'#{ids.RISK_GRID} .ag-floating-filter[col-id="user_id"] input'
    dash_duo.find_element(user_filter).send_keys("00042")
    dash_duo.wait_for_text_to_equal(f"#{ids.RISK_NOTE}", "11 users match", timeout=20)
    assert all("00042" in u for u in _column(dash_duo, ids.RISK_GRID, "user_id"))
    band_filter = f'#{ids.RISK_GRID} .ag-floating-filter[col-id="band"] input'
    dash_duo.find_element(band_filter).send_keys("high", Keys.ENTER)
    dash_duo.wait_for_text_to_equal(f"#{ids.RISK_NOTE}", f"{filtered.total} users match", timeout=20)
    _until(
        dash_duo,
        lambda: _column(dash_duo, ids.RISK_GRID, "user_id") == [r.user_id for r in filtered.rows[:50]],
        what="filtered rows",
    )

    # Reload asks the database again: a user scored since the page loaded shows up.
    add_rows(url, [user_risk("zz-00042-new", score=100, band="high")])
    dash_duo.find_element(f"#{ids.RISK_RELOAD}").click()
    dash_duo.wait_for_text_to_equal(f"#{ids.RISK_NOTE}", f"{filtered.total + 1} users match", timeout=20)

    # Close hides the drill-down again.
    dash_duo.find_element(f"#{ids.DRILL_CLOSE}").click()
    # Found again on every try: a node kept from before may be stale, and would stay stale.
    _until(
        dash_duo,
        lambda: "is-hidden" in dash_duo.find_element(f"#{ids.DRILL_PANEL}").get_attribute("class"),
        what="drill-down closed",
    )
    assert dash_duo.get_logs() == []
    engine.dispose()


def test_dashboard_without_database_or_redis(dash_duo: Any, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'missing.db'}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    dash_duo.start_server(create_app(settings), port=free_port())
    missing = f"No database yet at {(tmp_path / 'missing.db').resolve()}: start the workers."
    dash_duo.wait_for_text_to_equal("#kpi-problem", missing, timeout=20)
    dash_duo.wait_for_contains_text(
        f"#{ids.PIPELINE_BODY}", "Redis unreachable at redis://127.0.0.1:", timeout=20
    )
    dash_duo.wait_for_contains_text(f"#{ids.TIMELINE_GRAPH}", "No database yet at")
    dash_duo.wait_for_contains_text(f"#{ids.RISK_NOTE}", "No database yet at")
    assert dash_duo.get_logs() == []


def test_a_slow_region_never_has_two_requests_in_flight(
    dash_duo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from dash_app import callbacks

    lock = threading.Lock()
    calls: list[float] = []
    in_flight = [0, 0]  # now, most ever

    def slow_alerts(deps: callbacks.Deps, status: str | None = None) -> tuple[Any, ...]:
        with lock:
            calls.append(time.monotonic())
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        time.sleep(1.5)  # six refresh periods
        with lock:
            in_flight[0] -= 1
        return [], f"call {len(calls)}", ""

    interval_id, outputs, _ = callbacks.REGIONS["alerts"]
    monkeypatch.setitem(callbacks.REGIONS, "alerts", (interval_id, outputs, slow_alerts))
    settings = Settings(
        data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'x.db'}", dashboard_refresh_ms=250
    )
    dash_duo.start_server(create_app(settings), port=free_port())
    dash_duo.wait_for_text_to_equal(f"#{ids.ALERTS_NOTE}", "call 1", timeout=20)
    time.sleep(6)
    assert in_flight[1] == 1
    # Unguarded, a 250 ms interval would have sent ~24 requests in 6 s; guarded, one per 1.75 s.
    assert 3 <= len(calls) <= 6, calls
    dash_duo.driver.get("about:blank")  # stop polling, let the last request finish before teardown
    deadline = time.monotonic() + 5
    while in_flight[0] and time.monotonic() < deadline:
        time.sleep(0.1)
