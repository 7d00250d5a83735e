"""The broker options take TLS from the URL and verify the server unless told not to."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from contract.wire import broker_tls_options


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:pw@127.0.0.1:6379/0", None),
        ("rediss://:pw@redis.example:6380/0", {"ssl_cert_reqs": ssl.CERT_REQUIRED}),
        (
            "rediss://redis.example:6380/0?ssl_ca_certs=/etc/ca.pem",
            {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/etc/ca.pem"},
        ),
        (
            "rediss://redis.example:6380/0?ssl_cert_reqs=required&ssl_ca_certs=%2Fetc%2Fca.pem",
            {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/etc/ca.pem"},
        ),
        # An explicit choice in the URL is kept, even an insecure one.
        ("rediss://redis.example:6380/0?ssl_cert_reqs=none", {"ssl_cert_reqs": ssl.CERT_NONE}),
    ],
    ids=["redis", "bare-rediss", "ca-only", "ca-and-required", "explicit-none"],
)
def test_broker_tls_options(url: str, expected: dict[str, Any] | None) -> None:
    assert broker_tls_options(url) == expected
