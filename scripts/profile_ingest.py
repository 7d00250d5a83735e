"""Profile the ingest path in one process: the loop a pool process runs, without Celery.

    .venv/bin/python scripts/profile_ingest.py --events 1000000 --batch-size 10000 [--phases] [--profile]
    .venv/bin/python scripts/profile_ingest.py --events 400000 --writers 2 [--batches FILE]


Generates the batches first (untimed, default persona mix and fault rates), then feeds them to
`workers.ingest.ingest_batch` against a fresh SQLite file and prints lines/s and how long the
write lock was held (the serial part when several processes write). --phases times each step
of a batch by wrapping its function (no profiler overhead); --profile prints pyinstrument's
call tree. --writers 2 forks two processes that take alternate batches into the same file, as the
two pool processes of a worker do, and prints their CPU per line. To compare two trees under the
same load, start this script in both at the same moment on the same --batches file (the tree on
PYTHONPATH is the one measured). A tool for finding where time goes, not the benchmark.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, func, select

import store.writer
import workers.ingest
from config.settings import Settings, get_settings
from contract.wire import RawBatch
from producer.generator import generate_batches, plan_run
from store.db import create_writer_engine, init_schema, write_transaction
from store.models import Batch
from workers.ingest import ingest_batch
from workers.tasks import tune_gc

# The steps of a batch in the order they run, by the module that calls them; the first two run
# before the lock. Writes are store.writer functions, called from workers.ingest as writer.<name>.
PHASES = (
    (workers.ingest, "validate_batch"),
    (workers.ingest, "prepare_batch"),
    (workers.ingest, "_split_new"),
    (workers.ingest, "_load_user_work"),
    (workers.ingest, "recompute_tail"),
    (workers.ingest, "rescore_user"),
    (workers.ingest, "_insert_events"),
    (workers.ingest, "_update_user_risk"),
    (store.writer, "add_counts"),
    (store.writer, "insert_quarantine"),
)
PHASE_NAMES = tuple(name for _, name in PHASES)
seconds: defaultdict[str, float] = defaultdict(float)


def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[name] += time.perf_counter() - started

    return run


@contextmanager
def timed_write_transaction(engine: Engine) -> Iterator[Connection]:
    started = time.perf_counter()
    try:
        with write_transaction(engine) as conn:
            seconds["lock: begin"] += time.perf_counter() - started
            yield conn
            body_done = time.perf_counter()
        seconds["lock: commit"] += time.perf_counter() - body_done
    finally:
        seconds["lock: held"] += time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--phases", action="store_true", help="time each step of a batch")
    parser.add_argument("--profile", action="store_true", help="print pyinstrument's call tree")
    parser.add_argument("--writers", type=int, default=1, help="processes taking alternate batches")
    parser.add_argument(
        "--batches", type=Path, help="a JSON file of the batches: read if it exists, else written"
    )
    args = parser.parse_args()

    settings = get_settings().model_copy(update={"batch_size": args.batch_size})
    if args.batches is not None and args.batches.exists():  # the same input for two trees
        batches = [(batch_id, text) for batch_id, text in orjson.loads(args.batches.read_bytes())]
    else:
        config = plan_run(settings, count=args.events, seed=args.seed)
        batches = [(b.batch_id, "\n".join(b.texts)) for b in generate_batches(config, count=args.events)]
        if args.batches is not None:
            args.batches.write_bytes(orjson.dumps(batches))
    lines = sum(text.count("\n") + 1 for _, text in batches)

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'profile.db'}"
        engine = create_writer_engine(url)
        init_schema(engine)
        run_settings = settings.model_copy(update={"database_url": url})
        if args.writers > 1:
            engine.dispose()
            run_writers(batches, run_settings, writers=args.writers, lines=lines)
            return
        profiler = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
        setattr(workers.ingest, "write_transaction", timed_write_transaction)  # noqa: B010
        for module, name in PHASES if args.phases else ():
            setattr(module, name, timed(name, getattr(module, name)))
        run = timed("ingest_batch", ingest_batch)
        tune_gc()  # as a pool process does at its start
        started, cpu = time.perf_counter(), time.process_time()
        for batch_id, text in batches:
            run(engine, RawBatch(batch_id, text, "profile"), settings=run_settings)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False))
        engine.dispose()
    print(f"{lines:,} lines in {elapsed:.2f} s = {lines / elapsed:,.0f} lines/s (CPU {cpu:.2f} s)")
    seconds["outside the lock"] = seconds["ingest_batch"] - seconds["lock: held"]
    for name in ("lock: held", "outside the lock", *PHASE_NAMES, "lock: begin", "lock: commit"):
        if name in seconds:
            print(f"  {name:<20} {seconds[name] / lines * 1e6:6.2f} us/line")


def run_writers(batches: list[tuple[str, str]], settings: Settings, *, writers: int, lines: int) -> None:
    """Fork `writers` processes, each ingesting every writers-th batch; print lines/s and CPU per line."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    started = time.perf_counter()
    processes = [
        context.Process(target=_write_share, args=(batches[i::writers], settings, results))
        for i in range(writers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    if any(process.exitcode != 0 for process in processes):
        raise SystemExit("a writer failed; see its traceback above")
    cpu = sum(results.get() for _ in processes)
    engine = create_writer_engine(settings.resolved_database_url)
    with engine.connect() as conn:
        received = conn.scalar(select(func.sum(Batch.received)))
    engine.dispose()
    print(
        f"{lines:,} lines by {writers} writers in {elapsed:.2f} s = {lines / elapsed:,.0f} lines/s,"
        f" CPU {cpu / lines * 1e6:.2f} us/line; the ledger received {received:,}"
    )


def _write_share(batches: list[tuple[str, str]], settings: Settings, results: Any) -> None:
    engine = create_writer_engine(settings.resolved_database_url)
    tune_gc()
    cpu = time.process_time()
    for batch_id, text in batches:
        ingest_batch(engine, RawBatch(batch_id, text, "profile"), settings=settings)
    results.put(time.process_time() - cpu)
    engine.dispose()


if __name__ == "__main__":
    main()
