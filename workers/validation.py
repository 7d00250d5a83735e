"""Parse, validate and clean a raw NDJSON batch, line by line, into clean events and rejections."""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from typing import Annotated, Any, NotRequired, cast

import orjson
from pydantic import ConfigDict, Field, StrictStr, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from config.settings import Settings
from contract.wire import (
    LIVE,
    Action,
    BatchMode,
    CleanEvent,
    RawEvent,
    Reason,
    Rejection,
    is_blank_line,
    utc_ms,
)

REQUIRED_FIELDS = ("event_id", "user_id", "action", "timestamp")
_IDENTIFIERS = ("event_id", "user_id")  # required and never empty
TEXT_FIELDS = ("event_id", "user_id", "session_id", "action", "category", "product", "user_agent")
_ACTIONS = frozenset(a.value for a in Action)
_DAY_MS = 86_400_000
_MINUTE = timedelta(minutes=1)
# Historical batches have no past limit; every time datetime can hold is later than this.
NO_PAST_LIMIT_MS = -(2**63)
# Pydantic error types in the order they decide a line's reason when several apply.
_TYPE_REASONS = (("missing", Reason.MISSING_FIELD), ("string_too_short", Reason.EMPTY_FIELD))


class LineRejected(Exception):
    """Raised inside line validation; carries the reason code and a readable detail."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The accepted event times, epoch ms, both ends inclusive."""

    min_ts_ms: int
    max_ts_ms: int

    @classmethod
    def for_batch(cls, settings: Settings, *, now_ms: int, mode: BatchMode = LIVE) -> TimeWindow:
        """Live: both skew limits around the worker's clock. History: no past limit (see BatchMode)."""
        future_ms = round(settings.max_future_skew_s * 1000)
        if not mode.historical:
            return cls(now_ms - round(settings.max_past_skew_days * _DAY_MS), now_ms + future_ms)
        # Every event of a file is at or before its newest, so what this refuses is a time that has
        # not happened yet: a far-future typo is the file's newest event, and the clock is earlier.
        end_ms = now_ms if mode.history_end_ms is None else min(mode.history_end_ms, now_ms)
        return cls(NO_PAST_LIMIT_MS, end_ms + future_ms)


@dataclass(frozen=True, slots=True)
class Limits:
    """Everything validation needs besides the line: input limits, the accepted times, the purchase rule."""

    max_line_bytes: int
    max_field_chars: int
    max_amount_cents: int
    min_ts_ms: int
    max_ts_ms: int
    detail_chars: int
    unpriced_purchases: bool = False  # a purchase without an amount is stored with none

    @classmethod
    def from_settings(cls, settings: Settings, *, now_ms: int, mode: BatchMode = LIVE) -> Limits:
        """Limits for a batch of this mode validated at now_ms (the worker's clock)."""
        window = TimeWindow.for_batch(settings, now_ms=now_ms, mode=mode)
        return cls(
            max_line_bytes=settings.max_line_bytes,
            max_field_chars=settings.max_field_chars,
            max_amount_cents=round(settings.max_amount * 100),
            min_ts_ms=window.min_ts_ms,
            max_ts_ms=window.max_ts_ms,
            detail_chars=settings.quarantine_detail_chars,
            unpriced_purchases=mode.unpriced_purchases,
        )


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    """The outcome of validating one batch: every non-blank line is in exactly one list."""

    events: list[CleanEvent]
    rejections: list[Rejection]

    @property
    def received(self) -> int:
        return len(self.events) + len(self.rejections)


def parse_batch(raw_text: str, limits: Limits) -> ParsedBatch:
    """Validate every line of an NDJSON batch; blank lines carry no event and are not counted."""
    events: list[CleanEvent] = []
    rejections: list[Rejection] = []
    for line_no, line in enumerate(raw_text.split("\n"), start=1):
        if is_blank_line(line):
            continue
        try:
            events.append(validate_line(line, line_no=line_no, limits=limits))
        except LineRejected as exc:
            rejections.append(Rejection(line_no, line, exc.reason, exc.detail[: limits.detail_chars]))
    return ParsedBatch(events, rejections)


def reject_batch(raw_text: str, reason: Reason, detail: str) -> ParsedBatch:
    """Quarantine every non-blank line of a batch individually with the same reason."""
    rejections = [
        Rejection(line_no, line, reason, detail)
        for line_no, line in enumerate(raw_text.split("\n"), start=1)
        if not is_blank_line(line)
    ]
    return ParsedBatch([], rejections)


def validate_line(line: str, *, line_no: int, limits: Limits) -> CleanEvent:
    """Turn one raw line into a CleanEvent, or raise LineRejected with the first reason."""
    line = line.removesuffix("\r")
    try:
        size = len(line.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise LineRejected(Reason.BAD_ENCODING, f"not valid UTF-8 at character {exc.start}") from exc
    if size > limits.max_line_bytes:
        raise LineRejected(Reason.LINE_TOO_LONG, f"{size} bytes, limit {limits.max_line_bytes}")
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise LineRejected(Reason.NOT_JSON, str(exc)) from exc
    if not isinstance(document, dict):
        raise LineRejected(Reason.NOT_AN_OBJECT, f"JSON {type(document).__name__}, not an object")
    raw, plain = _validate_schema(document, limits.max_field_chars, ascii_line=line.isascii())
    return _clean(raw, line_no=line_no, limits=limits, plain=plain)


# A text that is its own normalise_text: printable ASCII words, one space apart, or nothing.
PLAIN_TEXT = r"^(?:[!-~]+(?: [!-~]+)*)?$"


# What the schema validators return: RawEvent's fields as a dict; an absent optional field is absent.
RawFields = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _SchemaValidators:
    """Validators of RawEvent's fields with the text-length limit; `plain` also requires PLAIN_TEXT."""

    plain: Callable[[dict[str, Any]], RawFields]
    full: Callable[[dict[str, Any]], RawFields]


@cache
def _schema_validators(max_field_chars: int) -> _SchemaValidators:
    """Built once per limit: pydantic-core checks lengths and plain texts, not Python after it.

    The shape is a TypedDict of RawEvent's fields, not a model: the same field rules and errors,
    without building a model instance per line (3 us of the 5 it took).
    """

    def validator(**constraints: Any) -> Callable[[dict[str, Any]], RawFields]:
        text = Annotated[StrictStr, Field(max_length=max_field_chars, **constraints)]
        fields: dict[str, Any] = {}
        for name, info in RawEvent.model_fields.items():
            shape: Any = info.rebuild_annotation()
            if name in TEXT_FIELDS:
                shape = Annotated[text, Field(min_length=1)] if name in _IDENTIFIERS else text
                if name not in REQUIRED_FIELDS:
                    shape = shape | None
            fields[name] = shape if info.is_required() else NotRequired[shape]
        event_fields: Any = TypedDict("RawEventFields", fields)  # type: ignore[misc]
        event_fields.__pydantic_config__ = ConfigDict(strict=True, extra="ignore")  # type: ignore[attr-defined]
        return cast(Callable[[dict[str, Any]], RawFields], TypeAdapter(event_fields).validate_python)

    return _SchemaValidators(plain=validator(pattern=PLAIN_TEXT), full=validator())


def _validate_schema(
    document: dict[str, Any], max_field_chars: int, *, ascii_line: bool
) -> tuple[RawFields, bool]:
    """The raw event's fields, and whether every text is plain already (then _clean skips normalising)."""
    validators = _schema_validators(max_field_chars)
    if ascii_line:  # a non-ASCII text is never plain: skip the first try
        try:
            return validators.plain(document), True
        except ValidationError:
            pass  # a text to normalise, or a wrong line: the full rules decide which
    try:
        return validators.full(document), False
    except ValidationError as exc:
        # An absent or null required field fails the model too; name it before any other error.
        missing = [name for name in REQUIRED_FIELDS if document.get(name) is None]
        if missing:
            raise LineRejected(
                Reason.MISSING_FIELD, f"required field(s) absent or null: {', '.join(missing)}"
            ) from exc
        errors = exc.errors(include_url=False, include_input=False)
        for error_type, reason in _TYPE_REASONS:
            for error in errors:
                if error["type"] == error_type:
                    raise LineRejected(reason, _describe(error)) from exc
        wrong = [error for error in errors if error["type"] != "string_too_long"]
        if wrong:
            raise LineRejected(Reason.WRONG_TYPE, _describe(wrong[0])) from exc
        # Only lengths are wrong: name the first long field in TEXT_FIELDS order.
        name = next(n for n in TEXT_FIELDS if len(document.get(n) or "") > max_field_chars)
        raise LineRejected(
            Reason.FIELD_TOO_LONG,
            f"{name}: {len(document[name])} characters, limit {max_field_chars}",
        ) from exc


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}"


def _clean(raw: RawFields, *, line_no: int, limits: Limits, plain: bool = False) -> CleanEvent:
    """plain: every text is PLAIN_TEXT, its own normalised form, as the schema checked already."""
    get = raw.get
    if plain:  # the common case
        event_id, user_id, action = raw["event_id"], raw["user_id"], raw["action"]
        session_id, category, product, user_agent = (
            get("session_id") or None,
            get("category") or None,
            get("product") or None,
            get("user_agent") or None,
        )
    else:
        event_id = _normalise_id(raw["event_id"], "event_id")
        user_id = _normalise_id(raw["user_id"], "user_id")
        action = normalise_text(raw["action"])
        session_id = _optional_text(get("session_id"))
        category = _optional_text(get("category"))
        product = _optional_text(get("product"))
        user_agent = _optional_text(get("user_agent"))
    action = action.lower()
    if action not in _ACTIONS:
        raise LineRejected(
            Reason.UNKNOWN_ACTION, f"action {raw['action'][:40]!r} is not one of {sorted(_ACTIONS)}"
        )
    ts_ms, offset_min = _parse_timestamp(raw["timestamp"], limits)
    amount_cents = _amount_cents(get("amount"), limits)
    if action == Action.PURCHASE and amount_cents is None and not limits.unpriced_purchases:
        raise LineRejected(Reason.PURCHASE_WITHOUT_AMOUNT, "a purchase needs an amount")
    if category:
        category = category.lower()
    fields = (
        event_id,
        user_id,
        session_id,
        action,
        category,
        product,
        amount_cents,
        ts_ms,
        user_agent,
    )
    content_hash = hashlib.blake2b(orjson.dumps(fields), digest_size=16).hexdigest()
    # The offset stays out of the hash: the same instant written in another zone is the same event.
    return CleanEvent(*fields, content_hash, line_no, offset_min)  # fields: CleanEvent's first nine


def normalise_text(value: str) -> str:
    """NFC-normalise, turn control characters into spaces, collapse runs of white space."""
    if value.isascii() and value.isprintable():
        # The common case: ASCII is its own NFC form and its only printable white space is " ".
        if "  " not in value and value[:1] != " " and value[-1:] != " ":
            return value
        return " ".join(value.split())
    value = unicodedata.normalize("NFC", value)
    if not value.isprintable():
        value = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in value)
    return " ".join(value.split())


def _normalise_id(value: str, name: str) -> str:
    cleaned = normalise_text(value)
    if not cleaned:
        raise LineRejected(Reason.EMPTY_FIELD, f"{name} is empty after trimming")
    return cleaned


def _optional_text(value: str | None) -> str | None:
    if value is None:
        return None
    return normalise_text(value) or None


def _parse_timestamp(text: str, limits: Limits) -> tuple[int, int]:
    """Epoch ms and the UTC offset in minutes that the text carried."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise LineRejected(Reason.BAD_TIMESTAMP, f"{text[:60]!r}: {exc}") from exc
    offset = moment.utcoffset()
    if offset is None:
        raise LineRejected(Reason.BAD_TIMESTAMP, f"{text[:60]!r} has no UTC offset")
    try:
        ts_ms = utc_ms(moment)
    except OverflowError as exc:
        raise LineRejected(Reason.BAD_TIMESTAMP, f"{text[:60]!r} is out of range") from exc
    if ts_ms < limits.min_ts_ms:
        raise LineRejected(Reason.TIMESTAMP_TOO_OLD, f"{text[:60]!r} is before the accepted past window")
    if ts_ms > limits.max_ts_ms:
        raise LineRejected(Reason.TIMESTAMP_IN_FUTURE, f"{text[:60]!r} is beyond the accepted future skew")
    return ts_ms, offset // _MINUTE


def _amount_cents(amount: float | int | None, limits: Limits) -> int | None:
    if amount is None:
        return None
    if isinstance(amount, float) and not math.isfinite(amount):
        raise LineRejected(Reason.AMOUNT_OUT_OF_RANGE, f"amount {amount} is not finite")
    if amount < 0:
        raise LineRejected(Reason.NEGATIVE_AMOUNT, f"amount {amount} is negative")
    if amount * 100 > limits.max_amount_cents:
        raise LineRejected(
            Reason.AMOUNT_OUT_OF_RANGE,
            f"amount {amount} exceeds {limits.max_amount_cents / 100:.2f}",
        )
    if isinstance(amount, int):
        return amount * 100
    return float_cents(amount)


_ONE = Decimal(1)


def float_cents(amount: float) -> int:
    """Cents of a finite, non-negative float, read from its shortest repr: 19.99 is 1999, not 1998."""
    text = repr(amount)
    whole, _, fraction = text.partition(".")
    if len(fraction) <= 2 and whole.isdigit():  # exact in decimal: no rounding to do
        return int(whole) * 100 + int(fraction.ljust(2, "0"))
    return int((Decimal(text) * 100).quantize(_ONE, rounding=ROUND_HALF_EVEN))
