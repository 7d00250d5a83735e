"""Regression: Reload fills the risk table even when the first answer had no users."""

from __future__ import annotations

from typing import Any

import pytest

from bench.synthetic import seed_synthetic
from cli.redis_server import free_port
from config.settings import Settings
from dash_app import ids
from dash_app.app import create_app
from store.db import create_writer_engine, init_schema
from tests.dash_app.test_live_pipeline import first_cell
from tests.support import wait_until

pytestmark = pytest.mark.browser


def test_reload_after_an_empty_first_page(dash_duo: Any, settings: Settings) -> None:
    init_schema(create_writer_engine(settings.resolved_database_url))
    dash_duo.start_server(create_app(settings), port=free_port())
    dash_duo.wait_for_text_to_equal(f"#{ids.RISK_NOTE}", "0 users match", timeout=20)
    seed_synthetic(settings.resolved_database_url, events=2000, users=100, seed=1)
    dash_duo.find_element(f"#{ids.RISK_RELOAD}").click()
    dash_duo.wait_for_text_to_equal(f"#{ids.RISK_NOTE}", "100 users match", timeout=20)
    wait_until(lambda: first_cell(dash_duo, ids.RISK_GRID, "user_id"), timeout_s=20, what="rows")
