"""The webhook contract: the alert body, its Slack form, and the Stripe-style signature a receiver checks.

A receiver needs only this module (the standard library and nothing of ecomrisk's storage):

    from contract.webhook import verify_signature
    verify_signature(secret, raw_body, request.headers["X-Ecomrisk-Signature"])  # raises if forged
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote

SIGNATURE_HEADER = "X-Ecomrisk-Signature"
DELIVERY_HEADER = "X-Ecomrisk-Delivery"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300  # as Stripe: older signatures are refused, so a captured request cannot be replayed
TOP_REASONS = 3


class SignatureError(ValueError):
    """The signature header is missing, malformed, too old, or does not match the body."""


def delivery_id(alert_id: int) -> str:
    """The X-Ecomrisk-Delivery value: the alert id, the same on every attempt to every endpoint."""
    return str(alert_id)


def signed_text(timestamp: int, body: bytes) -> bytes:
    """What the HMAC covers: "<unix seconds>.<raw body>"."""
    return f"{timestamp}.".encode() + body


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The X-Ecomrisk-Signature value: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), signed_text(t, body), hashlib.sha256).hexdigest()
    return f"t={t},{SIGNATURE_VERSION}={digest}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now_s: float | None = None,
) -> int:
    """Check a signature header against the raw body; return its timestamp or raise SignatureError.

    tolerance_s bounds the clock skew between sender and receiver, and how long a captured
    request could be replayed; a receiver that also dedups on X-Ecomrisk-Delivery is immune.
    """
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        raise SignatureError("the signature header has no t=<unix seconds>") from None
    candidates = parts.get(SIGNATURE_VERSION, [])
    if not candidates:
        raise SignatureError(f"the signature header has no {SIGNATURE_VERSION}=")
    now = time.time() if now_s is None else now_s
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(
            f"the signature is {abs(now - timestamp):.0f}s from now (tolerance {tolerance_s:g}s)"
        )
    expected = hmac.new(secret.encode(), signed_text(timestamp, body), hashlib.sha256).hexdigest()
    # Constant time, over every v1 given (a sender rotating secrets may send two).
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("the signature does not match the body")
    return timestamp


def user_path(user_id: str) -> str:
    """The API path of a user, percent-encoded."""
    return f"/api/v1/users/{quote(user_id, safe='')}"


def alert_payload(
    *,
    alert_id: int,
    user_id: str,
    score: int,
    band: str,
    kind: str,
    markers: list[dict[str, Any]],
    entered_ms: int,
) -> dict[str, Any]:
    """The JSON body of an alert webhook."""
    return {
        "type": "alert.high_band_entered",
        "alert_id": alert_id,
        "user_id": user_id,
        "score": score,
        "band": band,
        "kind": kind,
        "markers": markers,
        "entered_ms": entered_ms,
        "link": user_path(user_id),
    }


def slack_body(payload: dict[str, Any]) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook body: one text line with the user, score and top reasons."""
    markers = sorted(payload["markers"], key=lambda m: -float(m.get("weight") or 0))[:TOP_REASONS]
    reasons = ", ".join(f"{m.get('name')}={m.get('value')}" for m in markers) or "no marker"
    # Slack reads <, > and & as markup; the user id comes from event data.
    user = str(payload["user_id"]).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {
        "text": f"ecomrisk alert {payload['alert_id']}: user {user} entered the {payload['band']} band"
        f" with score {payload['score']} ({payload['kind']}); top reasons: {reasons}",
    }
