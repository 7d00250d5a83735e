"""Pure pieces of `ecomrisk bench`: counts on the command line, per-part rates, latency percentiles."""

from __future__ import annotations

import pytest

from cli.bench import BenchPlan, parse_counts, verdict
from cli.bench_pipeline import Seen, latency_percentiles, segment_rates


@pytest.mark.parametrize(
    ("text", "counts"),
    [("0,4M", (0, 4_000_000)), ("1_000_000", (1_000_000,)), ("1000k, 5m", (1_000_000, 5_000_000)), ("", ())],
)
def test_counts_accept_suffixes_and_underscores(text: str, counts: tuple[int, ...]) -> None:
    assert parse_counts(text) == counts


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_counts("-1")


def test_the_printed_command_reproduces_the_plan() -> None:
    plan = BenchPlan(workers=(1, 2, 4), table_sizes=(0, 4_000_000), batch_size=1000)
    options = dict(arg.removeprefix("--").split("=", 1) for arg in plan.argv()[2:])
    assert parse_counts(options["workers"]) == (1, 2, 4)
    assert parse_counts(options["table-size"]) == (0, 4_000_000)
    assert options["batch-size"] == "1000" and options["events"] == "1000000"


def test_options_change_the_plan_and_zero_skips_the_dashboard() -> None:
    plan = BenchPlan.smoke().with_options(workers="1,2", table_sizes="0,4M", dashboard_events="0", seed=None)
    assert plan.workers == (1, 2) and plan.table_sizes == (0, 4_000_000) and plan.dashboard_events == ()
    assert plan.seed == BenchPlan.smoke().seed and plan.events == BenchPlan.smoke().events


@pytest.mark.parametrize("options", [{"workers": "0"}, {"workers": ","}, {"table_sizes": ","}])
def test_options_without_a_usable_count_are_refused(options: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="needs"):
        BenchPlan().with_options(**options)


def test_the_primary_worker_count_fits_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert BenchPlan(workers=(1, 2, 4)).primary_workers == 2
    assert BenchPlan(workers=(4, 8)).primary_workers == 4


def test_segments_split_the_lines_in_fifths_in_commit_order() -> None:
    # 10 batches of 100 lines, one stored every second after the first enqueue at 0.
    seen = [Seen(at_ms=1000 * (i + 1), received=100, produced_ms=0) for i in reversed(range(10))]
    segments = segment_rates(seen, start_ms=0)
    assert [s["lines"] for s in segments] == ["0-20%", "20-40%", "40-60%", "60-80%", "80-100%"]
    assert [s["lines_per_s"] for s in segments] == [100.0] * 5


def test_a_part_stored_within_one_poll_has_no_rate() -> None:
    seen = [Seen(at_ms=500, received=100, produced_ms=0) for _ in range(5)]
    assert segment_rates(seen, start_ms=0)[1]["lines_per_s"] is None


def test_latency_is_weighted_by_lines_and_skips_the_warm_up() -> None:
    seen = [
        Seen(at_ms=5_000, received=500, produced_ms=0),  # warm-up: left out
        Seen(at_ms=1_100, received=99, produced_ms=1_000),
        Seen(at_ms=1_900, received=1, produced_ms=1_000),
    ]
    figures = latency_percentiles(seen, skip_until_ms=1_000)
    assert figures["lines_measured"] == 100 and figures["p50_ms"] == 100.0 and figures["max_ms"] == 900.0


@pytest.mark.parametrize(
    ("value", "at_least", "at_most", "ok"),
    [(0.6, 0.6, None, True), (0.59, 0.6, None, False), (150.0, None, 150.0, True),
     (150.1, None, 150.0, False), (3.0, None, None, None), (None, 0.6, None, None)],
)  # fmt: skip
def test_a_verdict_is_inclusive_at_the_floor(
    value: float | None, at_least: float | None, at_most: float | None, ok: bool | None
) -> None:
    assert verdict("figure", value, "x", at_least=at_least, at_most=at_most)["ok"] is ok
