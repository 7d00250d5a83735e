"""Webhooks end to end: real workers, celery beat and a real HTTP receiver that checks signatures and dedups.

Exactly once per endpoint: every alert reaches every endpoint, and a repeat POST happens only for
a delivery in flight when its worker was killed, always with the same X-Ecomrisk-Delivery id.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cli.services import beat_argv, webhook_worker_argv
from config.settings import Settings
from store.db import create_reader_engine
from store.models import Alert, WebhookDelivery
from tests.api.support import (
    SECRET,
    Receiver,
    api_server,
    client,
    prepare_store,
    publish,
    running,
    traffic,
    wait_for_batches,
)
from tests.faults.harness import PrivateRedis
from tests.support import REPO_ROOT, celery_worker, settings_env, wait_until
from workers.webhooks import endpoint_key

pytestmark = pytest.mark.integration

BOTS = {f"bot-{n}": "bot" for n in range(4)}
QUIET = {f"norm-{n}": "normal" for n in range(3)}


def hook_settings(
    tmp_path: Path, redis_url: str, database_url: str, urls: list[str], **overrides: Any
) -> Settings:
    """Settings with short timeouts, backoff and sweep period, so retries happen within a test."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "redis_url": redis_url,
        "queue_name": f"ingest-{tmp_path.name}",
        "webhook_queue": f"hooks-{tmp_path.name}",
        "webhook_urls": ",".join(urls),
        "webhook_secret": SECRET,
        "webhook_backoff_s": 0.2,
        "webhook_timeout_s": 1.0,
        "webhook_sweep_s": 1.0,
        "webhook_max_attempts": 60,
        "visibility_timeout_s": 10,
        **overrides,
    }
    return Settings(**values)


@contextmanager
def webhook_stack(
    settings: Settings, *, tmp_path: Path, ingest: Settings | None = None
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """An ingest worker (with `ingest` settings, default the same), the webhook worker and celery beat."""
    prepare_store(settings)
    logs = tmp_path / "logs"
    with ExitStack() as stack:
        processes = {
            "ingest": stack.enter_context(celery_worker(ingest or settings, name="ingest")),
            "webhooks": stack.enter_context(
                running(settings, webhook_worker_argv(settings), log=logs / "webhooks.log")
            ),
            "beat": stack.enter_context(running(settings, beat_argv(settings), log=logs / "beat.log")),
        }
        yield processes


def alert_rows(settings: Settings) -> dict[int, Any]:
    engine = create_reader_engine(settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            return {row.id: row for row in conn.execute(select(Alert))}
    finally:
        engine.dispose()


def delivery_rows(settings: Settings) -> list[Any]:
    engine = create_reader_engine(settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(WebhookDelivery)))
    finally:
        engine.dispose()


def assert_delivered_once(settings: Settings, receiver: Receiver, alerts: dict[int, Any]) -> None:
    """Every alert accepted once by the receiver, every signature valid, one success logged per alert."""
    assert set(receiver.accepted) == {str(a) for a in alerts}
    assert all(p.signature_error is None for p in receiver.posts), [p.signature_error for p in receiver.posts]
    key = endpoint_key(receiver.url)
    delivered = [r for r in delivery_rows(settings) if r.endpoint == key and r.delivered_ms is not None]
    assert sorted(r.alert_id for r in delivered) == sorted(alerts)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_each_alert_reaches_each_endpoint_once_signed(
    tmp_path: Path, redis_url: str, database_url: str
) -> None:
    plain, slack = Receiver(SECRET).start(), Receiver(SECRET).start()
    try:
        settings = hook_settings(tmp_path, redis_url, database_url, [plain.url, f"slack:{slack.url}"])
        with webhook_stack(settings, tmp_path=tmp_path):
            wait_for_batches(settings, publish(settings, [traffic({**BOTS, **QUIET})]))
            alerts = alert_rows(settings)
            assert len(alerts) == len(BOTS)
            wait_until(
                lambda: len(plain.accepted) == len(alerts) and len(slack.accepted) == len(alerts),
                what="deliveries",
            )
            time.sleep(3 * settings.webhook_sweep_s)  # sweeps run meanwhile and must send nothing again
        # The fast path announced the batch's alerts right after its commit.
        assert "ecomrisk.dispatch_alerts" in (tmp_path / "logs" / "webhooks.log").read_text()
        assert_delivered_once(settings, plain, alerts)
        assert_delivered_once(settings, slack, alerts)
        assert len(plain.posts) == len(slack.posts) == len(alerts)
        for post in plain.posts:
            alert = alerts[int(post.delivery_id)]
            assert post.body == {
                "type": "alert.high_band_entered",
                "alert_id": alert.id,
                "user_id": alert.user_id,
                "score": alert.score,
                "band": alert.band,
                "kind": alert.risk_kind,
                "markers": alert.reasons,
                "entered_ms": alert.created_ms,
                "link": f"/api/v1/users/{alert.user_id}",
            }
        for post in slack.posts:
            alert = alerts[int(post.delivery_id)]
            text = post.body["text"]
            assert set(post.body) == {"text"}
            assert alert.user_id in text and f"score {alert.score}" in text
            assert alert.reasons[0]["name"] in text
        assert {r.attempts for r in delivery_rows(settings)} == {1}
    finally:
        plain.stop()
        slack.stop()


def test_a_receiver_down_for_a_while_gets_every_alert_once_back(tmp_path: Path, redis_url: str) -> None:
    receiver = Receiver(SECRET)  # not listening yet: connections are refused
    settings = hook_settings(tmp_path, redis_url, f"sqlite:///{tmp_path / 'h.db'}", [receiver.url])
    try:
        with webhook_stack(settings, tmp_path=tmp_path):
            wait_for_batches(settings, publish(settings, [traffic(BOTS)]))
            alerts = alert_rows(settings)
            wait_until(
                lambda: (
                    len(rows := delivery_rows(settings)) == len(alerts) and all(r.attempts >= 3 for r in rows)
                ),
                what="three failed attempts per alert",
            )
            assert all("ConnectError" in (r.last_error or "") for r in delivery_rows(settings))
            receiver.start()
            wait_until(
                lambda: len(receiver.accepted) == len(alerts), what="deliveries after the receiver is back"
            )
            time.sleep(3 * settings.webhook_sweep_s)
        assert_delivered_once(settings, receiver, alerts)
        assert len(receiver.posts) == len(alerts)  # nothing sent twice
    finally:
        receiver.stop()


def test_the_sweep_delivers_what_the_fast_path_never_announced(tmp_path: Path, redis_url: str) -> None:
    receiver = Receiver(SECRET).start()
    try:
        settings = hook_settings(tmp_path, redis_url, f"sqlite:///{tmp_path / 'h.db'}", [receiver.url])
        # As if the ingest worker died between its commit and the announcement: it knows no endpoint.
        silent = settings.model_copy(update={"webhook_urls": None})
        with webhook_stack(settings, tmp_path=tmp_path, ingest=silent):
            wait_for_batches(settings, publish(settings, [traffic(BOTS)]))
            alerts = alert_rows(settings)
            wait_until(lambda: len(receiver.accepted) == len(alerts), what="the sweep's deliveries")
            time.sleep(3 * settings.webhook_sweep_s)
        assert_delivered_once(settings, receiver, alerts)
        assert len(receiver.posts) == len(alerts)
    finally:
        receiver.stop()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_kill_9_mid_delivery_and_a_redis_restart_still_deliver_once(
    tmp_path: Path, database_url: str
) -> None:
    server = PrivateRedis(tmp_path / "redis", appendonly=False)  # a restart loses every queued task
    server.start()
    receiver = Receiver(SECRET, hold_s=30.0).start()  # holds each request until the worker is dead
    try:
        settings = hook_settings(tmp_path, server.url, database_url, [receiver.url], webhook_timeout_s=2.0)
        prepare_store(settings)
        logs = tmp_path / "logs"
        with ExitStack() as stack:
            stack.enter_context(celery_worker(settings, name="ingest"))
            stack.enter_context(running(settings, beat_argv(settings), log=logs / "beat.log"))
            worker = stack.enter_context(
                running(settings, webhook_worker_argv(settings), log=logs / "w1.log")
            )
            wait_for_batches(settings, publish(settings, [traffic(BOTS)]))
            alerts = alert_rows(settings)
            assert receiver.first_post.wait(60), "no delivery started"
            time.sleep(0.5)  # the pool processes are inside their POSTs now
            os.killpg(worker.pid, signal.SIGKILL)  # the main process and its pool, mid-delivery
            worker.wait()
            in_flight = {p.delivery_id for p in receiver.posts}
            receiver.hold_s = 0.0
            server.restart(down_s=1.0)  # whatever was queued for the webhook worker is gone
            with running(settings, webhook_worker_argv(settings), log=logs / "w2.log"):
                wait_until(lambda: len(receiver.accepted) == len(alerts), timeout_s=180, what="every alert")
                time.sleep(3 * settings.webhook_sweep_s)
        assert_delivered_once(settings, receiver, alerts)
        repeated = {d for d, n in Counter(p.delivery_id for p in receiver.posts).items() if n > 1}
        # A repeat only for a delivery whose answer the killed worker never recorded.
        assert repeated <= in_flight, (repeated, in_flight)
        assert in_flight
    finally:
        receiver.stop()
        server.stop()


def test_dead_letter_after_max_attempts_then_webhooks_retry(tmp_path: Path, redis_url: str) -> None:
    receiver = Receiver(SECRET, status=500).start()
    try:
        settings = hook_settings(
            tmp_path, redis_url, f"sqlite:///{tmp_path / 'h.db'}", [receiver.url], webhook_max_attempts=3,
            api_tokens="ops:t0ken-t0ken:review",
        )  # fmt: skip
        with webhook_stack(settings, tmp_path=tmp_path):
            wait_for_batches(settings, publish(settings, [traffic(BOTS)]))
            alerts = alert_rows(settings)
            wait_until(
                lambda: len(rows := delivery_rows(settings)) == len(alerts) and all(r.dead_ms for r in rows),
                what="dead letters",
            )
            time.sleep(3 * settings.webhook_sweep_s)  # the sweep leaves dead letters alone
            rows = delivery_rows(settings)
            assert {(r.attempts, r.status_code) for r in rows} == {(3, 500)}
            assert len(receiver.posts) == 3 * len(alerts)
            status = cli(settings, "status")
            assert "Dead-lettered webhook deliveries" in status.stdout
            assert all(f"{a}" in status.stdout for a in alerts)
            with api_server(settings) as url, client(url, token="t0ken-t0ken") as http:
                health = http.get("/api/v1/health").json()
            assert health["webhook_dead_letters"] == len(alerts) and health["status"] == "degraded"

            receiver.status = 200
            retried = cli(settings, "webhooks", "retry")
            assert f"re-sent {len(alerts)} dead-lettered deliveries" in retried.stdout
            wait_until(lambda: len(receiver.accepted) == len(alerts), what="deliveries after retry")
        assert_delivered_once(settings, receiver, alerts)
        assert {r.attempts for r in delivery_rows(settings)} == {
            1
        }  # a fresh set of attempts, the first succeeded
    finally:
        receiver.stop()


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `ecomrisk ARGS` with these settings; fail with its output unless it exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=settings_env(settings) | {"COLUMNS": "200"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_webhooks_test_sends_a_signed_sample_and_verify_checks_it(tmp_path: Path) -> None:
    receiver = Receiver(SECRET).start()
    try:
        settings = Settings(data_dir=tmp_path / "data", webhook_secret=SECRET)
        sent = cli(settings, "webhooks", "test", receiver.url)
        assert "HTTP 200" in sent.stdout
        (post,) = receiver.posts
        assert post.signature_error is None and post.delivery_id == "0"
        assert post.body["user_id"] == "sample-user"
    finally:
        receiver.stop()
    from contract.webhook import sign

    body = tmp_path / "body.json"
    body.write_bytes(b'{"alert_id": 7}')
    good = sign(SECRET, body.read_bytes())
    assert "valid" in cli(settings, "webhooks", "verify", str(body), "--signature", good).stdout

    def refused(signature: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "webhooks", "verify", str(body), "--signature", signature],
            env=settings_env(settings), cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 1, done.stdout
        return done.stderr

    assert "does not match" in refused(sign("another secret", body.read_bytes()))
    assert "tolerance" in refused(sign(SECRET, body.read_bytes(), timestamp=int(time.time()) - 3_600))
    assert "no t=" in refused("v1=deadbeef")
