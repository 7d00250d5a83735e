"""The app factory, basic auth, `run` and the lazy WSGI `server`."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from dash import Dash

import dash_app.app as app_module
from config.settings import Settings
from dash_app import ids
from dash_app.app import create_app, run

PACKAGE = Path(app_module.__file__).resolve().parent


def _ids(component: Any) -> set[str]:
    found = set()
    if getattr(component, "id", None):
        found.add(component.id)
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and not isinstance(child, str):
            found |= _ids(child)
    return found


def test_layout_has_every_component_id(settings: Settings) -> None:
    app = create_app(settings)
    assert isinstance(app, Dash)
    declared = {v for k, v in vars(ids).items() if k.isupper() and isinstance(v, str)}
    assert declared <= _ids(app.layout)


def test_page_loads_without_a_database(settings: Settings) -> None:
    client = create_app(settings).server.test_client()
    page = client.get("/")
    assert page.status_code == 200
    assert b"ecomrisk" in page.data
    assert client.get("/_dash-layout").status_code == 200
    assert not Path(settings.resolved_database_url.removeprefix("sqlite:///")).exists()


def test_flower_link_comes_from_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, flower_port=5999)
    assert "http://127.0.0.1:5999" in str(create_app(settings).layout)


def test_assets_are_local(settings: Settings) -> None:
    client = create_app(settings).server.test_client()
    page = client.get("/").data.decode()
    assert "https://" not in page and "http://" not in page.replace("http://127.0.0.1", "")
    assert client.get("/assets/style.css").status_code == 200


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_basic_auth(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, dashboard_auth="ops:s3cr:et")
    client = create_app(settings).server.test_client()
    denied = client.get("/")
    assert denied.status_code == 401
    assert denied.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get("/", headers=_basic("ops", "wrong")).status_code == 401
    assert client.get("/_dash-layout", headers=_basic("ops", "s3cr")).status_code == 401
    assert client.get("/", headers=_basic("ops", "s3cr:et")).status_code == 200  # ':' in passwords


def test_no_auth_by_default(settings: Settings) -> None:
    assert create_app(settings).server.test_client().get("/").status_code == 200


def test_run_binds_to_the_configured_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(Dash, "run", lambda self, **kwargs: calls.append(kwargs))
    settings = Settings(data_dir=tmp_path, dashboard_port=8123)
    run(settings)
    run(settings, 9001)
    assert calls == [
        {"host": "127.0.0.1", "port": 8123, "debug": False},
        {"host": "127.0.0.1", "port": 9001, "debug": False},
    ]


def test_server_is_built_lazily(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    app_module._default_app.cache_clear()
    monkeypatch.setattr(app_module, "get_settings", lambda: settings)
    try:
        server = app_module.server
        assert server is app_module.server  # one app per process
        assert server.test_client().get("/").status_code == 200
    finally:
        app_module._default_app.cache_clear()
    with pytest.raises(AttributeError):
        _ = app_module.nothing_here


@pytest.mark.parametrize("forbidden", ["dangerously_allow", "dcc.Markdown", "srcDoc", "Iframe"])
def test_no_html_rendering_of_data(forbidden: str) -> None:
    for source in PACKAGE.glob("*.py"):
        assert forbidden not in source.read_text(), f"{forbidden} in {source.name}"
