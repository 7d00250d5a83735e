"""Per-user sequence rules: gaps, rapid flags, sessions, bursts, and the exact aggregate deltas.

A batch touches, for each of its users, only the *tail*: the stored events at or after the
batch's earliest new timestamp for that user, plus one *anchor* (the event just before the
tail). Inserting events only ever shortens gaps, so rapid flags and burst lengths never go
down, and every additive aggregate can be corrected by (new tail) - (old tail).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from config.settings import Settings

PURCHASE = "purchase"
_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class SequenceRules:
    """The named, configured thresholds of the sequence features, in milliseconds."""

    rapid_gap_ms: int
    session_gap_ms: int
    window_ms: int
    night_start_hour: int
    night_end_hour: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SequenceRules:
        return cls(
            rapid_gap_ms=settings.rapid_gap_ms,
            session_gap_ms=settings.session_gap_ms,
            window_ms=settings.velocity_window_ms,
            night_start_hour=settings.night_start_hour,
            night_end_hour=settings.night_end_hour,
        )

    def is_rapid(self, gap_ms: int | None) -> bool:
        """Strictly under the rapid gap; a user's first event is never rapid."""
        return gap_ms is not None and gap_ms < self.rapid_gap_ms

    def starts_session(self, gap_ms: int | None) -> bool:
        """The first event, or one after at least session_gap_ms of silence."""
        return gap_ms is None or gap_ms >= self.session_gap_ms

    def is_night(self, ts_ms: int) -> bool:
        """Within the unsociable hours, UTC, start inclusive and end exclusive."""
        hour = (ts_ms % _DAY_MS) // _HOUR_MS
        return self.night_start_hour <= hour < self.night_end_hour


@dataclass(slots=True)
class SeqRow:
    """One event in a user's sequence; derived fields are None until computed."""

    event_id: str
    user_id: str
    ts_ms: int
    action: str
    amount_cents: int | None
    is_new: bool
    gap_ms: int | None = None
    is_rapid: bool = False
    session_no: int = 0
    burst_len: int = 0
    changed: bool = False


@dataclass(frozen=True, slots=True)
class Anchor:
    """The stored event right before a user's tail: the state the tail continues from."""

    ts_ms: int
    session_no: int
    burst_len: int


@dataclass(slots=True)
class UserDelta:
    """The exact change a batch makes to one user's aggregates."""

    events: int = 0
    rapid_events: int = 0
    gap_count: int = 0
    gap_sum_ms: int = 0
    gap_sumsq_ms: int = 0
    sessions: int = 0
    purchases: int = 0
    spend_cents: int = 0
    night_events: int = 0
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    max_burst: int = 0
    max_purchases_window: int = 0
    max_spend_window_cents: int = 0


def _gap_terms(gap_ms: int | None, rules: SequenceRules) -> tuple[int, int, int, int, int]:
    """(rapid, session start, within-session gap count, gap, gap squared) of one event."""
    rapid = int(rules.is_rapid(gap_ms))
    if rules.starts_session(gap_ms):
        return rapid, 1, 0, 0, 0
    assert gap_ms is not None
    return rapid, 0, 1, gap_ms, gap_ms * gap_ms


def recompute_tail(
    rows: Sequence[SeqRow], anchor: Anchor | None, rules: SequenceRules
) -> tuple[list[SeqRow], UserDelta]:
    """Recompute one user's tail in (ts, id) order; return changed old rows, new rows, and the delta.

    Existing rows arrive with their stored derived values; new rows without.
    """
    ordered = sorted(rows, key=lambda r: (r.ts_ms, r.event_id))
    delta = UserDelta()
    prev_ts = anchor.ts_ms if anchor else None
    session_no = anchor.session_no if anchor else 0
    burst = anchor.burst_len if anchor else 0
    touched: list[SeqRow] = []
    for row in ordered:
        if not row.is_new:
            old = _gap_terms(row.gap_ms, rules)
            delta.rapid_events -= old[0]
            delta.sessions -= old[1]
            delta.gap_count -= old[2]
            delta.gap_sum_ms -= old[3]
            delta.gap_sumsq_ms -= old[4]
            before = (row.gap_ms, row.is_rapid, row.session_no, row.burst_len)
        gap = None if prev_ts is None else row.ts_ms - prev_ts
        rapid, start, count, gap_part, gap_sq = _gap_terms(gap, rules)
        session_no += start
        burst = burst + 1 if rapid else 0
        row.gap_ms, row.is_rapid, row.session_no, row.burst_len = (
            gap,
            bool(rapid),
            session_no,
            burst,
        )
        delta.rapid_events += rapid
        delta.sessions += start
        delta.gap_count += count
        delta.gap_sum_ms += gap_part
        delta.gap_sumsq_ms += gap_sq
        delta.max_burst = max(delta.max_burst, burst)
        if row.is_new:
            _count_new_event(delta, row, rules)
            touched.append(row)
        elif before != (row.gap_ms, row.is_rapid, row.session_no, row.burst_len):
            row.changed = True
            touched.append(row)
        prev_ts = row.ts_ms
    return touched, delta


def _count_new_event(delta: UserDelta, row: SeqRow, rules: SequenceRules) -> None:
    delta.events += 1
    delta.night_events += int(rules.is_night(row.ts_ms))
    delta.first_seen_ms = row.ts_ms if delta.first_seen_ms is None else min(delta.first_seen_ms, row.ts_ms)
    delta.last_seen_ms = row.ts_ms if delta.last_seen_ms is None else max(delta.last_seen_ms, row.ts_ms)
    if row.action == PURCHASE:
        delta.purchases += 1
        delta.spend_cents += row.amount_cents or 0


def window_peaks(
    purchases: Iterable[tuple[int, int]], ends_from_ms: int, rules: SequenceRules
) -> tuple[int, int]:
    """Most purchases and most spend in any window (t - W, t] ending at a purchase at or after ends_from_ms.

    `purchases` are (ts_ms, cents) of every purchase at or after ends_from_ms - W.
    """
    ordered = sorted(purchases)
    times = [ts for ts, _ in ordered]
    cumulative = [0]
    for _, cents in ordered:
        cumulative.append(cumulative[-1] + cents)
    best_count = best_spend = 0
    for ts in times:
        if ts < ends_from_ms:
            continue
        end = bisect_right(times, ts)
        start = bisect_right(times, ts - rules.window_ms)
        best_count = max(best_count, end - start)
        best_spend = max(best_spend, cumulative[end] - cumulative[start])
    return best_count, best_spend
