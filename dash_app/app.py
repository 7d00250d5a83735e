"""The Dash app: `create_app(settings)`, `run(settings, port)` and a lazy WSGI `server`."""

from __future__ import annotations

import hmac
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from dash import Dash
from flask import Flask, Response, request

from config.settings import Settings, get_settings
from dash_app.api_client import ReviewClient
from dash_app.callbacks import Deps, register_callbacks
from dash_app.layout import build_layout
from dash_app.probes import PipelineProbe
from dash_app.queries import database_label
from store.db import create_reader_engine

ASSETS = Path(__file__).resolve().parent / "assets"


def require_basic_auth(server: Flask, credentials: str) -> None:
    """Refuse every request without the HTTP basic credentials 'user:password'."""
    user, _, password = credentials.partition(":")
    expected = (user.encode(), password.encode())

    @server.before_request
    def _check_basic_auth() -> Response | None:
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            given = ((auth.username or "").encode(), (auth.password or "").encode())
            user_ok = hmac.compare_digest(given[0], expected[0])
            password_ok = hmac.compare_digest(given[1], expected[1])
            if user_ok and password_ok:
                return None
        return Response(
            "Authentication required.\n",
            401,
            {"WWW-Authenticate": 'Basic realm="ecomrisk", charset="UTF-8"'},
        )


def create_app(settings: Settings | None = None, *, probe: PipelineProbe | None = None) -> Dash:
    """Build the dashboard for these settings (default: the process settings)."""
    settings = settings or get_settings()
    # NullPool for SQLite: no connection outlives a refresh, so writers never wait on us.
    engine = create_reader_engine(settings.resolved_database_url)
    deps = Deps(
        engine=engine,
        settings=settings,
        probe=probe or PipelineProbe(settings),
        reviews=ReviewClient(settings.resolved_api_url, settings.dashboard_api_token),
    )
    app = Dash(
        __name__,
        title="ecomrisk · live risk",
        update_title="",  # keep the tab title still while callbacks run
        assets_folder=str(ASSETS),
        serve_locally=True,  # no CDN: the page works offline
    )
    app.layout = build_layout(settings, database=database_label(engine))
    register_callbacks(app, deps)
    if settings.dashboard_auth:
        require_basic_auth(app.server, settings.dashboard_auth)
    return app


def run(settings: Settings | None = None, port: int | None = None) -> None:
    """Serve the dashboard on settings.dashboard_host (used by `ecomrisk dashboard`)."""
    settings = settings or get_settings()
    if not settings.dashboard_debug:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per refresh otherwise
    create_app(settings).run(
        host=settings.dashboard_host,
        port=port or settings.dashboard_port,
        debug=settings.dashboard_debug,
    )


@lru_cache(maxsize=1)
def _default_app() -> Dash:
    return create_app(get_settings())


def __getattr__(name: str) -> Any:
    # `gunicorn dash_app.app:server` reads this; the app is built on first access only,
    # so importing the module has no side effects.
    if name == "server":
        return _default_app().server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
