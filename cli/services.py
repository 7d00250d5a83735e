"""How each ecomrisk process is launched: argv, environment and where it answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings

ENV_PREFIX = "ECOMRISK_"
WORKER_MODULE = "workers"  # `python -m workers …`: Celery's command line with the settings applied
# Hosts that listen on every interface; a browser reaches them on the loopback address.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


@dataclass(frozen=True)
class Service:
    """One child process of `ecomrisk up`."""

    name: str
    argv: tuple[str, ...]
    ready_at: tuple[str, int] | None = None  # it is ready once this host:port accepts
    where: str = ""  # what the summary table shows for it


def settings_env(settings: Settings) -> dict[str, str]:
    """Every Settings field as an ECOMRISK_* variable, so a child builds the same Settings."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        env[f"{ENV_PREFIX}{name.upper()}"] = text
    env[f"{ENV_PREFIX}DATABASE_URL"] = settings.resolved_database_url
    return env


def child_env(settings: Settings, inherited: Mapping[str, str]) -> dict[str, str]:
    """The environment of a child: inherited, minus stale ECOMRISK_*, plus these settings."""
    env = {k: v for k, v in inherited.items() if not k.startswith(ENV_PREFIX)}
    env.update(settings_env(settings))
    env["PYTHONUNBUFFERED"] = "1"  # log files follow the process live
    if settings.flower_basic_auth:
        # Flower reads FLOWER_* options; a secret in argv would show in `ps` to every user.
        env["FLOWER_BASIC_AUTH"] = settings.flower_basic_auth
    return env


def worker_argv(
    settings: Settings,
    *,
    concurrency: int | None = None,
    loglevel: str = "INFO",
    include: Sequence[str] = (),
) -> list[str]:
    """A Celery worker that sends task events (-E) and consumes the ingest queue.

    include: more task modules to load beside workers.tasks (the benchmark's naive task).
    """
    argv = [
        sys.executable, "-m", WORKER_MODULE, "worker", "-E",
        f"--concurrency={concurrency or settings.worker_concurrency}",
        "-Q", settings.queue_name,
        f"--loglevel={loglevel}",
    ]  # fmt: skip
    return [*argv, f"--include={','.join(include)}"] if include else argv


def webhook_worker_argv(settings: Settings, *, loglevel: str = "INFO") -> list[str]:
    """A Celery worker of the webhook queue only, so a slow receiver never holds up ingest."""
    return [
        sys.executable, "-m", WORKER_MODULE, "worker", "-E",
        f"--concurrency={settings.webhook_concurrency}",
        "-Q", settings.webhook_queue,
        "-n", "webhooks@%h",
        f"--loglevel={loglevel}",
    ]  # fmt: skip


def beat_argv(settings: Settings) -> list[str]:
    """celery beat: schedules the webhook outbox sweep every ECOMRISK_WEBHOOK_SWEEP_S; one per deployment."""
    return [
        sys.executable, "-m", WORKER_MODULE, "beat",
        f"--schedule={settings.data_dir / 'celerybeat-schedule'}",
        "--loglevel=INFO",
    ]  # fmt: skip


def flower_argv(settings: Settings) -> list[str]:
    """Flower on flower_host:flower_port; basic auth, if any, travels in child_env."""
    return [
        sys.executable, "-m", WORKER_MODULE, "flower",
        f"--address={settings.flower_host}", f"--port={settings.flower_port}",
    ]  # fmt: skip


def cli_argv(*args: str) -> list[str]:
    """This CLI run by the current interpreter, so children need no console script on PATH."""
    return [sys.executable, "-m", "cli.main", *args]


def reachable_host(host: str) -> str:
    """The host a local client dials for a server bound to host."""
    return "127.0.0.1" if host in WILDCARD_HOSTS else host


def http_url(host: str, port: int) -> str:
    """The address a local browser opens for a server bound to host:port."""
    shown = reachable_host(host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def stack_services(settings: Settings, *, with_producer: bool) -> list[Service]:
    """The children of `ecomrisk up`, in start order."""
    services = [
        Service(
            "worker",
            tuple(worker_argv(settings)),
            where=f"queue {settings.queue_name}, concurrency {settings.worker_concurrency}",
        ),
        Service(
            "flower",
            tuple(flower_argv(settings)),
            ready_at=(reachable_host(settings.flower_host), settings.flower_port),
            where=http_url(settings.flower_host, settings.flower_port),
        ),
        Service(
            "api",
            tuple(cli_argv("api")),
            ready_at=(reachable_host(settings.api_host), settings.api_port),
            where=http_url(settings.api_host, settings.api_port) + "/api/v1/docs",
        ),
        Service(
            "dashboard",
            tuple(cli_argv("dashboard")),
            ready_at=(reachable_host(settings.dashboard_host), settings.dashboard_port),
            where=http_url(settings.dashboard_host, settings.dashboard_port),
        ),
    ]
    if settings.webhook_endpoints:
        count = len(settings.webhook_endpoints)
        services += [
            Service(
                "webhooks",
                tuple(webhook_worker_argv(settings)),
                where=f"queue {settings.webhook_queue}, {count} endpoint{'s' * (count != 1)}",
            ),
            Service(
                "beat",
                tuple(beat_argv(settings)),
                where=f"outbox sweep every {settings.webhook_sweep_s:g}s",
            ),
        ]
    if with_producer:
        services.append(
            Service(
                "producer",
                tuple(cli_argv("produce", "--no-progress")),  # a progress bar garbles a log file
                where=f"{settings.producer_rate:g} events/s, batches of {settings.batch_size}",
            )
        )
    return services


def log_path(settings: Settings, name: str) -> Path:
    """Where `ecomrisk up` writes the output of one child."""
    return settings.data_dir / "logs" / f"{name}.log"


def start_logged(argv: list[str], settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """Start an ecomrisk child with these settings, output appended to log, in its own session.

    Its own session and process group: a group kill reaches its pool children too.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            env=child_env(settings, os.environ),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_logged(process: subprocess.Popen[bytes], *, timeout_s: float = 60.0) -> None:
    """Stop a child of start_logged and its process group: SIGTERM, a wait, then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
