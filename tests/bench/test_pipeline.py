"""Pure pieces of the pipeline runs: per-part rates and latency percentiles from the ledger."""

from __future__ import annotations

from bench.pipeline import Seen, latency_percentiles, segment_rates


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
