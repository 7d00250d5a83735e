"""Redis with a password, and with TLS plus a password: producer, worker, dead letters, `status`.

Each test starts its own redis-server (from PATH, as in CI) and a real Celery worker; nothing is
mocked. TLS needs a redis-server built with TLS (Debian's is): without one the TLS test skips,
except under CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flower.utils.broker import Broker
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError

from cli.redis_server import RedisProcess, TlsFiles, find_redis_binary, start_redis
from cli.services import cli_argv
from config.settings import Settings
from contract.wire import INGEST_TASK, broker_client
from producer.delivery import Outcome
from producer.faults import FaultRates
from producer.generator import RunSummary, plan_run, run_generator
from producer.labels import LabelWriter
from producer.publisher import BrokerAuthError, Publisher
from store.summaries import LedgerTotals, ledger_totals
from tests.support import celery_worker, in_ci, settings_env, wait_until
from workers.deliveries import ATTEMPTS_PREFIX, DeliveryBook

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

# Every character that must be percent-encoded in a URL's userinfo.
PASSWORD = "s3cret:p@ss/w#rd 1"
EVENTS = 600


def plain_url(server: RedisProcess, password: str | None) -> str:
    """A redis:// URL of server with another password in it, or none at all."""
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}127.0.0.1:{server.port}/0"


def live_settings_for(tmp_path: Path, redis_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'auth.db'}",
        redis_url=redis_url,
        queue_name=f"ecomrisk-{tmp_path.name}",
        batch_size=100,
    )


@pytest.fixture()
def password_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A private redis-server that requires PASSWORD."""
    server = start_redis(tmp_path / "redis", appendonly=False, password=PASSWORD)
    yield server
    server.stop()


def make_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 that it signed."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ecomrisk test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(cert=directory / "server.pem", key=directory / "server.key", ca=directory / "ca.pem")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files.key.chmod(0o600)
    return files


@pytest.fixture()
def tls_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A private redis-server that speaks only TLS, and also requires PASSWORD."""
    try:
        server = start_redis(
            tmp_path / "redis", appendonly=False, password=PASSWORD, tls=make_tls_files(tmp_path / "tls")
        )
    except RuntimeError as exc:
        if "Bad directive" not in str(exc):
            raise
        message = (
            f"{find_redis_binary()} has no TLS support; put a redis-server built with BUILD_TLS=yes"
            f" (Debian's is) first on PATH: {exc}"
        )
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    yield server
    server.stop()


def committed_totals(settings: Settings, batches: int) -> LedgerTotals | None:
    """The ledger totals once `batches` batches are committed, else None."""
    engine = create_engine(settings.resolved_database_url)
    try:
        totals = ledger_totals(engine)
    except SQLAlchemyError:  # the worker creates the tables with its first batch
        return None
    finally:
        engine.dispose()
    return totals if totals.batches == batches else None


def publish(settings: Settings) -> RunSummary:
    """Generate EVENTS clean events in batches and publish them through the producer's publisher."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = plan_run(settings, count=EVENTS, seed=11, rates=FaultRates.none())
    publisher = Publisher(broker_client(settings), settings)
    return run_generator(
        config, publisher=publisher, labels=LabelWriter(settings.labels_path), progress=False
    )


def status(settings: Settings) -> subprocess.CompletedProcess[str]:
    """`ecomrisk status` run with exactly these settings, from a directory without a .env."""
    env = settings_env(settings) | {"COLUMNS": "200"}
    return subprocess.run(
        cli_argv("status"),
        env=env,
        cwd=settings.data_dir.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_every_event_stored(settings: Settings) -> None:
    """Publish, run a worker, and find every event in the ledger; `status` then agrees."""
    run = publish(settings)
    with celery_worker(settings, log_path=settings.data_dir.parent / "worker.log"):
        totals = wait_until(
            lambda: committed_totals(settings, run.batches), timeout_s=60, what="every batch committed"
        )
    assert (totals.received, totals.stored_new) == (EVENTS, run.expected[Outcome.STORED])
    assert run.expected[Outcome.STORED] == EVENTS
    assert (totals.duplicates, totals.held) == (0, 0)

    # The worker counted each delivery in the DeliveryBook and cleared it after the commit.
    book = DeliveryBook.from_url(settings.redis_url or "")
    assert book.client.keys(f"{ATTEMPTS_PREFIX}*") == []
    assert book.dead_letters() == {}

    shown = status(settings)
    assert shown.returncode == 0, shown.stderr
    assert "balanced" in shown.stdout
    assert "unknown" not in shown.stdout  # the dead-letter count came from Redis


def test_a_password_protected_redis_carries_every_event(tmp_path: Path, password_redis: RedisProcess) -> None:
    # The password reaches redis-server in a private file, never on its command line.
    assert all(PASSWORD not in arg for arg in password_redis.process.args)
    assert password_redis.url.startswith("redis://:s3cret%3Ap%40ss%2Fw%23rd%201@127.0.0.1:")

    assert_every_event_stored(live_settings_for(tmp_path, password_redis.url))


def test_a_wrong_password_is_a_clear_error_everywhere(tmp_path: Path, password_redis: RedisProcess) -> None:
    settings = live_settings_for(tmp_path, plain_url(password_redis, "wrong"))
    env = settings_env(settings)

    # The producer stops with one line instead of retrying for ever; its batch waits on disk.
    produce = subprocess.run(
        cli_argv("produce", "--count", "10", "--no-progress"),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert produce.returncode == 1, produce.stderr
    assert "error: Redis refused the password in ECOMRISK_REDIS_URL" in produce.stderr
    assert "invalid username-password pair" in produce.stderr
    assert "`ecomrisk reconcile` sends it" in produce.stderr
    assert "Traceback" not in produce.stderr
    assert len(list(settings.raw_dir.glob("*.ndjson"))) == 1

    # `status` says what failed, with the password hidden, and exits non-zero.
    shown = status(settings)
    assert shown.returncode == 1
    assert "Cannot read dead letters from Redis at redis://:***@127.0.0.1:" in shown.stderr
    assert "invalid username-password pair" in shown.stderr
    assert "Traceback" not in shown.stderr
    for output in (produce.stdout, produce.stderr, shown.stdout, shown.stderr):
        assert ":wrong@" not in output

    # The worker keeps trying, and its log says why it consumes nothing.
    log = tmp_path / "refused-worker.log"
    with celery_worker(settings, log_path=log):
        wait_until(
            lambda: "invalid username-password pair" in log.read_text(errors="replace"),
            timeout_s=60,
            what="the worker's connection error",
        )
    assert "Cannot connect to redis://:**@127.0.0.1:" in log.read_text(errors="replace")


def test_a_missing_password_is_refused_too(tmp_path: Path, password_redis: RedisProcess) -> None:
    settings = live_settings_for(tmp_path, plain_url(password_redis, None))
    publisher = Publisher(broker_client(settings), settings, sleep=lambda _s: pytest.fail("retried"))

    with pytest.raises(BrokerAuthError, match="Redis refused the password in ECOMRISK_REDIS_URL"):
        publisher.publish("gen-auth-000001", ['{"a": 1}'], source="test")
    assert (settings.raw_dir / "gen-auth-000001.ndjson").exists()  # kept for reconcile

    shown = status(settings)
    assert shown.returncode == 1
    assert "Cannot read dead letters from Redis at redis://127.0.0.1:" in shown.stderr
    assert "Traceback" not in shown.stderr


def test_a_tls_redis_carries_every_event(tmp_path: Path, tls_redis: RedisProcess) -> None:
    assert tls_redis.url.startswith("rediss://")
    assert "ssl_cert_reqs=required&ssl_ca_certs=/" in tls_redis.url

    settings = live_settings_for(tmp_path, tls_redis.url)
    assert_every_event_stored(settings)

    # Flower's queue view opens its own Redis client, from broker_use_ssl only.
    conf = broker_client(settings).conf
    flower_broker = Broker(settings.redis_url, broker_use_ssl=conf.broker_use_ssl, broker_options={})
    assert asyncio.run(flower_broker.queues([settings.queue_name])) == [
        {"name": settings.queue_name, "messages": 0}
    ]

    # Without the CA the server cannot be verified, and Celery refuses to send rather than fall
    # back to an unverified connection (kombu's own default for a bare rediss:// URL). In a fresh
    # process: kombu pools connections per host and password, whatever their TLS options.
    bare = live_settings_for(tmp_path, tls_redis.url.split("?", 1)[0])
    send = (
        "from config.settings import get_settings; from contract.wire import broker_client; "
        f"broker_client(get_settings()).send_task({INGEST_TASK!r}, kwargs={{}}, retry=False)"
    )
    refused = subprocess.run(
        [sys.executable, "-c", send],
        env=settings_env(bare),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr
