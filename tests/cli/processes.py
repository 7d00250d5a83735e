"""Checks on process ids for the supervisor tests."""

from __future__ import annotations

import psutil


def is_live(process: psutil.Process) -> bool:
    """Running and not a zombie (a zombie is dead, only not reaped yet)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def still_running(processes: list[psutil.Process], *, grace_s: float = 10.0) -> list[psutil.Process]:
    """Those of processes still alive after a short grace."""
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    return [p for p in alive if is_live(p)]
