"""ISO 8601 timestamps as the wire carries them: milliseconds, `Z` or a numeric offset."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from contract.wire import utc_ms

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NUMBER = re.compile(r"[0-9]{9,13}(\.[0-9]+)?")
# Epoch values with more digits than this are milliseconds, fewer are seconds.
_SECONDS_DIGITS = 11


def format_timestamp(ts_ms: int, offset_min: int | None = None) -> str:
    """ISO 8601 with milliseconds: `Z` when offset_min is None, else that numeric offset."""
    moment = _EPOCH + timedelta(milliseconds=ts_ms)
    if offset_min is None:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.astimezone(timezone(timedelta(minutes=offset_min))).isoformat(timespec="milliseconds")


@lru_cache(maxsize=65_536)
def normalise_timestamp(text: str, fmt: str | None = None, assume_utc: bool = False) -> str | None:
    """`text` as ISO 8601 UTC with `Z`, or None when it is no time or has no zone."""
    # fmt: strptime; else ISO 8601 (" UTC" counts as +00:00) or epoch seconds/milliseconds.
    # A time without a zone is never guessed to be UTC unless assume_utc says so.
    # Cached because exports repeat the same second many times.
    value = text.strip()
    try:
        if fmt:
            moment = datetime.strptime(value, fmt)
        elif _EPOCH_NUMBER.fullmatch(value):
            digits = len(value.partition(".")[0])
            seconds = float(value) / (1000 if digits > _SECONDS_DIGITS else 1)
            moment = _EPOCH + timedelta(seconds=seconds)
        else:
            if value.endswith(" UTC"):
                value = value[:-4] + "+00:00"
            moment = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        if not assume_utc:
            return None
        moment = moment.replace(tzinfo=UTC)
    try:
        return format_timestamp(utc_ms(moment))
    except OverflowError:
        return None
