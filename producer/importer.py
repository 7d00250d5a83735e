"""Import files through the publisher: our NDJSON verbatim, JSON arrays, mapped CSV/JSON exports.

Event ids of imported rows: a mapped row without an event id gets `imp-<h>-<k>`, where h is
the first 20 hex digits of SHA-256 over the row's mapped content (canonical JSON with sorted
keys, event_id left out) and k counts the earlier rows of the same file with identical mapped
content (0 for the first). Fully identical rows therefore stay distinct events, and importing
the same file again gives the same ids, so the store does not change. Batch ids are
`imp-<first 12 hex digits of SHA-256 of the file bytes>-<seq:06d>`, so a re-import reuses them.

Our own NDJSON lines, and the elements of a JSON array read without a mapping, pass through
verbatim, broken ones included, and keep whatever ids they carry. Files are streamed: memory
grows by 8 bytes per row with a generated id (the occurrence index), not with the file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from itertools import chain, islice
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np
import numpy.typing as npt
import orjson
from tqdm import tqdm

from producer.mapping import ColumnMapping, map_record
from producer.publisher import Publisher

_READ_CHUNK = 1 << 20
# A JSON array element that is still incomplete after this many characters is malformed.
_MAX_ELEMENT_CHARS = 64 << 20
# Rows of a CSV export may carry long free text; the csv module's default cap is 128 KiB.
_CSV_FIELD_LIMIT = 16 << 20


class FileFormat(StrEnum):
    """What an import file holds."""

    NDJSON = "ndjson"
    JSON = "json"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class Verbatim:
    """A line that goes to the worker exactly as read."""

    text: str


@dataclass
class ImportSummary:
    """What an import published."""

    path: Path
    file_format: FileFormat
    digest: str
    batches: int = 0
    lines: int = 0
    generated_ids: int = 0
    repeated_rows: int = 0
    first_batch: str | None = None
    last_batch: str | None = None


class OccurrenceIndex:
    """Counts earlier occurrences of 64-bit content keys, kept as sorted numpy runs."""

    def __init__(self) -> None:
        self._runs: list[npt.NDArray[np.uint64]] = []

    def count_and_add(self, keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """For each key, how many equal keys came before it (earlier chunks, then this one)."""
        n = len(keys)
        order = np.argsort(keys, kind="stable")  # stable: equal keys keep file order
        ordered = keys[order]
        starts = np.ones(n, dtype=bool)
        starts[1:] = ordered[1:] != ordered[:-1]
        group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
        within = np.empty(n, dtype=np.int64)
        within[order] = np.arange(n) - group_start
        earlier = np.zeros(n, dtype=np.int64)
        for run in self._runs:
            earlier += np.searchsorted(run, keys, "right") - np.searchsorted(run, keys, "left")
        self._add(ordered)
        return earlier + within

    def _add(self, ordered: npt.NDArray[np.uint64]) -> None:
        # Merge runs of similar size (as a binary counter): few runs, linear work per level.
        self._runs.append(ordered)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            newer, older = self._runs.pop(), self._runs.pop()
            self._runs.append(np.sort(np.concatenate([older, newer]), kind="stable"))


def file_digest(path: Path) -> str:
    """SHA-256 of the file bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def detect_format(path: Path) -> FileFormat:
    """The format by suffix (.ndjson/.jsonl/.csv), else by the first non-blank character."""
    suffix = path.suffix.lower()
    if suffix in (".ndjson", ".jsonl"):
        return FileFormat.NDJSON
    if suffix == ".csv":
        return FileFormat.CSV
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        return FileFormat.JSON
    if head.startswith(b"{") or suffix == ".json":
        return FileFormat.NDJSON
    return FileFormat.CSV


def content_id(event: dict[str, Any], occurrence: int) -> str:
    """The import id of a mapped event: hash of its content without event_id, plus occurrence."""
    return _import_id(_content_digest(event), occurrence)


def _import_id(digest: bytes, occurrence: int) -> str:
    return f"imp-{digest.hex()[:20]}-{occurrence}"


def _content_digest(event: dict[str, Any]) -> bytes:
    content = {k: v for k, v in event.items() if k != "event_id"}
    try:
        canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits or lone surrogates: stdlib json copes
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode(
            "utf-8", "surrogateescape"
        )
    return hashlib.sha256(canonical).digest()


def dump_value(value: Any) -> str:
    """A JSON value as one compact line; lone surrogates survive for the worker to reject."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Chunk:
    """The wire lines of consecutive rows, and how many of them got a generated id."""

    lines: list[str]
    generated_ids: int = 0
    repeated_rows: int = 0


def iter_chunks(
    raw: BinaryIO, *, file_format: FileFormat, mapping: ColumnMapping | None, chunk_rows: int
) -> Iterator[Chunk]:
    """The wire lines of an open file, chunk_rows at a time, one line per row or element."""
    if file_format is FileFormat.CSV:
        mapping = mapping or ColumnMapping.identity()
    index = OccurrenceIndex()
    records = _records(raw, file_format, parse=mapping is not None)
    while rows := list(islice(records, chunk_rows)):
        yield _chunk_of(rows, mapping, index)


def _records(raw: BinaryIO, file_format: FileFormat, *, parse: bool) -> Iterator[Any]:
    if file_format is FileFormat.CSV:
        csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
        # A mapped row becomes a new JSON line, so undecodable bytes turn into U+FFFD here.
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
        try:
            yield from csv.DictReader(text)
        finally:
            text.detach()  # the caller owns the binary file and still reads its position
    elif file_format is FileFormat.JSON:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape")
        try:
            yield from read_json_array(text)
        finally:
            text.detach()
    else:
        for line in raw:
            text_line = line.removesuffix(b"\n").decode("utf-8", "surrogateescape")
            yield _parse_line(text_line) if parse else Verbatim(text_line)


def _parse_line(line: str) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return Verbatim(line)


def _chunk_of(rows: list[Any], mapping: ColumnMapping | None, index: OccurrenceIndex) -> Chunk:
    lines: list[str | None] = []
    unnamed: list[tuple[int, dict[str, Any], bytes]] = []
    for item in rows:
        if isinstance(item, Verbatim):
            lines.append(item.text)
        elif mapping is None or not isinstance(item, dict):
            lines.append(dump_value(item))
        else:
            event = map_record(item, mapping)
            if event["event_id"] is None:
                unnamed.append((len(lines), event, _content_digest(event)))
                lines.append(None)
            else:
                lines.append(dump_value(event))
    if not unnamed:
        return Chunk([line for line in lines if line is not None])
    keys = np.array([int.from_bytes(d[:8], "big") for _, _, d in unnamed], dtype=np.uint64)
    occurrences = index.count_and_add(keys)
    for (pos, event, digest), k in zip(unnamed, occurrences, strict=True):
        event["event_id"] = _import_id(digest, int(k))
        lines[pos] = dump_value(event)
    done = [line for line in lines if line is not None]
    return Chunk(done, len(unnamed), int(np.count_nonzero(occurrences)))


def read_json_array(text: TextIO) -> Iterator[Any]:
    """Stream the elements of a top-level JSON array; an unreadable rest comes as Verbatim lines."""
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    buffer, pos, eof = "", 0, False

    def fill() -> bool:
        nonlocal buffer, pos, eof
        chunk = text.read(_READ_CHUNK)
        buffer, pos, eof = buffer[pos:] + chunk, 0, not chunk
        return bool(chunk)

    def skip(chars: str) -> None:
        nonlocal pos
        while True:
            while pos < len(buffer) and buffer[pos] in chars:
                pos += 1
            if pos < len(buffer) or not fill():
                return

    skip(" \t\r\n")
    if buffer[pos : pos + 1] != "[":
        yield from _verbatim_rest(buffer[pos:], text)
        return
    pos += 1
    while True:
        skip(" \t\r\n,")
        if pos >= len(buffer):
            return  # no closing bracket: every complete element was read
        if buffer[pos] == "]":
            pos += 1
            skip(" \t\r\n")
            yield from _verbatim_rest(buffer[pos:], text)
            return
        try:
            value, end = decoder.raw_decode(buffer, pos)
            complete = end < len(buffer) or eof  # a number may go on in the next chunk
        except ValueError:
            value, complete = None, False
        if complete:
            yield value
            pos = end
        elif eof or len(buffer) - pos > _MAX_ELEMENT_CHARS:
            yield from _verbatim_rest(buffer[pos:], text)
            return
        else:
            fill()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _verbatim_rest(head: str, text: TextIO) -> Iterator[Verbatim]:
    """Whatever follows as raw lines, so the worker quarantines it instead of it being lost."""
    pending = ""
    for chunk in chain([head], iter(lambda: text.read(_READ_CHUNK), "")):
        *complete, pending = (pending + chunk).split("\n")
        yield from (Verbatim(line) for line in complete if line.strip())
    if pending.strip():
        yield Verbatim(pending)


def import_file(
    path: Path,
    publisher: Publisher,
    *,
    batch_size: int,
    mapping: ColumnMapping | None = None,
    file_format: FileFormat | None = None,
    progress: bool = True,
) -> ImportSummary:
    """Publish a file in batches of batch_size lines through the publisher."""
    file_format = file_format or detect_format(path)
    digest = file_digest(path)
    summary = ImportSummary(path, file_format, digest)
    source = f"import:{path.name}"
    with (
        open(path, "rb") as raw,
        tqdm(
            total=path.stat().st_size, unit="B", unit_scale=True, file=sys.stderr, disable=not progress
        ) as bar,
    ):
        chunks = iter_chunks(raw, file_format=file_format, mapping=mapping, chunk_rows=batch_size)
        for seq, chunk in enumerate(chunks, start=1):
            batch_id = f"imp-{digest[:12]}-{seq:06d}"
            publisher.publish(batch_id, chunk.lines, source=source)
            summary.batches += 1
            summary.lines += len(chunk.lines)
            summary.generated_ids += chunk.generated_ids
            summary.repeated_rows += chunk.repeated_rows
            summary.first_batch = summary.first_batch or batch_id
            summary.last_batch = batch_id
            bar.update(raw.tell() - bar.n)
    return summary
