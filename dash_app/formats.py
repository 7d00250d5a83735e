"""Number, share and time formatting for labels and table cells."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_text(ms: int | None, *, seconds: bool = True) -> str:
    """An epoch-milliseconds time as 'YYYY-MM-DD HH:MM:SS' UTC, or an en dash."""
    if ms is None:
        return "–"
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def count_text(n: int | None) -> str:
    """A count with thousands separators."""
    return "–" if n is None else f"{n:,}"


def share_text(share: float | None) -> str:
    """A share of 1 as a percentage with one decimal."""
    return "–" if share is None else f"{share:.1%}"


def rate_text(per_s: float) -> str:
    """Events per second, one decimal under 100."""
    return f"{per_s:,.1f}" if per_s < 100 else f"{per_s:,.0f}"


def duration_text(ms: int | None) -> str:
    """A duration in ms as '850 ms', '12.3 s', '4 min 5 s' or '3 h 20 min'."""
    if ms is None:
        return "–"
    sign, ms = ("-" if ms < 0 else ""), abs(ms)
    if ms < 1_000:
        return f"{sign}{ms} ms"
    if ms < 60_000:
        return f"{sign}{ms / 1000:.1f} s"
    minutes, secs = divmod(ms // 1000, 60)
    if minutes < 60:
        return f"{sign}{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{sign}{hours} h {minutes} min"
    return f"{sign}{hours // 24} d {hours % 24} h"


def offset_text(minutes: int) -> str:
    """A UTC offset as +HH:MM or -HH:MM."""
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def local_text(ms: int | None, offset_min: int) -> str:
    """An epoch-millisecond time as the local time of this UTC offset, offset shown."""
    if ms is None:
        return "–"
    return f"{utc_text(ms + offset_min * 60_000)} (UTC{offset_text(offset_min)})"
