"""Parsing, validation, cleaning: every reason code at its edges."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from config.settings import Settings
from contract.wire import BatchMode, Reason
from workers.validation import (
    Limits,
    LineRejected,
    float_cents,
    normalise_text,
    parse_batch,
    reject_batch,
    validate_line,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
SETTINGS = Settings(max_field_chars=32, max_line_bytes=1024, max_amount=1000.0)
LIMITS = Limits.from_settings(SETTINGS, now_ms=NOW_MS)


def event(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": "e-1",
        "user_id": "u-1",
        "session_id": "s-1",
        "action": "view",
        "category": "Books",
        "product": "p-1",
        "amount": None,
        "timestamp": "2026-11-27T10:00:00.250Z",
        "user_agent": "Mozilla/5.0",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def line(**overrides: object) -> str:
    return orjson.dumps(event(**overrides)).decode()


def reason_of(text: str) -> Reason:
    with pytest.raises(LineRejected) as caught:
        validate_line(text, line_no=1, limits=LIMITS)
    return caught.value.reason


def test_valid_event_is_cleaned() -> None:
    clean = validate_line(
        line(timestamp="2026-11-27T11:00:00.250+01:00", category="  Books\t", action=" VIEW "),
        line_no=7,
        limits=LIMITS,
    )
    assert clean.ts_ms == int(datetime(2026, 11, 27, 10, 0, 0, 250000, tzinfo=UTC).timestamp() * 1000)
    assert clean.category == "books"
    assert clean.action == "view"
    assert clean.line_no == 7
    assert clean.amount_cents is None


def test_offset_and_z_give_the_same_content_hash() -> None:
    a = validate_line(line(timestamp="2026-11-27T10:00:00Z"), line_no=1, limits=LIMITS)
    b = validate_line(line(timestamp="2026-11-27T12:00:00+02:00"), line_no=2, limits=LIMITS)
    assert a.ts_ms == b.ts_ms
    assert a.content_hash == b.content_hash


@pytest.mark.parametrize(
    ("amount", "cents"),
    [(19.99, 1999), (0, 0), (0.005, 0), (0.015, 2), (1000, 100_000), (12, 1200)],
)
def test_amount_becomes_exact_cents(amount: float, cents: int) -> None:
    clean = validate_line(line(action="purchase", amount=amount), line_no=1, limits=LIMITS)
    assert clean.amount_cents == cents


@given(st.floats(min_value=0, max_value=1e20))  # larger ones are refused before (max_amount)
@example(19.99)
@example(3.0)
@example(1e16)  # repr "1e+16": no fraction, yet not a plain integer part
@example(1.5e-7)
@example(0.125)  # three decimals: a tie, to the even cent
def test_float_cents_equals_the_decimal_of_its_repr(amount: float) -> None:
    exact = (Decimal(repr(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    assert float_cents(amount) == int(exact)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json at all", Reason.NOT_JSON),
        ('{"event_id": "e", ', Reason.NOT_JSON),
        ('{"amount": NaN}', Reason.NOT_JSON),
        ('{"amount": Infinity}', Reason.NOT_JSON),
        ("[" * 2000 + "]" * 2000, Reason.LINE_TOO_LONG),
        ("[1, 2]", Reason.NOT_AN_OBJECT),
        ('"a string"', Reason.NOT_AN_OBJECT),
        ("null", Reason.NOT_AN_OBJECT),
        ("x" * 1025, Reason.LINE_TOO_LONG),
        ("caf\udce9", Reason.BAD_ENCODING),
    ],
)
def test_structural_rejections(text: str, reason: Reason) -> None:
    assert reason_of(text) is reason


def test_too_deep_json_is_not_json() -> None:
    roomy = Limits.from_settings(Settings(max_line_bytes=100_000), now_ms=NOW_MS)
    with pytest.raises(LineRejected) as caught:
        validate_line('{"a":' * 5000 + "1" + "}" * 5000, line_no=1, limits=roomy)
    assert caught.value.reason is Reason.NOT_JSON


def test_line_exactly_at_the_byte_limit_is_not_too_long() -> None:
    padded = event()
    padded["product"] = ""
    base = len(orjson.dumps(padded))
    padded["extra"] = "x" * (1024 - base - len(',"extra":""'))
    text = orjson.dumps(padded).decode()
    assert len(text.encode()) == 1024
    validate_line(text, line_no=1, limits=LIMITS)
    assert reason_of(text + " ") is Reason.LINE_TOO_LONG


@pytest.mark.parametrize("field", ["event_id", "user_id", "action", "timestamp"])
def test_missing_or_null_required_field(field: str) -> None:
    assert reason_of(line(**{field: ...})) is Reason.MISSING_FIELD
    assert reason_of(line(**{field: None})) is Reason.MISSING_FIELD


@pytest.mark.parametrize(
    "overrides",
    [
        {"user_id": 123},
        {"event_id": ["x"]},
        {"amount": "12.5"},
        {"amount": True},
        {"timestamp": 1700000000},
        {"category": {"a": 1}},
        {"action": 5},
    ],
)
def test_wrong_type(overrides: dict[str, object]) -> None:
    assert reason_of(line(**overrides)) is Reason.WRONG_TYPE


@pytest.mark.parametrize("overrides", [{"user_id": ""}, {"event_id": "   "}, {"user_id": "\t\n"}])
def test_empty_identifier(overrides: dict[str, object]) -> None:
    assert reason_of(line(**overrides)) is Reason.EMPTY_FIELD


def test_field_length_limit_edges() -> None:
    validate_line(line(product="p" * 32), line_no=1, limits=LIMITS)
    assert reason_of(line(product="p" * 33)) is Reason.FIELD_TOO_LONG
    assert reason_of(line(user_agent="u" * 500)) is Reason.FIELD_TOO_LONG


def test_a_long_field_is_named_in_field_order_after_every_schema_error() -> None:
    with pytest.raises(LineRejected) as caught:
        validate_line(line(action="v" * 40, session_id="s" * 40), line_no=1, limits=LIMITS)
    assert caught.value.reason is Reason.FIELD_TOO_LONG
    assert caught.value.detail == "session_id: 40 characters, limit 32"
    assert reason_of(line(product="p" * 40, amount="12")) is Reason.WRONG_TYPE
    assert reason_of(line(product="p" * 40, event_id="")) is Reason.EMPTY_FIELD
    assert reason_of(line(product="p" * 40, user_id=None)) is Reason.MISSING_FIELD


@pytest.mark.parametrize("action", ["bet", "VIEWS", "", "purchase!"])
def test_unknown_action(action: str) -> None:
    assert reason_of(line(action=action)) is Reason.UNKNOWN_ACTION


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (-0.01, Reason.NEGATIVE_AMOUNT),
        (-5, Reason.NEGATIVE_AMOUNT),
        (1000.01, Reason.AMOUNT_OUT_OF_RANGE),
        (1e308, Reason.AMOUNT_OUT_OF_RANGE),
    ],
)
def test_amount_rules(amount: float, reason: Reason) -> None:
    assert reason_of(line(action="purchase", amount=amount)) is reason


def test_purchase_needs_an_amount_but_a_view_does_not() -> None:
    assert reason_of(line(action="purchase", amount=None)) is Reason.PURCHASE_WITHOUT_AMOUNT
    assert reason_of(line(action="purchase", amount=...)) is Reason.PURCHASE_WITHOUT_AMOUNT
    validate_line(line(action="view", amount=None), line_no=1, limits=LIMITS)


@pytest.mark.parametrize(
    "timestamp",
    ["2026-02-30T10:00:00Z", "2026-11-27T25:61:00Z", "yesterday", "", "2026-11-27T10:00:00", "27/11/2026"],
)
def test_bad_timestamps(timestamp: str) -> None:
    assert reason_of(line(timestamp=timestamp)) is Reason.BAD_TIMESTAMP


def test_skew_limits_are_inclusive_edges() -> None:
    future_edge = NOW_MS + round(SETTINGS.max_future_skew_s * 1000)
    past_edge = NOW_MS - round(SETTINGS.max_past_skew_days * 86_400_000)

    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")

    assert validate_line(line(timestamp=iso(future_edge)), line_no=1, limits=LIMITS).ts_ms == future_edge
    assert reason_of(line(timestamp=iso(future_edge + 1))) is Reason.TIMESTAMP_IN_FUTURE
    assert validate_line(line(timestamp=iso(past_edge)), line_no=1, limits=LIMITS).ts_ms == past_edge
    assert reason_of(line(timestamp=iso(past_edge - 1))) is Reason.TIMESTAMP_TOO_OLD
    assert reason_of(line(timestamp="1970-01-01T00:00:00Z")) is Reason.TIMESTAMP_TOO_OLD
    assert reason_of(line(timestamp="2999-01-01T00:00:00+05:00")) is Reason.TIMESTAMP_IN_FUTURE


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def judged(text: str, limits: Limits) -> Reason | int:
    """The line's reason, or its stored time when it passes."""
    try:
        return validate_line(text, line_no=1, limits=limits).ts_ms
    except LineRejected as exc:
        return exc.reason


FUTURE_MS = round(SETTINGS.max_future_skew_s * 1000)
HISTORY_END_MS = int(datetime(2015, 9, 18, 2, 59, 47, tzinfo=UTC).timestamp() * 1000)


def test_a_history_file_has_no_past_window_and_its_newest_event_bounds_the_future() -> None:
    history = Limits.from_settings(
        SETTINGS, now_ms=NOW_MS, mode=BatchMode(historical=True, history_end_ms=HISTORY_END_MS)
    )
    assert judged(line(timestamp="2015-05-03T03:00:04.384Z"), history) == 1_430_622_004_384
    assert judged(line(timestamp="1970-01-01T00:00:00Z"), history) == 0
    assert judged(line(timestamp="0001-01-01T00:00:00Z"), history) == -62_135_596_800_000
    end = HISTORY_END_MS + FUTURE_MS
    assert judged(line(timestamp=iso(end)), history) == end
    assert judged(line(timestamp=iso(end + 1)), history) is Reason.TIMESTAMP_IN_FUTURE
    # Live, the same old time is too old.
    assert judged(line(timestamp="2015-05-03T03:00:04.384Z"), LIMITS) is Reason.TIMESTAMP_TOO_OLD


def test_a_far_future_typo_in_a_history_file_is_still_refused() -> None:
    # The typo is the file's newest event, so the reference is the worker's clock, the earlier one.
    typo_ms = int(datetime(2105, 9, 18, tzinfo=UTC).timestamp() * 1000)
    history = Limits.from_settings(
        SETTINGS, now_ms=NOW_MS, mode=BatchMode(historical=True, history_end_ms=typo_ms)
    )
    assert judged(line(timestamp=iso(typo_ms)), history) is Reason.TIMESTAMP_IN_FUTURE
    assert judged(line(timestamp=iso(NOW_MS + FUTURE_MS)), history) == NOW_MS + FUTURE_MS
    assert judged(line(timestamp=iso(NOW_MS + FUTURE_MS + 1)), history) is Reason.TIMESTAMP_IN_FUTURE
    # A history file without any readable time: the clock alone.
    unknown = Limits.from_settings(SETTINGS, now_ms=NOW_MS, mode=BatchMode(historical=True))
    assert (unknown.min_ts_ms, unknown.max_ts_ms) == (history.min_ts_ms, NOW_MS + FUTURE_MS)


def test_a_batch_that_says_so_stores_purchases_without_an_amount() -> None:
    unpriced = Limits.from_settings(SETTINGS, now_ms=NOW_MS, mode=BatchMode(unpriced_purchases=True))
    for amount in (None, ...):  # null, or no amount key at all
        clean = validate_line(line(action="purchase", amount=amount), line_no=1, limits=unpriced)
        assert (clean.action, clean.amount_cents) == ("purchase", None)
    assert (
        validate_line(line(action="purchase", amount=12.5), line_no=1, limits=unpriced).amount_cents == 1250
    )
    assert judged(line(action="purchase", amount=-1), unpriced) is Reason.NEGATIVE_AMOUNT  # other rules hold
    assert judged(line(action="purchase", amount=None), LIMITS) is Reason.PURCHASE_WITHOUT_AMOUNT


def test_normalise_text_removes_control_characters_and_collapses_space() -> None:
    assert normalise_text("  a\x00b\u200b\n c  ") == "a b c"
    assert normalise_text("Cafe\u0301") == "Café"


def _normalise_slowly(value: str) -> str:
    value = unicodedata.normalize("NFC", value)
    value = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in value)
    return " ".join(value.split())


@given(st.text(alphabet=st.sampled_from(" \t\n\x00\x7fab~é\u0301\u200b\u3000")) | st.text())
def test_normalise_text_fast_path_equals_the_full_rule(value: str) -> None:
    assert normalise_text(value) == _normalise_slowly(value)


_TEXT_FIELDS = ("event_id", "user_id", "session_id", "category", "product", "user_agent")
_ACTIONS = st.sampled_from(["view", " View", "VIEW "])


def _overrides(text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, str | None]]:
    return st.dictionaries(st.sampled_from(_TEXT_FIELDS), st.none() | text, min_size=1, max_size=2)


# Printable ASCII with spaces and the separator: where the shortcut applies and its edges matter.
@settings(max_examples=500)
@given(_overrides(st.text(alphabet=' |ab\x7f"\\', min_size=1, max_size=4)), _ACTIONS)
@example({"event_id": " a"}, "view")  # a leading space at the start of the joined texts
@example({"user_agent": "a "}, "view")  # a trailing space at its end
@example({"session_id": "a "}, "view")  # before a separator
@example({"product": " a"}, "view")  # after one
@example({"user_id": "a  b"}, "view")
@example({"category": "a\x7fb"}, "view")  # printable ASCII ends before DEL
@example({"product": ""}, "view")  # an empty optional text is plain, and stored as none
def test_the_clean_text_shortcut_equals_normalising_each_field(
    overrides: dict[str, str | None], action: str
) -> None:
    _check_against_normalising_each_field(overrides, action)


@given(_overrides(st.text(alphabet=" |\ta\x00~é\u0301\u200b", max_size=5) | st.text()), _ACTIONS)
@example({"product": "a\tb"}, "view")
@example({"category": "Cafe\u0301"}, "view")
def test_any_text_is_cleaned_as_normalising_each_field(overrides: dict[str, str | None], action: str) -> None:
    _check_against_normalising_each_field(overrides, action)


def _check_against_normalising_each_field(overrides: dict[str, str | None], action: str) -> None:
    """validate_line skips per-field normalising when all fields look clean; the result must not change."""
    texts = {**event(action=action), **overrides}
    try:
        clean = validate_line(line(**texts), line_no=1, limits=LIMITS)
    except LineRejected as rejected:
        # Null or blank ids, unknown actions, fields over LIMITS: the shortcut never decides those.
        assert rejected.reason in (
            Reason.MISSING_FIELD,
            Reason.EMPTY_FIELD,
            Reason.UNKNOWN_ACTION,
            Reason.WRONG_TYPE,
            Reason.FIELD_TOO_LONG,
        )
        return

    def normalised(name: str) -> str | None:
        value = texts[name]
        return None if value is None else normalise_text(str(value)) or None

    category = normalised("category")
    assert (clean.event_id, clean.user_id, clean.action) == (
        normalised("event_id"),
        normalised("user_id"),
        normalise_text(str(texts["action"])).lower(),
    )
    assert (clean.session_id, clean.category, clean.product, clean.user_agent) == (
        normalised("session_id"),
        category.lower() if category else None,
        normalised("product"),
        normalised("user_agent"),
    )


def test_batch_keeps_every_non_blank_line_exactly_once() -> None:
    lines = [
        line(event_id="e-1"),
        "",
        "garbage",
        "   ",
        line(event_id="e-2", action="bet"),
        line(event_id="e-3"),
    ]
    parsed = parse_batch("\n".join(lines) + "\n", LIMITS)
    assert parsed.received == 4
    assert [e.line_no for e in parsed.events] == [1, 6]
    assert [(r.line_no, r.reason) for r in parsed.rejections] == [
        (3, Reason.NOT_JSON),
        (5, Reason.UNKNOWN_ACTION),
    ]
    assert parsed.rejections[0].raw_text == "garbage"


# Only JSON white space makes a line blank; str.strip() would also drop every one of the others.
JSON_BLANK = ["", " ", "\t", "\r", " \t \r"]
NOT_BLANK = ["\x0c", "\x1f", "\x0b", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000", " \x0c\t"]


@pytest.mark.parametrize("text", NOT_BLANK)
def test_a_line_of_other_white_space_or_control_characters_is_a_line(text: str) -> None:
    raw_text = "\n".join([line(event_id="a"), text, "", line(event_id="b")])
    parsed = parse_batch(raw_text, LIMITS)
    assert parsed.received == 3
    assert [(r.line_no, r.reason, r.raw_text) for r in parsed.rejections] == [(2, Reason.NOT_JSON, text)]
    rejected = reject_batch(raw_text, Reason.BATCH_TOO_LARGE, "too large")
    assert [r.line_no for r in rejected.rejections] == [1, 2, 4]


@pytest.mark.parametrize("text", JSON_BLANK)
def test_a_line_of_json_white_space_is_blank(text: str) -> None:
    raw_text = "\n".join([line(event_id="a"), text, line(event_id="b")])
    assert parse_batch(raw_text, LIMITS).received == 2
    assert reject_batch(raw_text, Reason.BATCH_TOO_LARGE, "too large").received == 2


def test_carriage_returns_are_tolerated() -> None:
    parsed = parse_batch(line(event_id="a") + "\r\n" + line(event_id="b") + "\r\n", LIMITS)
    assert [e.event_id for e in parsed.events] == ["a", "b"]
