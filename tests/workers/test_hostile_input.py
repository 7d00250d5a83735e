"""Hostile input: every non-blank line ends stored, duplicate or quarantined with a reason; nothing raises."""

from __future__ import annotations

import json
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from config.settings import Settings
from contract.wire import RawBatch, Reason, broker_client
from producer.publisher import Publisher, write_raw_batch
from producer.reconcile import account_raw_logs, count_event_lines, iter_raw_batches, resend_missing
from store.db import create_writer_engine, init_schema
from store.models import Batch, Event, QuarantinedLine
from store.summaries import ledger_totals
from tests.support import celery_worker, wait_until
from workers.ingest import ingest_batch, now_ms
from workers.validation import Limits, parse_batch, validate_line

# Small limits, so over-long fields, lines and batches are cheap to make.
LIMITS = {"max_field_chars": 32, "max_line_bytes": 512, "max_batch_bytes": 2048}
RECENT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
FIELDS = ["event_id", "user_id", "action", "timestamp", "amount", "session_id", "category", "product"]
HUGE_NUMBERS = [
    "1e400",
    "-1e400",
    "1e-400",
    "-0.0",
    "0e0",
    "1E308",
    str(2**63),
    str(2**64),
    str(2**64 + 1),
    str(-(2**63) - 1),
    "9" * 400,
    "-" + "9" * 400,
    "NaN",
    "Infinity",
    "-Infinity",
    "nan",
    "0x10",
    "+1",
    "01",
    "1.",
]
CONTROL = st.characters(categories=["Cc", "Cf", "Cs", "Co", "Zl", "Zp", "Zs"]) | st.sampled_from(
    ["\x00", "\x1f", "\x7f", "\x85", "\u2028", "\ufeff", "\u200b", "\r"]
)


def event(**overrides: Any) -> dict[str, Any]:
    """A valid view event, with fields replaced."""
    base: dict[str, Any] = {
        "event_id": "v1",
        "user_id": "u1",
        "action": "view",
        "timestamp": RECENT.isoformat(),
    }
    return base | overrides


def dumps(document: Any) -> str:
    """JSON text the way a careless producer writes it: big ints kept, NaN allowed."""
    return json.dumps(document, ensure_ascii=False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def valid_lines(draw: st.DrawFn) -> str:
    action = draw(st.sampled_from(["view", "search", " PURCHASE ", "purchase"]))
    doc = event(
        event_id=draw(st.sampled_from(["v1", "v2", "v3", " v1 ", "v\u0301"])),
        user_id=draw(st.sampled_from(["u1", "u2", "é", "e\u0301"])),
        action=action,
        timestamp=(RECENT + timedelta(milliseconds=draw(st.integers(0, 600_000)))).isoformat(),
    )
    if "purchase" in action.lower():
        doc["amount"] = draw(st.integers(0, 10**6) | st.floats(0, 9999, allow_nan=False))
    return dumps(doc)


@st.composite
def spliced_bytes(draw: st.DrawFn) -> str:
    """A valid line with random bytes inserted: wrong encodings, as read with surrogateescape."""
    data = dumps(event()).encode()
    at = draw(st.integers(0, len(data)))
    return (data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]).decode(
        "utf-8", "surrogateescape"
    )


@st.composite
def nested(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 3000))
    inner = "[" * depth + "]" * depth if draw(st.booleans()) else '{"a":' * depth + "1" + "}" * depth
    if draw(st.booleans()):
        return inner
    return dumps(event()).replace('"u1"', inner, 1)


@st.composite
def huge_numbers(draw: st.DrawFn) -> str:
    literal = draw(st.sampled_from(HUGE_NUMBERS))
    name = draw(st.sampled_from(["amount", "amount", "event_id", "timestamp"]))
    doc = event(action="purchase", amount=1)
    doc[name] = "@@"
    return dumps(doc).replace('"@@"', literal)


@st.composite
def control_text(draw: st.DrawFn) -> str:
    text = draw(st.text(alphabet=CONTROL | st.sampled_from("ab1 "), min_size=1, max_size=10))
    name = draw(st.sampled_from(["event_id", "user_id", "category", "product", "action", "timestamp"]))
    if draw(st.booleans()):  # escaped: valid JSON carrying control characters
        return json.dumps(event(**{name: text}))
    return dumps(event(**{name: "@@"})).replace("@@", text)  # raw, as a broken producer writes them


@st.composite
def over_long(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        name = draw(st.sampled_from(["event_id", "user_id", "product", "category", "session_id"]))
        return dumps(event(**{name: "x" * draw(st.integers(33, 200))}))
    return dumps(event(padding="p" * draw(st.integers(480, 2000))))


@st.composite
def wrong_shape(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return dumps(draw(json_values))
    return dumps(event(**{draw(st.sampled_from(FIELDS)): draw(json_values)}))


odd_timestamps = st.sampled_from(
    [
        "9999-12-31T23:59:59.999999+00:00",
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00-23:59",
        "2026-02-30T00:00:00Z",
        "2026-11-27T25:00:00Z",
        "2026-11-27T10:00:00",
        "2026-11-27",
        "",
        " ",
        "T",
        "2026-11-27T10:00:00+24:00",
    ]
).map(lambda ts: dumps(event(timestamp=ts)))

# Blank lines, and lines str.strip() would wrongly take for blank (each must be accounted for).
blank = st.sampled_from(
    ["", " ", "\t", "\r", "  \r", "\u00a0", "\x0b\x0c", "\u3000", "\x0c", "\x1f", " \x1c\t"]
)

hostile_line = st.one_of(
    valid_lines(),
    st.binary(max_size=80).map(lambda b: b.decode("utf-8", "surrogateescape")),
    spliced_bytes(),
    nested(),
    huge_numbers(),
    control_text(),
    over_long(),
    wrong_shape(),
    odd_timestamps,
    blank,
    st.text(max_size=40),
)
hostile_batch = st.lists(hostile_line, min_size=1, max_size=25).map("\n".join)


def settings_for(workdir: Path) -> Settings:
    return Settings(data_dir=workdir, database_url=f"sqlite:///{workdir / 'h.db'}", **LIMITS)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated database file that each example copies."""
    workdir = tmp_path_factory.mktemp("hostile-template")
    engine = create_writer_engine(settings_for(workdir).resolved_database_url)
    init_schema(engine)
    engine.dispose()
    return workdir / "h.db"


def non_blank(raw_text: str) -> dict[int, str]:
    """Line number -> line, for every line the worker must account for: all but JSON white space."""
    return {
        n: line for n, line in enumerate(raw_text.split("\n"), start=1) if not set(line) <= {" ", "\t", "\r"}
    }


def surrogateescape_encodable(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def shown(line: str) -> str:
    """How quarantine keeps a line: undecodable bytes backslash-escaped."""
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


@hyp_settings(max_examples=300, deadline=None)
@given(hostile_batch)
def test_parse_batch_accounts_for_every_line(raw_text: str) -> None:
    limits = Limits.from_settings(Settings(**LIMITS), now_ms=now_ms())
    parsed = parse_batch(raw_text, limits)
    lines = non_blank(raw_text)
    numbers = [e.line_no for e in parsed.events] + [r.line_no for r in parsed.rejections]
    assert sorted(numbers) == sorted(lines)
    for rejection in parsed.rejections:
        assert rejection.raw_text == lines[rejection.line_no]
        assert isinstance(rejection.reason, Reason)
        assert 0 < len(rejection.detail) <= limits.detail_chars
    for clean in parsed.events:
        for text in (clean.event_id, clean.user_id, clean.session_id, clean.category, clean.product):
            assert text is None or (text.isprintable() and text == unicodedata.normalize("NFC", text))
            assert text is None or len(text) <= limits.max_field_chars


@hyp_settings(max_examples=200, deadline=None)
@given(hostile_batch)
def test_raw_log_counts_the_lines_the_worker_counts(raw_text: str) -> None:
    assume(surrogateescape_encodable(raw_text))  # what can come from a file
    with tempfile.TemporaryDirectory() as tmp:
        path = write_raw_batch(Path(tmp), "hostile", raw_text)
        assert count_event_lines(path) == len(non_blank(raw_text))
        assert path.read_bytes() == raw_text.encode("utf-8", "surrogateescape") + b"\n"


@pytest.mark.parametrize("depth", [1, 1023, 1024, 1025, 100_000])
@pytest.mark.parametrize("where", ["top", "field", "ignored_field"])
def test_deep_nesting_is_refused_without_recursion(depth: int, where: str) -> None:
    inner = "[" * depth + "]" * depth
    text = {
        "top": inner,
        "field": dumps(event(user_id="@@")).replace('"@@"', inner),
        "ignored_field": dumps(event(extra="@@")).replace('"@@"', inner),
    }[where]
    limits = Limits.from_settings(Settings(max_line_bytes=1_000_000), now_ms=now_ms())
    parsed = parse_batch(text, limits)
    # orjson refuses nesting deeper than 1024; a nested value in a known field is the wrong type.
    too_deep = depth + (where != "top") > 1024
    if too_deep:
        assert [r.reason for r in parsed.rejections] == [Reason.NOT_JSON]
    elif where == "top":
        assert [r.reason for r in parsed.rejections] == [Reason.NOT_AN_OBJECT]
    elif where == "field":
        assert [r.reason for r in parsed.rejections] == [Reason.WRONG_TYPE]
    else:
        assert [e.event_id for e in parsed.events] == ["v1"]


def outcome_of_lines(engine: Engine, batch_id: str) -> tuple[dict[int, str], dict[int, tuple[str, str]]]:
    """Stored line numbers -> event id, and quarantined line numbers -> (reason, raw text)."""
    with engine.connect() as conn:
        stored = dict(
            conn.execute(select(Event.line_no, Event.event_id).where(Event.batch_id == batch_id)).all()
        )
        held = {
            r.line_no: (r.reason, r.raw_text)
            for r in conn.execute(select(QuarantinedLine).where(QuarantinedLine.batch_id == batch_id))
        }
    return stored, held  # type: ignore[return-value]


@hyp_settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_batch)
def test_ingest_stores_or_quarantines_every_line(template_db: Path, raw_text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        shutil.copy(template_db, workdir / "h.db")
        settings = settings_for(workdir)
        engine = create_writer_engine(settings.resolved_database_url)
        at_ms = now_ms()
        outcome = ingest_batch(engine, RawBatch("h", raw_text, "t"), settings=settings, at_ms=at_ms)
        lines = non_blank(raw_text)
        stored, held = outcome_of_lines(engine, "h")
        duplicates = set(lines) - set(stored) - set(held)
        assert set(stored).isdisjoint(held) and set(stored) | set(held) <= set(lines)
        assert outcome.received == len(lines)
        assert (outcome.stored_new, outcome.duplicates, outcome.quarantined) == (
            len(stored),
            len(duplicates),
            len(held),
        )
        with engine.connect() as conn:
            ledger = conn.execute(select(Batch.__table__)).one()
            hashes = dict(conn.execute(select(Event.event_id, Event.content_hash)).all())
        assert ledger.received == ledger.stored_new + ledger.duplicates + ledger.quarantined == len(lines)
        for line_no, (reason, kept) in held.items():
            assert Reason(reason) and kept == shown(lines[line_no])
        if len(raw_text.encode("utf-8", "surrogatepass")) > settings.max_batch_bytes:
            assert {reason for reason, _ in held.values()} <= {Reason.BATCH_TOO_LARGE.value}
            assert len(held) == len(lines)
        limits = Limits.from_settings(settings, now_ms=at_ms)
        for line_no in duplicates:  # a duplicate repeats a stored event exactly
            clean = validate_line(lines[line_no], line_no=line_no, limits=limits)
            assert hashes[clean.event_id] == clean.content_hash
        engine.dispose()


HOSTILE_SAMPLES = [
    "\udcff\udcfe{not utf-8",
    '{"event_id": "bad-\udce9", "user_id": "u", "action": "view", "timestamp": "' + RECENT.isoformat() + '"}',
    "[" * 200 + "]" * 200,
    "[" * 5000 + "]" * 5000,
    dumps(event(event_id="n1", action="purchase")).replace('"purchase"', '"purchase", "amount": 1e400'),
    dumps(event(event_id="n2", action="purchase", amount=2**70)),
    dumps(event(event_id="n3", action="purchase")).replace('"purchase"', '"purchase", "amount": NaN'),
    dumps(event(event_id="n4")).replace('"u1"', '"u\x00\x01\x1b"'),
    json.dumps(event(event_id="\x00\x07")),
    dumps(event(event_id="n5", product="p" * 40)),
    dumps(event(event_id="n6", padding="x" * 600)),
    dumps([1, 2, 3]),
    dumps(event(event_id="n7", user_id=["u1"])),
    dumps(event(event_id="n8", timestamp="9999-12-31T23:59:59Z")),
]
HOSTILE_REASONS = [
    "bad_encoding",
    "bad_encoding",
    "not_an_object",
    "line_too_long",
    "not_json",
    "amount_out_of_range",
    "not_json",
    "not_json",
    "empty_field",
    "field_too_long",
    "line_too_long",
    "not_an_object",
    "wrong_type",
    "timestamp_in_future",
]


# CR inside a line is not a line break for the worker, so it must not become one on the way back.
CR_BATCH = [
    dumps(event(event_id="cr-1")) + "\r",
    "not json\rstill the same line",
    "\u00a0",  # no JSON white space: a line, quarantined, not a blank to skip
    dumps(event(event_id="cr-2")),
]


@pytest.fixture()
def hostile_settings(live_settings: Settings) -> Iterator[Settings]:
    yield live_settings.model_copy(update=LIMITS | {"max_batch_bytes": 16_384})


@pytest.mark.integration
def test_a_real_worker_survives_hostile_batches(hostile_settings: Settings) -> None:
    settings = hostile_settings
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    publisher = Publisher(broker_client(settings), settings)
    valid = dumps(event(event_id="ok-1"))
    oversize = [dumps(event(event_id=f"big-{i}")) for i in range(200)]
    assert len("\n".join(oversize).encode()) > settings.max_batch_bytes

    def committed(*batch_ids: str) -> bool:
        with engine.connect() as conn:
            found = set(conn.scalars(select(Batch.batch_id).where(Batch.batch_id.in_(batch_ids))))
        return found == set(batch_ids)

    with celery_worker(settings, name="hostile") as worker:
        assert len("\n".join(HOSTILE_SAMPLES).encode("utf-8", "surrogateescape")) < settings.max_batch_bytes
        publisher.publish("hostile-1", [*HOSTILE_SAMPLES, "", valid], source="hostile")
        publisher.publish("hostile-2", oversize, source="hostile")
        write_raw_batch(settings.raw_dir, "hostile-3", "\n".join(CR_BATCH))  # lost before the queue
        wait_until(lambda: committed("hostile-1", "hostile-2"), timeout_s=60, what="hostile batches")
        pid = worker.pid
        replies = publisher_app_ping(settings)
        account = account_raw_logs(settings.raw_dir, engine)
        assert [p.name for p in account.missing] == ["hostile-3.ndjson"] and account.missing_lines == 4
        resend_missing(account, publisher)
        publisher.publish("after", [dumps(event(event_id="ok-2", user_id="u2"))], source="hostile")
        wait_until(
            lambda: committed("hostile-3", "after"), timeout_s=30, what="batches after the hostile ones"
        )
        assert worker.poll() is None and worker.pid == pid
        assert replies and all(reply[name] == {"ok": "pong"} for reply in replies for name in reply)

    stored, held = outcome_of_lines(engine, "hostile-1")
    assert list(stored.values()) == ["ok-1"]
    assert [held[n][0] for n in sorted(held)] == HOSTILE_REASONS
    assert [held[n][1] for n in sorted(held)] == [shown(line) for line in HOSTILE_SAMPLES]
    _, oversized = outcome_of_lines(engine, "hostile-2")
    assert len(oversized) == 200 and {reason for reason, _ in oversized.values()} == {"batch_too_large"}
    stored, held = outcome_of_lines(engine, "hostile-3")
    assert stored == {1: "cr-1", 4: "cr-2"}
    assert held == {2: ("not_json", CR_BATCH[1]), 3: ("not_json", CR_BATCH[2])}
    with engine.connect() as conn:
        ledger = conn.execute(select(Batch.__table__).order_by(Batch.batch_id)).all()
    assert [(b.batch_id, b.received, b.stored_new, b.duplicates, b.quarantined) for b in ledger] == [
        ("after", 1, 1, 0, 0),
        ("hostile-1", len(HOSTILE_SAMPLES) + 1, 1, 0, len(HOSTILE_SAMPLES)),
        ("hostile-2", 200, 0, 0, 200),
        ("hostile-3", 4, 2, 0, 2),
    ]
    totals = ledger_totals(engine)
    raw_lines = sum(count_event_lines(path) for path in iter_raw_batches(settings.raw_dir))
    assert totals.balanced and raw_lines == totals.received
    assert account_raw_logs(settings.raw_dir, engine).missing == ()
    assert redis.Redis.from_url(settings.redis_url or "").llen(settings.queue_name) == 0


def publisher_app_ping(settings: Settings) -> list[dict[str, Any]]:
    """Every worker's answer to a broadcast ping."""
    return list(broker_client(settings).control.ping(timeout=5.0))
