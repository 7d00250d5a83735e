"""Column mappings and timestamp normalisation: convert what can be, keep the rest raw."""

from __future__ import annotations

import json
from collections import ChainMap
from pathlib import Path

import pytest

from producer.mapping import (
    ColumnMapping,
    FieldRule,
    load_preset,
    map_record,
    parse_map_options,
    parse_value_options,
    preset_names,
    resolve_mapping,
)
from producer.timestamps import format_timestamp, normalise_timestamp


@pytest.mark.parametrize(
    ("text", "fmt", "assume_utc", "expected"),
    [
        ("2019-10-01 00:00:00 UTC", None, False, "2019-10-01T00:00:00.000Z"),
        ("2019-10-01 00:00:00 UTC", "%Y-%m-%d %H:%M:%S UTC", True, "2019-10-01T00:00:00.000Z"),
        ("2019-10-01T02:00:00.5+02:00", None, False, "2019-10-01T00:00:00.500Z"),
        ("2019-10-01T00:00:00Z", None, False, "2019-10-01T00:00:00.000Z"),
        ("1569888000", None, False, "2019-10-01T00:00:00.000Z"),
        ("1569888000123", None, False, "2019-10-01T00:00:00.123Z"),
        ("2019-10-01 00:00:00", None, False, None),  # no zone: not guessed
        ("2019-10-01 00:00:00", None, True, "2019-10-01T00:00:00.000Z"),
        ("2019-02-30 00:00:00 UTC", None, False, None),
        ("yesterday", None, True, None),
        ("01/10/2019 00:00", "%Y-%m-%d", True, None),
    ],
)
def test_timestamps_normalise_to_utc_z_or_none(
    text: str, fmt: str | None, assume_utc: bool, expected: str | None
) -> None:
    assert normalise_timestamp(text, fmt, assume_utc) == expected


def test_format_timestamp_writes_z_or_the_offset_for_the_same_instant() -> None:
    assert format_timestamp(1_569_888_000_123) == "2019-10-01T00:00:00.123Z"
    assert format_timestamp(1_569_888_000_123, 120) == "2019-10-01T02:00:00.123+02:00"
    assert format_timestamp(1_569_888_000_123, -300) == "2019-09-30T19:00:00.123-05:00"


def test_rees46_preset_maps_a_purchase_and_a_view() -> None:
    mapping = load_preset("rees46")
    row = {
        "event_time": "2019-10-01 00:02:14 UTC",
        "event_type": "purchase",
        "product_id": "1004856",
        "category_id": "2053013555631882655",
        "category_code": "electronics.smartphone",
        "brand": "samsung",
        "price": "130.76",
        "user_id": "543272936",
        "user_session": "8187d148-3c41-46d4-b0c0-9c08cd9dc564",
    }
    assert map_record(row, mapping) == {
        "event_id": None,
        "user_id": "543272936",
        "session_id": "8187d148-3c41-46d4-b0c0-9c08cd9dc564",
        "action": "purchase",
        "category": "electronics.smartphone",
        "product": "1004856 samsung",
        "amount": 130.76,
        "timestamp": "2019-10-01T00:02:14.000Z",
        "user_agent": None,
    }
    view = map_record({**row, "event_type": "cart", "category_code": "", "brand": ""}, mapping)
    assert view["action"] == "add_to_cart"
    assert view["amount"] is None  # the catalogue price is no spend
    assert view["category"] == "2053013555631882655"
    assert view["product"] == "1004856"


def test_values_that_cannot_be_mapped_stay_raw_or_null() -> None:
    mapping = load_preset("rees46")
    row = {"event_time": "soon", "event_type": "wishlist", "price": "12,50", "user_id": ""}
    event = map_record(row, mapping)
    assert event["timestamp"] == "soon"
    assert event["action"] == "wishlist"
    assert event["user_id"] is None
    purchase = map_record({**row, "event_type": "purchase"}, mapping)
    assert purchase["amount"] == "12,50"
    assert map_record({**row, "event_type": "purchase", "price": "nan"}, mapping)["amount"] == "nan"


def test_json_values_keep_their_types_unless_they_are_plain_numbers() -> None:
    mapping = ColumnMapping.identity()
    event = map_record(
        {"user_id": 541312140, "session_id": 2.0, "product": True, "amount": 19.99, "timestamp": 1569888000},
        mapping,
    )
    assert event["user_id"] == "541312140"
    assert event["session_id"] == "2"
    assert event["product"] is True  # the worker quarantines it as wrong_type
    assert event["amount"] == 19.99
    assert event["timestamp"] == "2019-10-01T00:00:00.000Z"


def test_options_override_a_preset() -> None:
    mapping = resolve_mapping(
        preset="rees46",
        columns=["user_id=uid", "category=cat_a, cat_b"],
        values=["action:wish=view", "action:cart=add_to_cart"],
    )
    assert mapping is not None
    assert mapping.rules["user_id"] == FieldRule(("uid",))
    assert mapping.rules["category"].columns == ("cat_a", "cat_b")
    assert mapping.rules["action"].values["wish"] == "view"
    assert mapping.rules["timestamp"].timestamp_format == "%Y-%m-%d %H:%M:%S UTC"


def test_map_options_alone_start_from_identity() -> None:
    mapping = resolve_mapping(columns=["timestamp=event_time"], assume_utc=True)
    assert mapping is not None
    assert mapping.rules["user_id"].columns == ("user_id",)
    assert mapping.rules["timestamp"] == FieldRule(("event_time",), assume_utc=True)
    assert resolve_mapping() is None  # our own format, read as is


def test_mapping_file_and_bad_options(tmp_path: Path) -> None:
    path = tmp_path / "shop.json"
    path.write_text(json.dumps({"fields": {"user_id": "customer", "action": {"column": "type"}}}))
    mapping = resolve_mapping(mapping_file=path)
    assert mapping is not None and mapping.name == "shop"
    assert map_record({"customer": "c1", "type": "view"}, mapping)["user_id"] == "c1"
    with pytest.raises(ValueError, match="either"):
        resolve_mapping(preset="rees46", mapping_file=path)
    with pytest.raises(ValueError, match="no preset"):
        resolve_mapping(preset="nope")
    with pytest.raises(ValueError, match="unknown field"):
        ColumnMapping("x", {"persona": FieldRule(("p",))})
    with pytest.raises(ValueError):
        parse_map_options(["user_id"])
    with pytest.raises(ValueError):
        parse_value_options(["action=view"])
    assert "rees46" in preset_names()


def test_retailrocket_preset_maps_its_three_events() -> None:
    mapping = load_preset("retailrocket")
    row = {"timestamp": "1433221332117", "visitorid": "257597", "event": "view", "itemid": "355908"}
    assert map_record({**row, "transactionid": ""}, mapping) == {
        "event_id": None,
        "user_id": "257597",
        "session_id": None,
        "action": "view",
        "category": None,
        "product": "355908",
        "amount": None,
        "timestamp": "2015-06-02T05:02:12.117Z",
        "user_agent": None,
    }
    actions = {
        raw: map_record({**row, "event": raw}, mapping)["action"] for raw in ("addtocart", "transaction")
    }
    assert actions == {"addtocart": "add_to_cart", "transaction": "purchase"}
    purchase = map_record({**row, "event": "transaction", "transactionid": "4000"}, mapping)
    assert purchase["amount"] is None  # the export has no price: the worker holds it back


def test_otto_preset_reads_its_events_list_and_the_session_from_the_parent() -> None:
    mapping = load_preset("otto")
    assert mapping.records == "events"
    record = ChainMap({"aid": 1517085, "ts": 1659304800025, "type": "carts"}, {"session": 0, "events": []})
    event = map_record(record, mapping)
    assert (event["user_id"], event["action"], event["product"]) == ("0", "add_to_cart", "1517085")
    assert event["timestamp"] == "2022-07-31T22:00:00.025Z"
    orders = map_record(ChainMap({"aid": 1, "ts": 1659304800025, "type": "orders"}, {"session": 0}), mapping)
    assert orders["action"] == "purchase" and orders["amount"] is None
    adjusted = resolve_mapping(preset="otto", columns=["product=aid"])
    assert adjusted is not None and adjusted.records == "events"  # options keep the record path


def test_every_preset_is_listed() -> None:
    assert {"rees46", "retailrocket", "otto"} <= set(preset_names())
