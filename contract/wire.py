"""What crosses the queue: the event schemas, reason codes, the ingest task and its message format.

Both the producer and the workers import this module and nothing of each other. A task
message is orjson, then fast zlib: a batch of 10,000 events is about 3.3 MB of text, which
kombu's default JSON would escape quote by quote and base64-encode, and which the worker's
main process decodes and re-encodes (its unacked copy) before a pool process sees it.
Compressed first, the body is about a fifth of that size.
"""

from __future__ import annotations

import json
import ssl
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
import redis
from celery import Celery
from kombu import compression, serialization
from kombu.utils.url import parse_url
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from config.settings import Settings

# --- events ---------------------------------------------------------------------------


class Action(StrEnum):
    """The actions a clickstream event may carry."""

    VIEW = "view"
    SEARCH = "search"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"
    LOGIN = "login"


class Reason(StrEnum):
    """Why a line was quarantined. Stable: stored in the database and shown to users."""

    LINE_TOO_LONG = "line_too_long"
    BAD_ENCODING = "bad_encoding"
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    FIELD_TOO_LONG = "field_too_long"
    EMPTY_FIELD = "empty_field"
    UNKNOWN_ACTION = "unknown_action"
    NEGATIVE_AMOUNT = "negative_amount"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    PURCHASE_WITHOUT_AMOUNT = "purchase_without_amount"
    BAD_TIMESTAMP = "bad_timestamp"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    BATCH_TOO_LARGE = "batch_too_large"
    POISON_BATCH = "poison_batch"


REASON_DESCRIPTIONS: dict[Reason, str] = {
    Reason.LINE_TOO_LONG: "The line is longer than ECOMRISK_MAX_LINE_BYTES.",
    Reason.BAD_ENCODING: "The line is not valid UTF-8.",
    Reason.NOT_JSON: "The line is not JSON (NaN and Infinity are not JSON either).",
    Reason.NOT_AN_OBJECT: "The line is JSON but not an object.",
    Reason.MISSING_FIELD: "A required field (event_id, user_id, action, timestamp) is absent or null.",
    Reason.WRONG_TYPE: "A field has the wrong JSON type, e.g. a number for user_id.",
    Reason.FIELD_TOO_LONG: "A string is longer than ECOMRISK_MAX_FIELD_CHARS.",
    Reason.EMPTY_FIELD: "A required string is empty after trimming.",
    Reason.UNKNOWN_ACTION: "The action is not one of the known actions.",
    Reason.NEGATIVE_AMOUNT: "The amount is below zero.",
    Reason.AMOUNT_OUT_OF_RANGE: "The amount exceeds ECOMRISK_MAX_AMOUNT.",
    Reason.PURCHASE_WITHOUT_AMOUNT: "A purchase has no amount.",
    Reason.BAD_TIMESTAMP: "The timestamp is not an ISO 8601 time with an offset, or is impossible.",
    Reason.TIMESTAMP_TOO_OLD: "The timestamp is older than ECOMRISK_MAX_PAST_SKEW_DAYS.",
    Reason.TIMESTAMP_IN_FUTURE: "The timestamp is beyond ECOMRISK_MAX_FUTURE_SKEW_S.",
    Reason.CONFLICTING_DUPLICATE: "The event id is stored already with different content.",
    Reason.BATCH_TOO_LARGE: "The whole batch exceeds ECOMRISK_MAX_BATCH_BYTES.",
    Reason.POISON_BATCH: "The batch failed ECOMRISK_TASK_MAX_ATTEMPTS deliveries.",
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)  # built once: the constructor costs more than the division
Identifier = Annotated[StrictStr, Field(min_length=1)]
OptionalText = StrictStr | None


class RawEvent(BaseModel):
    """One event as it arrives on the wire: strict JSON types, unknown keys ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    event_id: Identifier
    user_id: Identifier
    action: StrictStr
    timestamp: StrictStr
    session_id: OptionalText = None
    category: OptionalText = None
    product: OptionalText = None
    amount: StrictInt | StrictFloat | None = None
    user_agent: OptionalText = None


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a microsecond per event
class CleanEvent:
    """A validated, normalised event: UTC milliseconds, integer cents, trimmed strings."""

    event_id: str
    user_id: str
    session_id: str | None
    action: str
    category: str | None
    product: str | None
    amount_cents: int | None
    ts_ms: int
    user_agent: str | None
    content_hash: str
    line_no: int
    utc_offset_min: int = 0  # the offset its timestamp carried: local time is ts_ms + this


@dataclass(frozen=True, slots=True)
class Rejection:
    """A line that failed: where it was, what it said, and why."""

    line_no: int
    raw_text: str
    reason: Reason
    detail: str


def utc_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime; sub-millisecond digits are truncated."""
    return (moment - _EPOCH) // _MILLISECOND


def now_ms() -> int:
    """Wall-clock epoch milliseconds, the unit of every time on the wire and in the store."""
    return time.time_ns() // 1_000_000


# --- batch text --------------------------------------------------------------------------

# JSON's white space (RFC 8259): a line of only these, or of nothing, is blank. str.strip()
# would also drop form feeds, unit separators and Unicode spaces, which are lines to account for.
JSON_WHITESPACE = " \t\n\r"


def is_blank_line(line: str) -> bool:
    """True when a line of a batch carries no event: it is empty or only JSON white space."""
    return not line.strip(JSON_WHITESPACE)


# --- the ingest task and its message --------------------------------------------------------

INGEST_TASK = "ecomrisk.ingest_batch"


@dataclass(frozen=True, slots=True)
class BatchMode:
    """How a batch's lines are judged; the defaults are a live producer's."""

    # A file of history: no past window; the future window counts from the earlier of
    # history_end_ms (the file's newest event) and the worker's clock.
    historical: bool = False
    history_end_ms: int | None = None  # None: the file has no readable time; the clock alone
    unpriced_purchases: bool = False  # purchases may carry no amount: stored with none

    def message_fields(self) -> dict[str, Any]:
        """The task keywords of this mode: none for a live batch, so older workers still take it."""
        fields: dict[str, Any] = {}
        if self.historical:
            fields |= {"historical": True, "history_end_ms": self.history_end_ms}
        if self.unpriced_purchases:
            fields["unpriced_purchases"] = True
        return fields

    def describe(self) -> str:
        """The mode in a few words, for the command line."""
        parts = ["historical" if self.historical else "live"]
        if self.unpriced_purchases:
            parts.append("purchases without amounts")
        return ", ".join(parts)


LIVE = BatchMode()


@dataclass(frozen=True, slots=True)
class RawBatch:
    """One batch as the producer sent it, and which delivery of it this is."""

    batch_id: str
    raw_text: str  # NDJSON, one event per line
    source: str  # where it came from: a run id, a file, "replay"
    produced_ms: int | None = None  # when the producer sent it, epoch ms
    attempt: int = 1  # deliveries so far, this one included; not part of the message
    mode: BatchMode = LIVE

    def task_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of the ingest task: the message body."""
        return {
            "batch_id": self.batch_id,
            "raw_text": self.raw_text,
            "source": self.source,
            "produced_ms": self.produced_ms,
            **self.mode.message_fields(),
        }


SERIALIZER = "orjson"
SERIALIZER_CONTENT_TYPE = "application/x-ecomrisk-orjson"
COMPRESSION = "application/x-ecomrisk-zlib1"
ZLIB_LEVEL = 1  # level 6 (kombu's "zlib") costs three times the CPU to shrink 5x to 7x


def dumps(value: Any) -> bytes:
    """JSON bytes; stdlib json for strings orjson refuses (lone surrogates of non-UTF-8 input)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode("ascii")


def loads(data: bytes | str) -> Any:
    """Inverse of dumps: orjson, or stdlib json for the escaped lone surrogates it reads."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def compress(body: bytes) -> bytes:
    """zlib at its fastest level."""
    return zlib.compress(body, ZLIB_LEVEL)


def register_wire_formats() -> None:
    """Teach kombu the serializer and the compression; every process that sends or reads calls this."""
    # kombu's registries are untyped.
    serialization.register(  # type: ignore[no-untyped-call]
        SERIALIZER, dumps, loads, SERIALIZER_CONTENT_TYPE, content_encoding="binary"
    )
    compression.register(compress, zlib.decompress, COMPRESSION)  # type: ignore[no-untyped-call]


# Celery options every sender and every worker shares, whatever the settings.
MESSAGE_CONFIG: dict[str, Any] = {
    "task_serializer": SERIALIZER,
    "task_compression": COMPRESSION,
    # Plain JSON too, for messages queued by an earlier release; pickle is refused:
    # a message can never run code.
    "accept_content": [SERIALIZER, "json"],
    "result_serializer": "json",
    "result_backend": None,
    "task_ignore_result": True,
}


def broker_tls_options(url: str) -> dict[str, Any] | None:
    """TLS options of a rediss:// URL: its ssl_* parameters, verifying the server by default."""
    if urlsplit(url).scheme != "rediss":
        return None
    # Kombu alone would not verify a bare rediss:// URL (redis-py does), and Flower's queue
    # view reads TLS options only from broker_use_ssl, never from the URL.
    return {"ssl_cert_reqs": ssl.CERT_REQUIRED, **(parse_url(url).get("ssl") or {})}


# kombu's Redis transport keeps a queue's messages of priority p > 0 in "<queue>\x06\x16<p>".
KOMBU_PRIORITY_SEP = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)


def queue_keys(queue_name: str) -> tuple[str, ...]:
    """The Redis lists that hold one Celery queue's waiting messages, one per kombu priority step."""
    return tuple(
        queue_name if step == 0 else f"{queue_name}{KOMBU_PRIORITY_SEP}{step}"
        for step in KOMBU_PRIORITY_STEPS
    )


def queue_depth(client: redis.Redis[bytes], queue_names: Iterable[str]) -> int:
    """Messages waiting in these Celery queues (not those delivered and unacknowledged); raises RedisError."""
    pipe = client.pipeline(transaction=False)
    for queue_name in queue_names:
        for key in queue_keys(queue_name):
            pipe.llen(key)
    return sum(int(n) for n in pipe.execute())


def broker_options(settings: Settings) -> dict[str, Any]:
    """How every process reaches the broker: URL, TLS and transport options, for Celery's conf."""
    if not settings.redis_url:
        raise RuntimeError("ECOMRISK_REDIS_URL is not set (ecomrisk up sets it for its own Redis)")
    register_wire_formats()
    transport = {
        # Must exceed the slowest batch, or a running batch is handed to a second worker.
        # Short enough that a batch lost with a killed worker comes back within minutes.
        "visibility_timeout": settings.visibility_timeout_s,
        # Look for such stranded batches every 10 s (kombu's unacked_restore_interval) rather
        # than every tenth time (its default throttle): otherwise they wait 100 s more.
        "unacked_restore_throttle": 1,
        "socket_keepalive": True,
        "retry_on_timeout": True,
    }
    return {
        "broker_url": settings.redis_url,
        "broker_transport_options": transport,
        "broker_use_ssl": broker_tls_options(settings.redis_url),
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_default_queue": settings.queue_name,
    }


def broker_client(settings: Settings) -> Celery:
    """A Celery app that sends tasks and asks workers questions; it runs no task itself."""
    client = Celery("ecomrisk-client")
    client.conf.update(MESSAGE_CONFIG, **broker_options(settings))
    return client
