"""The check every fault test ends with: nothing lost, nothing stored twice, flags exact."""

from __future__ import annotations

import io
import re

from rich.console import Console

from config.settings import Settings
from harness.fleet import WorkerFleet
from harness.invariant import Invariant, Settled, check_invariant, invariant_table, settle

# Celery's line for a task that raised instead of retrying: the exception escaped.
ESCAPED = "raised unexpected"
# PostgreSQL's messages for a deadlock and a serialization failure: the lock order rules out both.
CONFLICTS = ("deadlock detected", "could not serialize access")
WORKER_LOG_EVENT = re.compile(r"(WARNING|ERROR|CRITICAL)/|Connected to|ready\.$")
WORKER_LOG_LINES = 60


def describe(invariant: Invariant) -> str:
    """The invariant's figures and every broken rule, as text for an assertion message."""
    console = Console(file=io.StringIO(), width=160, record=True)
    console.print(invariant_table(invariant))
    for problem in invariant.problems():
        console.print(problem)
    return console.export_text()


def worker_log_events(fleet: WorkerFleet, *, lines: int = WORKER_LOG_LINES) -> str:
    """The workers' last warnings, errors and connection events: why a run did not settle."""
    events = [line for line in fleet.log_text().splitlines() if WORKER_LOG_EVENT.search(line)]
    return "\n".join(events[-lines:])


def assert_invariant(
    settings: Settings, *, timeout_s: float = 60.0, fleet: WorkerFleet | None = None
) -> tuple[Settled, Invariant]:
    """Settle (drain, reconcile, drain), then assert every rule of harness.invariant.Invariant."""
    # Raw lines = stored + duplicates + quarantined with 0 missing, no batch twice, every valid
    # event id stored, no dead letter left, and the store equal to the pandas recompute.
    settled = settle(settings, Console(file=io.StringIO()), timeout_s=timeout_s)
    invariant = check_invariant(settings)
    workers = f"\nworker log events:\n{worker_log_events(fleet)}" if fleet else ""
    assert invariant.ok, describe(invariant) + f"\n{settled}" + workers
    assert settled.missing == 0
    assert invariant.raw_batches > 0 and invariant.stored_new > 0
    return settled, invariant


def escaped_errors(log_text: str) -> list[str]:
    """Log lines of tasks whose exception escaped instead of ending in a retry."""
    return [line for line in log_text.splitlines() if ESCAPED in line]


def unretried_lock_errors(log_text: str) -> list[str]:
    """Lines naming 'database is locked' that are not the task's retry warning or Celery's retry."""
    return [
        line
        for line in log_text.splitlines()
        if "database is locked" in line and "retrying" not in line and "Retry in" not in line
    ]


def database_conflicts(log_text: str) -> list[str]:
    """Log lines naming a deadlock or a serialization failure, even one that was then retried."""
    return [line for line in log_text.splitlines() if any(c in line for c in CONFLICTS)]
