"""Generated runs: determinism, time anchoring, batches, labels and pacing, without a broker."""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from celery import Celery

from config.settings import Settings
from contract.wire import Action, utc_ms
from producer.delivery import Outcome, expected_counts
from producer.faults import FaultRates
from producer.generator import (
    FLUSH_INTERVAL_S,
    RunConfig,
    generate_batches,
    make_run_id,
    plan_run,
    run_generator,
)
from producer.labels import HEADER, LabelWriter
from producer.mapping import WIRE_FIELDS
from producer.personas import Persona
from producer.publisher import Publisher
from producer.scenarios import SCENARIOS

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class RecordingApp:
    """Stands in for the Celery app: keeps every send_task call."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_task(self, name: str, *, kwargs: dict[str, Any], queue: str, retry: bool) -> None:
        self.sent.append(kwargs)


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


def recording_publisher(settings: Settings) -> tuple[Publisher, RecordingApp]:
    app = RecordingApp()
    return Publisher(cast(Celery, app), settings), app


def wire(line: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(line))


def test_same_seed_and_start_give_identical_batches(settings: Settings) -> None:
    config = plan_run(settings, count=3000, seed=42, start=START)
    first = list(generate_batches(config, count=3000))
    again = list(generate_batches(plan_run(settings, count=3000, seed=42, start=START), count=3000))
    assert first == again
    other = list(generate_batches(plan_run(settings, count=3000, seed=43, start=START), count=3000))
    assert [b.texts for b in other] != [b.texts for b in first]


def test_same_seed_anchored_whole_days_apart_shifts_only_the_dates(settings: Settings) -> None:
    now = START + timedelta(days=3)
    a = plan_run(settings, count=1000, seed=7, now=now, rates=FaultRates.none())
    b = plan_run(settings, count=1000, seed=7, now=now + timedelta(days=2), rates=FaultRates.none())
    assert b.start_ms - a.start_ms == 2 * 86_400_000
    lines_a = [wire(t) for batch in generate_batches(a, count=1000) for t in batch.texts]
    lines_b = [wire(t) for batch in generate_batches(b, count=1000) for t in batch.texts]
    assert [e["event_id"] for e in lines_a] == [e["event_id"] for e in lines_b]
    assert [e["action"] for e in lines_a] == [e["action"] for e in lines_b]


def test_batch_and_run_ids_are_deterministic_and_filename_safe(settings: Settings) -> None:
    config = plan_run(settings.model_copy(update={"batch_size": 100}), count=450, seed=9, start=START)
    ids = [b.batch_id for b in generate_batches(config, count=450)]
    assert ids[:5] == [f"gen-s9-{n:06d}" for n in range(1, 6)]
    seed, run_id = make_run_id(None, START)
    assert run_id.startswith(f"t{utc_ms(START)}-") and seed >= 0
    assert all(c.isalnum() or c == "-" for c in run_id)


def test_events_follow_the_wire_contract(settings: Settings) -> None:
    config = plan_run(settings, count=4000, seed=1, start=START, rates=FaultRates.none())
    events = [wire(t) for batch in generate_batches(config, count=4000) for t in batch.texts]
    assert len(events) == 4000
    actions = {a.value for a in Action}
    offsets = Counter()
    for event in events:
        assert tuple(event) == WIRE_FIELDS  # and no persona, ever
        assert event["action"] in actions
        amount = event["amount"]
        if event["action"] == Action.PURCHASE:
            assert amount > 0 and round(amount, 2) == amount
        else:
            assert amount is None
        stamp = event["timestamp"]
        assert len(stamp.split(".")[1]) in (4, 9)  # milliseconds, then Z or ±hh:mm
        offsets["Z" if stamp.endswith("Z") else stamp[-6:]] += 1
    assert offsets["Z"] > 0 and len(offsets) > 3
    assert len({e["event_id"] for e in events}) == len(events)


def test_unpaced_run_ends_at_or_before_now(settings: Settings) -> None:
    now = datetime.now(UTC)
    config = plan_run(settings, count=2000, seed=3, rates=FaultRates.none(), now=now)
    assert not config.paced
    stamps = [
        datetime.fromisoformat(wire(t)["timestamp"])
        for batch in generate_batches(config, count=2000)
        for t in batch.texts
    ]
    assert max(stamps) <= now
    # The run spans the longest life of the mix (weeks), and no further back.
    assert min(stamps) >= datetime.fromtimestamp(config.start_ms / 1000, UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert config.horizon_ms == utc_ms(midnight)


def test_a_seed_gives_the_same_run_at_any_time_of_the_same_day(settings: Settings) -> None:
    morning = plan_run(settings, count=3000, seed=14, now=START.replace(hour=0, minute=1))
    evening = plan_run(settings, count=3000, seed=14, now=START.replace(hour=23, minute=59))
    assert morning == evening


def test_paced_and_counted_runs_are_told_apart(settings: Settings) -> None:
    assert plan_run(settings, count=10, seed=1).paced is False
    assert plan_run(settings, count=10, rate=5.0, seed=1).paced is True
    assert plan_run(settings, duration_s=3, seed=1, users=10).paced is True


def test_expected_counts_match_the_faults_injected(settings: Settings) -> None:
    rates = FaultRates().with_rates({"not_json": 0.02, "missing_field": 0.02, "duplicate": 0.02})
    config = plan_run(settings, count=5000, seed=4, start=START, rates=rates)
    batches = list(generate_batches(config, count=5000))
    counts = expected_counts(batches)
    lines = sum(len(b.lines) for b in batches)
    assert counts.total() == lines
    assert lines == 5000 + counts[Outcome.DUPLICATE]
    stored_texts = [line.text for b in batches for line in b.lines if line.outcome is Outcome.STORED]
    copies = [line.text for b in batches for line in b.lines if line.outcome is Outcome.DUPLICATE]
    assert set(copies) <= set(stored_texts)
    assert len(set(stored_texts)) == len(stored_texts)


def test_duplicates_and_held_back_events_can_land_in_a_later_batch(settings: Settings) -> None:
    rates = FaultRates.none().with_rates({"duplicate": 0.05, "out_of_order": 0.05})
    config = plan_run(
        settings.model_copy(update={"batch_size": 200}), count=4000, seed=2, start=START, rates=rates
    )
    first_batch: dict[str, str] = {}
    moved_on = 0
    for batch in generate_batches(config, count=4000):
        for line in batch.lines:
            event_id = wire(line.text)["event_id"]
            if event_id in first_batch and first_batch[event_id] != batch.batch_id:
                moved_on += 1
            first_batch.setdefault(event_id, batch.batch_id)
    assert moved_on > 0
    assert len(first_batch) == 4000  # nothing lost, even what was held back at the end


def test_out_of_order_delivery_happens_at_about_its_rate(settings: Settings) -> None:
    rates = FaultRates.none().with_rates({"out_of_order": 0.04})
    config = plan_run(settings, count=10_000, seed=6, start=START, rates=rates)
    numbers = [
        int(wire(t)["event_id"].rsplit("-e", 1)[1])
        for batch in generate_batches(config, count=10_000)
        for t in batch.texts
    ]
    assert sorted(numbers) == list(range(1, 10_001))
    descents = sum(b < a for a, b in itertools.pairwise(numbers))
    assert 0.5 * 400 < descents < 1.5 * 400


def test_no_faults_means_every_line_is_stored(settings: Settings) -> None:
    config = plan_run(settings, count=2000, seed=5, start=START, rates=FaultRates.none())
    counts = expected_counts(generate_batches(config, count=2000))
    assert counts == Counter({"stored": 2000})


def test_run_publishes_every_batch_and_writes_labels(settings: Settings) -> None:
    publisher, app = recording_publisher(settings)
    config = plan_run(settings, count=1500, seed=8, start=START)
    summary = run_generator(
        config, publisher=publisher, labels=LabelWriter(settings.labels_path), progress=False
    )
    expected = list(generate_batches(config, count=1500))
    assert [m["batch_id"] for m in app.sent] == [b.batch_id for b in expected]
    assert [m["raw_text"] for m in app.sent] == ["\n".join(b.texts) for b in expected]
    assert summary.events == 1500 and summary.lines == sum(len(b.lines) for b in expected)
    assert summary.expected == expected_counts(expected)
    for message in app.sent:
        assert message["source"] == "generator:s8"
        raw = settings.raw_dir / f"{message['batch_id']}.ndjson"
        assert raw.read_text("utf-8") == message["raw_text"] + "\n"

    rows = list(csv.reader(settings.labels_path.open(encoding="utf-8")))
    assert tuple(rows[0]) == HEADER
    labels = {user_id: persona for user_id, persona, _ in rows[1:]}
    sub_types = {user_id: sub_type for user_id, _, sub_type in rows[1:]}
    assert len(labels) == len(rows) - 1 == summary.users
    seen = {
        wire(t)["user_id"]
        for b in expected
        for line in b.lines
        if line.outcome is Outcome.STORED
        for t in [line.text]
    }
    assert seen <= set(labels)
    assert set(labels.values()) <= {p.value for p in Persona}
    by_user = {uid: (p, sub) for b in expected for uid, p, sub in b.new_users}
    assert labels == {uid: p.value for uid, (p, _) in by_user.items()}
    assert sub_types == {uid: sub for uid, (_, sub) in by_user.items()}
    assert all(SCENARIOS[sub_types[uid]].persona.value == labels[uid] for uid in labels)


def test_running_the_same_seed_again_adds_no_label_rows(settings: Settings) -> None:
    config = plan_run(settings, count=500, seed=12, start=START)
    for _ in range(2):
        publisher, _ = recording_publisher(settings)
        run_generator(config, publisher=publisher, labels=LabelWriter(settings.labels_path), progress=False)
    rows = settings.labels_path.read_text("utf-8").splitlines()
    assert rows[0] == ",".join(HEADER)
    assert len(rows) == len(set(rows))


def test_paced_run_follows_the_clock_and_flushes_partial_batches(settings: Settings) -> None:
    clock = FakeClock()
    publisher, app = recording_publisher(settings)
    config = plan_run(settings, rate=20.0, duration_s=30.0, seed=10, start=START, rates=FaultRates.none())
    summary = run_generator(
        config,
        publisher=publisher,
        labels=LabelWriter(settings.labels_path),
        progress=False,
        clock=clock,
        sleep=clock.sleep,
    )
    assert 0.6 * 20 * 30 < summary.events < 1.4 * 20 * 30
    assert len(app.sent) > 20  # 500-event batches would be two; the flush interval makes many
    for message in app.sent[:-1]:
        stamps = [
            utc_ms(datetime.fromisoformat(wire(line)["timestamp"]))
            for line in message["raw_text"].split("\n")
        ]
        assert max(stamps) - min(stamps) <= 1000 * FLUSH_INTERVAL_S + 1000
    assert clock.now - 1000.0 <= 31.0


def test_interrupt_publishes_what_was_pending(settings: Settings, tmp_path: Path) -> None:
    class StopAfter(FakeClock):
        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            if self.now > 1005.0:
                raise KeyboardInterrupt

    clock = StopAfter()
    publisher, app = recording_publisher(settings)
    config: RunConfig = plan_run(settings, rate=50.0, seed=11, start=START, rates=FaultRates.none())
    summary = run_generator(
        config,
        publisher=publisher,
        labels=LabelWriter(tmp_path / "labels.csv"),
        progress=False,
        clock=clock,
        sleep=clock.sleep,
    )
    assert summary.interrupted
    sent_lines = sum(len(m["raw_text"].split("\n")) for m in app.sent)
    assert sent_lines == summary.events > 0


def test_invalid_fault_and_persona_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        FaultRates().with_rates({"gremlins": 0.1})
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultRates().with_rates({"not_json": 1.5})
    with pytest.raises(ValueError, match="more than 1"):
        FaultRates().with_rates({"not_json": 0.6, "missing_field": 0.6})


def test_same_seed_gives_the_same_users_sub_types_and_labels(settings: Settings) -> None:
    a = plan_run(settings, count=5000, seed=21, start=START)
    b = plan_run(settings, count=5000, seed=21, start=START)
    assert a.cohort == b.cohort
    labels_a = [u for batch in generate_batches(a, count=5000) for u in batch.new_users]
    labels_b = [u for batch in generate_batches(b, count=5000) for u in batch.new_users]
    assert labels_a == labels_b
    assert {sub for _, _, sub in labels_a} <= set(SCENARIOS)
    other = plan_run(settings, count=5000, seed=22, start=START)
    assert [u.sub_type for u in other.cohort] != [u.sub_type for u in a.cohort]


def test_an_old_two_column_labels_file_gains_the_sub_type_column(settings: Settings) -> None:
    path = settings.labels_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("user_id,persona\nold-u1,normal\nold-u2,bot\n", encoding="utf-8")
    writer = LabelWriter(path)
    assert writer.write([("old-u1", Persona.NORMAL, "browser"), ("new-u3", Persona.BOT, "metronome")]) == 1
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert rows == [
        list(HEADER),
        ["old-u1", "normal", ""],
        ["old-u2", "bot", ""],
        ["new-u3", "bot", "metronome"],
    ]
