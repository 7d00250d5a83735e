"""The task wire format: orjson bodies, compressed, that round-trip any batch text exactly."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kombu.compression import compress, decompress
from kombu.serialization import dumps, loads

from contract.wire import (
    COMPRESSION,
    SERIALIZER,
    SERIALIZER_CONTENT_TYPE,
    is_blank_line,
    register_wire_formats,
)

register_wire_formats()


def round_trip(kwargs: dict[str, object]) -> object:
    content_type, encoding, body = dumps(kwargs, serializer=SERIALIZER)
    assert content_type == SERIALIZER_CONTENT_TYPE
    packed, compression = compress(body, COMPRESSION)
    return loads(decompress(packed, compression), content_type, encoding, accept=[content_type])


# Any text, lone surrogates included: the importer keeps non-UTF-8 bytes as surrogate escapes.
@given(st.text(alphabet=st.characters(codec=None)), st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_any_batch_text_round_trips(raw_text: str, produced_ms: int) -> None:
    kwargs = {"batch_id": "b", "raw_text": raw_text, "source": "s", "produced_ms": produced_ms}
    assert round_trip(kwargs) == kwargs


def test_a_surrogate_falls_back_to_stdlib_json() -> None:
    text = "ok\udcff"
    content_type, encoding, body = dumps([text], serializer=SERIALIZER)
    assert body == json.dumps([text]).encode()
    assert loads(body, content_type, encoding, accept=[content_type]) == [text]


def test_a_batch_shrinks() -> None:
    line = '{"event_id":"e-%06d","user_id":"u-17","action":"view","timestamp":"2026-01-01T00:00:00Z"}'
    body = dumps([[], {"raw_text": "\n".join(line % i for i in range(2_000))}, {}], serializer=SERIALIZER)[2]
    packed, _ = compress(body, COMPRESSION)
    assert len(packed) * 4 < len(body)


@pytest.mark.parametrize("line", ["", " ", "\t", "\r", "\n", " \t\r "])
def test_json_white_space_alone_is_a_blank_line(line: str) -> None:
    assert is_blank_line(line)


@pytest.mark.parametrize(
    "line", ["\x0c", "\x1f", "\x0b", "\x85", "\u00a0", "\u2028", "\ufeff", " {} ", "\t\x0c"]
)
def test_anything_else_is_a_line(line: str) -> None:
    assert not is_blank_line(line)
