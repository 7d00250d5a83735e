"""The FastAPI app: `create_app(settings)` and `run(settings, port)`, served by uvicorn.

It does not mount the Dash dashboard: the dashboard is a Flask (WSGI) app whose refreshes would
share this process's thread pool, so a slow panel would show in the API's latency; apart, each
binds, authenticates and restarts on its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from api.deps import ApiState
from api.errors import install_error_handlers
from api.routers import alerts, health, users
from config.settings import Settings, get_settings
from dash_app.probes import PipelineProbe
from store.db import create_reader_engine, open_writer

PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for these settings; the engines open when the server starts."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer = open_writer(settings)  # the schema at head, so the reader finds every table
        reader = create_reader_engine(settings.resolved_database_url)
        app.state.api = ApiState(
            settings=settings,
            reader=reader,
            writer=writer,
            probe=PipelineProbe(settings),
            tokens=settings.tokens,
        )
        try:
            yield
        finally:
            reader.dispose()
            writer.dispose()

    app = FastAPI(
        title="ecomrisk",
        summary="Risk scores, alerts and analyst review.",
        version="1",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in (users.router, alerts.router, health.router):
        app.include_router(router, prefix=PREFIX)
    return app


def run(settings: Settings | None = None, port: int | None = None) -> None:
    """Serve the API on settings.api_host (used by `ecomrisk api`)."""
    settings = settings or get_settings()
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=port or settings.api_port,
        log_level="info",
        access_log=False,  # one line per dashboard refresh otherwise; errors are still logged
        timeout_graceful_shutdown=10,
    )
