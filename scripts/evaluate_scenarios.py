"""Judge the current detector on the scenario library through the real pipeline.

    .venv/bin/python scripts/evaluate_scenarios.py --seed 101 --events 200000 [--json PATH]

Starts a private Redis and one Celery worker (prefork) on a fresh SQLite file in a temporary
directory, publishes a counted run of the default scenario mix (every fault on unless
--no-faults) the way `ecomrisk produce --count N --seed S` does, waits until every published
batch is in the ledger, then prints what `ecomrisk evaluate` prints and, with --json, writes
every figure. Seeds 1-3 are for tuning, 101-103 are held out for reporting (docs/detection.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from cli.redis_server import start_redis
from cli.reports import print_evaluation
from cli.services import start_logged, stop_logged, worker_argv
from config.settings import Settings
from contract.wire import broker_client
from producer.faults import FaultRates, parse_assignments
from producer.generator import plan_run, run_generator
from producer.labels import LabelWriter
from producer.publisher import Publisher
from producer.scenarios import DEFAULT_MIX
from store.db import create_reader_engine, create_writer_engine, init_schema
from store.summaries import ledger_totals
from workers.evaluation import JudgedAt, evaluate, load_labels, load_predictions

TUNING_SEEDS = (1, 2, 3)
REPORT_SEEDS = (101, 102, 103)


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True, help="1-3 tune, 101-103 report")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes of the worker")
    parser.add_argument("--persona", action="append", default=[], help="NAME=SHARE, as for produce")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--data-dir", type=Path, help="keep the run here (default: a temporary directory)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the ledger")
    return parser.parse_args()


def seed_role(seed: int) -> str:
    """Whether a seed is for tuning or held out for reporting."""
    if seed in TUNING_SEEDS:
        return "tuning seed"
    if seed in REPORT_SEEDS:
        return "report seed (held out)"
    return "seed outside the protocol"


def run(args: argparse.Namespace, workdir: Path) -> int:
    """Produce, ingest and evaluate one seeded run inside workdir."""
    console = Console(width=200)
    redis = start_redis(workdir / "redis", appendonly=False)
    settings = Settings(
        data_dir=workdir,
        redis_url=redis.url,
        database_url=f"sqlite:///{workdir / 'ecomrisk.db'}",
        queue_name="ecomrisk",
    )
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    worker = start_logged(
        worker_argv(settings, concurrency=args.concurrency), settings, workdir / "worker.log"
    )
    try:
        started = time.monotonic()
        config = plan_run(
            settings,
            count=args.events,
            seed=args.seed,
            mix=DEFAULT_MIX.with_shares(parse_assignments(args.persona)),
            rates=FaultRates.none() if args.no_faults else FaultRates(),
        )
        publisher = Publisher(broker_client(settings), settings)
        summary = run_generator(
            config, publisher=publisher, labels=LabelWriter(settings.labels_path), progress=False
        )
        produced = time.monotonic()
        deadline = produced + args.timeout
        while ledger_totals(engine).batches < summary.batches:
            if worker.poll() is not None:
                console.print(
                    f"the worker exited with code {worker.returncode}; see {workdir / 'worker.log'}"
                )
                return 1
            if time.monotonic() > deadline:
                console.print(f"timed out after {args.timeout:.0f}s waiting for the ledger")
                return 1
            time.sleep(0.5)
        drained = time.monotonic()
    finally:
        stop_logged(worker)
        redis.stop()
    faults = "faults off" if args.no_faults else "every fault on"
    console.print(
        f"seed {args.seed} ({seed_role(args.seed)}), {summary.events:,} events, {faults}: "
        f"{summary.population:,} users, {summary.batches:,} batches; produced in {produced - started:.0f}s, "
        f"ingested {drained - produced:.0f}s after"
    )
    truth = load_labels(settings.labels_path)
    reader = create_reader_engine(settings.resolved_database_url)
    result = evaluate(truth, load_predictions(reader, settings, at=JudgedAt.PEAK))
    current = evaluate(truth, load_predictions(reader, settings, at=JudgedAt.CURRENT))
    print_evaluation(
        result, settings.labels_path, console, judged_at=JudgedAt.PEAK, other=(JudgedAt.CURRENT, current)
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        figures = {
            "seed": args.seed,
            "role": seed_role(args.seed),
            "events": summary.events,
            "judged_at": JudgedAt.PEAK.value,
            **result.to_dict(),
            JudgedAt.CURRENT.value: current.headline(),
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        console.print(f"figures written to {args.json}")
    return 0


def main() -> int:
    """Run in --data-dir, or in a temporary directory removed afterwards."""
    args = parse_args()
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        return run(args, args.data_dir)
    with tempfile.TemporaryDirectory(prefix="ecomrisk-scenarios-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
