"""Real parts for the API and webhook tests: crafted traffic, `ecomrisk api`, a webhook receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson

from cli.redis_server import free_port
from cli.services import cli_argv, start_logged
from cli.supervisor import answers
from config.settings import Settings
from contract.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, SignatureError, verify_signature
from contract.wire import broker_client, now_ms
from producer.publisher import Publisher
from store.db import create_reader_engine, open_writer
from store.summaries import ledger_totals
from tests.support import wait_until

READ_TOKEN = "bi-read-token-0123456789"
REVIEW_TOKEN = "ops-review-token-0123456789"
TOKENS = f"ops:{REVIEW_TOKEN}:review,bi:{READ_TOKEN}:read"
SECRET = "whsec-test-secret"
# Noon UTC six days ago: inside the skew limits, far from the unsociable hours, and early enough
# for a history of several days to end before now.
BASE_MS = (now_ms() // 86_400_000 - 6) * 86_400_000 + 12 * 3_600_000
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Behaviour:
    """Gaps (ms) between a user's events, and what they do."""

    gaps_ms: list[int]
    action: str = "view"
    amount: float | None = None


# Three behaviours, each with as much evidence as its markers need: a bot ticks every 1.5 s
# (regular and steady: automation); an impulsive user buys in irregular 0.6-1.9 s bursts, two
# dozen purchases in a minute (rapid buying, rapid share, burst, purchase velocity: loss of
# control); a normal user browses slowly.
BOT = Behaviour([1_500] * 30)
IMPULSIVE = Behaviour([700, 1_900, 900, 1_500, 600, 1_800, 1_000, 1_200] * 3, action="purchase", amount=25.0)
NORMAL = Behaviour([40_000, 95_000, 300_000, 12_000, 70_000])
BEHAVIOURS = {"bot": BOT, "impulsive": IMPULSIVE, "normal": NORMAL}


def iso(ms: int) -> str:
    """An event timestamp: ISO 8601 in UTC with milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def event_lines(user_id: str, behaviour: Behaviour, *, start_ms: int, first: int = 0) -> list[str]:
    """One JSON line per event of a user: the first at start_ms, then one after each gap."""
    lines = []
    ts = start_ms
    for n, gap in enumerate([0, *behaviour.gaps_ms]):
        ts += gap
        event = {
            "event_id": f"{user_id}#{first + n}",
            "user_id": user_id,
            "action": behaviour.action,
            "timestamp": iso(ts),
            "session_id": f"{user_id}-s",
            "category": "books",
            "amount": behaviour.amount,
        }
        lines.append(orjson.dumps(event).decode())
    return lines


def traffic(users: dict[str, str], *, start_ms: int = BASE_MS) -> list[str]:
    """Every event of these users (user_id -> behaviour), each user an hour after the previous one."""
    lines: list[str] = []
    for n, (user_id, behaviour) in enumerate(sorted(users.items())):
        lines += event_lines(user_id, BEHAVIOURS[behaviour], start_ms=start_ms + n * 3_600_000)
    return lines


def recrossing_phases(user_id: str, *, start_ms: int = BASE_MS) -> list[list[str]]:
    """Three batches of one user: a bot burst (high), four calm days (back to low), a burst again (high).

    Calm: a view every two hours for four days, so the current window (three days by default)
    holds no tick of the first burst; the second burst makes it machine-regular again.
    """
    burst = event_lines(user_id, BOT, start_ms=start_ms)
    calm_start = start_ms + sum(BOT.gaps_ms)
    calm = event_lines(user_id, Behaviour([2 * HOUR_MS] * 48), start_ms=calm_start, first=len(burst))[1:]
    again_start = calm_start + 48 * 2 * HOUR_MS + HOUR_MS
    again = event_lines(user_id, BOT, start_ms=again_start, first=len(burst) + len(calm))
    return [burst, calm, again]


def publish(settings: Settings, batches: list[list[str]], *, source: str = "api-test") -> int:
    """Publish the batches through the real producer path (raw log, then queue); return how many."""
    publisher = Publisher(broker_client(settings), settings)
    stamp = now_ms()
    for n, lines in enumerate(batches):
        publisher.publish(f"{source}-{stamp}-{n}", lines, source=source)
    return len(batches)


def prepare_store(settings: Settings) -> None:
    """Create the schema, so readers find every table before the first batch."""
    open_writer(settings).dispose()


def wait_for_batches(settings: Settings, count: int, *, timeout_s: float = 120.0) -> None:
    """Block until the ledger holds `count` batches."""
    engine = create_reader_engine(settings.resolved_database_url)
    try:
        wait_until(
            lambda: ledger_totals(engine).batches >= count, timeout_s=timeout_s, what=f"{count} batches"
        )
    finally:
        engine.dispose()


@contextmanager
def api_server(settings: Settings, *, log: Path | None = None) -> Iterator[str]:
    """A real `ecomrisk api` process on a free port; yields its base URL."""
    port = free_port()
    log = log or settings.data_dir / "api.log"
    with running(settings, cli_argv("api", "--port", str(port)), log=log) as process:
        wait_until(
            lambda: answers("127.0.0.1", port) or process.poll() is not None, timeout_s=60, what="the API"
        )
        assert process.poll() is None, log.read_text(errors="replace")
        yield f"http://127.0.0.1:{port}"


def client(base_url: str, token: str | None = REVIEW_TOKEN) -> httpx.Client:
    """An HTTP client of the API, with this bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=30)


@contextmanager
def running(settings: Settings, argv: list[str], *, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process (a webhook worker, celery beat) with these settings, leading its own group, for the block."""
    process = start_logged(argv, settings, log)  # its own session and process group
    try:
        yield process
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the leader, a wait, then SIGKILL to whatever is left of its group."""
    if process.poll() is None:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# --- a webhook receiver ------------------------------------------------------------------------------


@dataclass
class Received:
    """One POST the receiver got."""

    delivery_id: str
    body: dict[str, Any]
    signed_at: int | None
    signature_error: str | None


@dataclass
class Receiver:
    """A real HTTP server on a local port that checks signatures and dedups on the delivery id.

    status: what it answers; hold_s: how long it holds each request before answering (to be
    killed mid-delivery); up: whether it listens at all.
    """

    secret: str
    port: int = field(default_factory=free_port)
    status: int = 200
    hold_s: float = 0.0
    posts: list[Received] = field(default_factory=list)
    accepted: dict[str, Received] = field(default_factory=dict)  # delivery id -> first accepted POST
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    first_post: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ecomrisk"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    signed_at: int | None = verify_signature(
                        receiver.secret, raw, self.headers.get(SIGNATURE_HEADER)
                    )
                    error = None
                except SignatureError as exc:
                    signed_at, error = None, str(exc)
                post = Received(self.headers.get(DELIVERY_HEADER, ""), orjson.loads(raw), signed_at, error)
                with receiver._lock:
                    receiver.posts.append(post)
                receiver.first_post.set()
                time.sleep(receiver.hold_s)
                status = 401 if error else receiver.status
                if status < 300:
                    with receiver._lock:  # idempotent: a repeat of a delivery id is acknowledged, not kept
                        receiver.accepted.setdefault(post.delivery_id, post)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
