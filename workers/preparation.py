"""The work on a validated batch that needs no stored state, done before the write lock.

Deduplication within the batch, each new event's insert columns and sequence row, what each
user's new events add whatever their history, and the dashboard rollup counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from contract.wire import CleanEvent
from workers.sequence import SeqRow, SequenceRules, UserDelta, is_automation_agent, new_event_totals
from workers.validation import ParsedBatch

_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000

MinuteKey = tuple[int, str, str]  # (minute start ms, action, category or "")
HourKey = tuple[int, int]  # (weekday, hour) of the event's local time


@dataclass(slots=True)
class UserEvents:
    """One user's new events in a batch, with what they add whatever the stored history."""

    rows: list[SeqRow]
    t0: int  # the earliest new timestamp: the user's tail starts there
    totals: UserDelta


@dataclass(frozen=True, slots=True)
class NewEvents:
    """Events to insert, in id order, and everything about them that needs no stored state."""

    events: list[CleanEvent]
    columns: list[tuple[Any, ...]]  # each event's own columns, the first of store.writer.EVENT_COLUMNS
    rows: list[SeqRow]  # each event's sequence row, derived fields filled in under the lock
    users: dict[str, UserEvents]
    minutes: Counter[MinuteKey]  # events per minute, action and category
    hours: Counter[HourKey]  # events per weekday and hour

    def without(self, gone: list[CleanEvent], rules: SequenceRules) -> NewEvents:
        """These new events less some of them (found stored already); only their users are redone."""
        gone_ids = {e.event_id for e in gone}
        kept = [i for i, e in enumerate(self.events) if e.event_id not in gone_ids]
        users = dict(self.users)
        for user_id in {e.user_id for e in gone}:
            rows = [r for r in users.pop(user_id).rows if r.event_id not in gone_ids]
            if rows:
                users[user_id] = UserEvents(rows, min(r.ts_ms for r in rows), new_event_totals(rows, rules))
        minutes, hours = self.minutes.copy(), self.hours.copy()
        minutes.subtract(minute_key(e.ts_ms, e.action, e.category) for e in gone)
        hours.subtract(hour_key(e.ts_ms, e.utc_offset_min) for e in gone)
        return NewEvents(
            [self.events[i] for i in kept],
            [self.columns[i] for i in kept],
            [self.rows[i] for i in kept],
            users,
            +minutes,  # unary plus drops the keys that fell to zero
            +hours,
        )


NO_EVENTS = NewEvents([], [], [], {}, Counter(), Counter())


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A validated batch with the work that needs no stored state done."""

    parsed: ParsedBatch
    unique: NewEvents  # the first event of each id in the batch
    duplicates: int  # repeats of an id with the same content within the batch
    clashes: list[CleanEvent]  # repeats of an id with other content within the batch


def prepare_batch(parsed: ParsedBatch, rules: SequenceRules) -> PreparedBatch:
    """Deduplicate the batch and precompute its new events' rows, per-user totals and rollup counts."""
    first: dict[str, CleanEvent] = {}
    clashes: list[CleanEvent] = []
    duplicates = 0
    for event in parsed.events:
        seen = first.get(event.event_id)
        if seen is None:
            first[event.event_id] = event
        elif seen.content_hash == event.content_hash:
            duplicates += 1
        else:
            clashes.append(event)
    return PreparedBatch(parsed, collect_new_events(list(first.values()), rules), duplicates, clashes)


def collect_new_events(events: list[CleanEvent], rules: SequenceRules) -> NewEvents:
    """NewEvents of events with distinct ids."""
    # Id order: two batches that insert the same ids wait for each other in one order, never a cycle.
    events = sorted(events, key=lambda e: e.event_id)
    columns = []
    rows = []
    users: dict[str, list[SeqRow]] = defaultdict(list)
    minute_keys: list[MinuteKey] = []
    hour_keys: list[HourKey] = []
    agents: dict[str | None, bool] = {}  # user agents repeat: one pattern match each per batch
    for e in events:
        ts_ms = e.ts_ms
        columns.append(
            (
                e.event_id,
                e.user_id,
                e.session_id,
                e.action,
                e.category,
                e.product,
                e.amount_cents,
                ts_ms,
                e.user_agent,
                e.content_hash,
                e.line_no,
                e.utc_offset_min,
            )
        )
        agent = e.user_agent
        is_agent = agents.get(agent)
        if is_agent is None:
            is_agent = agents[agent] = is_automation_agent(agent)
        # Positional: keyword arguments cost more, once per event; derived fields keep their defaults.
        row = SeqRow(e.event_id, e.user_id, ts_ms, e.action, e.amount_cents, True, e.utc_offset_min, is_agent)
        rows.append(row)
        users[e.user_id].append(row)
        minute_keys.append(minute_key(ts_ms, e.action, e.category))
        hour_keys.append(hour_key(ts_ms, e.utc_offset_min))
    by_user = {
        user_id: UserEvents(user_rows, min(r.ts_ms for r in user_rows), new_event_totals(user_rows, rules))
        for user_id, user_rows in users.items()
    }
    # Counted at once: Counter's C loop, not a dict update and a __missing__ call per event.
    return NewEvents(events, columns, rows, by_user, Counter(minute_keys), Counter(hour_keys))


def minute_key(ts_ms: int, action: str, category: str | None) -> MinuteKey:
    """The activity_rollup key of an event."""
    return (ts_ms - ts_ms % _MINUTE_MS, action, category or "")


def hour_key(ts_ms: int, offset_min: int = 0) -> HourKey:
    """The activity_hours key of an event: weekday (0 = Monday) and hour of its own local time."""
    hour = (ts_ms + offset_min * 60_000) // _HOUR_MS
    return ((hour // 24 + 3) % 7, hour % 24)  # 1970-01-01 was a Thursday (weekday 3)


@dataclass(frozen=True, slots=True)
class RollupCounts:
    """What a batch adds to each dashboard rollup, as rows of (*key, *counts)."""

    minutes: list[tuple[Any, ...]]  # (minute_ms, action, category, events, rapid)
    mix: list[tuple[Any, ...]]  # (action, category, events, rapid)
    hours: list[tuple[Any, ...]]  # (weekday, hour, events)


def rollup_counts(
    new: NewEvents, changed: list[SeqRow], old_keys: dict[str, tuple[str, str, int]]
) -> RollupCounts:
    """New events and rapid flips as exact increments.

    old_keys: each stored tail event's (action, category, was rapid), by event id.
    """
    minutes = new.minutes
    minute_rapid: Counter[MinuteKey] = Counter()
    for e, d in zip(new.events, new.rows, strict=True):
        if d.is_rapid:
            minute_rapid[minute_key(e.ts_ms, e.action, e.category)] += 1
    for r in changed:
        action, category, was_rapid = old_keys[r.event_id]
        minute_rapid[(r.ts_ms - r.ts_ms % _MINUTE_MS, action, category)] += int(r.is_rapid) - was_rapid
    mix: Counter[tuple[str, str]] = Counter()
    mix_rapid: Counter[tuple[str, str]] = Counter()
    for (_, action, category), n in minutes.items():
        mix[(action, category)] += n
    for (_, action, category), n in minute_rapid.items():
        mix_rapid[(action, category)] += n
    return RollupCounts(
        [(*k, minutes[k], minute_rapid[k]) for k in minutes | minute_rapid],
        [(*k, mix[k], mix_rapid[k]) for k in mix | mix_rapid],
        [(*k, n) for k, n in new.hours.items()],
    )
