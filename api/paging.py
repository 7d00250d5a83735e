"""Keyset paging: an opaque cursor holds the last row's sort key, so every page is one index range scan."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


class BadCursor(ValueError):
    """The cursor was not made by this API for this listing."""


def encode_cursor(kind: str, *key: Any) -> str:
    """An opaque cursor: URL-safe base64 of the listing's name and the last row's sort key."""
    return base64.urlsafe_b64encode(orjson.dumps([kind, *key])).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, types: tuple[type, ...]) -> tuple[Any, ...]:
    """The sort key in a cursor of this listing, checked against types; BadCursor otherwise."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadCursor("the cursor is not one this API made") from None
    if not isinstance(value, list) or len(value) != len(types) + 1 or value[0] != kind:
        raise BadCursor(f"the cursor does not belong to this listing ({kind})")
    key = tuple(value[1:])
    for item, expected in zip(key, types, strict=True):
        # bool is an int in Python; no sort key here is a bool
        if not isinstance(item, expected) or isinstance(item, bool):
            raise BadCursor("the cursor is not one this API made")
    return key
