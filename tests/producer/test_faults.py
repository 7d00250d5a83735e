"""Injected faults: each kind at its rate, with the intended defect and the worker's reason."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from config.settings import Settings
from contract.wire import Reason, now_ms, utc_ms
from producer.delivery import Outcome
from producer.faults import (
    FAULT_REASONS,
    LINE_FAULTS,
    Fault,
    FaultLimits,
    FaultRates,
    break_event,
    parse_assignments,
)
from producer.generator import generate_batches, plan_run
from producer.timestamps import format_timestamp
from workers.validation import Limits, LineRejected, validate_line

NOW = datetime.now(UTC)
NOW_MS = utc_ms(NOW)
LIMITS = FaultLimits(
    max_field_chars=256, max_line_bytes=16_384, max_past_skew_days=3650, max_future_skew_s=86_400
)
EVENT: dict[str, Any] = {
    "event_id": "s1-e000000001",
    "user_id": "s1-u000001",
    "session_id": "9b0e2c55-1f3c-4c53-9a43-2f6a8c8d1f10",
    "action": "view",
    "category": "apparel.shoes",
    "product": "Moore KD-512",
    "amount": None,
    "timestamp": format_timestamp(NOW_MS - 3_600_000, 120),
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
}
REQUIRED = ("event_id", "user_id", "action", "timestamp")


def broken(fault: Fault, n: int = 60) -> list[str]:
    rng = random.Random(fault.value)
    return [
        break_event(fault, EVENT, rng=rng, limits=LIMITS, horizon_ms=NOW_MS, ts_ms=NOW_MS - 3_600_000)
        for _ in range(n)
    ]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _missing(d: dict[str, Any]) -> bool:
    return sum(d.get(k) is None for k in REQUIRED) == 1


DEFECTS: dict[Fault, Callable[[dict[str, Any]], bool]] = {
    Fault.MISSING_FIELD: _missing,
    Fault.NEGATIVE_AMOUNT: lambda d: d["action"] == "purchase" and d["amount"] < 0,
    Fault.PURCHASE_WITHOUT_AMOUNT: lambda d: d["action"] == "purchase" and d.get("amount") is None,
    Fault.UNKNOWN_ACTION: lambda d: (
        d["action"] not in {"view", "search", "add_to_cart", "remove_from_cart", "purchase", "login"}
    ),
    Fault.FUTURE_TIMESTAMP: lambda d: moment(d["timestamp"]) > NOW + timedelta(days=30),
    Fault.OLD_TIMESTAMP: lambda d: moment(d["timestamp"]) < NOW - timedelta(days=3650 + 29),
    Fault.WRONG_TYPE: lambda d: (
        any(not isinstance(d[k], str) for k in ("user_id", "session_id", "product"))
        or isinstance(d["amount"], str)
    ),
    Fault.LONG_STRING: lambda d: max(len(v) for v in d.values() if isinstance(v, str)) > 256,
}


@pytest.mark.parametrize("fault", list(DEFECTS))
def test_each_fault_breaks_exactly_what_it_says(fault: Fault) -> None:
    for line in broken(fault):
        event = json.loads(line)
        assert DEFECTS[fault](event), line
        assert "\n" not in line


def test_bad_timestamps_are_not_iso_8601_with_an_offset() -> None:
    for line in broken(Fault.BAD_TIMESTAMP):
        text = json.loads(line)["timestamp"]
        with pytest.raises(ValueError):
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is None:
                raise ValueError("no offset")


def test_not_json_lines_do_not_parse() -> None:
    for line in broken(Fault.NOT_JSON):
        assert line.strip() and "\n" not in line
        with pytest.raises(ValueError):
            json.loads(line)


def test_every_line_fault_appears_at_its_rate(settings: Settings) -> None:
    rates = FaultRates.none().with_rates({f.value: 0.02 for f in LINE_FAULTS})
    config = plan_run(settings, count=20_000, seed=21, start=NOW - timedelta(days=1), rates=rates)
    faults = Counter(line.fault for batch in generate_batches(config, count=20_000) for line in batch.lines)
    for fault in LINE_FAULTS:
        assert 0.7 * 400 < faults[fault] < 1.3 * 400, fault


def test_duplicates_appear_at_their_rate(settings: Settings) -> None:
    rates = FaultRates.none().with_rates({"duplicate": 0.03})
    config = plan_run(settings, count=10_000, seed=22, start=NOW - timedelta(days=1), rates=rates)
    lines = [line for batch in generate_batches(config, count=10_000) for line in batch.lines]
    copies = sum(line.outcome is Outcome.DUPLICATE for line in lines)
    assert 0.7 * 300 < copies < 1.3 * 300


def test_the_worker_validator_reaches_the_expected_outcome_for_every_line(
    settings: Settings,
) -> None:
    rates = FaultRates().with_rates({f.value: 0.03 for f in LINE_FAULTS}).with_rates({"duplicate": 0.03})
    config = plan_run(settings, count=6000, seed=23, rates=rates, now=NOW)
    limits = Limits.from_settings(settings, now_ms=now_ms())
    seen: set[str] = set()
    reached: Counter[str] = Counter()
    for batch in generate_batches(config, count=6000):
        for number, line in enumerate(batch.lines, start=1):
            try:
                event = validate_line(line.text, line_no=number, limits=limits)
            except LineRejected as exc:
                got = exc.reason.value
            else:
                got = Outcome.DUPLICATE.value if event.event_id in seen else Outcome.STORED.value
                seen.add(event.event_id)
            assert got == line.expected, line.text
            reached[got] += 1
    assert set(reached) == {"stored", "duplicate", *(r.value for r in FAULT_REASONS.values())}


def test_an_oversized_long_string_is_expected_as_line_too_long(settings: Settings) -> None:
    settings = settings.model_copy(update={"max_field_chars": 20_000, "max_line_bytes": 1024})
    rates = FaultRates.none().with_rates({"long_string": 0.5})
    config = plan_run(settings, count=200, seed=24, start=NOW - timedelta(days=1), rates=rates)
    reasons = Counter(line.reason for b in generate_batches(config, count=200) for line in b.lines)
    assert reasons[Reason.LINE_TOO_LONG] > 50 and Reason.FIELD_TOO_LONG not in reasons


def test_fault_options_parse() -> None:
    assert parse_assignments(["not_json=0.02", " duplicate = 0.1"]) == {"not_json": 0.02, "duplicate": 0.1}
    for bad in ("not_json", "=0.1", "not_json=lots"):
        with pytest.raises(ValueError, match="NAME=NUMBER"):
            parse_assignments([bad])
