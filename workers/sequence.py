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
    steady_tolerance_bp: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SequenceRules:
        return cls(
            rapid_gap_ms=settings.rapid_gap_ms,
            session_gap_ms=settings.session_gap_ms,
            window_ms=settings.velocity_window_ms,
            night_start_hour=settings.night_start_hour,
            night_end_hour=settings.night_end_hour,
            steady_tolerance_bp=settings.steady_tolerance_bp,
        )

    def is_rapid(self, gap_ms: int | None) -> bool:
        """Strictly under the rapid gap; a user's first event is never rapid."""
        return gap_ms is not None and gap_ms < self.rapid_gap_ms

    def starts_session(self, gap_ms: int | None) -> bool:
        """The first event, or one after at least session_gap_ms of silence."""
        return gap_ms is None or gap_ms >= self.session_gap_ms

    def within_session(self, gap_ms: int | None) -> bool:
        """A gap inside a session (not a user's first event, not a session break)."""
        return not self.starts_session(gap_ms)

    def is_steady(self, gap_ms: int | None, previous_gap_ms: int | None) -> bool:
        """Both gaps inside a session and within the tolerance of the previous gap (exact integers)."""
        if not (self.within_session(gap_ms) and self.within_session(previous_gap_ms)):
            return False
        assert gap_ms is not None and previous_gap_ms is not None
        return abs(gap_ms - previous_gap_ms) * 10_000 <= self.steady_tolerance_bp * previous_gap_ms

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
    is_steady: bool = False
    session_no: int = 0
    burst_len: int = 0
    changed: bool = False


@dataclass(frozen=True, slots=True)
class Anchor:
    """The stored event right before a user's tail: the state the tail continues from."""

    ts_ms: int
    gap_ms: int | None
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
    steady_gaps: int = 0
    sessions: int = 0
    purchases: int = 0
    spend_cents: int = 0
    night_events: int = 0
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    max_burst: int = 0
    max_purchases_window: int = 0
    max_spend_window_cents: int = 0


def _terms(row: SeqRow, rules: SequenceRules) -> tuple[int, int, int, int, int, int]:
    """(rapid, session start, within-session gap, gap, gap squared, steady) of one computed row."""
    if rules.starts_session(row.gap_ms):
        return int(row.is_rapid), 1, 0, 0, 0, 0
    assert row.gap_ms is not None
    return int(row.is_rapid), 0, 1, row.gap_ms, row.gap_ms * row.gap_ms, int(row.is_steady)


def _add_terms(delta: UserDelta, terms: tuple[int, int, int, int, int, int], sign: int) -> None:
    rapid, start, within, gap, gap_sq, steady = terms
    delta.rapid_events += sign * rapid
    delta.sessions += sign * start
    delta.gap_count += sign * within
    delta.gap_sum_ms += sign * gap
    delta.gap_sumsq_ms += sign * gap_sq
    delta.steady_gaps += sign * steady


def recompute_tail(
    rows: Sequence[SeqRow],
    anchor: Anchor | None,
    rules: SequenceRules,
    *,
    new_totals: UserDelta | None = None,
) -> tuple[list[SeqRow], UserDelta]:
    """Recompute one user's tail in (ts, id) order; return the new and changed rows and the delta.

    Existing rows arrive with their stored derived values; new rows without. The rules are
    inlined (hot loop); the offline-recompute properties check they agree with SequenceRules.
    new_totals: new_event_totals of the new rows, when the caller has them already.
    """
    ordered = sorted(rows, key=lambda r: (r.ts_ms, r.event_id))
    if new_totals is None:
        new_totals = new_event_totals([r for r in rows if r.is_new], rules)
    delta = UserDelta(  # not copy(): this runs once per user and batch, and copy() is slow
        events=new_totals.events,
        night_events=new_totals.night_events,
        first_seen_ms=new_totals.first_seen_ms,
        last_seen_ms=new_totals.last_seen_ms,
        purchases=new_totals.purchases,
        spend_cents=new_totals.spend_cents,
    )
    prev_ts = anchor.ts_ms if anchor else None
    prev_gap = anchor.gap_ms if anchor else None
    session_no = anchor.session_no if anchor else 0
    burst = anchor.burst_len if anchor else 0
    rapid_gap, session_gap = rules.rapid_gap_ms, rules.session_gap_ms
    tolerance_bp = rules.steady_tolerance_bp
    touched: list[SeqRow] = []
    for row in ordered:
        if not row.is_new:
            before = (row.gap_ms, row.is_rapid, row.is_steady, row.session_no, row.burst_len)
            _add_terms(delta, _terms(row, rules), -1)
        gap = None if prev_ts is None else row.ts_ms - prev_ts
        rapid = gap is not None and gap < rapid_gap
        within = gap is not None and gap < session_gap
        if not within:
            session_no += 1
        burst = burst + 1 if rapid else 0
        steady = (
            within
            and prev_gap is not None
            and prev_gap < session_gap
            and abs(gap - prev_gap) * 10_000 <= tolerance_bp * prev_gap  # type: ignore[operator]
        )
        row.gap_ms, row.is_rapid, row.session_no, row.burst_len, row.is_steady = (
            gap,
            rapid,
            session_no,
            burst,
            steady,
        )
        delta.rapid_events += rapid
        if within:
            delta.gap_count += 1
            delta.gap_sum_ms += gap  # type: ignore[operator]
            delta.gap_sumsq_ms += gap * gap  # type: ignore[operator]
            delta.steady_gaps += steady
        else:
            delta.sessions += 1
        if burst > delta.max_burst:
            delta.max_burst = burst
        if row.is_new:
            touched.append(row)
        elif before != (row.gap_ms, row.is_rapid, row.is_steady, row.session_no, row.burst_len):
            row.changed = True
            touched.append(row)
        prev_ts, prev_gap = row.ts_ms, gap
    return touched, delta


def new_event_totals(new_rows: Iterable[SeqRow], rules: SequenceRules) -> UserDelta:
    """What a user's new events add whatever the stored history: counts, night events, seen-times, spend.

    It needs no stored state, so a batch computes it before taking the write lock.
    """
    totals = UserDelta()
    for row in new_rows:
        ts_ms = row.ts_ms
        totals.events += 1
        totals.night_events += rules.is_night(ts_ms)
        if totals.first_seen_ms is None or ts_ms < totals.first_seen_ms:
            totals.first_seen_ms = ts_ms
        if totals.last_seen_ms is None or ts_ms > totals.last_seen_ms:
            totals.last_seen_ms = ts_ms
        if row.action == PURCHASE:
            totals.purchases += 1
            totals.spend_cents += row.amount_cents or 0
    return totals


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
