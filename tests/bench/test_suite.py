"""Pure pieces of the benchmark suite: counts on the command line, the plan, verdicts against floors."""

from __future__ import annotations

import pytest

from bench.suite import BenchPlan, parse_counts, verdict


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


@pytest.mark.parametrize(
    ("value", "at_least", "at_most", "ok"),
    [(0.6, 0.6, None, True), (0.59, 0.6, None, False), (150.0, None, 150.0, True),
     (150.1, None, 150.0, False), (3.0, None, None, None), (None, 0.6, None, None)],
)  # fmt: skip
def test_a_verdict_is_inclusive_at_the_floor(
    value: float | None, at_least: float | None, at_most: float | None, ok: bool | None
) -> None:
    assert verdict("figure", value, "x", at_least=at_least, at_most=at_most)["ok"] is ok
