"""Webhook delivery: one signed POST per attempt, its outcome in the delivery log, and the outbox sweep.

The Celery tasks in workers.tasks only call these functions. Exactly once per endpoint: an attempt
leases its (alert, endpoint) row before the POST and records the answer after it; the only
repeat is a crash between the receiver's answer and that record, and it carries the same
X-Ecomrisk-Delivery id, so a receiver that dedups on it sees the alert once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import Engine

from config.settings import Settings, WebhookEndpoint
from contract.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, alert_payload, delivery_id, sign, slack_body
from contract.wire import now_ms
from store import webhooks as log
from store.webhooks import AlertRecord

MAX_BACKOFF_S = 300.0
USER_AGENT = "ecomrisk-webhooks/1"
LEASE_MARGIN_MS = 5_000
# How many sweep periods a delivery the sweep sent again waits before it is sent once more.
REQUEUE_PERIODS = 5


class Outcome(StrEnum):
    """How one delivery task ended."""

    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"
    SKIPPED = "skipped"  # delivered, dead-lettered, leased by another copy, or not due yet


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What an attempt did; retry_in_s is set for Outcome.RETRY."""

    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    retry_in_s: float | None = None


@dataclass(frozen=True, slots=True)
class WebhookRules:
    """Everything a delivery needs from settings."""

    secret: str
    timeout_s: float
    max_attempts: int
    backoff_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookRules:
        return cls(
            settings.webhook_secret or "",
            settings.webhook_timeout_s,
            settings.webhook_max_attempts,
            settings.webhook_backoff_s,
        )

    @property
    def lease_ms(self) -> int:
        """How long an attempt holds its row: httpx's four phase timeouts and a margin."""
        return round(4 * self.timeout_s * 1000) + LEASE_MARGIN_MS


def endpoint_key(url: str) -> str:
    """A stable key of an endpoint URL; the log keeps it, not the URL (which may hold a secret)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def endpoint_host(url: str) -> str:
    """host[:port] of an endpoint, for people."""
    parts = urlsplit(url)
    return f"{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def endpoints_by_key(settings: Settings) -> dict[str, WebhookEndpoint]:
    """The configured endpoints, by key."""
    return {endpoint_key(e.url): e for e in settings.webhook_endpoints}


def backoff_s(attempt: int, base_s: float) -> float:
    """Seconds before the attempt after `attempt`: base, 2 x base, 4 x base ... at most MAX_BACKOFF_S."""
    return float(min(base_s * 2 ** max(attempt - 1, 0), MAX_BACKOFF_S))


def request_body(alert: AlertRecord, *, slack: bool) -> bytes:
    """The JSON body for one endpoint: the alert, or its Slack form."""
    payload = alert_payload(
        alert_id=alert.id,
        user_id=alert.user_id,
        score=alert.score,
        band=alert.band,
        kind=alert.risk_kind,
        markers=list(alert.reasons or []),
        entered_ms=alert.created_ms,
    )
    return orjson.dumps(slack_body(payload) if slack else payload)


def signed_headers(secret: str, body: bytes, alert_id: int) -> dict[str, str]:
    """Content type, signature, delivery id and user agent of one POST."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        DELIVERY_HEADER: delivery_id(alert_id),
        "User-Agent": USER_AGENT,
    }


def deliver(
    engine: Engine,
    client: httpx.Client,
    endpoint: WebhookEndpoint,
    *,
    alert_id: int,
    rules: WebhookRules,
    clock: Callable[[], int] = now_ms,
) -> DeliveryResult:
    """One attempt of one alert to one endpoint: lease, POST, record; never raises for an HTTP failure."""
    key = endpoint_key(endpoint.url)
    attempt = log.begin_attempt(
        engine,
        alert_id=alert_id,
        endpoint=key,
        host=endpoint_host(endpoint.url),
        at_ms=clock(),
        lease_ms=rules.lease_ms,
    )
    if attempt is None:
        return DeliveryResult(Outcome.SKIPPED)
    body = request_body(attempt.alert, slack=endpoint.slack)
    status: int | None = None
    try:
        response = client.post(
            endpoint.url,
            content=body,
            headers=signed_headers(rules.secret, body, alert_id),
            timeout=rules.timeout_s,
        )
        status = response.status_code
        if 200 <= status < 300:
            log.record_success(engine, alert_id=alert_id, endpoint=key, status_code=status, at_ms=clock())
            return DeliveryResult(Outcome.DELIVERED, status_code=status)
        error = f"HTTP {status}: {response.text[:200]}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    at = clock()
    dead = attempt.number >= rules.max_attempts
    delay = backoff_s(attempt.number, rules.backoff_s)
    log.record_failure(
        engine,
        alert_id=alert_id,
        endpoint=key,
        status_code=status,
        error=error,
        at_ms=at,
        next_attempt_ms=None if dead else at + round(delay * 1000),  # None: dead-lettered
    )
    if dead:
        return DeliveryResult(Outcome.DEAD, status_code=status, error=error)
    return DeliveryResult(Outcome.RETRY, status_code=status, error=error, retry_in_s=delay)


def sweep_outbox(
    engine: Engine,
    settings: Settings,
    *,
    enqueue: Callable[[int, str], None],
    at_ms: int | None = None,
) -> int:
    """Send again every recent alert x endpoint without a success and without an attempt on its way."""
    endpoints = endpoints_by_key(settings)
    if not endpoints:
        return 0
    now = at_ms if at_ms is not None else now_ms()
    period_ms = round(settings.webhook_sweep_s * 1000)
    overdue = log.overdue_deliveries(
        engine,
        endpoints=sorted(endpoints),
        since_ms=now - round(settings.webhook_outbox_hours * 3_600_000),
        before_ms=now - period_ms,
        requeued_before_ms=now - REQUEUE_PERIODS * period_ms,
        now_ms=now,
    )
    log.mark_queued(engine, [(a, e, endpoint_host(endpoints[e].url)) for a, e in overdue], at_ms=now)
    for alert_id, key in overdue:
        enqueue(alert_id, key)
    return len(overdue)
