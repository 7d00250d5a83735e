"""Batch assembly: line faults, out-of-order delivery and re-sent duplicates, with known outcomes."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from contract.wire import Reason
from producer.faults import (
    FAULT_REASONS,
    Fault,
    FaultLimits,
    FaultRates,
    break_event,
    draw_line_fault,
    dump_line,
)
from producer.labels import Label
from producer.simulation import SimEvent

# Share of out-of-order events held back to the next batch rather than moved earlier.
_HOLD_BACK_SHARE = 0.3
# Share of duplicates re-sent in the same batch; the rest go 1-3 batches later.
_SAME_BATCH_DUPLICATE_SHARE = 0.5


class Outcome(StrEnum):
    """What the worker should do with a line."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class Line:
    """One NDJSON line with the outcome the worker is expected to reach for it."""

    text: str
    outcome: Outcome
    reason: Reason | None = None
    fault: Fault | None = None

    @property
    def expected(self) -> str:
        """The outcome as one key: "stored", "duplicate" or the quarantine reason."""
        return self.reason.value if self.reason else self.outcome.value


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch ready to publish, and the users first seen in it (for the labels file only)."""

    batch_id: str
    lines: tuple[Line, ...]
    new_users: tuple[Label, ...] = ()  # (user_id, persona, sub-type)

    @property
    def texts(self) -> list[str]:
        """The wire lines."""
        return [line.text for line in self.lines]


def expected_counts(batches: Iterable[Batch]) -> Counter[str]:
    """How many lines should end stored, duplicate, or quarantined per reason."""
    return Counter(line.expected for batch in batches for line in batch.lines)


class Delivery:
    """Turn chunks of simulated events into batches; carries held-back lines between calls."""

    def __init__(
        self,
        *,
        run_id: str,
        seed: int,
        rates: FaultRates,
        limits: FaultLimits,
        horizon_ms: int,
    ) -> None:
        self._run_id = run_id
        self._rates = rates
        self._limits = limits
        self._horizon_ms = horizon_ms
        # Faults draw from their own stream, so they never change the valid events.
        self._rng = random.Random(f"{seed}:faults")
        self._seq = 0
        self._held: list[Line] = []
        self._later: list[tuple[int, Line]] = []  # (due batch seq, duplicate line)

    def assemble(self, events: Sequence[SimEvent]) -> Batch | None:
        """The next batch: these events plus any held-back lines and duplicates now due."""
        due = self._seq + 1
        carried = self._held + [line for seq, line in self._later if seq <= due]
        self._later = [(seq, line) for seq, line in self._later if seq > due]
        self._held = []
        fresh = [self._line(event) for event in events]
        lines = carried + self._displace(fresh)
        lines = self._duplicate(lines, fresh_from=len(carried))
        if not lines:
            return None
        self._seq = due
        users = tuple((e.user_id, e.persona, e.sub_type) for e in events if e.first_of_user)
        return Batch(f"gen-{self._run_id}-{due:06d}", tuple(lines), users)

    def finish(self) -> Batch | None:
        """A last batch with whatever is still held back or waiting to be re-sent."""
        self._later = [(0, line) for _, line in self._later]
        return self.assemble(())

    def _line(self, event: SimEvent) -> Line:
        fault = draw_line_fault(self._rates, self._rng)
        if fault is None:
            return Line(dump_line(event.fields), Outcome.STORED)
        text = break_event(
            fault,
            event.fields,
            rng=self._rng,
            limits=self._limits,
            horizon_ms=self._horizon_ms,
            ts_ms=event.ts_ms,
        )
        reason = FAULT_REASONS[fault]
        if len(text.encode("utf-8")) > self._limits.max_line_bytes:
            reason = Reason.LINE_TOO_LONG
        return Line(text, Outcome.QUARANTINED, reason, fault)

    def _displace(self, lines: list[Line]) -> list[Line]:
        """Move some lines earlier in the batch and hold some back for the next one."""
        rng = self._rng
        rate = self._rates.out_of_order
        placed: list[Line] = []
        for line in lines:
            if rng.random() >= rate:
                placed.append(line)
            elif rng.random() < _HOLD_BACK_SHARE:
                self._held.append(line)
            else:
                placed.insert(rng.randint(0, len(placed)), line)
        return placed

    def _duplicate(self, lines: list[Line], *, fresh_from: int) -> list[Line]:
        """Re-send exact copies of some stored lines, later in this batch or in a later one."""
        rng = self._rng
        rate = self._rates.duplicate
        result = list(lines)
        for index in range(len(lines) - 1, fresh_from - 1, -1):
            line = lines[index]
            if line.outcome is not Outcome.STORED or rng.random() >= rate:
                continue
            copy = Line(line.text, Outcome.DUPLICATE, None, Fault.DUPLICATE)
            if rng.random() < _SAME_BATCH_DUPLICATE_SHARE:
                result.insert(rng.randint(index + 1, len(result)), copy)
            else:
                self._later.append((self._seq + 1 + rng.randint(1, 3), copy))
        return result
