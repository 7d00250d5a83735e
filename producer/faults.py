"""Fault kinds, their rates, and how each one breaks an event so that the worker rejects it."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from functools import cache
from typing import Any

import orjson

from config.settings import Settings
from contract.wire import Reason
from producer.timestamps import format_timestamp

_DAY_MS = 86_400_000
_YEAR_MS = 365 * _DAY_MS


class Fault(StrEnum):
    """What the generator can do wrong on purpose; values match the FaultRates fields."""

    MISSING_FIELD = "missing_field"
    NEGATIVE_AMOUNT = "negative_amount"
    PURCHASE_WITHOUT_AMOUNT = "purchase_without_amount"
    UNKNOWN_ACTION = "unknown_action"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    OLD_TIMESTAMP = "old_timestamp"
    WRONG_TYPE = "wrong_type"
    LONG_STRING = "long_string"
    NOT_JSON = "not_json"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"


# The line faults: each replaces one event by a line the worker quarantines with this reason.
FAULT_REASONS: Mapping[Fault, Reason] = {
    Fault.MISSING_FIELD: Reason.MISSING_FIELD,
    Fault.NEGATIVE_AMOUNT: Reason.NEGATIVE_AMOUNT,
    Fault.PURCHASE_WITHOUT_AMOUNT: Reason.PURCHASE_WITHOUT_AMOUNT,
    Fault.UNKNOWN_ACTION: Reason.UNKNOWN_ACTION,
    Fault.BAD_TIMESTAMP: Reason.BAD_TIMESTAMP,
    Fault.FUTURE_TIMESTAMP: Reason.TIMESTAMP_IN_FUTURE,
    Fault.OLD_TIMESTAMP: Reason.TIMESTAMP_TOO_OLD,
    Fault.WRONG_TYPE: Reason.WRONG_TYPE,
    Fault.LONG_STRING: Reason.FIELD_TOO_LONG,
    Fault.NOT_JSON: Reason.NOT_JSON,
}
LINE_FAULTS: tuple[Fault, ...] = tuple(FAULT_REASONS)


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Probability per generated event of each fault (line faults are mutually exclusive)."""

    missing_field: float = 0.005
    negative_amount: float = 0.005
    purchase_without_amount: float = 0.005
    unknown_action: float = 0.005
    bad_timestamp: float = 0.005
    future_timestamp: float = 0.005
    old_timestamp: float = 0.005
    wrong_type: float = 0.005
    long_string: float = 0.005
    not_json: float = 0.005
    duplicate: float = 0.01
    out_of_order: float = 0.01

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault rate {f.name}={value} is not between 0 and 1")
        if sum(self.rate(f) for f in LINE_FAULTS) > 1.0:
            raise ValueError("the line fault rates add up to more than 1")

    @classmethod
    def none(cls) -> FaultRates:
        """No faults at all."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    def rate(self, fault: Fault) -> float:
        """The rate of one fault kind."""
        return float(getattr(self, fault.value))

    def with_rates(self, rates: Mapping[str, float]) -> FaultRates:
        """A copy with some rates replaced; unknown fault names raise ValueError."""
        unknown = set(rates) - {f.value for f in Fault}
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        return replace(self, **rates)


@dataclass(frozen=True, slots=True)
class FaultLimits:
    """The worker limits a fault must cross to be rejected for the intended reason."""

    max_field_chars: int
    max_line_bytes: int
    max_past_skew_days: float
    max_future_skew_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> FaultLimits:
        return cls(
            max_field_chars=settings.max_field_chars,
            max_line_bytes=settings.max_line_bytes,
            max_past_skew_days=settings.max_past_skew_days,
            max_future_skew_s=settings.max_future_skew_s,
        )


def parse_assignments(options: Sequence[str]) -> dict[str, float]:
    """Turn ["name=0.02", ...] into {"name": 0.02}; a malformed option raises ValueError."""
    parsed: dict[str, float] = {}
    for option in options:
        name, sep, value = option.partition("=")
        try:
            parsed[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(f"expected NAME=NUMBER, got {option!r}")
    return parsed


def draw_line_fault(rates: FaultRates, rng: random.Random) -> Fault | None:
    """Pick at most one line fault for an event, each with its own probability."""
    r = rng.random()
    for fault, rate in _line_fault_rates(rates):
        r -= rate
        if r < 0:
            return fault
    return None


@cache
def _line_fault_rates(rates: FaultRates) -> tuple[tuple[Fault, float], ...]:
    # Read once per set of rates: looking each one up per event cost a third of the generator.
    return tuple((fault, rates.rate(fault)) for fault in LINE_FAULTS)


def break_event(
    fault: Fault,
    fields_: Mapping[str, Any],
    *,
    rng: random.Random,
    limits: FaultLimits,
    horizon_ms: int,
    ts_ms: int,
) -> str:
    """The line that replaces this event: valid but for the single defect of `fault`."""
    event = dict(fields_)
    if fault is Fault.NOT_JSON:
        return _not_json(event, rng)
    _BREAKERS[fault](event, rng, limits, max(ts_ms, horizon_ms), ts_ms)
    return dump_line(event)


def dump_line(event: Mapping[str, Any]) -> str:
    """One compact JSON line."""
    return orjson.dumps(event).decode()


_Breaker = Callable[[dict[str, Any], random.Random, FaultLimits, int, int], None]


def _missing_field(event: dict[str, Any], rng: random.Random, *_: Any) -> None:
    name = rng.choice(("event_id", "user_id", "action", "timestamp"))
    if rng.random() < 0.5:
        del event[name]
    else:
        event[name] = None


def _negative_amount(event: dict[str, Any], rng: random.Random, *_: Any) -> None:
    event["action"] = "purchase"
    event["amount"] = -round(event["amount"] or rng.uniform(1.0, 300.0), 2)


def _purchase_without_amount(event: dict[str, Any], rng: random.Random, *_: Any) -> None:
    event["action"] = "purchase"
    if rng.random() < 0.5:
        del event["amount"]
    else:
        event["amount"] = None


def _unknown_action(event: dict[str, Any], rng: random.Random, *_: Any) -> None:
    event["action"] = rng.choice(("checkout", "wishlist", "share", "refund", "click", "logout"))


def _bad_timestamp(event: dict[str, Any], rng: random.Random, *args: Any) -> None:
    ts_ms = args[-1]
    iso = format_timestamp(ts_ms, None)
    event["timestamp"] = rng.choice(
        (
            f"{iso[:4]}-02-30T25:61:00Z",  # no such day, hour or minute
            "yesterday",
            iso[:-1],  # no offset: ambiguous local time
            f"{iso[:4]}-13-{iso[8:10]}T{iso[11:]}",
            f"{iso[8:10]}/{iso[5:7]}/{iso[:4]} {iso[11:19]}",
            "not a timestamp",
        )
    )


def _future_timestamp(
    event: dict[str, Any], rng: random.Random, limits: FaultLimits, reference_ms: int, _: int
) -> None:
    # At least half a year ahead: still in the future when a run made with an older --start
    # is validated months later.
    ahead_ms = limits.max_future_skew_s * 1000 + rng.uniform(180 * _DAY_MS, 20 * _YEAR_MS)
    event["timestamp"] = format_timestamp(int(reference_ms + ahead_ms), None)


def _old_timestamp(
    event: dict[str, Any], rng: random.Random, limits: FaultLimits, _: int, ts_ms: int
) -> None:
    limit_ms = limits.max_past_skew_days * _DAY_MS
    if rng.random() < 0.3 and ts_ms - limit_ms > 30 * _DAY_MS:
        event["timestamp"] = "1970-01-01T00:00:00.000Z"
        return
    back_ms = limit_ms + rng.uniform(30 * _DAY_MS, 10 * _YEAR_MS)
    event["timestamp"] = format_timestamp(int(ts_ms - back_ms), None)


def _wrong_type(event: dict[str, Any], rng: random.Random, *_: Any) -> None:
    kind = rng.randrange(4)
    if kind == 0:
        event["user_id"] = rng.randrange(10**6, 10**9)
    elif kind == 1:
        event["action"] = "purchase"
        event["amount"] = f"{event['amount'] or rng.uniform(1.0, 300.0):.2f}"
    elif kind == 2:
        event["session_id"] = rng.randrange(10**6)
    else:
        event["product"] = [event["product"] or "item"]


def _long_string(event: dict[str, Any], rng: random.Random, limits: FaultLimits, *_: Any) -> None:
    name = rng.choice(("product", "category", "user_agent", "session_id"))
    base = str(event.get(name) or name)
    room = limits.max_line_bytes - len(dump_line(event)) - len(base) - 64
    length = limits.max_field_chars + 1 + rng.randrange(max(1, min(limits.max_field_chars, room)))
    event[name] = (base + " " + "x" * length)[:length]


def _not_json(event: dict[str, Any], rng: random.Random) -> str:
    text = dump_line(event)
    kind = rng.randrange(4)
    if kind == 0:
        return text[: rng.randrange(10, len(text) - 1)]  # cut off mid-write
    if kind == 1:
        return "<html><body><h1>502 Bad Gateway</h1></body></html>"
    if kind == 2:
        return f"user_id={event['user_id']}&action={event['action']}&ts={event['timestamp']}"
    return str(event)  # a Python repr: single quotes and None


_BREAKERS: Mapping[Fault, _Breaker] = {
    Fault.MISSING_FIELD: _missing_field,
    Fault.NEGATIVE_AMOUNT: _negative_amount,
    Fault.PURCHASE_WITHOUT_AMOUNT: _purchase_without_amount,
    Fault.UNKNOWN_ACTION: _unknown_action,
    Fault.BAD_TIMESTAMP: _bad_timestamp,
    Fault.FUTURE_TIMESTAMP: _future_timestamp,
    Fault.OLD_TIMESTAMP: _old_timestamp,
    Fault.WRONG_TYPE: _wrong_type,
    Fault.LONG_STRING: _long_string,
}
