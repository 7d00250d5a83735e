"""Per-user sequence rules: gaps, rapid flags, sessions, bursts, rest, stakes, and exact per-bucket deltas.

A batch touches, for each of its users, only the *tail*: the stored events at or after the
batch's earliest new timestamp for that user, plus one *anchor* (the state after the event just
before the tail). Inserting events only ever shortens gaps and merges sessions and awake runs,
so rapid flags, burst lengths, session and awake lengths never go down, and every additive
figure can be corrected by (new tail) - (old tail).

Figures are kept per user and *bucket* of event time (UTC-aligned, ECOMRISK_RISK_BUCKET_S):
the current risk sums the buckets of a trailing window. A bucket is a list of ints indexed by
the constants below: the additive counts first, then the maxima.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter

from crawlerdetect import CrawlerDetect

from config.settings import Settings

PURCHASE = "purchase"
LOGIN = "login"
BROWSE_ACTIONS = frozenset({"view", "search"})
TRADE_ACTIONS = frozenset({"add_to_cart", "purchase"})  # actions that commit money or intent to buy
_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_NO_BUCKET = -(1 << 62)  # a bucket start no event time falls after

# --- a bucket's figures: additive counts, then maxima ---------------------------------------
EVENTS, RAPID, GAPS, GAP_SUM, GAP_SUMSQ, STEADY, FAST, SESSIONS = range(8)
NIGHT, NIGHT_SESSIONS, PURCHASES, SPEND, BROWSE, AGENT, STAKE_BETS, RAISED_BETS = range(8, 16)
TRADES, RAPID_TRADES, LOGINS, BET_GAPS, STEADY_BETS = range(16, 21)
MAX_BURST, MAX_SESSION_MS, MAX_AWAKE_MS, MAX_PURCHASES, MAX_SPEND = range(21, 26)
BUCKET_FIELDS = (
    "events", "rapid_events", "gap_count", "gap_sum_ms", "gap_sumsq_ms", "steady_gaps", "fast_gaps",
    "sessions", "night_events", "night_sessions", "purchases", "spend_cents", "browse_events",
    "agent_events", "stake_bets", "raised_bets", "trade_events", "rapid_trades", "logins", "bet_gaps",
    "steady_bets",
    "max_burst", "max_session_ms", "max_awake_ms", "max_purchases_window", "max_spend_window_cents",
)  # fmt: skip
ADDITIVE = range(MAX_BURST)
MAXIMA = range(MAX_BURST, len(BUCKET_FIELDS))
Bucket = list[int]

# User agents of automation tools a list of robots may not name: headless browsers, browser
# automation, and HTTP clients (Java-http-client, Apache-HttpClient, Go-http-client, httpx).
AUTOMATION_AGENT = re.compile(
    r"headless|phantomjs|selenium|webdriver|puppeteer|playwright|http-?client|httpx|python-|java\b"
    r"|curl/|wget/|okhttp|libwww-perl|scrapy|node-fetch|axios/|bot\b|crawl|spider|slurp|\+https?://",
    re.IGNORECASE,
)
_ROBOTS = CrawlerDetect()  # declared robots, crawlers and HTTP libraries (the CrawlerDetect list)
# A user agent made only of ordinary browser tokens names no tool and no robot, so neither list can
# match it; checking that first costs a few microseconds instead of the lists' hundreds.
_NO_ROBOT = r"(?![^)]*(?:bot|crawl|spider|http|headless|python|java|curl|wget))"
_PLAIN_BROWSER = re.compile(
    # Chrome, Safari, Edge, Firefox and their mobile forms
    rf"Mozilla/5\.0 \({_NO_ROBOT}(?!compatible)[^()]*\)"
    r"(?: (?:(?:AppleWebKit|Chrome|Safari|Version|Mobile|Firefox|Edg|OPR|CriOS|FxiOS)/[\w.]+"
    r"|Gecko/[\d.-]+(?: [\d:.]+)?|Mobile|\(KHTML, like Gecko\)))+"
    # Internet Explorer
    rf"|Mozilla/[45]\.0 \(compatible; MSIE [\d.]+;{_NO_ROBOT}[^()]*\)"
    # Presto-era Opera
    rf"|Opera/[\d.]+ ?\({_NO_ROBOT}[^()]*\) Presto/[\d.]+ Version/[\d.]+",
    re.IGNORECASE,
)


@lru_cache(maxsize=65_536)
def is_automation_agent(user_agent: str | None) -> bool:
    """True for the user agent of a headless browser, an HTTP library or a declared robot."""
    if not user_agent or _PLAIN_BROWSER.fullmatch(user_agent):
        return False
    return AUTOMATION_AGENT.search(user_agent) is not None or bool(_ROBOTS.isCrawler(user_agent))


def empty_bucket() -> Bucket:
    """A bucket with nothing in it."""
    return [0] * len(BUCKET_FIELDS)


@dataclass(frozen=True, slots=True)
class SequenceRules:
    """The named, configured thresholds of the sequence features, in milliseconds."""

    rapid_gap_ms: int
    session_gap_ms: int
    window_ms: int  # purchase velocity: the rolling window
    night_start_hour: int  # local time
    night_end_hour: int
    steady_tolerance_bp: int
    fast_gap_ms: int  # under a person's motor limit
    rest_gap_ms: int  # a gap this long is a rest: it ends an awake run
    bucket_ms: int
    chase_multiple_pct: int  # a bet at this share of its session's opening stake (percent) is raised

    @classmethod
    def from_settings(cls, settings: Settings) -> SequenceRules:
        return cls(
            rapid_gap_ms=settings.rapid_gap_ms,
            session_gap_ms=settings.session_gap_ms,
            window_ms=settings.velocity_window_ms,
            night_start_hour=settings.night_start_hour,
            night_end_hour=settings.night_end_hour,
            steady_tolerance_bp=settings.steady_tolerance_bp,
            fast_gap_ms=round(settings.machine_gap_s * 1000),
            rest_gap_ms=round(settings.rest_gap_s * 1000),
            bucket_ms=round(settings.risk_bucket_s * 1000),
            chase_multiple_pct=round(settings.chase_stake_multiple * 100),
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

    def is_night(self, ts_ms: int, offset_min: int = 0) -> bool:
        """Within the unsociable hours of the event's own local time, start inclusive, end exclusive."""
        hour = ((ts_ms + offset_min * _MINUTE_MS) % _DAY_MS) // _HOUR_MS
        return self.night_start_hour <= hour < self.night_end_hour

    def bucket_of(self, ts_ms: int) -> int:
        """The start of the bucket an event time falls in (epoch ms, UTC-aligned)."""
        return ts_ms - ts_ms % self.bucket_ms


@dataclass(slots=True)
class SeqRow:
    """One event in a user's sequence; derived fields are None until computed."""

    event_id: str
    user_id: str
    ts_ms: int
    action: str
    amount_cents: int | None
    is_new: bool
    offset_min: int = 0  # the event's UTC offset, minutes
    is_agent: bool = False  # sent by an automation tool's user agent
    gap_ms: int | None = None
    is_rapid: bool = False
    is_steady: bool = False
    session_no: int = 0
    burst_len: int = 0
    changed: bool = False
    session_ms: int = 0  # time since the session's first event
    awake_ms: int = 0  # time since the first event after the last rest
    open_stake: int | None = None  # its session's opening stake so far (None before the first bet)
    # A bet after its session's first: 1 if above that opening stake and at least the chase multiple of it.
    stake_raised: int | None = None
    last_bet_ms: int | None = None  # its session's latest purchase so far (this one, if it is one)
    bet_gap_ms: int | None = None  # the gap between its session's latest two purchases so far
    bet_rhythm: int | None = None  # a purchase after its session's first: 1 if its gap is steady, else 0


@dataclass(frozen=True, slots=True)
class Anchor:
    """The stored event right before a user's tail: the state the tail continues from."""

    ts_ms: int
    gap_ms: int | None
    session_no: int
    burst_len: int
    session_ms: int = 0
    awake_ms: int = 0
    open_stake: int | None = None  # the opening stake of the anchor's session so far
    last_bet_ms: int | None = None
    bet_gap_ms: int | None = None

    @classmethod
    def stored(
        cls,
        ts_ms: int,
        gap_ms: int | None,
        session_no: int,
        burst_len: int,
        session_ms: int,
        awake_ms: int,
        open_stake: int | None,
        last_bet_ms: int | None,
        previous_bet_ms: int | None,
    ) -> Anchor:
        """From the stored event and its session's first priced bet, last bet and the bet before it."""
        bet_gap_ms = None if last_bet_ms is None or previous_bet_ms is None else last_bet_ms - previous_bet_ms
        return cls(
            ts_ms, gap_ms, session_no, burst_len, session_ms, awake_ms, open_stake, last_bet_ms, bet_gap_ms
        )


@dataclass(slots=True)
class UserDelta:
    """The exact change a batch makes to one user's lifetime figures, and to each of their buckets."""

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
    buckets: dict[int, Bucket] | None = None  # bucket start -> additive changes and new maxima


def new_event_totals(new_rows: Iterable[SeqRow], rules: SequenceRules) -> UserDelta:
    """What a user's new events add whatever the stored history: counts, spend, seen-times, per bucket.

    It needs no stored state, so a batch computes it before taking the write lock. `buckets`
    holds each bucket's static counts (events, local-night events, purchases, spend, browsing,
    automation agents); the sequence-dependent ones are added under the lock.
    """
    totals = UserDelta(buckets={})
    buckets = totals.buckets
    assert buckets is not None
    bucket_ms = rules.bucket_ms
    night_start, night_end = rules.night_start_hour, rules.night_end_hour
    first = last = None
    key = _NO_BUCKET
    bucket: Bucket = []
    for row in new_rows:
        ts_ms = row.ts_ms
        if not key <= ts_ms < key + bucket_ms:  # a user's events mostly share one bucket
            key = ts_ms - ts_ms % bucket_ms
            found = buckets.get(key)
            bucket = buckets[key] = empty_bucket() if found is None else found
        bucket[EVENTS] += 1
        if night_start <= ((ts_ms + row.offset_min * _MINUTE_MS) % _DAY_MS) // _HOUR_MS < night_end:
            bucket[NIGHT] += 1
        action = row.action
        if action == PURCHASE:
            bucket[PURCHASES] += 1
            bucket[TRADES] += 1
            bucket[SPEND] += row.amount_cents or 0
        elif action in BROWSE_ACTIONS:
            bucket[BROWSE] += 1
        elif action in TRADE_ACTIONS:
            bucket[TRADES] += 1
        elif action == LOGIN:
            bucket[LOGINS] += 1
        if row.is_agent:
            bucket[AGENT] += 1
        if first is None or ts_ms < first:
            first = ts_ms
        if last is None or ts_ms > last:
            last = ts_ms
    totals.first_seen_ms, totals.last_seen_ms = first, last
    for bucket in buckets.values():
        totals.events += bucket[EVENTS]
        totals.night_events += bucket[NIGHT]
        totals.purchases += bucket[PURCHASES]
        totals.spend_cents += bucket[SPEND]
    return totals


_TIME_ORDER = attrgetter("ts_ms", "event_id")  # a user's sequence order


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
    new_totals: new_event_totals of the new rows, when the caller has them already. The delta's
    buckets carry, per bucket, the exact change of every additive figure and the new maxima of
    the tail rows in it (maxima only grow); window_peaks adds the purchase-velocity maxima.
    A stored row that comes out as stored, with the stored chain's bet state, settles the chain:
    every stored row up to the next new one comes out as stored too, so it is passed over (past
    the last new row, the pass ends).
    """
    ordered = sorted(rows, key=_TIME_ORDER)
    if new_totals is None:
        new_totals = new_event_totals([r for r in rows if r.is_new], rules)
    assert new_totals.buckets is not None
    buckets = {key: list(bucket) for key, bucket in new_totals.buckets.items()}
    prev_ts = anchor.ts_ms if anchor else None
    prev_gap = anchor.gap_ms if anchor else None
    session_no = anchor.session_no if anchor else 0
    burst = anchor.burst_len if anchor else 0
    session_ms = anchor.session_ms if anchor else 0
    awake_ms = anchor.awake_ms if anchor else 0
    open_stake = anchor.open_stake if anchor else None
    last_bet = anchor.last_bet_ms if anchor else None
    bet_gap = anchor.bet_gap_ms if anchor else None
    # The bet state of the stored chain: bet steps are not stored, so each stored row's are replayed
    # from the anchor's, to take out what the row added.
    old_open, old_last, old_gap = open_stake, last_bet, bet_gap
    chase_pct = rules.chase_multiple_pct
    rapid_gap, session_gap = rules.rapid_gap_ms, rules.session_gap_ms
    fast_gap, rest_gap = rules.fast_gap_ms, rules.rest_gap_ms
    tolerance_bp = rules.steady_tolerance_bp
    bucket_ms = rules.bucket_ms
    night_start, night_end = rules.night_start_hour, rules.night_end_hour
    touched: list[SeqRow] = []
    new_left = new_totals.events  # new rows not reached yet
    settled = False  # the last stored row came out as stored, with the stored chain's bet state
    key = _NO_BUCKET
    bucket: Bucket = []
    for row in ordered:
        ts_ms = row.ts_ms
        action = row.action
        if not row.is_new:  # the bet step it added in the stored chain
            if row.gap_ms is None or row.gap_ms >= session_gap:  # it starts a stored session
                old_open = old_last = old_gap = None
            old_raised = old_rhythm = None
            if action == PURCHASE:
                old_open, old_raised, old_last, old_gap, old_rhythm = _bet_step(
                    ts_ms, row.amount_cents, old_open, old_last, old_gap, chase_pct, tolerance_bp
                )
            if settled:
                # Up to the next new row every stored row comes out as stored and adds nothing:
                # carry its stored state on.
                open_stake, last_bet, bet_gap = old_open, old_last, old_gap
                session_no, burst = row.session_no, row.burst_len
                session_ms, awake_ms = row.session_ms, row.awake_ms
                prev_ts, prev_gap = ts_ms, row.gap_ms
                continue
        settled = False
        if not key <= ts_ms < key + bucket_ms:  # rows come in time order: buckets change rarely
            key = ts_ms - ts_ms % bucket_ms
            found = buckets.get(key)
            bucket = buckets[key] = empty_bucket() if found is None else found
        if row.is_new:
            new_left -= 1
        else:
            before = _derived(row)
            row.stake_raised, row.bet_rhythm = old_raised, old_rhythm
            night = night_start <= ((ts_ms + row.offset_min * _MINUTE_MS) % _DAY_MS) // _HOUR_MS < night_end
            _add_terms(bucket, row, rules, night, -1)
        gap = None if prev_ts is None else ts_ms - prev_ts
        rapid = gap is not None and gap < rapid_gap
        within = gap is not None and gap < session_gap
        if within:
            session_ms += gap  # type: ignore[operator]
        else:
            session_no += 1
            session_ms = 0
            open_stake = None
            last_bet = bet_gap = None
        awake_ms = awake_ms + gap if gap is not None and gap < rest_gap else 0
        burst = burst + 1 if rapid else 0
        steady = (
            within
            and prev_gap is not None
            and prev_gap < session_gap
            and abs(gap - prev_gap) * 10_000 <= tolerance_bp * prev_gap  # type: ignore[operator]
        )
        stake_raised = bet_rhythm = None
        if action == PURCHASE:
            open_stake, stake_raised, last_bet, bet_gap, bet_rhythm = _bet_step(
                ts_ms, row.amount_cents, open_stake, last_bet, bet_gap, chase_pct, tolerance_bp
            )
        row.gap_ms = gap
        row.is_rapid = rapid
        row.session_no = session_no
        row.burst_len = burst
        row.is_steady = steady
        row.session_ms = session_ms
        row.awake_ms = awake_ms
        row.open_stake = open_stake
        row.stake_raised = stake_raised
        row.last_bet_ms = last_bet
        row.bet_gap_ms = bet_gap
        row.bet_rhythm = bet_rhythm
        # The sequence-dependent figures (inlined _add_terms with sign +1).
        if rapid:
            bucket[RAPID] += 1
            if action in TRADE_ACTIONS:
                bucket[RAPID_TRADES] += 1
        if within:
            bucket[GAPS] += 1
            bucket[GAP_SUM] += gap  # type: ignore[operator]
            bucket[GAP_SUMSQ] += gap * gap  # type: ignore[operator]
            if steady:
                bucket[STEADY] += 1
            if gap < fast_gap:  # type: ignore[operator]
                bucket[FAST] += 1
        else:
            bucket[SESSIONS] += 1
            if night_start <= ((ts_ms + row.offset_min * _MINUTE_MS) % _DAY_MS) // _HOUR_MS < night_end:
                bucket[NIGHT_SESSIONS] += 1
        if stake_raised is not None:
            bucket[STAKE_BETS] += 1
            bucket[RAISED_BETS] += stake_raised
        if bet_rhythm is not None:
            bucket[BET_GAPS] += 1
            bucket[STEADY_BETS] += bet_rhythm
        if burst > bucket[MAX_BURST]:
            bucket[MAX_BURST] = burst
        if session_ms > bucket[MAX_SESSION_MS]:
            bucket[MAX_SESSION_MS] = session_ms
        if awake_ms > bucket[MAX_AWAKE_MS]:
            bucket[MAX_AWAKE_MS] = awake_ms
        if row.is_new:
            touched.append(row)
        elif before != _derived(row):
            row.changed = True
            touched.append(row)
        elif (old_open, old_last, old_gap) == (open_stake, last_bet, bet_gap):
            # A stored row left as stored carries the stored state on: every later stored row up to
            # the next new one comes out as stored too, adding nothing (its maxima are in its bucket
            # already). Past the last new row, that is every row left.
            if not new_left:
                break
            settled = True
        prev_ts, prev_gap = ts_ms, gap
    return touched, _lifetime_delta(new_totals, buckets)


# The stored fields a recompute may change (store.writer.FLAG_COLUMNS), as one C call.
_derived = attrgetter("gap_ms", "is_rapid", "is_steady", "session_no", "burst_len", "session_ms", "awake_ms")


def _add_terms(bucket: Bucket, row: SeqRow, rules: SequenceRules, night: bool, sign: int) -> None:
    """Add (sign +1) or remove (-1) the sequence-dependent figures of a computed row."""
    gap = row.gap_ms
    bucket[RAPID] += sign * row.is_rapid
    if row.action in TRADE_ACTIONS:
        bucket[RAPID_TRADES] += sign * row.is_rapid
    if rules.starts_session(gap):
        bucket[SESSIONS] += sign
        bucket[NIGHT_SESSIONS] += sign * night
    else:
        assert gap is not None
        bucket[GAPS] += sign
        bucket[GAP_SUM] += sign * gap
        bucket[GAP_SUMSQ] += sign * gap * gap
        bucket[STEADY] += sign * row.is_steady
        bucket[FAST] += sign * (gap < rules.fast_gap_ms)
    if row.stake_raised is not None:
        bucket[STAKE_BETS] += sign
        bucket[RAISED_BETS] += sign * row.stake_raised
    if row.bet_rhythm is not None:
        bucket[BET_GAPS] += sign
        bucket[STEADY_BETS] += sign * row.bet_rhythm


BetStep = tuple[int | None, int | None, int, int | None, int | None]


def _bet_step(
    ts_ms: int,
    amount: int | None,
    open_stake: int | None,
    last_bet: int | None,
    bet_gap: int | None,
    chase_pct: int,
    tolerance_bp: int,
) -> BetStep:
    """A purchase in its session: (open_stake, stake_raised, last_bet, bet_gap, bet_rhythm) after it.

    The session's first priced bet opens the stake; a later one is raised at chase_pct of it. A
    bet after the session's first has a rhythm: 1 when its gap is within tolerance of the last gap.
    """
    stake_raised = bet_rhythm = None
    if amount is not None:
        if open_stake is None:
            open_stake = amount
        else:
            stake_raised = int(amount > open_stake and amount * 100 >= chase_pct * open_stake)
    if last_bet is not None:
        this_gap = ts_ms - last_bet
        bet_rhythm = int(bet_gap is not None and abs(this_gap - bet_gap) * 10_000 <= tolerance_bp * bet_gap)
        bet_gap = this_gap
    return open_stake, stake_raised, ts_ms, bet_gap, bet_rhythm


def _lifetime_delta(totals: UserDelta, buckets: dict[int, Bucket]) -> UserDelta:
    """The lifetime change: static totals plus the sequence-dependent changes summed over buckets."""
    delta = UserDelta(
        events=totals.events,
        night_events=totals.night_events,
        first_seen_ms=totals.first_seen_ms,
        last_seen_ms=totals.last_seen_ms,
        purchases=totals.purchases,
        spend_cents=totals.spend_cents,
        buckets=buckets,
    )
    for bucket in buckets.values():
        delta.rapid_events += bucket[RAPID]
        delta.gap_count += bucket[GAPS]
        delta.gap_sum_ms += bucket[GAP_SUM]
        delta.gap_sumsq_ms += bucket[GAP_SUMSQ]
        delta.steady_gaps += bucket[STEADY]
        delta.sessions += bucket[SESSIONS]
        if bucket[MAX_BURST] > delta.max_burst:
            delta.max_burst = bucket[MAX_BURST]
    return delta


def window_peaks(
    purchases: Iterable[tuple[int, int]], ends_from_ms: int, rules: SequenceRules
) -> tuple[int, int]:
    """Most purchases and most spend in any window (t - W, t] ending at a purchase at or after ends_from_ms.

    `purchases` are (ts_ms, cents) of every purchase at or after ends_from_ms - W.
    """
    best_count = best_spend = 0
    for _, count, spend in purchase_windows(purchases, ends_from_ms, rules):
        best_count = max(best_count, count)
        best_spend = max(best_spend, spend)
    return best_count, best_spend


def purchase_windows(
    purchases: Iterable[tuple[int, int]], ends_from_ms: int, rules: SequenceRules
) -> list[tuple[int, int, int]]:
    """(t, purchases, spend) of the window (t - W, t] ending at each purchase at or after ends_from_ms."""
    ordered = sorted(purchases)
    times = [ts for ts, _ in ordered]
    cumulative = [0]
    for _, cents in ordered:
        cumulative.append(cumulative[-1] + cents)
    windows = []
    for ts in times:
        if ts < ends_from_ms:
            continue
        end = bisect_right(times, ts)
        start = bisect_right(times, ts - rules.window_ms)
        windows.append((ts, end - start, cumulative[end] - cumulative[start]))
    return windows


def add_purchase_peaks(
    delta: UserDelta, windows: Iterable[tuple[int, int, int]], rules: SequenceRules
) -> None:
    """Raise the purchase-velocity maxima of each window's bucket, and the lifetime ones."""
    buckets = delta.buckets
    assert buckets is not None
    for ts, count, spend in windows:
        bucket = buckets.get(rules.bucket_of(ts))
        if bucket is None:
            bucket = buckets[rules.bucket_of(ts)] = empty_bucket()
        if count > bucket[MAX_PURCHASES]:
            bucket[MAX_PURCHASES] = count
        if spend > bucket[MAX_SPEND]:
            bucket[MAX_SPEND] = spend
        if count > delta.max_purchases_window:
            delta.max_purchases_window = count
        if spend > delta.max_spend_window_cents:
            delta.max_spend_window_cents = spend
