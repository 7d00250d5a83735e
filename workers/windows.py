"""One user's current window and lifetime peak, from their buckets of event time: pure functions.

A window ends at one of the user's buckets and holds the `window_buckets` buckets up to it (the
empty ones add nothing). The current window ends at the user's latest bucket; the peak is the
highest score of any window ending at one of their buckets, the earliest on ties. A batch that
changes buckets from `first` on changes exactly the windows ending at a bucket from `first` on
and within `window_buckets` of a changed one; all other windows keep their stored scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from workers.risk import Assessment, Peak, RiskKind, RiskRules, assess, fold_buckets, higher_peak
from workers.sequence import MAXIMA, Bucket


@dataclass(frozen=True, slots=True)
class StoredBucket:
    """A bucket as stored: its figures and the score and kind of the window ending with it."""

    figures: tuple[int, ...]
    score: int
    kind: str


@dataclass(frozen=True, slots=True)
class StoredUser:
    """What the store holds of a user's risk before the batch."""

    latest_bucket_ms: int  # the bucket of the user's last event
    score: int  # of the current window, the one ending at latest_bucket_ms
    kind: str
    closed: Peak | None  # the best window ending before latest_bucket_ms


@dataclass(frozen=True, slots=True)
class Rescored:
    """A user after the batch: buckets to write, the current window, the best earlier window, the peak."""

    buckets: list[tuple[int, Bucket, int, str]]  # (bucket_ms, figures, window score, window kind)
    current: Assessment
    closed: Peak | None
    peak: Peak


def merge_bucket(stored: tuple[int, ...] | None, delta: Bucket) -> Bucket:
    """A stored bucket plus a batch's change: counts add, maxima take the larger."""
    if stored is None:
        return list(delta)
    merged = [a + b for a, b in zip(stored, delta, strict=True)]
    for i in MAXIMA:
        merged[i] = max(stored[i], delta[i])
    return merged


def rescore_user(
    stored_buckets: Mapping[int, StoredBucket],
    delta: Mapping[int, Bucket],
    stored: StoredUser | None,
    *,
    latest_bucket_ms: int,
    bucket_ms: int,
    rules: RiskRules,
    best_before: Callable[[int], Peak | None],
) -> Rescored:
    """Merge a batch's bucket changes, rescore the windows they reach, and carry the peak forward.

    stored_buckets holds every stored bucket from `window_buckets - 1` buckets before the first
    changed one, and those of the latest window; best_before(ms) reads the best stored window
    ending before ms (late data only).
    """
    if len(delta) == 1 and (
        stored is None or stored.latest_bucket_ms <= latest_bucket_ms == next(iter(delta))
    ):
        return _rescore_latest(stored_buckets, delta, stored, latest_bucket_ms, bucket_ms, rules)
    figures = {key: bucket.figures for key, bucket in stored_buckets.items()}
    scores = {key: (bucket.score, bucket.kind) for key, bucket in stored_buckets.items()}
    for key, change in delta.items():
        figures[key] = tuple(merge_bucket(figures.get(key), change))
    first = min(delta)
    span = (rules.window_buckets - 1) * bucket_ms
    reach = max(delta) + span
    reached = {key for key in figures if first <= key <= reach and key <= latest_bucket_ms}
    rescored = sorted(reached | {latest_bucket_ms})
    occupied = sorted(figures)
    current: Assessment | None = None
    for end in rescored:
        window = [figures[key] for key in occupied if end - span <= key <= end]
        result = assess(fold_buckets(window), rules)
        scores[end] = (result.score, result.kind.value)
        if end == latest_bucket_ms:
            current = result
    assert current is not None, "the latest window is always rescored"
    writes = sorted({*delta, *rescored})
    buckets = [(key, list(figures[key]), *scores[key]) for key in writes]
    closed = _closed_peak(
        stored,
        scores,
        first,
        latest_bucket_ms,
        stored_from=min(figures),
        best_before=best_before,
        rules=rules,
    )
    peak = higher_peak(closed, Peak(current.score, current.band, current.kind, latest_bucket_ms))
    assert peak is not None
    return Rescored(buckets, current, closed, peak)


def _rescore_latest(
    stored_buckets: Mapping[int, StoredBucket],
    delta: Mapping[int, Bucket],
    stored: StoredUser | None,
    latest_bucket_ms: int,
    bucket_ms: int,
    rules: RiskRules,
) -> Rescored:
    """The common case of a stream in time order: the batch changed the latest bucket alone.

    Only the window ending there changes; the best earlier window is the stored one, or, when
    the batch opened a new latest bucket, the better of it and the window that just closed.
    """
    key = latest_bucket_ms
    change = delta[key]
    span = (rules.window_buckets - 1) * bucket_ms
    old = stored_buckets.get(key)
    merged = merge_bucket(None if old is None else old.figures, change)
    window: list[Sequence[int]] = [b.figures for k, b in stored_buckets.items() if key - span <= k < key]
    window.append(merged)
    current = assess(fold_buckets(window), rules)
    closed = None
    if stored is not None:
        closed = stored.closed
        if stored.latest_bucket_ms < key:  # the old latest window closes, with the score it had
            closed = higher_peak(closed, _peak(stored.score, stored.kind, stored.latest_bucket_ms, rules))
    peak = higher_peak(closed, Peak(current.score, current.band, current.kind, key))
    assert peak is not None
    return Rescored([(key, merged, current.score, current.kind.value)], current, closed, peak)


def _closed_peak(
    stored: StoredUser | None,
    scores: Mapping[int, tuple[int, str]],
    first: int,
    latest_bucket_ms: int,
    *,
    stored_from: int,
    best_before: Callable[[int], Peak | None],
    rules: RiskRules,
) -> Peak | None:
    """The best window ending before the latest bucket, after the batch."""
    if stored is not None and first >= stored.latest_bucket_ms:
        # Only windows from the old latest bucket on changed: earlier ones keep their best.
        best = stored.closed
        if stored.latest_bucket_ms < latest_bucket_ms:  # the old latest window closes
            score, kind = scores.get(stored.latest_bucket_ms, (stored.score, stored.kind))
            best = higher_peak(best, _peak(score, kind, stored.latest_bucket_ms, rules))
        candidates = (key for key in scores if stored.latest_bucket_ms < key < latest_bucket_ms)
    else:
        # Late data reached windows before the latest bucket: read the best of those not in reach.
        best = best_before(stored_from) if stored is not None else None
        candidates = (key for key in scores if key < latest_bucket_ms)
    for key in sorted(candidates):
        score, kind = scores[key]
        best = higher_peak(best, _peak(score, kind, key, rules))
    return best


def _peak(score: int, kind: str, bucket_ms: int, rules: RiskRules) -> Peak:
    return Peak(score, rules.band_of(score), RiskKind(kind), bucket_ms)
