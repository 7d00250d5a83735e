"""The produce and import commands end to end against the suite's private Redis."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import typer
from typer.testing import CliRunner

from cli.produce import import_file, produce
from config.settings import Settings, get_settings
from contract.wire import now_ms
from producer.importer import file_digest
from producer.timestamps import format_timestamp
from store.db import create_reader_engine
from store.summaries import batch_outcomes
from tests.producer.exports import otto_lines, retailrocket_csv, seeded_events
from tests.support import REES46_SAMPLE, celery_worker, task_message_body, wait_until

REES46 = REES46_SAMPLE


@pytest.fixture()
def cli(live_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    """A Typer app with the two commands, seeing live_settings through ECOMRISK_* variables."""
    for name in ("redis_url", "data_dir", "queue_name", "database_url"):
        monkeypatch.setenv(f"ECOMRISK_{name.upper()}", str(getattr(live_settings, name)))
    get_settings.cache_clear()
    app = typer.Typer()
    app.command("produce")(produce)
    app.command("import")(import_file)
    yield app
    get_settings.cache_clear()


def queued_batch_ids(settings: Settings) -> list[str]:
    client = redis.Redis.from_url(settings.redis_url or "")
    # Kombu pushes on the left and workers pop on the right: oldest last.
    messages = [json.loads(raw) for raw in reversed(client.lrange(settings.queue_name, 0, -1))]
    return [task_message_body(m)[1]["batch_id"] for m in messages]


def test_produce_publishes_a_seeded_run(cli: typer.Typer, live_settings: Settings) -> None:
    args = ["produce", "--count", "700", "--seed", "5", "--start", "2026-03-02T09:00:00Z"]
    result = CliRunner().invoke(
        cli, [*args, "--batch-size", "300", "--no-progress", "--fault", "not_json=0.05"]
    )
    assert result.exit_code == 0, result.output
    ids = queued_batch_ids(live_settings)
    assert ids[:3] == ["gen-s5-000001", "gen-s5-000002", "gen-s5-000003"]
    assert sorted(p.stem for p in live_settings.raw_dir.iterdir()) == sorted(ids)
    assert "Run s5" in result.output and str(live_settings.labels_path) in result.output
    assert "not_json" in result.output
    assert live_settings.labels_path.read_text().startswith("user_id,persona,sub_type\n")


def test_produce_mixes_personas_and_sub_types(cli: typer.Typer, live_settings: Settings) -> None:
    # A persona share rescales its sub-types; a sub-type share sets that one alone.
    mix = ["--persona", "normal=0", "--persona", "bot=0", "--persona", "impulsive=0"]
    mix += ["--persona", "quick_pager=3", "--persona", "headless_agent=1"]
    args = ["produce", "--count", "3000", "--seed", "6", "--no-progress", "--no-faults", *mix]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with live_settings.labels_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    sub_types = Counter(row["sub_type"] for row in rows)
    assert set(sub_types) == {"quick_pager", "headless_agent"}
    assert {row["persona"] for row in rows if row["sub_type"] == "headless_agent"} == {"bot"}
    # Shares are of users: three quick pagers to one headless agent, give or take the last user.
    assert 2 <= sub_types["quick_pager"] / sub_types["headless_agent"] <= 4


def test_produce_refuses_bad_options(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["produce", "--count", "5", "--fault", "gremlins=0.1"])
    assert result.exit_code != 0 and "unknown fault" in result.output
    result = CliRunner().invoke(cli, ["produce", "--count", "5", "--persona", "bot"])
    assert result.exit_code != 0 and "NAME=NUMBER" in result.output
    result = CliRunner().invoke(cli, ["produce", "--count", "5", "--persona", "robot=0.5"])
    assert result.exit_code != 0 and "unknown persona or sub-type" in result.output


def test_import_rees46_twice_reuses_the_batch_ids(cli: typer.Typer, live_settings: Settings) -> None:
    args = ["import", str(REES46), "--preset", "rees46", "--batch-size", "2000", "--no-progress"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    ids = queued_batch_ids(live_settings)
    assert len(ids) == 6 and ids[:3] == ids[3:]
    assert all(i.startswith("imp-") and i.endswith(("-000001", "-000002", "-000003")) for i in ids)
    assert "Published 3 batches" in first.output


def test_import_otto_with_its_preset_publishes_each_nested_event(
    cli: typer.Typer, live_settings: Settings, tmp_path: Path
) -> None:
    events = seeded_events(
        seed=1, users=range(10), per_user=5, start_ms=now_ms(), kinds=("clicks",), weights=(1,)
    )
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join([*otto_lines(events, seed=1), '{"session": 99, "events": []}']) + "\n")
    result = CliRunner().invoke(cli, ["import", str(path), "--preset", "otto", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"{len(events)} lines" in result.output
    assert "Records at 'events': 11 parent lines, 1 with an empty list" in result.output
    refused = CliRunner().invoke(cli, ["import", str(REES46), "--preset", "rees46", "--records", "events"])
    assert refused.exit_code != 0 and "needs a JSON or NDJSON file" in refused.output


def test_import_historical_says_so_and_every_message_carries_the_mode(
    cli: typer.Typer, live_settings: Settings, tmp_path: Path
) -> None:
    events = seeded_events(
        seed=3,
        users=range(5),
        per_user=4,
        start_ms=1_433_221_332_117,
        kinds=("view", "transaction"),
        weights=(3, 1),
    )
    path = tmp_path / "events.csv"
    path.write_text(retailrocket_csv(events, seed=3))
    args = [
        "import",
        str(path),
        "--preset",
        "retailrocket",
        "--historical",
        "--batch-size",
        "7",
        "--no-progress",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    newest = max(e.ts_ms for e in events)
    assert f"Historical: no past window; newest event {format_timestamp(newest)}" in result.stdout
    assert "Purchases without an amount are stored without one" in result.stdout
    client = redis.Redis.from_url(live_settings.redis_url or "")
    bodies = [task_message_body(json.loads(raw))[1] for raw in client.lrange(live_settings.queue_name, 0, -1)]
    assert len(bodies) == -(-len(events) // 7)
    assert {(b["historical"], b["history_end_ms"], b["unpriced_purchases"]) for b in bodies} == {
        (True, newest, True)
    }


def test_import_refuses_an_unknown_zone_and_two_spellings_of_one(cli: typer.Typer, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("timestamp,visitorid,event,itemid,transactionid\n")
    unknown = CliRunner().invoke(
        cli, ["import", str(path), "--preset", "retailrocket", "--default-zone", "Mars/Base"]
    )
    assert unknown.exit_code != 0 and "unknown zone 'Mars/Base'" in unknown.output
    both = CliRunner().invoke(cli, ["import", str(path), "--assume-utc", "--default-zone", "UTC"])
    assert both.exit_code != 0 and "give one of them" in both.output


def rows_committed(settings: Settings, path: Path, batches: int) -> bool:
    engine = create_reader_engine(settings.resolved_database_url)
    prefix = f"imp-{file_digest(path)[:12]}-"
    try:
        ids = [f"{prefix}{n:06d}" for n in range(1, batches + 1)]
        return batch_outcomes(engine, batch_ids=ids).committed == batches
    except Exception:  # the worker creates the tables with its first batch
        return False
    finally:
        engine.dispose()


@pytest.mark.integration
def test_import_says_while_it_runs_that_its_first_batches_fail_for_one_reason(
    cli: typer.Typer, live_settings: Settings, tmp_path: Path
) -> None:
    def export(name: str, start_ms: int) -> Path:
        events = seeded_events(
            seed=2,
            users=range(100, 140),
            per_user=10,
            start_ms=start_ms,
            kinds=("view", "addtocart"),
            weights=(4, 1),
        )
        path = tmp_path / name
        path.write_text(retailrocket_csv(events, seed=2))
        return path

    recent = export("recent.csv", now_ms() - 3_600_000)
    history = export("events.csv", 1_433_221_332_117)  # June 2015, as the real export
    args = ["--preset", "retailrocket", "--batch-size", "100", "--no-progress"]
    with celery_worker(live_settings):
        healthy = CliRunner().invoke(cli, ["import", str(recent), *args])
        assert healthy.exit_code == 0, healthy.output
        assert "warning:" not in healthy.output
        wait_until(lambda: rows_committed(live_settings, recent, 1), timeout_s=60, what="the first import")

        old = CliRunner().invoke(cli, ["import", str(history), *args])

    assert old.exit_code == 0, old.output
    warning = old.stderr
    assert "were quarantined as timestamp_too_old" in warning
    assert "is before the accepted past window" in warning  # the worker's own detail
    assert "ECOMRISK_MAX_PAST_SKEW_DAYS" in warning and "quarantine replay" in warning
    assert "import it with --historical" in warning
    assert "Imported" in old.stdout and "warning:" not in old.stdout
