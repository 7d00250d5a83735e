"""Load for fault tests: the producer's own generator and Publisher, in a background thread."""

from __future__ import annotations

import threading
from types import TracebackType

from config.settings import Settings
from contract.wire import broker_client
from producer.generator import RunSummary, plan_run, run_generator
from producer.labels import LabelWriter
from producer.publisher import Publisher


class Load:
    """A generated run publishing through the real Publisher (raw log first, retries while Redis is down)."""

    def __init__(
        self,
        settings: Settings,
        *,
        seed: int,
        count: int | None = None,
        rate: float | None = None,
        duration_s: float | None = None,
    ) -> None:
        self.config = plan_run(settings, count=count, rate=rate, duration_s=duration_s, seed=seed)
        self.publisher = Publisher(broker_client(settings), settings)
        self.labels = LabelWriter(settings.labels_path)
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"load-{seed}", daemon=True)

    def _run(self) -> None:
        try:
            self.summary = run_generator(
                self.config, publisher=self.publisher, labels=self.labels, progress=False
            )
        except BaseException as exc:  # handed to the test thread by join()
            self.error = exc

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def start(self) -> Load:
        self.thread.start()
        return self

    def join(self, timeout_s: float = 120.0) -> RunSummary:
        """Wait for the run to end and return its summary; re-raise what it raised."""
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), f"the producer did not finish within {timeout_s}s"
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.thread.join(120.0)
