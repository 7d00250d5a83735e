"""Profile the ingest path in one process: the loop a pool process runs, without Celery.

    .venv/bin/python scripts/profile_ingest.py --events 400000 --batch-size 2000 [--profile]

Generates the batches first (untimed, default persona mix and fault rates), then feeds them to
`workers.ingest.ingest_batch` against a fresh SQLite file and prints lines/s; with --profile,
pyinstrument's call tree as well. A tool for finding where time goes, not the benchmark.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine

import workers.ingest
from config.settings import get_settings
from producer.generator import generate_batches, plan_run
from store.db import create_writer_engine, init_schema, write_transaction
from workers.ingest import ingest_batch
from workers.tasks import tune_gc

held_s = 0.0  # time inside the write transaction: the serial part when several processes write


@contextmanager
def timed_write_transaction(engine: Engine) -> Iterator[Connection]:
    global held_s
    started = time.perf_counter()
    try:
        with write_transaction(engine) as conn:
            yield conn
    finally:
        held_s += time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print pyinstrument's call tree")
    args = parser.parse_args()

    settings = get_settings().model_copy(update={"batch_size": args.batch_size})
    config = plan_run(settings, count=args.events, seed=args.seed)
    batches = [(b.batch_id, "\n".join(b.texts)) for b in generate_batches(config, count=args.events)]
    lines = sum(text.count("\n") + 1 for _, text in batches)

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'profile.db'}"
        engine = create_writer_engine(url)
        init_schema(engine)
        run_settings = settings.model_copy(update={"database_url": url})
        profiler = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
        workers.ingest.write_transaction = timed_write_transaction  # type: ignore[assignment]
        tune_gc()  # as a pool process does at its start
        started, cpu = time.perf_counter(), time.process_time()
        for batch_id, text in batches:
            ingest_batch(engine, settings=run_settings, batch_id=batch_id, raw_text=text, source="profile")
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False))
        engine.dispose()
    print(f"{lines:,} lines in {elapsed:.2f} s = {lines / elapsed:,.0f} lines/s (CPU {cpu:.2f} s)")
    print(
        f"write lock held {held_s:.2f} s = {held_s / lines * 1e6:.1f} us/line,"
        f" outside it {(elapsed - held_s) / lines * 1e6:.1f} us/line"
    )


if __name__ == "__main__":
    main()
