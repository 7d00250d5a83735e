"""A full disk under the database: batches are retried or dead-lettered, never lost, and all land.

Once space is freed, batches between retries land by themselves; dead letters through reconcile.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import redis

from harness.fleet import WorkerFleet
from store.db import create_reader_engine
from store.summaries import ledger_totals
from tests.faults.harness import PrivateRedis, fault_settings
from tests.faults.invariant import assert_invariant, escaped_errors
from tests.faults.load import Load
from tests.faults.page_cap import CAP_FILE_ENV
from tests.support import wait_until
from workers.deliveries import DeliveryBook

pytestmark = pytest.mark.integration

TMPFS_SIZE = "4m"
ROOM_LEFT_BYTES = 256 * 1024  # room for the -shm file and a few WAL frames, not for a batch
SQLITE_FULL_TEXT = "database or disk is full"  # SQLite's message for SQLITE_FULL


class TinyFilesystem:
    """The database directory on a 4 MiB tmpfs, filled up; freeing space remounts it bigger."""

    mechanism = "tmpfs"
    include: tuple[str, ...] = ()

    def __init__(self, root: Path) -> None:
        self.dir = root / "tiny"
        self.dir.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(self.dir)], check=True
        )
        self.database = self.dir / "faults.db"

    def fill(self) -> None:
        """Write a filler file until the file system is full, then give back ROOM_LEFT_BYTES."""
        filler = self.dir / "filler"
        with open(filler, "wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        os.truncate(filler, max(0, filler.stat().st_size - ROOM_LEFT_BYTES))

    def free(self) -> None:
        subprocess.run(["mount", "-o", "remount,size=256m", str(self.dir)], check=True)

    def close(self) -> None:
        result = subprocess.run(["umount", str(self.dir)], check=False, capture_output=True)
        if result.returncode != 0:
            subprocess.run(["umount", "-l", str(self.dir)], check=False)  # a straggler still holds a file


class PageCap:
    """Where nothing can be mounted: SQLite's max_page_count just above the current size."""

    mechanism = "max_page_count"
    include = ("tests.faults.page_cap",)

    def __init__(self, root: Path) -> None:
        self.database = root / "faults.db"
        self.cap_file = root / "page-cap"
        self.cap_file.write_text(str(1 << 30))
        os.environ[CAP_FILE_ENV] = str(self.cap_file)  # inherited by the workers

    def fill(self) -> None:
        with sqlite3.connect(self.database) as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
        self.cap_file.write_text(str(pages + 8))

    def free(self) -> None:
        self.cap_file.write_text(str(1 << 30))

    def close(self) -> None:
        os.environ.pop(CAP_FILE_ENV, None)


def can_mount() -> bool:
    return os.geteuid() == 0 and os.environ.get("FAULTS_FULL_DISK") != "max_page_count"


@pytest.fixture()
def full_disk(tmp_path: Path) -> Iterator[TinyFilesystem | PageCap]:
    """A real tmpfs when this process may mount one, else the max_page_count cap."""
    disk: TinyFilesystem | PageCap
    if can_mount():
        try:
            disk = TinyFilesystem(tmp_path)
        except (subprocess.CalledProcessError, OSError):
            disk = PageCap(tmp_path)
    else:
        disk = PageCap(tmp_path)
    yield disk
    with suppress(Exception):
        disk.close()


# SQLite only: the disk filled is the one under the database file; PostgreSQL's is the server's own.
def test_full_disk_retries_then_dead_letters_and_everything_lands_once_space_is_freed(
    tmp_path: Path,
    full_disk: TinyFilesystem | PageCap,
    private_redis: PrivateRedis,
    fleet_factory: Callable[..., WorkerFleet],
) -> None:
    settings = fault_settings(
        tmp_path,
        private_redis.url,
        database_url=f"sqlite:///{full_disk.database}",
        task_max_attempts=3,
    )
    full_disk.fill()
    print(f"full disk by {full_disk.mechanism}")
    fleet = fleet_factory(settings, concurrency=2)
    fleet.include = full_disk.include
    fleet.start("d1")
    fleet.wait_ready()
    book = DeliveryBook(redis.Redis.from_url(private_redis.url))

    # First load: its batches fail 3 attempts each and are dead-lettered (a tiny one may still fit).
    first = Load(settings, seed=41, count=2_000).start().join()
    engine = create_reader_engine(settings.resolved_database_url)

    def first_load_parked() -> dict[str, dict[str, object]] | None:
        letters = book.dead_letters()
        return letters if len(letters) + ledger_totals(engine).batches == first.batches else None

    letters = wait_until(first_load_parked, timeout_s=60, what="the first load dead-lettered")
    assert len(letters) >= first.batches - 1
    assert all(SQLITE_FULL_TEXT in str(v["reason"]) for v in letters.values()), letters
    # Second load: its batches are between retries when the space comes back.
    failures = fleet.log_text().count("storage error on attempt")
    second = Load(settings, seed=42, count=1_000).start().join()
    wait_until(
        lambda: fleet.log_text().count("storage error on attempt") >= failures + second.batches,
        timeout_s=30,
        what="the second load failing",
    )
    full_disk.free()

    settled, _ = assert_invariant(settings, timeout_s=60)
    # Exactly the dead letters needed reconcile; the second load landed through Celery's retries.
    assert settled.resent == len(letters)
    logs = fleet.log_text()
    assert SQLITE_FULL_TEXT in logs
    assert escaped_errors(logs) == []
    assert book.dead_letters() == {}  # cleared as each re-sent batch committed
