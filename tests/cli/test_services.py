"""What `ecomrisk up` hands its children: the same settings, and safe command lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.services import child_env, flower_argv, http_url, stack_services, worker_argv
from config.settings import Settings, hide_password


@pytest.fixture()
def full_settings(tmp_path: Path) -> Settings:
    """Settings that differ from the defaults in every kind of field."""
    return Settings(
        _env_file=None,
        redis_url="redis://:s3cret@127.0.0.1:6390/0",
        data_dir=tmp_path / "data",
        queue_name="q-test",
        producer_rate=12.5,
        worker_concurrency=3,
        dashboard_debug=True,
        flower_host="0.0.0.0",
        flower_basic_auth="admin:pw",
    )


def test_child_env_rebuilds_the_same_settings(
    full_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = child_env(full_settings, {"PATH": "/bin", "ECOMRISK_QUEUE_NAME": "stale"})
    assert env["PATH"] == "/bin"
    for name in [k for k in os.environ if k.startswith("ECOMRISK_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("ECOMRISK_"):
            monkeypatch.setenv(name, value)
    rebuilt = Settings(_env_file=None)
    expected = full_settings.model_dump() | {"database_url": full_settings.resolved_database_url}
    assert rebuilt.model_dump() == expected


def test_flower_password_stays_out_of_argv(full_settings: Settings) -> None:
    argv = flower_argv(full_settings)
    assert not any("admin:pw" in arg for arg in argv)
    assert "--address=0.0.0.0" in argv
    assert child_env(full_settings, {})["FLOWER_BASIC_AUTH"] == "admin:pw"


def test_worker_sends_events_and_reads_the_queue(full_settings: Settings) -> None:
    argv = worker_argv(full_settings)
    assert "-E" in argv
    assert argv[argv.index("-Q") + 1] == "q-test"
    assert "--concurrency=3" in argv
    assert "--concurrency=7" in worker_argv(full_settings, concurrency=7)


def test_stack_without_producer(full_settings: Settings) -> None:
    names = [s.name for s in stack_services(full_settings, with_producer=False)]
    assert names == ["worker", "flower", "api", "dashboard"]
    with_producer = stack_services(full_settings, with_producer=True)
    assert with_producer[-1].name == "producer"


def test_webhook_worker_and_beat_run_only_with_endpoints(full_settings: Settings) -> None:
    hooked = full_settings.model_copy(
        update={"webhook_urls": "http://127.0.0.1:9/hook", "webhook_secret": "k", "webhook_queue": "hooks"}
    )
    services = {s.name: s for s in stack_services(hooked, with_producer=False)}
    assert list(services) == ["worker", "flower", "api", "dashboard", "webhooks", "beat"]
    argv = list(services["webhooks"].argv)
    assert argv[argv.index("-Q") + 1] == "hooks"  # its own queue, never the ingest queue
    assert any(
        a.startswith("--schedule=") and a.endswith("celerybeat-schedule") for a in services["beat"].argv
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@127.0.0.1:6390/0", "redis://:***@127.0.0.1:6390/0"),
        ("postgresql+psycopg://u:p@db:5432/x", "postgresql+psycopg://u:***@db:5432/x"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("sqlite:////data/ecomrisk.db", "sqlite:////data/ecomrisk.db"),
    ],
)
def test_hide_password(url: str, shown: str) -> None:
    assert hide_password(url) == shown


@pytest.mark.parametrize(
    ("host", "url"),
    [("0.0.0.0", "http://127.0.0.1:80"), ("localhost", "http://localhost:80"), ("::1", "http://[::1]:80")],
)
def test_http_url(host: str, url: str) -> None:
    assert http_url(host, 80) == url
