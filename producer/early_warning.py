"""Say it before it happens: an import's first committed batches, read back from the ledger.

When most lines of those batches were quarantined for one reason, the rest of the file will
likely fail the same way; the warning names the reason, an example, and the import option or
worker setting that changes it. The ledger is read, never the validation rules re-applied, so
the warning is what the workers really did. Reading is a short, throttled query between two
batches; without a worker or a database it finds nothing and costs nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from contract.wire import Action, Reason, now_ms
from store.summaries import BatchOutcomes, batch_outcomes, latest_commit_ms

WATCHED_BATCHES = 3  # the first batches of an import that decide
MIN_LINES = 100  # lines the committed first batches must hold, unless all of them are in
DOMINANT_SHARE = 0.5  # more than this share of the lines failing for one reason warns
POLL_INTERVAL_S = 0.25
# A ledger with a commit this recent has a worker at work: the end of an import waits for it.
LIVE_WINDOW_MS = 60_000
SETTLE_TIMEOUT_S = 15.0

_ACTIONS = ", ".join(a.value for a in Action)
_REPLAY = "then `ecomrisk quarantine replay --reason {reason}` stores the held lines"
_REIMPORT = "stop the import (Ctrl-C) and import the file again"
REMEDIES: Mapping[Reason, str] = {
    Reason.LINE_TOO_LONG: f"raise ECOMRISK_MAX_LINE_BYTES for the workers, {_REPLAY}",
    Reason.BAD_ENCODING: f"the file is not UTF-8: convert it (e.g. iconv -f latin1 -t utf-8), {_REIMPORT}",
    Reason.NOT_JSON: f"the file is not NDJSON: {_REIMPORT} with --format csv or --format json",
    Reason.NOT_AN_OBJECT: (
        f"the lines are JSON but not objects: {_REIMPORT} with --format json (one array)"
        " or --records PATH (events nested in a list)"
    ),
    Reason.MISSING_FIELD: (
        f"{_REIMPORT} with --map FIELD=COLUMN for event_id, user_id, action or timestamp"
        " (or a --preset), or --records PATH when the events are nested in a list"
    ),
    Reason.WRONG_TYPE: (
        f"{_REIMPORT} through a mapping (--preset, --mapping or --map), which turns numbers into text"
    ),
    Reason.FIELD_TOO_LONG: f"raise ECOMRISK_MAX_FIELD_CHARS for the workers, {_REPLAY}",
    Reason.EMPTY_FIELD: f"{_REIMPORT} with --map FIELD=COLUMN naming a column that is filled",
    Reason.UNKNOWN_ACTION: f"{_REIMPORT} with --value action:RAW=OURS (ours: {_ACTIONS})",
    Reason.NEGATIVE_AMOUNT: f"{_REIMPORT} with --map amount=COLUMN naming the price column",
    Reason.AMOUNT_OUT_OF_RANGE: (
        f"raise ECOMRISK_MAX_AMOUNT for the workers, {_REPLAY}; or {_REIMPORT} with --map amount=COLUMN"
    ),
    Reason.PURCHASE_WITHOUT_AMOUNT: (
        f"{_REIMPORT} with --map amount=COLUMN naming the price column; if the export has no prices,"
        " --unpriced-purchases stores its purchases without an amount (counted, no spend), and"
        " `ecomrisk quarantine replay --reason {reason} --unpriced-purchases` the lines already held"
    ),
    Reason.BAD_TIMESTAMP: (
        f"{_REIMPORT} with --timestamp-format (strptime) and, for times without a zone,"
        " --default-zone ZONE (e.g. Europe/Berlin, or --assume-utc) or --map zone=COLUMN"
    ),
    Reason.TIMESTAMP_TOO_OLD: (
        "a file of history? import it with --historical (no past window), and"
        " `ecomrisk quarantine replay --reason {reason} --historical` stores the lines already held;"
        " or raise ECOMRISK_MAX_PAST_SKEW_DAYS for the workers above the file's age"
    ),
    Reason.TIMESTAMP_IN_FUTURE: (
        f"local times read as UTC? {_REIMPORT} with --timestamp-format and the right zone;"
        f" or raise ECOMRISK_MAX_FUTURE_SKEW_S for the workers, {_REPLAY}"
    ),
    Reason.CONFLICTING_DUPLICATE: (
        f"the file's event ids are taken by other events: {_REIMPORT} without an event_id column"
        " (imports then generate ids from the content)"
    ),
    Reason.BATCH_TOO_LARGE: f"{_REIMPORT} with a smaller --batch-size, or raise ECOMRISK_MAX_BATCH_BYTES",
    Reason.POISON_BATCH: "the workers failed on these batches: their log says why",
}


@dataclass(frozen=True, slots=True)
class EarlyWarning:
    """Most lines of an import's first committed batches failed for one reason."""

    reason: str
    failing: int
    received: int
    batches: int
    example: str

    def message(self) -> str:
        """What happened, an example, and what would change it."""
        remedy = _remedy(self.reason)
        batches = f"{self.batches} batch{'es' if self.batches != 1 else ''}"
        example = f" ({self.example})" if self.example else ""
        return (
            f"warning: {self.failing:,} of the first {self.received:,} lines ({batches} committed) were"
            f" quarantined as {self.reason}{example}; the rest of the file will likely fail the same"
            " way." + (f" To change it: {remedy}." if remedy else "")
        )


def _remedy(reason: str) -> str:
    try:
        return REMEDIES[Reason(reason)].format(reason=reason)
    except ValueError:  # a reason code of a newer worker
        return ""


def dominant_failure(outcomes: BatchOutcomes, *, share: float = DOMINANT_SHARE) -> EarlyWarning | None:
    """The reason more than `share` of these batches' lines failed for, if there is one."""
    if not outcomes.reasons or outcomes.received == 0:
        return None
    reason, failing = max(outcomes.reasons.items(), key=lambda item: (item[1], item[0]))
    if failing <= share * outcomes.received:
        return None
    return EarlyWarning(
        reason, failing, outcomes.received, outcomes.committed, outcomes.examples.get(reason, "")
    )


class FirstBatchesWatch:
    """Follows an import's first batches in the ledger and gives its verdict once."""

    def __init__(
        self,
        engine: Engine,
        *,
        watched: int = WATCHED_BATCHES,
        min_lines: int = MIN_LINES,
        interval_s: float = POLL_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._engine = engine
        self._watched = watched
        self._min_lines = min_lines
        self._interval_s = interval_s
        self._clock = clock
        self._sleep = sleep
        self._wall_clock_ms = wall_clock_ms
        self._batch_ids: list[str] = []
        self._last_poll = float("-inf")
        self._outcomes = BatchOutcomes()
        self._complete = False  # every batch of the import is published
        self.decided = False

    def published(self, batch_id: str) -> None:
        """Note a batch of the import; only the first few are watched."""
        if len(self._batch_ids) < self._watched:
            self._batch_ids.append(batch_id)

    def poll(self) -> EarlyWarning | None:
        """Between two batches: read the ledger unless it was read moments ago; never waits."""
        if self.decided or self._clock() - self._last_poll < self._interval_s:
            return None
        return self._read()

    def settle(self, *, timeout_s: float = SETTLE_TIMEOUT_S) -> EarlyWarning | None:
        """At the end of the import: wait for the verdict, but only while a worker is at work."""
        self._complete = True
        deadline = self._clock() + timeout_s
        while not self.decided and self._batch_ids:
            warning = self._read()
            if warning is not None or self.decided:
                return warning
            if self._clock() >= deadline or not self._pipeline_live():
                return None
            self._sleep(self._interval_s)
        return None

    def _read(self) -> EarlyWarning | None:
        self._last_poll = self._clock()
        try:
            self._outcomes = batch_outcomes(self._engine, batch_ids=self._batch_ids)
        except SQLAlchemyError:  # no database or no tables yet: no worker has committed anything
            return None
        outcomes = self._outcomes
        watched_all = self._complete or len(self._batch_ids) == self._watched
        all_in = watched_all and outcomes.committed == len(self._batch_ids)
        if outcomes.committed == 0 or (outcomes.received < self._min_lines and not all_in):
            return None
        self.decided = True
        return dominant_failure(outcomes)

    def _pipeline_live(self) -> bool:
        """True when a worker committed one of the watched batches, or any batch, lately."""
        if self._outcomes.committed:
            return True
        try:
            last = latest_commit_ms(self._engine)
        except SQLAlchemyError:
            return False
        return last is not None and self._wall_clock_ms() - last < LIVE_WINDOW_MS
