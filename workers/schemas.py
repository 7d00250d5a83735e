"""Event schemas at the worker's edge: the raw wire format, the clean event and reason codes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr


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
