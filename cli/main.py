"""The `ecomrisk` command line: one entry point for every process of the platform."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli.errors import fail, load_settings, require_broker
from cli.produce import import_file, produce
from cli.services import child_env, flower_argv, worker_argv
from cli.supervisor import run_stack
from cli.webhooks import webhooks_app
from config.settings import Settings, hide_password
from contract.wire import Reason

# Locals stay out of tracebacks: they would print settings, passwords included.
app = typer.Typer(
    name="ecomrisk",
    help="Real-time clickstream risk: producer -> Redis -> Celery -> database -> dashboard.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command("produce")(produce)
app.command("import")(import_file)
app.add_typer(webhooks_app, name="webhooks")


def exec_with_settings(argv: list[str], settings: Settings) -> None:
    """Replace this process with argv, run with exactly these settings."""
    os.execvpe(argv[0], argv, child_env(settings, os.environ))


@app.command()
def up(
    producer: Annotated[
        bool, typer.Option("--producer/--no-producer", help="Also run the continuous producer.")
    ] = True,
    stop_timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds each process gets to stop before it is killed.")
    ] = 30.0,
) -> None:
    """Run everything: Redis (unless ECOMRISK_REDIS_URL is set), worker, Flower, dashboard, producer."""
    settings = load_settings()
    code = run_stack(
        settings,
        with_producer=producer,
        stop_timeout_s=stop_timeout,
        inherited_env=os.environ,
        console=Console(),
    )
    raise typer.Exit(code)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Pool processes; default ECOMRISK_WORKER_CONCURRENCY.")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run a Celery worker in the foreground, sending task events (-E) for Flower."""
    settings = load_settings()
    require_broker(settings)
    exec_with_settings(worker_argv(settings, concurrency=concurrency, loglevel=loglevel), settings)


@app.command()
def flower(
    port: Annotated[int | None, typer.Option(help="Port; default ECOMRISK_FLOWER_PORT.")] = None,
) -> None:
    """Run Flower, the Celery monitor, on ECOMRISK_FLOWER_HOST."""
    settings = load_settings()
    require_broker(settings)
    if port is not None:
        settings = settings.model_copy(update={"flower_port": port})
    exec_with_settings(flower_argv(settings), settings)


@app.command()
def dashboard(
    port: Annotated[int | None, typer.Option(help="Port; default ECOMRISK_DASHBOARD_PORT.")] = None,
) -> None:
    """Serve the Dash dashboard on ECOMRISK_DASHBOARD_HOST."""
    settings = load_settings()
    from dash_app.app import run  # here: the dashboard stack is heavy to import

    run(settings, port or settings.dashboard_port)


@app.command()
def api(
    port: Annotated[int | None, typer.Option(help="Port; default ECOMRISK_API_PORT.")] = None,
) -> None:
    """Serve the score and review API (FastAPI) on ECOMRISK_API_HOST; OpenAPI at /api/v1/openapi.json."""
    settings = load_settings()
    from api.app import run  # here: FastAPI and the store are heavy to import

    run(settings, port or settings.api_port)


@app.command()
def status(
    alerts: Annotated[int, typer.Option(min=0, help="How many recent alerts to list.")] = 10,
) -> None:
    """Ledger totals (produced, stored, duplicates, quarantined, missing), quarantine reasons, alerts."""
    settings = load_settings()
    from redis.exceptions import RedisError

    from cli.reports import print_status, read_dead_letters

    try:
        dead_letters: int | None = read_dead_letters(settings)
    except RedisError as exc:  # a wrong password or an unreachable Redis: the ledger still shows
        typer.echo(
            f"Cannot read dead letters from Redis at {hide_password(settings.redis_url or '')}: {exc}",
            err=True,
        )
        dead_letters = None
    print_status(settings, Console(), dead_letters=dead_letters, alerts=alerts)
    if dead_letters is None:
        raise typer.Exit(1)


class EvaluationSource(StrEnum):
    """What `evaluate` scores stored risk against."""

    LABELS = "labels"
    REVIEWS = "reviews"


@app.command()
def evaluate(
    labels: Annotated[
        Path | None, typer.Option(help="Labels CSV; default <ECOMRISK_DATA_DIR>/labels.csv.")
    ] = None,
    source: Annotated[
        EvaluationSource,
        typer.Option(
            help="labels: the producer's personas; reviews: the analysts' labels of resolved alerts."
        ),
    ] = EvaluationSource.LABELS,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write every figure to this JSON file.")
    ] = None,
    current: Annotated[
        bool,
        typer.Option(
            "--current",
            help="Judge each user's current (decaying) score instead of their lifetime peak.",
        ),
    ] = False,
) -> None:
    """Score stored risk against ground-truth labels (F1, FPR, kind, sub-types) or analyst reviews.

    A label is about the user, so by default the user's lifetime peak is judged: an alert at
    any time is a detection, or a false alarm. The current score is shown beside it.
    """
    settings = load_settings()
    from cli.reports import open_store, print_evaluation, print_review_precision
    from workers.evaluation import (
        JudgedAt,
        load_labels,
        load_predictions,
        load_review_labels,
        review_precision,
    )
    from workers.evaluation import evaluate as score

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a file or a pipe keeps the wide per-sub-type table whole
    path = labels or settings.labels_path
    if source is EvaluationSource.LABELS and not path.exists():
        raise fail(f"No labels file at {path}: run `ecomrisk produce` first.")
    engine = open_store(settings, console)
    if engine is None:
        raise typer.Exit(1)
    if source is EvaluationSource.REVIEWS:
        reviewed = review_precision(load_review_labels(engine))
        print_review_precision(reviewed, console)
        figures = reviewed.to_dict()
    else:
        truth = load_labels(path)
        at = JudgedAt.CURRENT if current else JudgedAt.PEAK
        result = score(truth, load_predictions(engine, settings, at=at))
        other_at = JudgedAt.PEAK if current else JudgedAt.CURRENT
        other = score(truth, load_predictions(engine, settings, at=other_at))
        print_evaluation(result, path, console, judged_at=at, other=(other_at, other))
        figures = {"judged_at": at.value, **result.to_dict(), other_at.value: other.headline()}
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        console.print(f"figures written to {json_path}")


@app.command()
def reconcile(
    dry_run: Annotated[bool, typer.Option(help="Only report what is missing.")] = False,
) -> None:
    """Re-enqueue every raw batch that never reached the ledger; running it twice changes nothing."""
    settings = load_settings()
    require_broker(settings)
    from cli.reports import run_reconcile

    run_reconcile(settings, Console(), dry_run=dry_run)


@app.command()
def chaos(
    duration: Annotated[float, typer.Option(min=5, help="Seconds of load and faults.")] = 120.0,
    kill_every: Annotated[float, typer.Option(min=0.5, help="Mean seconds between two kill -9.")] = 4.0,
    rate: Annotated[
        float | None, typer.Option(min=1, help="Events/s; default ECOMRISK_PRODUCER_RATE.")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the events and of the victims.")] = 1,
    data_dir: Annotated[
        Path | None, typer.Option(help="Fresh directory for Redis, SQLite, raw logs; default a temp dir.")
    ] = None,
) -> None:
    """Load with kill -9 of workers and a Redis restart on a private stack; PASS only if nothing is lost."""
    settings = load_settings()
    if data_dir is not None and data_dir.exists() and any(data_dir.iterdir()):
        raise fail(f"--data-dir {data_dir} is not empty: chaos needs a fresh directory.")
    from harness.chaos import run_chaos

    code = run_chaos(
        settings,
        Console(),
        data_dir=data_dir or Path(tempfile.mkdtemp(prefix="ecomrisk-chaos-")),
        duration_s=duration,
        kill_every_s=kill_every,
        rate=rate or settings.producer_rate,
        seed=seed,
    )
    raise typer.Exit(code)


bench_app = typer.Typer()
app.add_typer(bench_app, name="bench")


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    events: Annotated[
        int | None, typer.Option(min=100, help="Events per throughput run; default 1M.")
    ] = None,
    naive_events: Annotated[
        int | None,
        typer.Option(min=0, help="Events of the naive baseline, one task each; 0 skips it; default 20k."),
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(help="Worker processes; a list (1,2,4) gives a scaling table; default one per core."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, max=100_000, help="Events per batch; default ECOMRISK_BATCH_SIZE.")
    ] = None,
    latency_rate: Annotated[
        float | None, typer.Option(min=1, help="Offered events/s of the latency run; default 5000.")
    ] = None,
    latency_seconds: Annotated[
        float | None, typer.Option(min=0, help="Seconds of the latency run; 0 skips it; default 30.")
    ] = None,
    latency_warmup: Annotated[
        float | None, typer.Option(min=0, help="Seconds at the start of the latency run left out; default 2.")
    ] = None,
    table_size: Annotated[
        str | None,
        typer.Option(
            help="Events stored before each throughput run; default 0,4M (about 1 M and 5 M stored after)."
        ),
    ] = None,
    dashboard_events: Annotated[
        str | None, typer.Option(help="Stored events for the dashboard timings; 0 skips them; default 1M,5M.")
    ] = None,
    dashboard_users: Annotated[
        int | None, typer.Option(min=10, help="Users seeded for the dashboard timings; default 300k.")
    ] = None,
    dashboard_repeats: Annotated[
        int | None, typer.Option(min=3, help="Timed runs per dashboard callback; default 20.")
    ] = None,
    api_requests: Annotated[
        int | None,
        typer.Option(
            min=0, help="Timed API requests of each kind on each dashboard store; 0 skips; default 200."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="A PostgreSQL URL: each run gets a fresh schema there; default a fresh SQLite file per run."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed of the generated events; default 1.")] = None,
    smoke: Annotated[
        bool,
        typer.Option("--smoke", "--quick", help="A few thousand events: checks the figures, not the speed."),
    ] = False,
    output: Annotated[
        Path | None, typer.Option(help="The JSON figures; default data/bench/bench-<UTC time>.json.")
    ] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(help="Directory for stores, raw logs and logs, kept; default a temp dir, removed."),
    ] = None,
) -> None:
    """Benchmarks that print figures, never timed tests; without a sub-command, all of them.

    Throughput against a same-run bulk-insert ceiling, the naive baseline, latency at a fixed
    rate, memory and dashboard refresh, on a private Redis and fresh stores.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    from bench.suite import BenchPlan, ledgers_ok, print_suite, run_suite, write_result

    try:
        plan = (BenchPlan.smoke() if smoke else BenchPlan()).with_options(
            events=events,
            naive_events=naive_events,
            workers=workers,
            batch_size=batch_size,
            latency_rate=latency_rate,
            latency_seconds=latency_seconds,
            latency_warmup_s=latency_warmup,
            table_sizes=table_size,
            dashboard_events=dashboard_events,
            dashboard_users=dashboard_users,
            dashboard_repeats=dashboard_repeats,
            api_requests=api_requests,
            database_url=database_url,
            seed=seed,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if workdir is not None and workdir.exists() and any(workdir.iterdir()):
        raise fail(f"--workdir {workdir} is not empty: the benchmark needs a fresh directory.")
    console = Console()
    base = (workdir or Path(tempfile.mkdtemp(prefix="ecomrisk-bench-"))).resolve()
    try:
        result = run_suite(settings, plan, console, workdir=base)
    except (TimeoutError, RuntimeError) as exc:
        raise fail(f"bench failed: {exc}\nLogs and stores are kept in {base}") from None
    except BaseException:
        typer.echo(f"Logs and stores are kept in {base}", err=True)
        raise
    if workdir is None:
        shutil.rmtree(base, ignore_errors=True)
    print_suite(result, console)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = output or Path("data") / "bench" / f"bench-{stamp}.json"
    write_result(result, path)
    console.print(f"Figures written to {path}")
    raise typer.Exit(0 if ledgers_ok(result) else 1)


@bench_app.command("publish", hidden=True)
def bench_publish(
    staged: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Staged batches.")],
    lines: Annotated[int, typer.Option(min=1, help="Publish the batches holding this many lines.")],
    summary: Annotated[Path, typer.Option(help="Where to write when the first and last send happened.")],
    rate: Annotated[float | None, typer.Option(min=1, help="Lines/s; default as fast as possible.")] = None,
    per_line_task: Annotated[str | None, typer.Option(help="Send each line alone as this task.")] = None,
) -> None:
    """The producer process of `ecomrisk bench`: staged batches through the real Publisher."""
    settings = load_settings()
    require_broker(settings)
    from bench.producer import publish_staged

    publish_staged(settings, staged, lines=lines, rate=rate, per_line_task=per_line_task, summary=summary)


@bench_app.command("dashboard")
def bench_dashboard(
    events: Annotated[int, typer.Option(min=1000, help="Events to seed.")] = 1_000_000,
    users: Annotated[int, typer.Option(min=10, help="Users to seed.")] = 300_000,
    repeats: Annotated[int, typer.Option(min=3, help="Timed runs per callback.")] = 20,
    api_requests: Annotated[
        int, typer.Option(min=0, help="Also time this many API requests of each kind; 0 skips them.")
    ] = 0,
    output: Annotated[Path, typer.Option(help="Where to write the JSON figures.")] = Path(
        "artifacts/bench-dashboard.json"
    ),
) -> None:
    """p95 server time of every dashboard refresh callback (and the API) on a freshly seeded SQLite file."""
    settings = load_settings()
    from bench.suite import bench_dashboard as run
    from bench.suite import print_dashboard, write_result

    result = run(settings, events=events, users=users, repeats=repeats, api_requests=api_requests)
    print_dashboard(result, Console())
    write_result(result, output)


db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to ECOMRISK_DATABASE_URL (other commands do it on start)."""
    settings = load_settings()
    from store.db import open_writer
    from store.schema import current_revision

    engine = open_writer(settings)
    typer.echo(f"{settings.resolved_database_url}: at revision {current_revision(engine)}")


@app.command()
def rebuild(
    users_per_chunk: Annotated[
        int, typer.Option(min=1, help="Users recomputed per write transaction.")
    ] = 2_000,
) -> None:
    """Recompute every derived flag, bucket and risk figure from the stored events with the current settings.

    Run it after an upgrade that adds derived figures, or after changing a rule or a marker.
    """
    settings = load_settings()
    from store.db import open_writer
    from workers.rebuild import rebuild_store

    typer.echo(
        rebuild_store(open_writer(settings), settings=settings, users_per_chunk=users_per_chunk).summary()
    )


quarantine_app = typer.Typer(
    help="Quarantined lines: replay them after a limit or rule is fixed.", no_args_is_help=True
)
app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("replay")
def quarantine_replay(
    reason: Annotated[Reason | None, typer.Option(help="Only lines held for this reason.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Report what would be released; change nothing.")] = False,
    historical: Annotated[
        bool,
        typer.Option(
            "--historical", help="Judge every line as a file of history (no past window), whatever its batch."
        ),
    ] = False,
    unpriced_purchases: Annotated[
        bool,
        typer.Option("--unpriced-purchases", help="Store purchases without an amount (counted, no spend)."),
    ] = False,
) -> None:
    """Validate held lines again, each in its batch's mode; store (once) and release those that pass."""
    settings = load_settings()
    from store.db import open_writer
    from workers.replay import replay_quarantine

    engine = open_writer(settings)
    report = replay_quarantine(
        engine,
        settings=settings,
        reason=reason,
        dry_run=dry_run,
        historical=historical,
        unpriced_purchases=unpriced_purchases,
    )
    typer.echo(report.summary())


if __name__ == "__main__":
    app()
