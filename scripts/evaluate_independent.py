"""Judge the detector on independent traffic through the real pipeline, per behaviour.

    .venv/bin/python scripts/evaluate_independent.py data/independent/seed1 [--json PATH]

DIR holds what scripts/independent_traffic.py wrote. Starts a private Redis and one Celery
worker (prefork) on a fresh SQLite file in DIR/stack, imports DIR/events.ndjson the way
`ecomrisk import` does, waits until every batch is in the ledger, then prints what `ecomrisk
evaluate` prints (the behaviour column as its sub-type) and writes every figure, with the
per-behaviour table computed from the stored user_risk bands and kinds, to DIR/eval.json. The
table also judges each user's lifetime peak band and kind, beside the current ones that
`evaluate` scores: labels are per user, while the current score covers a trailing window.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from cli.redis_server import start_redis
from cli.reports import print_evaluation
from cli.services import start_logged, stop_logged, worker_argv
from config.settings import Settings
from contract.wire import broker_client
from producer.importer import import_file
from producer.publisher import Publisher
from store.db import create_reader_engine, create_writer_engine, init_schema
from store.summaries import ledger_totals
from workers.evaluation import EXPECTED_KIND, JudgedAt, evaluate, load_labels, load_predictions


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("run", type=Path, help="directory with events.ndjson and labels.csv")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes of the worker")
    parser.add_argument("--json", type=Path, help="where to write the figures (default RUN/eval.json)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the ledger")
    return parser.parse_args()


def judged(persona: pd.Series, band: pd.Series, kind: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Correct, wrong band, wrong kind, as `ecomrisk evaluate` defines them.

    Correct is band low for a normal user, and elevated or high with the persona's kind for an
    at-risk one.
    """
    normal = persona == "normal"
    flagged = band != "low"
    right_kind = kind == persona.map(EXPECTED_KIND)
    return (
        (normal & ~flagged) | (~normal & flagged & right_kind),
        (normal & flagged) | (~normal & ~flagged),
        ~normal & flagged & ~right_kind,
    )


def judge_behaviours(labels: pd.DataFrame, at_peak: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Per behaviour: users, correct, wrong band, wrong kind and the outcomes at the peak, and now.

    Judged at each user's lifetime peak, as `ecomrisk evaluate` does; a user with nothing
    stored counts as low.
    """
    now = current[["user_id", "band", "risk_kind"]].rename(
        columns={"band": "now_band", "risk_kind": "now_kind"}
    )
    df = labels.merge(at_peak, on="user_id", how="left").merge(now, on="user_id", how="left")
    for column, empty in (("band", "low"), ("risk_kind", "none"), ("now_band", "low"), ("now_kind", "none")):
        df[column] = df[column].fillna(empty)
    df["correct"], df["wrong_band"], df["wrong_kind"] = judged(df["persona"], df["band"], df["risk_kind"])
    df["correct_now"], _, _ = judged(df["persona"], df["now_band"], df["now_kind"])
    df["outcome"] = df["band"] + "/" + df["risk_kind"]
    df["now_outcome"] = df["now_band"] + "/" + df["now_kind"]
    rows = []
    for (persona, behaviour), group in df.groupby(["persona", "behaviour"], sort=True):
        rows.append(
            {
                "persona": persona,
                "behaviour": behaviour,
                "users": len(group),
                "correct": int(group["correct"].sum()),
                "wrong_band": int(group["wrong_band"].sum()),
                "wrong_kind": int(group["wrong_kind"].sum()),
                "share_correct": round(float(group["correct"].mean()), 3),
                "correct_now": int(group["correct_now"].sum()),
                "outcomes": group["outcome"].value_counts().to_dict(),
                "now_outcomes": group["now_outcome"].value_counts().to_dict(),
            }
        )
    return pd.DataFrame(rows)


def behaviour_table(behaviours: pd.DataFrame) -> Table:
    """The per-behaviour figures at the lifetime peak, and correct by the current score beside."""
    table = Table(
        title="Per behaviour (band and kind at the lifetime peak; correct by the current score beside)"
    )
    for column in (
        "persona",
        "behaviour",
        "users",
        "correct",
        "wrong band",
        "wrong kind",
        "share",
        "correct now",
    ):
        table.add_column(column, justify="left" if column in ("persona", "behaviour") else "right")
    for row in behaviours.itertuples(index=False):
        table.add_row(
            str(row.persona),
            str(row.behaviour),
            f"{row.users:,}",
            f"{row.correct:,}",
            f"{row.wrong_band:,}",
            f"{row.wrong_kind:,}",
            f"{row.share_correct:.3f}",
            f"{row.correct_now:,}",
        )
    return table


def run(args: argparse.Namespace) -> int:
    """Import, ingest and evaluate one generated run."""
    console = Console(width=200)
    stack = args.run / "stack"
    if stack.exists():
        shutil.rmtree(stack)
    stack.mkdir(parents=True)
    redis = start_redis(stack / "redis", appendonly=False)
    settings = Settings(
        data_dir=stack,
        redis_url=redis.url,
        database_url=f"sqlite:///{stack / 'ecomrisk.db'}",
        queue_name="ecomrisk",
    )
    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    worker = start_logged(worker_argv(settings, concurrency=args.concurrency), settings, stack / "worker.log")
    try:
        started = time.monotonic()
        summary = import_file(
            args.run / "events.ndjson",
            Publisher(broker_client(settings), settings),
            batch_size=settings.batch_size,
            progress=False,
        )
        published = time.monotonic()
        deadline = published + args.timeout
        while ledger_totals(engine).batches < summary.batches:
            if worker.poll() is not None:
                console.print(f"the worker exited with code {worker.returncode}; see {stack / 'worker.log'}")
                return 1
            if time.monotonic() > deadline:
                console.print(f"timed out after {args.timeout:.0f}s waiting for the ledger")
                return 1
            time.sleep(1.0)
        drained = time.monotonic()
    finally:
        stop_logged(worker)
        redis.stop()
    totals = ledger_totals(engine)
    console.print(
        f"{args.run}: {summary.lines:,} lines in {summary.batches:,} batches, published in "
        f"{published - started:.0f}s, all committed {drained - published:.0f}s after; ledger: "
        f"received {totals.received:,}, stored {totals.stored_new:,}, duplicates {totals.duplicates:,}, "
        f"quarantined {totals.held:,}"
    )
    labels_path = args.run / "labels.csv"
    labels = pd.read_csv(labels_path, dtype=str, keep_default_na=False)
    as_sub_types = stack / "labels_sub_type.csv"  # evaluate's per-sub-type table reads sub_type
    labels.rename(columns={"behaviour": "sub_type"}).to_csv(as_sub_types, index=False)
    reader = create_reader_engine(settings.resolved_database_url)
    at_peak = load_predictions(reader, settings)
    current = load_predictions(reader, settings, at=JudgedAt.CURRENT)
    truth = load_labels(as_sub_types)
    result = evaluate(truth, at_peak)
    now = evaluate(truth, current)
    print_evaluation(result, labels_path, console, judged_at=JudgedAt.PEAK, other=(JudgedAt.CURRENT, now))
    behaviours = judge_behaviours(labels, at_peak, current)
    console.print(behaviour_table(behaviours))
    figures: dict[str, Any] = {
        "run": str(args.run),
        "events": summary.lines,
        "ledger": {
            "received": totals.received,
            "stored_new": totals.stored_new,
            "duplicates": totals.duplicates,
            "quarantined": totals.held,
        },
        "ingest_seconds": round(drained - started, 1),
        "judged_at": JudgedAt.PEAK.value,
        **result.to_dict(),
        JudgedAt.CURRENT.value: now.headline(),
        "by_behaviour": behaviours.to_dict(orient="records"),
    }
    out = args.json or args.run / "eval.json"
    out.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run(parse_args()))
