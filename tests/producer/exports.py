"""Small files in the public formats of RetailRocket and OTTO, and counts derived from them.

RetailRocket `events.csv` (Kaggle "Retailrocket recommender system dataset"):
`timestamp,visitorid,event,itemid,transactionid`, epoch milliseconds, event one of view,
addtocart, transaction (only those carry a transactionid). OTTO (Kaggle "OTTO - Multi-Objective
Recommender System", github.com/otto-de/recsys-dataset): JSONL, one session per line,
`{"session": int, "events": [{"aid": int, "ts": epoch ms, "type": "clicks"|"carts"|"orders"}]}`.
The rows are random but seeded, with gaps both under and over the 2 s rapid window.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

RETAILROCKET_HEADER = ("timestamp", "visitorid", "event", "itemid", "transactionid")
RETAILROCKET_ACTIONS = {"view": "view", "addtocart": "add_to_cart", "transaction": "purchase"}
OTTO_ACTIONS = {"clicks": "view", "carts": "add_to_cart", "orders": "purchase"}
# Gaps between one user's events (ms): about a third under the rapid window of 2 s.
GAPS_MS = (0, 150, 900, 1999, 2000, 2001, 4_500, 30_000, 400_000, 2_000_000)


@dataclass(frozen=True)
class SourceEvent:
    """One event of an export as the file states it: who, when, what."""

    user: str
    ts_ms: int
    kind: str


def seeded_events(
    *,
    seed: int,
    users: range,
    per_user: int,
    start_ms: int,
    kinds: tuple[str, ...],
    weights: tuple[int, ...],
) -> list[SourceEvent]:
    """Per user (numbered from users) a run of events with gaps from GAPS_MS, interleaved by time."""
    rng = random.Random(seed)
    events = []
    for user in users:
        ts = start_ms + rng.randrange(0, 3_600_000)
        for _ in range(rng.randint(1, per_user)):
            ts += rng.choice(GAPS_MS)
            events.append(SourceEvent(str(user), ts, rng.choices(kinds, weights)[0]))
    return sorted(events, key=lambda e: (e.ts_ms, e.user))


def retailrocket_events(*, seed: int, users: range, start_ms: int) -> list[SourceEvent]:
    """Mostly views, some cart adds, a few transactions."""
    kinds = tuple(RETAILROCKET_ACTIONS)
    return seeded_events(
        seed=seed, users=users, per_user=14, start_ms=start_ms, kinds=kinds, weights=(80, 15, 5)
    )


def otto_events(*, seed: int, users: range, start_ms: int) -> list[SourceEvent]:
    """Mostly clicks, some carts, a few orders."""
    kinds = tuple(OTTO_ACTIONS)
    return seeded_events(
        seed=seed, users=users, per_user=16, start_ms=start_ms, kinds=kinds, weights=(85, 10, 5)
    )


def retailrocket_csv(events: Iterable[SourceEvent], *, seed: int) -> str:
    """The rows of an events.csv; an item id per row, a transaction id on transactions."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RETAILROCKET_HEADER)
    for n, e in enumerate(events):
        transaction = str(7000 + n) if e.kind == "transaction" else ""
        writer.writerow([e.ts_ms, e.user, e.kind, rng.randrange(1, 60), transaction])
    return out.getvalue()


def otto_lines(events: Iterable[SourceEvent], *, seed: int) -> list[str]:
    """One JSON line per session (user) with its events in time order, as OTTO ships them."""
    rng = random.Random(seed)
    sessions: dict[str, list[dict[str, object]]] = defaultdict(list)
    for e in events:
        sessions[e.user].append({"aid": rng.randrange(1, 60), "ts": e.ts_ms, "type": e.kind})
    return [json.dumps({"session": int(user), "events": evs}) for user, evs in sessions.items()]


def rapid_count(events: Iterable[SourceEvent], *, rapid_gap_ms: int = 2000) -> int:
    """Events whose user's previous event is less than rapid_gap_ms before: per user, by time."""
    times: dict[str, list[int]] = defaultdict(list)
    for e in events:
        times[e.user].append(e.ts_ms)
    return sum(b - a < rapid_gap_ms for moments in times.values() for a, b in pairwise(sorted(moments)))


def read_retailrocket(path: Path) -> list[SourceEvent]:
    """The events of an events.csv file, read back with the csv module."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return [SourceEvent(r["visitorid"], int(r["timestamp"]), r["event"]) for r in csv.DictReader(fh)]


def read_otto(path: Path) -> list[SourceEvent]:
    """The events of the well-formed session lines of an OTTO file."""
    events = []
    for line in path.read_text(encoding="utf-8-sig").split("\n"):
        try:
            session = json.loads(line)
        except ValueError:
            continue
        if isinstance(session, dict) and isinstance(session.get("events"), list):
            user = str(session["session"])
            events += [SourceEvent(user, int(e["ts"]), e["type"]) for e in session["events"]]
    return events
