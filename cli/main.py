"""The `ecomrisk` command line: one entry point for every process of the platform."""

from __future__ import annotations

import functools
import importlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
import typer.main
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperGroup

from cli.services import child_env, flower_argv, hide_password, worker_argv
from cli.supervisor import run_stack
from config.settings import Settings, get_settings
from workers.schemas import Reason

P = ParamSpec("P")
R = TypeVar("R")

USAGE_EXIT = 2  # the exit code of a command that cannot run as configured
NO_BROKER = (
    "ECOMRISK_REDIS_URL is not set: run `ecomrisk up`, or export ECOMRISK_REDIS_URL=redis://127.0.0.1:6379/0"
)

# Commands defined in other packages that need the broker: name -> (module, function).
BROKER_COMMANDS = {"produce": ("producer.cli", "produce"), "import": ("producer.cli", "import_file")}


def fail(message: str) -> typer.Exit:
    """Print message to stderr and return the exit that ends the command."""
    typer.echo(message, err=True)
    return typer.Exit(USAGE_EXIT)


def describe_errors(exc: ValidationError) -> str:
    """One line per invalid setting, named by its environment variable."""
    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = error["loc"]
        lines.append(f"  ECOMRISK_{str(loc[0]).upper()}: {message}" if loc else f"  {message}")
    return "\n".join(["Invalid configuration:", *lines])


def load_settings() -> Settings:
    """The process settings; an invalid configuration ends the command with a clear message."""
    try:
        return get_settings()
    except ValidationError as exc:
        raise fail(describe_errors(exc)) from None


def require_broker(settings: Settings) -> str:
    """The broker URL; without one the command ends with a hint instead of a traceback."""
    if not settings.redis_url:
        raise fail(NO_BROKER)
    return settings.redis_url


def needs_broker(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command defined elsewhere so it checks settings and the broker first."""

    @functools.wraps(command)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        require_broker(load_settings())
        return command(*args, **kwargs)

    return checked


class LazyCommands(TyperGroup):
    """Imports BROKER_COMMANDS on first use, after the settings are checked."""

    # Importing producer.cli builds the Celery app from settings; a bad setting would otherwise
    # end every command, even `--help`, in an import-time traceback.

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *BROKER_COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in BROKER_COMMANDS:
            return super().get_command(ctx, cmd_name)
        load_settings()
        module, function = BROKER_COMMANDS[cmd_name]
        single = typer.Typer(pretty_exceptions_show_locals=False)
        single.command(cmd_name)(needs_broker(getattr(importlib.import_module(module), function)))
        return typer.main.get_command(single)


# Locals stay out of tracebacks: they would print settings, passwords included.
app = typer.Typer(
    name="ecomrisk",
    help="Real-time clickstream risk: producer -> Redis -> Celery -> database -> dashboard.",
    cls=LazyCommands,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


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


@app.command()
def evaluate(
    labels: Annotated[
        Path | None, typer.Option(help="Labels CSV; default <ECOMRISK_DATA_DIR>/labels.csv.")
    ] = None,
) -> None:
    """Compare stored risk with the producer's ground-truth personas: confusion matrix, F1, FPR."""
    settings = load_settings()
    from cli.reports import open_store, print_evaluation
    from workers.evaluation import evaluate as score
    from workers.evaluation import load_labels, load_predictions

    console = Console()
    path = labels or settings.labels_path
    if not path.exists():
        raise fail(f"No labels file at {path}: run `ecomrisk produce` first.")
    engine = open_store(settings, console)
    if engine is None:
        raise typer.Exit(1)
    print_evaluation(score(load_labels(path), load_predictions(engine)), path, console)


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
    from cli.chaos import run_chaos

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


bench_app = typer.Typer(help="Benchmarks that print figures (never timed tests).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("dashboard")
def bench_dashboard(
    events: Annotated[int, typer.Option(min=1000, help="Events to seed.")] = 1_000_000,
    users: Annotated[int, typer.Option(min=10, help="Users to seed.")] = 300_000,
    repeats: Annotated[int, typer.Option(min=3, help="Timed runs per callback.")] = 20,
    output: Annotated[Path, typer.Option(help="Where to write the JSON figures.")] = Path(
        "artifacts/bench-dashboard.json"
    ),
) -> None:
    """p95 server time of every dashboard refresh callback on a freshly seeded SQLite file."""
    settings = load_settings()
    from cli.bench import bench_dashboard as run
    from cli.bench import print_dashboard, write_result

    result = run(settings, events=events, users=users, repeats=repeats)
    print_dashboard(result, Console())
    write_result(result, output)


db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to ECOMRISK_DATABASE_URL (other commands do it on start)."""
    settings = load_settings()
    from store.db import create_writer_engine, init_schema
    from store.schema import current_revision

    engine = create_writer_engine(settings.resolved_database_url)
    init_schema(engine)
    typer.echo(f"{settings.resolved_database_url}: at revision {current_revision(engine)}")


quarantine_app = typer.Typer(
    help="Quarantined lines: replay them after a limit or rule is fixed.", no_args_is_help=True
)
app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("replay")
def quarantine_replay(
    reason: Annotated[Reason | None, typer.Option(help="Only lines held for this reason.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Report what would be released; change nothing.")] = False,
) -> None:
    """Validate held lines again with the current settings; store (once) and release those that pass."""
    settings = load_settings()
    from store.db import create_writer_engine, init_schema
    from workers.replay import replay_quarantine

    engine = create_writer_engine(
        settings.resolved_database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    init_schema(engine)
    typer.echo(replay_quarantine(engine, settings=settings, reason=reason, dry_run=dry_run).summary())


if __name__ == "__main__":
    app()
