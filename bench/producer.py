"""The producer process of `ecomrisk bench`: staged batches, published through the real Publisher.

Kept apart from the rest of the benchmark so that the producer's peak RSS counts only what a
producer loads: the Celery app and the Publisher.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.settings import Settings
from contract.wire import broker_client, is_blank_line, now_ms
from producer.publisher import Publisher
from producer.reconcile import RAW_SUFFIX

MANIFEST = "manifest.json"
BENCH_SOURCE = "bench"


@dataclass(frozen=True, slots=True)
class StagedBatch:
    """One generated batch: its id, the lines a worker will count, the outcomes it should reach."""

    batch_id: str
    lines: int
    expected: dict[str, int]


@dataclass(frozen=True)
class Staged:
    """Every generated batch, in publishing order, written as raw batch files in directory."""

    directory: Path
    batches: tuple[StagedBatch, ...]
    events: int
    seconds: float = 0.0

    @property
    def lines(self) -> int:
        return sum(b.lines for b in self.batches)

    def prefix(self, lines: int) -> tuple[StagedBatch, ...]:
        """The first batches that hold at least `lines` lines (all of them if there are fewer)."""
        total = 0
        for n, batch in enumerate(self.batches, start=1):
            total += batch.lines
            if total >= lines:
                return self.batches[:n]
        return self.batches

    def describe(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "lines": self.lines,
            "batches": len(self.batches),
            "expected": dict(sum((Counter(b.expected) for b in self.batches), Counter())),
            "seconds": round(self.seconds, 1),
        }


def load_staged(directory: Path) -> Staged:
    """The staged batches of a directory, as stage_batches wrote them."""
    batches = tuple(StagedBatch(**b) for b in json.loads((directory / MANIFEST).read_text()))
    return Staged(directory, batches, events=0)


def read_lines(path: Path) -> list[str]:
    """The lines of a raw batch file, exactly as written (bytes, so a CR inside a line stays)."""
    return path.read_bytes().decode("utf-8", "surrogateescape").removesuffix("\n").split("\n")


def peak_rss(pid: int) -> int | None:
    """The most memory the process has had resident (VmHWM, bytes); None where /proc has no answer."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def publish_staged(
    settings: Settings,
    directory: Path,
    *,
    lines: int,
    rate: float | None,
    per_line_task: str | None,
    summary: Path,
) -> None:
    """Publish staged batches through the real Publisher, flat out or paced to rate lines/s.

    With per_line_task, every line goes alone as that task instead (the naive baseline).
    """
    app = broker_client(settings)
    publisher = Publisher(app, settings)
    batches = load_staged(directory).prefix(lines)
    sent = 0
    first_ms: int | None = None
    started = time.monotonic()
    cpu_started = time.process_time()
    for batch in batches:
        if rate:
            time.sleep(max(0.0, started + sent / rate - time.monotonic()))
        first_ms = first_ms or now_ms()
        texts = read_lines(directory / f"{batch.batch_id}{RAW_SUFFIX}")
        if per_line_task is None:
            publisher.publish(batch.batch_id, texts, source=BENCH_SOURCE)
            sent += batch.lines
            continue
        for text in texts:
            if sent >= lines:
                break
            if not is_blank_line(text):
                app.send_task(per_line_task, args=[text], queue=settings.queue_name, retry=False)
                sent += 1
    last_ms = now_ms()
    # Read here, not from wait4 in the parent: ru_maxrss also counts the parent's pages before exec.
    figures = {
        "first_ms": first_ms,
        "last_ms": last_ms,
        "lines": sent,
        "peak_rss": peak_rss(os.getpid()),
        "cpu_s": time.process_time() - cpu_started,  # publishing only, not the imports before it
    }
    summary.write_text(json.dumps(figures))
