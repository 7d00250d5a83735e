"""`ecomrisk bench`: benchmarks that print figures; never timed tests."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import redis
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine

from cli.redis_server import start_redis
from config.settings import Settings, hide_password
from store.db import is_sqlite

if TYPE_CHECKING:  # both load the whole pipeline: only `ecomrisk bench` itself needs them
    from bench.producer import Staged
    from bench.stores import StoreFactory

DASHBOARD_FLOOR_MS = 150.0


def bench_dashboard(
    settings: Settings,
    *,
    events: int,
    users: int,
    repeats: int,
    workdir: Path | None = None,
    api_requests: int = 0,
) -> dict[str, Any]:
    """Seed a fresh SQLite file with `events` events and time every refresh callback (p95, ms).

    api_requests > 0: also the API's p95 on the same store, against a real `ecomrisk api` process.
    """
    from bench.dashboard import measure_refresh
    from bench.synthetic import seed_synthetic

    api: dict[str, dict[str, float]] = {"p50_ms": {}, "p95_ms": {}}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        bench_settings = settings.model_copy(
            update={"database_url": url, "redis_url": None, "data_dir": Path(tmp) / "data"}
        )
        started = time.perf_counter()
        seeded = seed_synthetic(url, events=events, users=users, settings=bench_settings)
        seed_s = time.perf_counter() - started
        p95 = measure_refresh(bench_settings, repeats=repeats)
        if api_requests:
            from bench.api import measure_api

            api = measure_api(bench_settings, requests=api_requests)
    return {
        "kind": "dashboard",
        "events": events,
        "users": users,
        "repeats": repeats,
        "seeded": seeded,
        "seed_s": round(seed_s, 1),
        "p95_ms": p95,
        "api_p95_ms": api["p95_ms"],
        "api_p50_ms": api["p50_ms"],
        "api_requests": api_requests,
        "floor_ms": DASHBOARD_FLOOR_MS,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
    }


def print_dashboard(result: dict[str, Any], console: Console) -> None:
    """One row per refresh callback, against the floor."""
    table = Table(
        title=f"Dashboard refresh, p95 server time, {result['events']:,} events, "
        f"{result['users']:,} users, {result['repeats']} repeats"
    )
    table.add_column("callback")
    table.add_column("p95 ms", justify="right")
    table.add_column(f"<= {result['floor_ms']:.0f} ms")
    for name, ms in result["p95_ms"].items():
        table.add_row(name, f"{ms:.1f}", "yes" if ms <= result["floor_ms"] else "NO")
    console.print(table)
    if result.get("api_p95_ms"):
        from bench.api import API_FLOOR_MS

        api = Table(title=f"API, p95 of {result['api_requests']} requests against a real ecomrisk api")
        api.add_column("request")
        api.add_column("p50 ms", justify="right")
        api.add_column("p95 ms", justify="right")
        api.add_column(f"<= {API_FLOOR_MS:.0f} ms")
        for name, ms in result["api_p95_ms"].items():
            p50 = result["api_p50_ms"][name]
            api.add_row(name, f"{p50:.1f}", f"{ms:.1f}", "yes" if ms <= API_FLOOR_MS else "NO")
        console.print(api)


def write_result(result: dict[str, Any], path: Path) -> None:
    """Keep the figures as JSON beside the printed table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


# --- the full benchmark: `ecomrisk bench` ---------------------------------------------------------

THROUGHPUT_RATIO_FLOOR = 0.6  # of the same-run bulk-insert ceiling
SPEEDUP_FLOOR = 20.0  # over the naive baseline
P99_FLOOR_MS = 1_000.0
WORKER_RSS_FLOOR_MB = 300.0
BENCH_QUEUE = "ecomrisk-bench"
NAIVE_QUEUE = "ecomrisk-naive"
LATENCY_POLL_S = 0.05  # how often the latency run looks for finished batches


@dataclass(frozen=True)
class BenchPlan:
    """What `ecomrisk bench` runs; the defaults are the full benchmark of the performance issue."""

    events: int = 1_000_000
    naive_events: int = 20_000
    workers: tuple[int, ...] = field(default_factory=lambda: (os.cpu_count() or 1,))
    batch_size: int | None = None  # None: ECOMRISK_BATCH_SIZE
    latency_rate: float = 5_000.0
    latency_seconds: float = 30.0
    latency_warmup_s: float = 2.0
    table_sizes: tuple[int, ...] = (0, 4_000_000)
    dashboard_events: tuple[int, ...] = (1_000_000, 5_000_000)
    dashboard_users: int = 300_000
    dashboard_repeats: int = 20
    api_requests: int = 200  # per API request kind, on each dashboard store; 0 skips them
    database_url: str | None = None  # None: a fresh SQLite file per run
    seed: int = 1

    @classmethod
    def smoke(cls) -> BenchPlan:
        """A few thousand events: checks that every figure is produced, not that it is fast."""
        return cls(
            events=3_000,
            naive_events=200,
            latency_rate=1_000.0,
            latency_seconds=3.0,
            latency_warmup_s=0.5,
            table_sizes=(0, 5_000),
            dashboard_events=(20_000,),
            dashboard_users=2_000,
            dashboard_repeats=3,
            api_requests=20,
        )

    def with_options(self, **options: Any) -> BenchPlan:
        """This plan changed by the options given on the command line (None: not given)."""
        changes = {name: value for name, value in options.items() if value is not None}
        for name in ("workers", "table_sizes", "dashboard_events"):
            if name in changes:
                changes[name] = parse_counts(changes[name])
        if "dashboard_events" in changes:
            changes["dashboard_events"] = tuple(n for n in changes["dashboard_events"] if n)  # 0 skips
        plan = replace(self, **changes)
        if not plan.workers or min(plan.workers) < 1:
            raise ValueError("--workers needs worker counts of 1 or more")
        if not plan.table_sizes:
            raise ValueError("--table-size needs at least one count")
        return plan

    @property
    def latency_lines(self) -> int:
        return round(self.latency_rate * self.latency_seconds)

    @property
    def primary_workers(self) -> int:
        """The worker count of the naive and latency runs: the most that the cores can run at once."""
        cores = os.cpu_count() or 1
        return max((w for w in self.workers if w <= cores), default=min(self.workers))

    def argv(self) -> list[str]:
        """The command that reproduces this plan."""
        args = [
            "ecomrisk", "bench", f"--events={self.events}", f"--naive-events={self.naive_events}",
            f"--workers={_join(self.workers)}", f"--latency-rate={self.latency_rate:g}",
            f"--latency-seconds={self.latency_seconds:g}", f"--latency-warmup={self.latency_warmup_s:g}",
            f"--table-size={_join(self.table_sizes)}",
            f"--dashboard-events={_join(self.dashboard_events) or 0}",
            f"--dashboard-users={self.dashboard_users}", f"--dashboard-repeats={self.dashboard_repeats}",
            f"--api-requests={self.api_requests}",
            f"--seed={self.seed}",
        ]  # fmt: skip
        if self.batch_size:
            args.append(f"--batch-size={self.batch_size}")
        if self.database_url:
            args.append(f"--database-url={hide_password(self.database_url)}")
        return args


def _join(values: tuple[int, ...]) -> str:
    return ",".join(str(v) for v in values)


def parse_counts(text: str) -> tuple[int, ...]:
    """A comma-separated list of counts; 1_000_000, 1000k and 1M are the same."""
    scale = {"k": 1_000, "m": 1_000_000}
    counts = []
    for item in text.replace("_", "").lower().split(","):
        item = item.strip()
        if not item:
            continue
        factor = scale.get(item[-1], 1)
        try:
            number = float(item[:-1] if factor > 1 else item)
        except ValueError:
            raise ValueError(f"{item!r} is not a count such as 500000, 500k or 1M") from None
        if number < 0:
            raise ValueError(f"{item!r} is negative")
        counts.append(round(number * factor))
    return tuple(counts)


def machine_info(plan: BenchPlan, settings: Settings) -> dict[str, Any]:
    """Cores, CPU, memory, versions, the commit, and the settings every figure depends on."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "git_commit": _git_commit(),
        "batch_size": plan.batch_size or settings.batch_size,
        "workers": list(plan.workers),
        "worker_pool": "one Celery worker (prefork) with that many pool processes, -E",
        "prefetch": settings.worker_prefetch,
        "database_url": (
            hide_password(plan.database_url) + " (a fresh schema per run)"
            if plan.database_url and not is_sqlite(plan.database_url)
            else "sqlite:///<workdir>/stores/<run>.db (a fresh file per run)"
        ),
        "broker": "private redis-server, append-only file, fsync every second",
    }
    if plan.database_url and not is_sqlite(plan.database_url):
        engine = create_engine(plan.database_url)
        with engine.connect() as conn:
            info["postgresql"] = conn.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}{' (uncommitted changes)' if dirty else ''}"


def run_suite(base: Settings, plan: BenchPlan, console: Console, *, workdir: Path) -> dict[str, Any]:
    """Every figure of the performance issue from one command; returns them for the JSON file."""
    from bench.pipeline import run_naive, stage_batches
    from bench.stores import StoreFactory
    from producer.generator import FLUSH_INTERVAL_S

    started = time.monotonic()

    def say(message: str) -> None:
        console.print(f"[dim]t+{time.monotonic() - started:7.1f}s[/] {message}", highlight=False)

    settings = base.model_copy(update={"batch_size": plan.batch_size or base.batch_size})
    result: dict[str, Any] = {
        "kind": "pipeline",
        "command": shlex.join(plan.argv()),
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(plan, settings),
        "plan": {
            **asdict(plan),
            "database_url": plan.database_url and hide_password(plan.database_url),
        },
    }
    to_stage = max(plan.events, plan.latency_lines, plan.naive_events)
    say(f"generating {to_stage:,} events (default persona mix and fault rates); not timed")
    staged = stage_batches(settings, workdir / "staged", events=to_stage, seed=plan.seed)
    result["generated"] = staged.describe()
    server = start_redis(workdir / "redis", appendonly=True)
    broker: redis.Redis[bytes] = redis.Redis.from_url(server.url)
    stores = StoreFactory(workdir / "stores", plan.database_url)

    def fresh(name: str, queue: str = BENCH_QUEUE) -> Settings:
        broker.flushall()
        return settings.model_copy(
            update={
                "data_dir": workdir / "runs" / name,
                "redis_url": server.url,
                "database_url": stores.fresh(name),
                "queue_name": queue,
            }
        )

    try:
        result["throughput"] = [
            measure_throughput(
                fresh,
                stores,
                staged,
                plan,
                workers=workers,
                table_size=table_size,
                broker_pid=server.process.pid,
                say=say,
            )
            for workers in plan.workers
            for table_size in plan.table_sizes
        ]
        workers = plan.primary_workers
        if plan.naive_events:
            say(f"naive baseline: {plan.naive_events:,} events, one task each, {workers} workers")
            naive = run_naive(fresh("naive", NAIVE_QUEUE), staged, lines=plan.naive_events, workers=workers)
            first = next(r for r in result["throughput"] if r["workers"] == workers)
            naive["speedup"] = round(first["lines_per_s"] / naive["lines_per_s"], 1)
            result["naive"] = naive
            say(f"  {naive['lines_per_s']:,.0f} lines/s; speed-up {naive['speedup']:.1f}x")
        if plan.latency_lines:
            # Batches as a live producer at this rate sends them: whatever arrived in one flush interval.
            batch = max(1, min(settings.batch_size, round(plan.latency_rate * FLUSH_INTERVAL_S)))
            say(
                f"latency: {plan.latency_rate:,.0f} events/s offered for {plan.latency_seconds:g}s,"
                f" batches of {batch:,}"
            )
            paced = stage_batches(
                settings.model_copy(update={"batch_size": batch}),
                workdir / "staged-latency",
                events=plan.latency_lines,
                seed=plan.seed,
            )
            result["latency"] = {"batch_size": batch, **measure_latency(fresh("latency"), paced, plan)}
            say(f"  p99 {result['latency']['p99_ms']:,.0f} ms")
    finally:
        server.stop()
        stores.drop_all()
    result["dashboard"] = []
    for events in plan.dashboard_events:
        say(f"dashboard: {events:,} stored events, {plan.dashboard_users:,} users")
        dashboard = bench_dashboard(
            base,
            events=events,
            users=plan.dashboard_users,
            repeats=plan.dashboard_repeats,
            workdir=workdir,
            api_requests=plan.api_requests,
        )
        result["dashboard"].append(
            {
                k: dashboard[k]
                for k in ("events", "users", "repeats", "seed_s", "p95_ms", "api_p95_ms", "api_p50_ms")
            }
        )
    result["floors"] = floors(result)
    result["total_s"] = round(time.monotonic() - started, 1)
    return result


def measure_throughput(
    fresh: Callable[[str], Settings],
    stores: StoreFactory,
    staged: Staged,
    plan: BenchPlan,
    *,
    workers: int,
    table_size: int,
    broker_pid: int | None,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """One throughput run on a fresh store holding table_size events, and its same-run ceiling."""
    from bench.pipeline import run_pipeline
    from bench.stores import measure_ceiling, seed_history

    name = f"w{workers}_t{table_size}"
    settings = fresh(name)
    url = settings.resolved_database_url
    seed_s = 0.0
    if table_size:
        say(f"seeding {table_size:,} stored events of other users")
        seed_s = seed_history(url, events=table_size)
    say(f"throughput: {plan.events:,} events, {workers} workers, {table_size:,} stored before")
    run = run_pipeline(
        settings, staged, lines=plan.events, workers=workers, table_size=table_size, broker_pid=broker_pid
    ).figures
    run["seed_s"] = round(seed_s, 1)
    say(f"  {run['lines_per_s']:,.0f} lines/s; now the bulk-insert ceiling of the same rows")
    ceiling_url = stores.fresh(f"{name}_ceiling")
    run["ceiling"] = measure_ceiling(url, ceiling_url, table_size=table_size)
    run["ratio"] = round(run["stored_per_s"] / run["ceiling"]["rows_per_s"], 3)
    say(f"  ceiling {run['ceiling']['rows_per_s']:,.0f} rows/s: ratio {run['ratio']:.2f}")
    stores.drop(url)
    stores.drop(ceiling_url)
    return run


def measure_latency(settings: Settings, staged: Staged, plan: BenchPlan) -> dict[str, Any]:
    """Per-line latency from enqueue to stored at a fixed offered rate, after a warm-up."""
    from bench.pipeline import latency_percentiles, run_pipeline

    run = run_pipeline(
        settings,
        staged,
        lines=plan.latency_lines,
        workers=plan.primary_workers,
        table_size=0,
        rate=plan.latency_rate,
        poll_s=LATENCY_POLL_S,
    )
    first_ms = min(s.produced_ms for s in run.seen)
    last_ms = max(s.produced_ms for s in run.seen)
    last_lines = max(run.seen, key=lambda s: s.produced_ms).received
    offered_s = (last_ms - first_ms) / 1000
    return {
        "workers": plan.primary_workers,
        "offered_rate": plan.latency_rate,
        "achieved_rate": round((run.figures["lines"] - last_lines) / offered_s, 1) if offered_s else None,
        "seconds": plan.latency_seconds,
        "lines": run.figures["lines"],
        "warmup_s": plan.latency_warmup_s,
        **latency_percentiles(run.seen, skip_until_ms=first_ms + round(plan.latency_warmup_s * 1000)),
        "measures": (
            "per line, from the producer's enqueue of its batch (produced_ms, taken just before the send)"
            " to the batch's committed_ms (the worker's clock just before its commit); batches hold"
            " what a live producer collects in one flush interval at this rate and are paced whole,"
            " so the wait to fill one (at most that interval) is not included; batches enqueued"
            " during the first warmup_s are left out"
        ),
        "ledger": run.figures["ledger"],
        "memory": run.figures["memory"],
    }


def verdict(
    figure: str,
    value: float | None,
    unit: str,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
) -> dict[str, Any]:
    """One figure against its floor; ok is None for a figure the issue sets no floor for."""
    ok = None
    if value is not None and at_least is not None:
        ok = value >= at_least
    elif value is not None and at_most is not None:
        ok = value <= at_most
    return {
        "figure": figure,
        "value": value,
        "unit": unit,
        "at_least": at_least,
        "at_most": at_most,
        "ok": ok,
    }


def floors(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every figure of the issue against its floor (2-core machine), plus linearity and flatness."""
    runs = result["throughput"]
    rows = [
        verdict(
            f"throughput / same-run ceiling, {r['workers']} workers, {r['stored_after']:,} stored",
            r["ratio"],
            "x",
            at_least=THROUGHPUT_RATIO_FLOOR,
        )
        for r in runs
    ]
    if "naive" in result:
        speedup = result["naive"]["speedup"]
        rows.append(verdict("speed-up over the naive baseline", speedup, "x", at_least=SPEEDUP_FLOOR))
    if "latency" in result:
        latency = result["latency"]
        figure = f"p99 latency at {latency['offered_rate']:,.0f} events/s"
        rows.append(verdict(figure, latency["p99_ms"], "ms", at_most=P99_FLOOR_MS))
    for d in result["dashboard"]:
        figure = f"dashboard p95, slowest callback, {d['events']:,} events"
        rows.append(verdict(figure, max(d["p95_ms"].values()), "ms", at_most=DASHBOARD_FLOOR_MS))
        if d.get("api_p95_ms"):
            from bench.api import API_FLOOR_MS, api_verdicts

            for figure, ms in api_verdicts(d):
                rows.append(verdict(figure, ms, "ms", at_most=API_FLOOR_MS))
    memories = [r["memory"] for r in runs] + ([result["latency"]["memory"]] if "latency" in result else [])
    worker_mb = [
        mb
        for memory in memories
        for worker in memory["workers"].values()
        for mb in [worker["main_mb"], *worker["pool_mb"]]
        if mb is not None
    ]
    producer_mb = [m["producer_mb"] for m in memories if m["producer_mb"] is not None]
    largest = max(worker_mb, default=None)
    rows.append(verdict("worker peak RSS, largest process", largest, "MB", at_most=WORKER_RSS_FLOOR_MB))
    rows.append(verdict("producer peak RSS", max(producer_mb, default=None), "MB"))
    for workers in dict.fromkeys(r["workers"] for r in runs):
        group = sorted((r for r in runs if r["workers"] == workers), key=lambda r: r["stored_after"])
        if len(group) > 1:
            first, last = group[0], group[-1]
            figure = (
                f"throughput at {last['stored_after']:,} / at {first['stored_after']:,} stored, "
                f"{workers} workers"
            )
            rows.append(verdict(figure, round(last["lines_per_s"] / first["lines_per_s"], 2), "x"))
    fewest = min((r["workers"] for r in runs), default=0)
    for r in runs:
        base = next(b for b in runs if b["workers"] == fewest and b["table_size"] == r["table_size"])
        if r is not base:
            figure = (
                f"throughput with {r['workers']} / with {fewest} workers, {r['table_size']:,} stored before"
            )
            rows.append(verdict(figure, round(r["lines_per_s"] / base["lines_per_s"], 2), "x"))
    for r in runs:
        rates = [s["lines_per_s"] for s in r["segments"] if s["lines_per_s"] is not None]
        figure = f"slowest / fastest fifth of a run, {r['workers']} workers, {r['stored_after']:,} stored"
        rows.append(verdict(figure, round(min(rates) / max(rates), 2) if rates else None, "x"))
    return rows


def print_suite(result: dict[str, Any], console: Console) -> None:
    """Machine and settings, throughput per run, memory, dashboard, and every figure against its floor."""
    machine = Table(title="Machine and settings", show_header=False)
    for key, value in result["machine"].items():
        machine.add_row(key, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
    console.print(machine)

    console.print(f"Command: {result['command']}", highlight=False)
    runs = Table(
        title="Throughput, first event enqueued to last stored; ceiling: bulk insert of the same rows"
    )
    for column in ("workers", "stored before", "after", "lines", "s", "lines/s", "stored/s", "ceiling/s",
                   "ratio", "ledger"):  # fmt: skip
        runs.add_column(column, justify="right")
    for run in result["throughput"]:
        runs.add_row(
            str(run["workers"]),
            f"{run['table_size']:,}",
            f"{run['stored_after']:,}",
            f"{run['lines']:,}",
            f"{run['seconds']:,.1f}",
            f"{run['lines_per_s']:,.0f}",
            f"{run['stored_per_s']:,.0f}",
            f"{run['ceiling']['rows_per_s']:,.0f}",
            f"{run['ratio']:.2f}",
            "ok" if run["ledger"]["ok"] else "FAIL",
        )
    console.print(runs)
    for run in result["throughput"]:
        fifths = ", ".join(
            "n/a" if s["lines_per_s"] is None else f"{s['lines_per_s']:,.0f}" for s in run["segments"]
        )
        console.print(
            f"  lines/s per fifth of the run, {run['workers']} workers, "
            f"{run['stored_after']:,} stored: {fifths}",
            highlight=False,
        )
        cpu = run["cpu"]
        by_process = ", ".join(f"{name} {us:,.1f}" for name, us in cpu["us_per_line"].items())
        console.print(f"  CPU µs per line: {by_process}; {cpu['cores_busy']:.2f} cores busy", highlight=False)
    for run in [*result["throughput"], result.get("latency")]:
        for name, check in (run or {}).get("ledger", {}).get("checks", {}).items():
            if not check["ok"]:
                console.print(f"  [red]ledger: {name}: {check['figures']}[/]", highlight=False)

    if "naive" in result:
        naive = result["naive"]
        console.print(
            f"Naive baseline ({naive['what']}): {naive['lines']:,} lines in {naive['seconds']:.1f}s = "
            f"{naive['lines_per_s']:,.0f} lines/s with {naive['workers']} workers; "
            f"speed-up {naive['speedup']:.1f}x",
            highlight=False,
        )
    if "latency" in result:
        lat = result["latency"]
        console.print(
            f"Latency at {lat['offered_rate']:,.0f} lines/s offered ({lat['achieved_rate']:,.0f} achieved, "
            f"{lat['seconds']:g}s, {lat['workers']} workers): p50 {lat['p50_ms']:,.0f} ms, "
            f"p95 {lat['p95_ms']:,.0f} ms, p99 {lat['p99_ms']:,.0f} ms, max {lat['max_ms']:,.0f} ms "
            f"(enqueue to commit, first {lat['warmup_s']:g}s left out)",
            highlight=False,
        )

    if result["dashboard"]:
        dash = Table(title="Dashboard refresh, p95 server time (ms)")
        dash.add_column("callback")
        for entry in result["dashboard"]:
            dash.add_column(f"{entry['events']:,} events", justify="right")
        for name in result["dashboard"][0]["p95_ms"]:
            dash.add_row(
                name, *(f"{entry['p95_ms'].get(name, float('nan')):.1f}" for entry in result["dashboard"])
            )
        console.print(dash)
    measured = [entry for entry in result["dashboard"] if entry.get("api_p95_ms")]
    if measured:
        api = Table(title="API, p95 (p50) against a real ecomrisk api (ms)")
        api.add_column("request")
        for entry in measured:
            api.add_column(f"{entry['events']:,} events", justify="right")
        for name in measured[0]["api_p95_ms"]:
            api.add_row(
                name,
                *(f"{entry['api_p95_ms'][name]:.1f} ({entry['api_p50_ms'][name]:.1f})" for entry in measured),
            )
        console.print(api)

    verdicts = Table(title="Figures against the floors of the issue")
    for column in ("figure", "value", "floor", ""):
        verdicts.add_column(column, justify="left" if column == "figure" else "right")
    for row in result["floors"]:
        value = "n/a" if row["value"] is None else f"{row['value']:,.2f} {row['unit']}"
        floor = "no floor"
        if row["at_least"] is not None:
            floor = f"≥ {row['at_least']:g} {row['unit']}"
        elif row["at_most"] is not None:
            floor = f"≤ {row['at_most']:g} {row['unit']}"
        verdict = {True: "[green]PASS[/]", False: "[red]below floor[/]", None: ""}[row["ok"]]
        verdicts.add_row(row["figure"], value, floor, verdict)
    console.print(verdicts)


def ledgers_ok(result: dict[str, Any]) -> bool:
    """True when every pipeline run's ledger balanced and matched what was published."""
    runs = [*result.get("throughput", []), *([result["latency"]] if "latency" in result else [])]
    return all(run["ledger"]["ok"] for run in runs)
