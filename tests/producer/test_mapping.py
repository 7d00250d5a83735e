"""Column mappings and timestamp normalisation: convert what can be, keep the rest raw."""

from __future__ import annotations

import json
from collections import ChainMap
from datetime import datetime
from pathlib import Path

import pytest

from producer.mapping import (
    ColumnMapping,
    FieldRule,
    load_mapping_file,
    load_preset,
    map_record,
    parse_map_options,
    parse_value_options,
    preset_names,
    resolve_mapping,
)
from producer.timestamps import format_timestamp, normalise_timestamp, parse_zone


@pytest.mark.parametrize(
    ("text", "fmt", "zone", "expected"),
    [
        ("2019-10-01 00:00:00 UTC", None, None, "2019-10-01T00:00:00.000Z"),
        ("2019-10-01 00:00:00 UTC", "%Y-%m-%d %H:%M:%S UTC", "UTC", "2019-10-01T00:00:00.000Z"),
        ("2019-10-01T02:00:00.5+02:00", None, None, "2019-10-01T02:00:00.500+02:00"),  # keeps its offset
        ("2019-10-01T02:00:00.5+02:00", None, "America/New_York", "2019-10-01T02:00:00.500+02:00"),
        ("2019-10-01T00:00:00Z", None, None, "2019-10-01T00:00:00.000Z"),
        ("2019-10-01T00:00:00-05:30", None, None, "2019-10-01T00:00:00.000-05:30"),
        ("1569888000", None, None, "2019-10-01T00:00:00.000Z"),  # an instant: UTC without a zone
        ("1569888000123", None, None, "2019-10-01T00:00:00.123Z"),
        ("1569888000123", None, "Europe/Berlin", "2019-10-01T02:00:00.123+02:00"),
        ("1569888000", None, "-03:00", "2019-09-30T21:00:00.000-03:00"),
        ("2019-10-01 00:00:00", None, None, None),  # no zone: not guessed
        ("2019-10-01 00:00:00", None, "UTC", "2019-10-01T00:00:00.000Z"),
        ("2019-10-01 00:00:00", None, "Asia/Kolkata", "2019-10-01T00:00:00.000+05:30"),
        ("2019-10-01 00:00:00", None, "+0100", "2019-10-01T00:00:00.000+01:00"),
        ("2019-10-01 00:00:00", None, "Mars/Olympus", None),  # an unknown zone places nothing
        ("1569888000", None, "Mars/Olympus", None),
        ("2019-10-01 00:00:00", None, "+25:00", None),
        ("2019-02-30 00:00:00 UTC", None, None, None),
        ("yesterday", None, "UTC", None),
        ("01/10/2019 00:00", "%Y-%m-%d", "UTC", None),
    ],
)
def test_timestamps_keep_their_offset_or_take_the_zone(
    text: str, fmt: str | None, zone: str | None, expected: str | None
) -> None:
    assert normalise_timestamp(text, fmt, zone) == expected


# Europe/Berlin: summer time from 2026-03-29 01:00 UTC (02:00 local -> 03:00) to 2026-10-25 01:00 UTC
# (03:00 local -> 02:00). Each pair is one minute before and one minute after a change.
BERLIN_CHANGES = [
    ("2026-03-29 01:59:00", "2026-03-29T01:59:00.000+01:00", "2026-03-29T00:59:00+00:00"),
    ("2026-03-29 03:01:00", "2026-03-29T03:01:00.000+02:00", "2026-03-29T01:01:00+00:00"),
    ("2026-10-25 01:59:00", "2026-10-25T01:59:00.000+02:00", "2026-10-24T23:59:00+00:00"),
    ("2026-10-25 03:01:00", "2026-10-25T03:01:00.000+01:00", "2026-10-25T02:01:00+00:00"),
]


@pytest.mark.parametrize(("local", "wire", "utc"), BERLIN_CHANGES)
def test_a_default_zone_gives_the_offset_of_each_side_of_a_dst_change(
    local: str, wire: str, utc: str
) -> None:
    assert normalise_timestamp(local, None, "Europe/Berlin") == wire
    assert datetime.fromisoformat(wire) == datetime.fromisoformat(utc)  # the same instant


@pytest.mark.parametrize(("local", "wire", "utc"), BERLIN_CHANGES)
def test_epoch_times_take_the_offset_of_their_instant(local: str, wire: str, utc: str) -> None:
    epoch_ms = str(int(datetime.fromisoformat(utc).timestamp() * 1000))
    assert normalise_timestamp(epoch_ms, None, "Europe/Berlin") == wire


def test_a_repeated_hour_reads_as_its_first_pass_and_a_skipped_one_with_the_earlier_offset() -> None:
    # 02:30 happens twice on 2026-10-25 in Berlin (fold 0: summer time) and not at all on 2026-03-29.
    assert (
        normalise_timestamp("2026-10-25 02:30:00", None, "Europe/Berlin") == "2026-10-25T02:30:00.000+02:00"
    )
    assert (
        normalise_timestamp("2026-03-29 02:30:00", None, "Europe/Berlin") == "2026-03-29T02:30:00.000+01:00"
    )


def test_a_zone_column_wins_over_the_default_zone_on_both_sides_of_dst() -> None:
    mapping = resolve_mapping(columns=["timestamp=t", "zone=tz"], default_zone="UTC")
    assert mapping is not None and mapping.rules["zone"].columns == ("tz",)
    for local, wire, _ in BERLIN_CHANGES:
        event = map_record({"t": local, "tz": "Europe/Berlin", "user_id": "u"}, mapping)
        assert event["timestamp"] == wire and "zone" not in event  # read, never sent
    # A row without a zone takes the default; an unreadable zone leaves the time for the worker to reject.
    assert map_record({"t": "2026-03-29 03:01:00"}, mapping)["timestamp"] == "2026-03-29T03:01:00.000Z"
    assert (
        map_record({"t": "2026-03-29 03:01:00", "tz": "Nowhere"}, mapping)["timestamp"]
        == "2026-03-29 03:01:00"
    )
    epoch = resolve_mapping(columns=["timestamp=t", "zone=tz"])
    assert epoch is not None
    summer = map_record({"t": "1782864000000", "tz": "America/New_York"}, epoch)["timestamp"]
    assert summer == "2026-06-30T20:00:00.000-04:00"


def test_an_unknown_default_zone_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="unknown zone 'Europe/Atlantis'"):
        resolve_mapping(preset="rees46", default_zone="Europe/Atlantis")
    assert parse_zone("Europe/Berlin") is not None and parse_zone("../etc/passwd") is None


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
    mapping = resolve_mapping(columns=["timestamp=event_time"], default_zone="UTC")
    assert mapping is not None
    assert mapping.rules["user_id"].columns == ("user_id",)
    assert mapping.rules["timestamp"] == FieldRule(("event_time",), default_zone="UTC")
    assert resolve_mapping() is None  # our own format, read as is


def test_mapping_file_and_bad_options(tmp_path: Path) -> None:
    path = tmp_path / "shop.json"
    path.write_text(json.dumps({"fields": {"user_id": "customer", "action": {"column": "type"}}}))
    mapping = resolve_mapping(mapping_file=path)
    assert mapping is not None and mapping.name == "shop"
    assert map_record({"customer": "c1", "type": "view"}, mapping)["user_id"] == "c1"
    assert not mapping.unpriced_purchases
    # A file of an earlier release said "assume_utc"; one may say its purchases carry no price.
    older = tmp_path / "older.json"
    older.write_text(
        json.dumps({"unpriced_purchases": True, "fields": {"timestamp": {"column": "t", "assume_utc": True}}})
    )
    read = load_mapping_file(older)
    assert read.rules["timestamp"].default_zone == "UTC" and read.unpriced_purchases
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
    assert purchase["amount"] is None  # the export has no price, and the preset says so
    assert mapping.unpriced_purchases and not load_preset("rees46").unpriced_purchases


def test_otto_preset_reads_its_events_list_and_the_session_from_the_parent() -> None:
    mapping = load_preset("otto")
    assert mapping.records == "events"
    record = ChainMap({"aid": 1517085, "ts": 1659304800025, "type": "carts"}, {"session": 0, "events": []})
    event = map_record(record, mapping)
    assert (event["user_id"], event["action"], event["product"]) == ("0", "add_to_cart", "1517085")
    assert event["timestamp"] == "2022-08-01T00:00:00.025+02:00"  # a German shop: Berlin's offset
    assert mapping.unpriced_purchases
    orders = map_record(ChainMap({"aid": 1, "ts": 1659304800025, "type": "orders"}, {"session": 0}), mapping)
    assert orders["action"] == "purchase" and orders["amount"] is None
    adjusted = resolve_mapping(preset="otto", columns=["product=aid"])
    assert adjusted is not None and adjusted.records == "events"  # options keep the record path


def test_every_preset_is_listed() -> None:
    assert {"rees46", "retailrocket", "otto"} <= set(preset_names())
