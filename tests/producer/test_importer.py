"""Imports: verbatim NDJSON, JSON arrays, mapped CSV, deterministic ids, the real REES46 sample."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import pytest
from celery import Celery

from config.settings import Settings
from contract.wire import BatchMode, Reason, now_ms
from producer.importer import (
    FileFormat,
    OccurrenceIndex,
    ParentCount,
    content_id,
    detect_format,
    file_digest,
    import_file,
    iter_chunks,
    newest_event_ms,
    parse_record_path,
    read_json_array,
)
from producer.mapping import ColumnMapping, load_preset, map_record, resolve_mapping
from producer.publisher import Publisher
from tests.support import REES46_SAMPLE
from workers.validation import Limits, LineRejected, validate_line

REES46 = REES46_SAMPLE
REES46_ACTIONS = {
    "view": "view",
    "cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "purchase": "purchase",
}
HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"


class RecordingApp:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_task(self, name: str, *, kwargs: dict[str, Any], queue: str, retry: bool) -> None:
        self.sent.append(kwargs)


def run_import(path: Path, settings: Settings, **options: Any) -> tuple[list[dict[str, Any]], Any]:
    app = RecordingApp()
    summary = import_file(path, Publisher(cast(Celery, app), settings), progress=False, **options)
    return app.sent, summary


def lines_of(
    data: bytes, file_format: FileFormat, mapping: ColumnMapping | None = None, rows: int = 500
) -> list[str]:
    chunks = iter_chunks(io.BytesIO(data), file_format=file_format, mapping=mapping, chunk_rows=rows)
    return [line for chunk in chunks for line in chunk.lines]


LIMITS = Limits.from_settings(Settings(), now_ms=now_ms())


def reason_of(line: str) -> str:
    try:
        validate_line(line, line_no=1, limits=LIMITS)
    except LineRejected as exc:
        return exc.reason.value
    return "stored"


def test_our_ndjson_passes_through_byte_for_byte(tmp_path: Path, settings: Settings) -> None:
    good = '{"event_id":"a","user_id":"u","action":"view","timestamp":"2026-01-01T00:00:00.000Z"}'
    data = (good + "\n" + "not json at all\n" + '{"event_id": 1}\r\n' + "\n" + good).encode()
    data += b"\n\xff\xfe broken bytes\n"
    path = tmp_path / "events.ndjson"
    path.write_bytes(data)
    sent, summary = run_import(path, settings, batch_size=2)
    assert summary.lines == 6 and summary.generated_ids == 0
    assert [m["batch_id"] for m in sent] == [f"imp-{file_digest(path)[:12]}-{n:06d}" for n in (1, 2, 3)]
    joined = "\n".join(m["raw_text"] for m in sent) + "\n"
    assert joined.encode("utf-8", "surrogateescape") == data
    raw_files = b"".join((settings.raw_dir / f"{m['batch_id']}.ndjson").read_bytes() for m in sent)
    assert raw_files == data
    assert reason_of(sent[2]["raw_text"].split("\n")[1]) == Reason.BAD_ENCODING


def test_reimporting_a_file_reuses_batch_and_event_ids(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "shop.csv"
    path.write_text(HEADER + "2019-10-01 00:00:00 UTC,view,1,2,,acme,9.99,7,s1\n" * 3)
    first, _ = run_import(path, settings, batch_size=2, mapping=load_preset("rees46"))
    again, _ = run_import(path, settings, batch_size=2, mapping=load_preset("rees46"))
    assert first == [{**m, "produced_ms": a["produced_ms"]} for m, a in zip(again, first, strict=True)]


def test_identical_rows_stay_distinct_events(tmp_path: Path) -> None:
    row = "2019-10-01 00:00:00 UTC,view,1,2,,acme,9.99,7,s1\n"
    other = "2019-10-01 00:00:01 UTC,view,1,2,,acme,9.99,7,s1\n"
    data = (HEADER + row + other + row + row + other).encode()
    # Chunks of two rows: the occurrence count must carry across chunks.
    ids = [
        json.loads(line)["event_id"] for line in lines_of(data, FileFormat.CSV, load_preset("rees46"), rows=2)
    ]
    assert len(set(ids)) == 5
    assert [i.rsplit("-", 1)[1] for i in ids] == ["0", "0", "1", "2", "1"]
    assert ids[0].rsplit("-", 1)[0] == ids[2].rsplit("-", 1)[0] == ids[3].rsplit("-", 1)[0]
    event = map_record(
        dict(zip(HEADER.strip().split(","), row.strip().split(","), strict=True)), load_preset("rees46")
    )
    assert ids[3] == content_id(event, 2)


def test_the_id_ignores_where_a_row_sits_in_the_file() -> None:
    a = "2019-10-01 00:00:00 UTC,view,1,2,,acme,9.99,7,s1\n"
    b = "2019-10-01 00:05:00 UTC,purchase,3,4,,zeta,5.00,8,s2\n"
    forward = lines_of((HEADER + a + b).encode(), FileFormat.CSV, load_preset("rees46"))
    backward = lines_of((HEADER + b + a).encode(), FileFormat.CSV, load_preset("rees46"))
    assert sorted(forward) == sorted(backward)


def test_rows_that_cannot_be_mapped_still_become_lines_the_worker_rejects() -> None:
    rows = [
        "2019-10-01 00:00:00 UTC,wishlist,1,2,,acme,9.99,7,s1",  # unknown action
        "31/12/2019,view,1,2,,acme,9.99,7,s1",  # bad time
        "2019-10-01 00:00:00 UTC,purchase,1,2,,acme,abc,7,s1",  # price is no number
        "2019-10-01 00:00:00 UTC,purchase,1,2,,acme,,7,s1",  # purchase without a price
        "2019-10-01 00:00:00 UTC,view,1,2,,acme,9.99,,s1",  # no user
        "2019-10-01 00:00:00 UTC,view,1",  # a ragged row: fields missing
    ]
    lines = lines_of((HEADER + "\n".join(rows) + "\n").encode(), FileFormat.CSV, load_preset("rees46"))
    assert [reason_of(line) for line in lines] == [
        Reason.UNKNOWN_ACTION,
        Reason.BAD_TIMESTAMP,
        Reason.WRONG_TYPE,
        Reason.PURCHASE_WITHOUT_AMOUNT,
        Reason.MISSING_FIELD,
        Reason.MISSING_FIELD,
    ]


def test_json_array_streams_elements_and_keeps_a_broken_rest() -> None:
    good = {"event_id": "a", "user_id": "u", "action": "view", "timestamp": "2026-01-01T00:00:00.000Z"}
    text = json.dumps([good, [1, 2], "x", good])
    assert lines_of(text.encode(), FileFormat.JSON) == [
        json.dumps(good, separators=(",", ":")),
        "[1,2]",
        '"x"',
        json.dumps(good, separators=(",", ":")),
    ]
    broken = '[{"event_id": "a"},\n{"event_id": NaN},\n{"event_id": "c"}\n]'
    assert lines_of(broken.encode(), FileFormat.JSON) == [
        '{"event_id":"a"}',
        '{"event_id": NaN},',
        '{"event_id": "c"}',
        "]",
    ]


def test_json_array_elements_split_across_read_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("producer.importer._READ_CHUNK", 7)
    values = [{"n": i, "text": "é" * i} for i in range(30)] + [123456789]
    parsed = list(read_json_array(io.StringIO(json.dumps(values))))
    assert parsed == values


def test_mapped_json_export(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "export.json"
    rows = [{"ts": "2019-10-01T00:00:00Z", "kind": "cart", "uid": 5, "price": 3.5}]
    path.write_text(json.dumps(rows))
    mapping = ColumnMapping.identity().updated(
        {"timestamp": "ts", "action": "kind", "user_id": "uid", "amount": "price"},
        {"action": {"cart": "add_to_cart"}},
    )
    sent, summary = run_import(path, settings, batch_size=10, mapping=mapping)
    event = json.loads(sent[0]["raw_text"])
    assert summary.file_format is FileFormat.JSON and summary.generated_ids == 1
    assert event["action"] == "add_to_cart" and event["user_id"] == "5" and event["amount"] == 3.5
    assert event["event_id"].startswith("imp-")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.ndjson", "{}", FileFormat.NDJSON),
        ("a.jsonl", "[]", FileFormat.NDJSON),
        ("a.csv", "x,y", FileFormat.CSV),
        ("a.json", "  [ {} ]", FileFormat.JSON),
        ("a.json", "{}\n{}", FileFormat.NDJSON),
        ("a.txt", "x,y\n1,2", FileFormat.CSV),
    ],
)
def test_format_detection(tmp_path: Path, name: str, content: str, expected: FileFormat) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert detect_format(path) is expected


def test_occurrence_index_counts_across_runs_and_chunks() -> None:
    index = OccurrenceIndex()
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 50, size=2000).astype(np.uint64)
    got = np.concatenate([index.count_and_add(keys[i : i + 64]) for i in range(0, len(keys), 64)])
    seen: Counter[int] = Counter()
    expected = []
    for k in keys.tolist():
        expected.append(seen[k])
        seen[k] += 1
    assert got.tolist() == expected


def test_rees46_sample_imports_every_row_with_mapped_actions(settings: Settings) -> None:
    with REES46.open(newline="", encoding="utf-8") as fh:
        raw_rows = list(csv.DictReader(fh))
    sent, summary = run_import(REES46, settings, batch_size=1000, mapping=load_preset("rees46"))
    events = [json.loads(line) for m in sent for line in m["raw_text"].split("\n")]
    assert len(events) == len(raw_rows) == summary.lines
    assert summary.batches == -(-len(raw_rows) // 1000)
    for row, event in zip(raw_rows, events, strict=True):
        assert event["action"] == REES46_ACTIONS[row["event_type"]]
        assert event["user_id"] == row["user_id"] and event["session_id"] == (row["user_session"] or None)
        assert event["timestamp"] == row["event_time"].replace(" UTC", ".000Z").replace(" ", "T")
        assert event["category"] == (row["category_code"] or row["category_id"])
        assert event["product"] == " ".join(v for v in (row["product_id"], row["brand"]) if v)
        if row["event_type"] == "purchase":
            assert event["amount"] == float(row["price"])
        else:
            assert event["amount"] is None
    assert len({e["event_id"] for e in events}) == len(events)
    # Rows whose mapped content repeats an earlier row, derived from the raw data itself.
    keys = Counter(
        (
            r["event_time"],
            r["event_type"],
            r["product_id"],
            r["category_code"] or r["category_id"],
            r["brand"],
            r["price"] if r["event_type"] == "purchase" else None,
            r["user_id"],
            r["user_session"],
        )
        for r in raw_rows
    )
    assert summary.repeated_rows == sum(n - 1 for n in keys.values())
    assert Counter(reason_of(json.dumps(e)) for e in events) == {"stored": len(events)}


# --- the file's byte order mark -------------------------------------------------------------

GOOD = '{"event_id":"a","user_id":"u","action":"view","timestamp":"2026-01-01T00:00:00.000Z"}'
GOOD_TOO = GOOD.replace('"a"', '"b"')
BOM = "\ufeff"


@pytest.mark.parametrize("mapping", [None, ColumnMapping.identity()])
def test_a_bom_opening_an_ndjson_file_is_its_encoding_not_its_first_event(
    mapping: ColumnMapping | None,
) -> None:
    data = (BOM + GOOD + "\n" + BOM + GOOD_TOO + "\n" + GOOD_TOO.replace("{", BOM + "{", 1)).encode()
    lines = lines_of(data, FileFormat.NDJSON, mapping)
    assert [reason_of(line) for line in lines] == ["stored", "not_json", "not_json"]
    if mapping is None:
        assert lines[0] == GOOD  # verbatim: only the file's mark is gone


def test_a_bom_opening_a_csv_or_json_file_is_stripped_too(tmp_path: Path) -> None:
    row = "2019-10-01 00:00:00 UTC,view,1,2,,acme,9.99,7,s1\n"
    csv_lines = lines_of((BOM + HEADER + row).encode(), FileFormat.CSV, load_preset("rees46"))
    assert [reason_of(line) for line in csv_lines] == ["stored"]
    assert lines_of((BOM + "[" + GOOD + "]").encode(), FileFormat.JSON) == [GOOD]
    path = tmp_path / "marked.json"
    path.write_text(BOM + "[" + GOOD + "]", encoding="utf-8")
    assert detect_format(path) is FileFormat.JSON


def test_blank_lines_are_counted_apart_and_other_control_lines_are_lines(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join([GOOD, "", " \t\r", "\x0c", "\x1f", GOOD_TOO]) + "\n")
    sent, summary = run_import(path, settings, batch_size=10)
    lines = sent[0]["raw_text"].split("\n")
    assert (summary.lines, summary.blank_lines) == (6, 2)
    assert [reason_of(line) for line in lines if line.strip(" \t\r")] == [
        "stored",
        "not_json",
        "not_json",
        "stored",
    ]


def test_the_unreadable_rest_of_a_json_array_keeps_control_lines() -> None:
    rest = lines_of(("[" + GOOD + "] trailing\n\x0c\n \n").encode(), FileFormat.JSON)
    assert rest == [GOOD, "trailing", "\x0c"]


# --- records nested in a list (--records) -----------------------------------------------------

OTTO = load_preset("otto")
TS = 1_700_000_000_000  # epoch ms, 2023-11-14T22:13:20Z


def otto_line(session: object, *events: tuple[int, int, str]) -> str:
    return json.dumps({"session": session, "events": [{"aid": a, "ts": t, "type": k} for a, t, k in events]})


def nested(
    text: str,
    mapping: ColumnMapping | None = OTTO,
    records: tuple[str, ...] = ("events",),
    rows: int = 500,
    file_format: FileFormat = FileFormat.NDJSON,
) -> tuple[list[str], ParentCount]:
    count = ParentCount()
    chunks = iter_chunks(
        io.BytesIO(text.encode()),
        file_format=file_format,
        mapping=mapping,
        chunk_rows=rows,
        records=records,
        parents=count,
    )
    return [line for chunk in chunks for line in chunk.lines], count


def test_each_nested_event_is_one_line_with_the_parents_session() -> None:
    text = otto_line(7, (11, TS, "clicks"), (12, TS + 900, "carts"), (12, TS + 5000, "orders"))
    lines, count = nested(text + "\n" + otto_line(8, (13, TS, "clicks")))
    events = [json.loads(line) for line in lines]
    assert [(e["user_id"], e["action"], e["product"]) for e in events] == [
        ("7", "view", "11"),
        ("7", "add_to_cart", "12"),
        ("7", "purchase", "12"),
        ("8", "view", "13"),
    ]
    assert events[1]["timestamp"] == "2023-11-14T23:13:20.900+01:00"  # the preset's zone: Berlin
    assert all(e["event_id"].startswith("imp-") for e in events)
    assert [reason_of(line) for line in lines] == ["stored", "stored", "purchase_without_amount", "stored"]
    assert (count.parents, count.empty, count.malformed) == (2, 0, 0)


def test_an_empty_list_gives_no_line_and_a_malformed_parent_one_line_as_read() -> None:
    broken = [
        "not json at all",
        '{"session": 3}',  # no list
        '{"session": 4, "events": "clicks"}',  # not a list
        "[1, 2]",  # not an object
        '{"session": 5, "events": [5, null]}',  # records that are not objects
    ]
    text = "\n".join([otto_line(1), *broken, otto_line(2, (9, TS, "clicks"))])
    lines, count = nested(text)
    assert lines[:4] == broken[:4]  # the parent as it was read, not re-serialised
    assert lines[4:6] == ["5", "null"]
    assert [reason_of(line) for line in lines] == [
        "not_json",
        "missing_field",
        "missing_field",
        "not_an_object",
        "not_an_object",
        "not_an_object",
        "stored",
    ]
    assert (count.parents, count.empty, count.malformed) == (7, 1, 4)


def test_identical_nested_events_stay_distinct_and_ids_carry_across_chunks() -> None:
    same = (11, TS, "clicks")
    text = otto_line(7, same, same, (12, TS + 1, "clicks"), same) + "\n" + otto_line(7, same)
    lines, _ = nested(text, rows=2)  # chunks of two: the parent spans three of them
    ids = [json.loads(line)["event_id"] for line in lines]
    assert [i.rsplit("-", 1)[1] for i in ids] == ["0", "1", "0", "2", "3"]
    again, _ = nested(text, rows=500)
    assert again == lines
    event = map_record({"session": 7, "aid": 11, "ts": TS, "type": "clicks"}, OTTO)
    assert ids[3] == content_id(event, 2)


def test_a_record_key_wins_over_the_parent_and_a_dotted_path_reaches_deeper() -> None:
    mapping = ColumnMapping.identity().updated(
        {"user_id": "user", "timestamp": "ts", "action": "kind", "session_id": "sid"}
    )
    text = json.dumps(
        {
            "user": "outer",
            "sid": "s-1",
            "data": {
                "user": "middle",
                "items": [{"ts": TS, "kind": "view"}, {"ts": TS, "kind": "view", "user": "own"}],
            },
        }
    )
    lines, _ = nested(text, mapping, records=("data", "items"))
    assert [(json.loads(line)["user_id"], json.loads(line)["session_id"]) for line in lines] == [
        ("middle", "s-1"),
        ("own", "s-1"),
    ]


def test_without_a_mapping_each_record_goes_out_alone() -> None:
    batch = {"batch": [json.loads(GOOD), json.loads(GOOD_TOO)], "sentAt": "2026-01-01T00:00:00Z"}
    lines, _ = nested(json.dumps(batch), mapping=None, records=("batch",))
    assert [json.loads(line) for line in lines] == [json.loads(GOOD), json.loads(GOOD_TOO)]


def test_records_of_the_elements_of_a_json_array() -> None:
    text = "[" + otto_line(1, (9, TS, "clicks")) + ", " + otto_line(2, (9, TS, "carts")) + ', {"x": 1}]'
    lines, count = nested(text, file_format=FileFormat.JSON)
    assert [reason_of(line) for line in lines] == ["stored", "stored", "missing_field"]
    assert lines[2] == '{"x":1}' and count.malformed == 1


def test_a_record_path_needs_json_and_non_empty_keys() -> None:
    with pytest.raises(ValueError, match="JSON or NDJSON"):
        nested(HEADER, file_format=FileFormat.CSV)
    assert parse_record_path("events") == ("events",)
    assert parse_record_path("data.items") == ("data", "items")
    for bad in ("", "data.", ".items", "a..b"):
        with pytest.raises(ValueError, match="empty key"):
            parse_record_path(bad)


class EndlessSessions(io.RawIOBase):
    """An OTTO file that never ends: reading it whole would never return."""

    def __init__(self) -> None:
        self.sessions = 0
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while len(self.pending) < len(buffer):
            self.sessions += 1
            self.pending += (
                otto_line(self.sessions, (1, TS, "clicks"), (2, TS + 1, "carts")) + "\n"
            ).encode()
        size = len(buffer)
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        return size


def test_records_are_streamed() -> None:
    source = EndlessSessions()
    chunks = iter_chunks(
        cast(BinaryIO, io.BufferedReader(source)),
        file_format=FileFormat.NDJSON,
        mapping=OTTO,
        chunk_rows=100,
        records=("events",),
    )
    first = next(chunks)
    assert len(first.lines) == 100
    assert source.sessions < 1000  # a buffer's worth was read, not the file


def test_import_file_reports_parents_and_publishes_nested_lines(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "otto.jsonl"
    lines = [otto_line(1, (9, TS, "clicks"), (9, TS + 1, "clicks")), "", otto_line(2), "oops"]
    path.write_text("\n".join(lines))
    sent, summary = run_import(path, settings, batch_size=2, mapping=OTTO, records=("events",))
    assert [m["raw_text"].count("\n") + 1 for m in sent] == [2, 2]
    assert (summary.lines, summary.blank_lines, summary.records) == (4, 1, ("events",))
    assert (summary.parents.parents, summary.parents.empty, summary.parents.malformed) == (3, 1, 1)
    # The preset declares that OTTO's orders carry no price: every batch says so, nothing else.
    assert all(m["unpriced_purchases"] is True and "historical" not in m for m in sent)


def test_a_historical_import_sends_the_newest_event_of_the_file_with_every_batch(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "events.csv"
    rows = ["1433221332117,257597,view,355908,", "1442545187788,992329,transaction,248676,7000"]
    rows += ["1438970013790,111016,addtocart,6,", "bad,1,view,1,", "1438401121103,1,view,2,"]
    path.write_text("timestamp,visitorid,event,itemid,transactionid\n" + "\n".join(rows) + "\n")
    sent, summary = run_import(
        path, settings, batch_size=2, mapping=load_preset("retailrocket"), historical=True
    )
    newest = 1_442_545_187_788  # the transaction, in the middle of the file; "bad" has no time
    assert summary.mode == BatchMode(historical=True, history_end_ms=newest, unpriced_purchases=True)
    assert len(sent) == 3 and all(
        (m["historical"], m["history_end_ms"], m["unpriced_purchases"]) == (True, newest, True) for m in sent
    )
    assert (settings.raw_dir / f"{sent[0]['batch_id']}.mode.json").exists()  # reconcile resends it as such
    live, plain = run_import(path, settings, batch_size=2, mapping=load_preset("retailrocket"))
    assert plain.mode == BatchMode(unpriced_purchases=True) and all("historical" not in m for m in live)


NDJSON_TIMES = '{"timestamp": "2015-01-01T00:00:00+05:00"}\nnope\n{"timestamp": "2014-12-31T20:00:01Z"}'
OTTO_SESSIONS = (
    otto_line(1, (1, TS, "clicks"), (2, TS + 7, "carts")) + "\n" + otto_line(2, (3, TS - 9, "clicks"))
)


@pytest.mark.parametrize(
    ("text", "file_format", "mapping", "records", "newest"),
    [
        (NDJSON_TIMES, "ndjson", None, None, 1_420_056_001_000),  # 20:00:01Z is after 00:00+05:00
        ('[{"timestamp": 5}, {"timestamp": "2015-01-01T00:00:00Z"}]', "json", None, None, 1_420_070_400_000),
        (OTTO_SESSIONS, "ndjson", "otto", ("events",), TS + 7),
        ('{"timestamp": "no"}\n[]', "ndjson", None, None, None),
    ],
)
def test_the_newest_event_is_read_as_the_wire_lines_will_carry_it(
    text: str, file_format: str, mapping: str | None, records: tuple[str, ...] | None, newest: int | None
) -> None:
    found = newest_event_ms(
        io.BytesIO(text.encode()),
        file_format=FileFormat(file_format),
        mapping=load_preset(mapping) if mapping else None,
        records=records,
    )
    assert found == newest


def test_an_import_keeps_each_times_offset_on_the_wire(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "shop.csv"
    rows = [
        "e1,u1,view,2026-03-29T01:59:00+05:30,",  # an offset of its own: kept whatever the zone
        "e2,u1,view,2026-03-29 01:59:00,",  # no zone: the default zone, winter time
        "e3,u1,view,2026-03-29 03:01:00,",  # the default zone, summer time
        "e4,u1,view,2026-03-29 03:01:00,America/New_York",  # the zone column wins
        "e5,u1,view,1774749660000,",  # epoch ms, 2026-03-29T02:01:00Z: summer time in Berlin
    ]
    path.write_text("event_id,user_id,action,timestamp,tz\n" + "\n".join(rows) + "\n")
    mapping = resolve_mapping(columns=["zone=tz"], default_zone="Europe/Berlin")
    sent, _ = run_import(path, settings, batch_size=10, mapping=mapping)
    times = [json.loads(line)["timestamp"] for line in sent[0]["raw_text"].split("\n")]
    assert times == [
        "2026-03-29T01:59:00.000+05:30",
        "2026-03-29T01:59:00.000+01:00",
        "2026-03-29T03:01:00.000+02:00",
        "2026-03-29T03:01:00.000-04:00",
        "2026-03-29T04:01:00.000+02:00",
    ]
    assert [reason_of(line) for line in sent[0]["raw_text"].split("\n")] == ["stored"] * 5
