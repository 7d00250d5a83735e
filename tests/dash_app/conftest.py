"""Dashboard fixtures: seeded SQLite files, a read-only engine, and headless Chromium options."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from config.settings import Settings
from store.db import create_reader_engine
from tests.dash_app.seed import Facts, seed_standard, writer

CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1440,1000",
)


def pytest_setup_options() -> Any:
    """Chrome options for dash.testing: always headless, Debian's chromium if installed."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    chromium = shutil.which("chromium")
    if chromium:
        options.binary_location = chromium
    return options


@pytest.fixture()
def db_url(settings: Settings) -> str:
    """The (not yet created) SQLite URL of this test."""
    return settings.resolved_database_url


@pytest.fixture()
def reader(db_url: str) -> Iterator[Engine]:
    """The dashboard's read-only engine on this test's database."""
    engine = create_reader_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def empty_db(db_url: str) -> str:
    """A database with every table and no rows."""
    writer(db_url).dispose()
    return db_url


@pytest.fixture()
def seeded(db_url: str) -> Facts:
    """The standard dataset of tests/dash_app/seed.py."""
    return seed_standard(db_url)


@pytest.fixture()
def db_path(settings: Settings) -> Path:
    """The SQLite file behind db_url."""
    return Path(settings.resolved_database_url.removeprefix("sqlite:///"))
