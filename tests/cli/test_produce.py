"""The produce and import commands end to end against the suite's private Redis."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
import typer
from typer.testing import CliRunner

from cli.produce import import_file, produce
from config.settings import Settings, get_settings
from tests.support import REES46_SAMPLE, task_message_body

REES46 = REES46_SAMPLE


@pytest.fixture()
def cli(live_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    """A Typer app with the two commands, seeing live_settings through ECOMRISK_* variables."""
    for name in ("redis_url", "data_dir", "queue_name"):
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
