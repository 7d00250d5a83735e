"""ISO 8601 timestamps as the wire carries them: milliseconds, `Z` or the time's own numeric offset."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contract.wire import utc_ms

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NUMBER = re.compile(r"[0-9]{9,13}(\.[0-9]+)?")
_OFFSET = re.compile(r"([+-])([0-9]{2}):?([0-9]{2})")
_UTC_NAMES = frozenset({"UTC", "Z", "GMT"})
# Epoch values with more digits than this are milliseconds, fewer are seconds.
_SECONDS_DIGITS = 11


def format_timestamp(ts_ms: int, offset_min: int | None = None) -> str:
    """ISO 8601 with milliseconds: `Z` when offset_min is None, else that numeric offset."""
    moment = _EPOCH + timedelta(milliseconds=ts_ms)
    if offset_min is None:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.astimezone(timezone(timedelta(minutes=offset_min))).isoformat(timespec="milliseconds")


@lru_cache(maxsize=1024)
def parse_zone(name: str) -> tzinfo | None:
    """An IANA zone (`Europe/Berlin`), a numeric offset (`+02:00`, `-0500`) or UTC; None if unknown."""
    text = name.strip()
    if text.upper() in _UTC_NAMES:
        return UTC
    if offset := _OFFSET.fullmatch(text):
        sign, hours, minutes = offset.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta >= timedelta(hours=24):
            return None
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: not a zone key at all, e.g. "../x"
        return None


@lru_cache(maxsize=65_536)
def normalise_timestamp(text: str, fmt: str | None = None, zone: str | None = None) -> str | None:
    """`text` as ISO 8601 with its own offset, or None when it is no time or cannot be placed."""
    # fmt: strptime; else ISO 8601 (" UTC" counts as +00:00) or epoch seconds/milliseconds.
    # A time with an offset keeps it. A time without one (or an epoch number: an instant without
    # a local zone) is read in `zone`, an IANA name or an offset, per instant, so DST is right.
    # Without a zone a local time is never guessed (None); an epoch number goes out in UTC.
    # Cached because exports repeat the same second many times.
    value = text.strip()
    try:
        if fmt:
            moment = datetime.strptime(value, fmt)
        elif _EPOCH_NUMBER.fullmatch(value):
            digits = len(value.partition(".")[0])
            seconds = float(value) / (1000 if digits > _SECONDS_DIGITS else 1)
            moment = _EPOCH + timedelta(seconds=seconds)
            if zone is not None:
                local = parse_zone(zone)
                if local is None:
                    return None
                moment = moment.astimezone(local)
        else:
            if value.endswith(" UTC"):
                value = value[:-4] + "+00:00"
            moment = datetime.fromisoformat(value)
        if moment.tzinfo is None or moment.utcoffset() is None:
            local = parse_zone(zone) if zone is not None else None
            if local is None:
                return None
            # fold=0: an hour repeated when clocks go back is read as its first (summer) pass,
            # and a time skipped when they go forward with the offset before the change (PEP 495).
            moment = moment.replace(tzinfo=local)
        offset = moment.utcoffset()
        assert offset is not None
        offset_min = round(offset.total_seconds() / 60)  # the wire has whole minutes (old local mean times)
        return format_timestamp(utc_ms(moment), offset_min or None)
    except (ValueError, OverflowError):
        return None


def wire_timestamp_ms(text: str) -> int | None:
    """Epoch ms of a wire timestamp (ISO 8601 with an offset), read as a worker reads it; else None."""
    try:
        moment = datetime.fromisoformat(text.strip())
        return None if moment.utcoffset() is None else utc_ms(moment)
    except (ValueError, OverflowError):
        return None
