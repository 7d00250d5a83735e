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

With a record path (`--records events`) each NDJSON line or array element is a parent whose
list at that path holds the records: each record is one row, and a mapping that names a key
the record lacks reads it from the parent (then the grandparent). A parent that is no JSON
object or has no list there goes out as it was read, one line the worker accounts for.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain, islice
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import numpy as np
import numpy.typing as npt
import orjson
from tqdm import tqdm

from contract.wire import LIVE, BatchMode, is_blank_line
from producer.early_warning import EarlyWarning, FirstBatchesWatch
from producer.mapping import ColumnMapping, map_record, map_timestamp
from producer.publisher import Publisher
from producer.timestamps import wire_timestamp_ms

_READ_CHUNK = 1 << 20
UTF8_BOM = b"\xef\xbb\xbf"
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


@dataclass(frozen=True, slots=True)
class Parsed:
    """An NDJSON line read as JSON, with its text for when it has to go out as it was read."""

    value: Any
    text: str


@dataclass(frozen=True, slots=True)
class Nested:
    """A record found at the record path, and its parents, innermost first."""

    record: dict[str, Any]
    parents: tuple[dict[str, Any], ...]

    def view(self) -> Mapping[str, Any]:
        """The record's keys, then those of its parents that it does not have."""
        return ChainMap(self.record, *self.parents)


@dataclass
class ParentCount:
    """Parents read through a record path: all of them, those with an empty list, the malformed."""

    parents: int = 0
    empty: int = 0  # a list with no records: zero lines
    malformed: int = 0  # no JSON object or no list at the path: one line, published as read


@dataclass
class ImportSummary:
    """What an import published."""

    path: Path
    file_format: FileFormat
    digest: str
    batches: int = 0
    lines: int = 0  # blank lines included: every line of the raw batch files
    blank_lines: int = 0  # carry no event; the ledger does not count them
    generated_ids: int = 0
    repeated_rows: int = 0
    first_batch: str | None = None
    last_batch: str | None = None
    records: tuple[str, ...] | None = None
    mode: BatchMode = LIVE
    parents: ParentCount = field(default_factory=ParentCount)
    warning: EarlyWarning | None = None  # what the first committed batches said, if alarming


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


def parse_record_path(text: str) -> tuple[str, ...]:
    """ "events" -> ("events",), "data.items" -> ("data", "items"): the keys down to the records list."""
    keys = tuple(key.strip() for key in text.split("."))
    if not all(keys):
        raise ValueError(f"record path {text!r} has an empty key; expected e.g. events or data.items")
    return keys


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

    @property
    def blank_lines(self) -> int:
        """Lines that carry no event (the worker does not count them)."""
        return sum(1 for line in self.lines if is_blank_line(line))


def iter_chunks(
    raw: BinaryIO,
    *,
    file_format: FileFormat,
    mapping: ColumnMapping | None,
    chunk_rows: int,
    records: tuple[str, ...] | None = None,
    parents: ParentCount | None = None,
) -> Iterator[Chunk]:
    """The wire lines of an open file, chunk_rows at a time, one line per row, element or record."""
    if file_format is FileFormat.CSV:
        if records is not None:
            raise ValueError("a record path needs a JSON or NDJSON file, not CSV")
        mapping = mapping or ColumnMapping.identity()
    index = OccurrenceIndex()
    items = _read_rows(raw, file_format, parse=mapping is not None or records is not None)
    if records is not None:
        items = expand_records(items, records, parents or ParentCount())
    while rows := list(islice(items, chunk_rows)):
        yield _chunk_of(rows, mapping, index)


def expand_records(items: Iterator[Any], path: tuple[str, ...], count: ParentCount) -> Iterator[Any]:
    """Each item's records at path, one by one; an item without a list there stays one line."""
    for item in items:
        if isinstance(item, Verbatim):  # not JSON: it goes to the worker as it was read
            if not is_blank_line(item.text):  # a blank line is no parent, and no line of the ledger
                count.parents += 1
                count.malformed += 1
            yield item
            continue
        parent = item.value if isinstance(item, Parsed) else item
        found = _records_at(parent, path)
        count.parents += 1
        if found is None:
            count.malformed += 1
            yield Verbatim(item.text if isinstance(item, Parsed) else dump_value(parent))
            continue
        records, parents = found
        if not records:
            count.empty += 1
        for record in records:
            yield Nested(record, parents) if isinstance(record, dict) else record


def _records_at(document: Any, path: tuple[str, ...]) -> tuple[list[Any], tuple[dict[str, Any], ...]] | None:
    """The list at path inside document, and the objects passed on the way (innermost first)."""
    parents: list[dict[str, Any]] = []
    node = document
    for key in path:
        if not isinstance(node, dict):
            return None
        parents.append(node)
        node = node.get(key)
    if not isinstance(node, list):
        return None
    return node, tuple(reversed(parents))


def newest_event_ms(
    raw: BinaryIO,
    *,
    file_format: FileFormat,
    mapping: ColumnMapping | None,
    records: tuple[str, ...] | None = None,
) -> int | None:
    """The newest event time of an open file, as its wire lines will carry it; None if no line has one."""
    # A first pass of a historical import: times as the mapping makes them, nothing else mapped.
    if file_format is FileFormat.CSV:
        mapping = mapping or ColumnMapping.identity()
    items = _read_rows(raw, file_format, parse=True)
    if records is not None:
        items = expand_records(items, records, ParentCount())
    newest: int | None = None
    for row in items:
        item = row.value if isinstance(row, Parsed) else row
        if isinstance(item, Nested):
            view: Any = item.view() if mapping is not None else item.record
        else:
            view = item
        if not isinstance(view, Mapping):
            continue  # not an event object: quarantined by the worker, whatever its time
        value = map_timestamp(view, mapping) if mapping is not None else view.get("timestamp")
        ts_ms = wire_timestamp_ms(value) if isinstance(value, str) else None
        if ts_ms is not None and (newest is None or ts_ms > newest):
            newest = ts_ms
    return newest


def _read_rows(raw: BinaryIO, file_format: FileFormat, *, parse: bool) -> Iterator[Any]:
    """CSV rows, JSON array elements or NDJSON lines (parsed when asked), in file order."""
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
        for n, line in enumerate(raw):
            if n == 0:
                line = line.removeprefix(UTF8_BOM)  # the file's encoding, not part of its first event
            text_line = line.removesuffix(b"\n").decode("utf-8", "surrogateescape")
            yield _parse_line(text_line) if parse else Verbatim(text_line)


def _parse_line(line: str) -> Parsed | Verbatim:
    try:
        return Parsed(orjson.loads(line), line)
    except orjson.JSONDecodeError:
        return Verbatim(line)


def _chunk_of(rows: list[Any], mapping: ColumnMapping | None, index: OccurrenceIndex) -> Chunk:
    lines: list[str | None] = []
    unnamed: list[tuple[int, dict[str, Any], bytes]] = []
    for row in rows:
        item = row.value if isinstance(row, Parsed) else row
        if isinstance(item, Verbatim):
            lines.append(item.text)
        elif isinstance(item, Nested) and mapping is None:
            lines.append(dump_value(item.record))  # our own format: the record alone, as it was
        elif mapping is None or not isinstance(item, dict | Nested):
            lines.append(dump_value(item))
        else:
            event = map_record(item.view() if isinstance(item, Nested) else item, mapping)
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
        yield from (Verbatim(line) for line in complete if not is_blank_line(line))
    if not is_blank_line(pending):
        yield Verbatim(pending)


def import_file(
    path: Path,
    publisher: Publisher,
    *,
    batch_size: int,
    mapping: ColumnMapping | None = None,
    file_format: FileFormat | None = None,
    records: tuple[str, ...] | None = None,
    historical: bool = False,
    unpriced_purchases: bool = False,
    progress: bool = True,
    watch: FirstBatchesWatch | None = None,
    on_warning: Callable[[EarlyWarning], None] | None = None,
) -> ImportSummary:
    """Publish a file in batches of batch_size lines; a watch reads back the first ones' outcome.

    historical: a file of history, judged without the past window (a first pass finds its
    newest event); unpriced_purchases (or a mapping that declares it): purchases may carry no
    amount. Both travel with every batch and are recorded in the ledger.
    """
    file_format = file_format or detect_format(path)
    digest = file_digest(path)
    history_end_ms = None
    if historical:
        with open(path, "rb") as raw:
            history_end_ms = newest_event_ms(raw, file_format=file_format, mapping=mapping, records=records)
    mode = BatchMode(
        historical=historical,
        history_end_ms=history_end_ms,
        unpriced_purchases=unpriced_purchases or (mapping is not None and mapping.unpriced_purchases),
    )
    summary = ImportSummary(path, file_format, digest, records=records, mode=mode)
    source = f"import:{path.name}"
    with (
        open(path, "rb") as raw,
        tqdm(
            total=path.stat().st_size, unit="B", unit_scale=True, file=sys.stderr, disable=not progress
        ) as bar,
    ):
        chunks = iter_chunks(
            raw,
            file_format=file_format,
            mapping=mapping,
            chunk_rows=batch_size,
            records=records,
            parents=summary.parents,
        )
        for seq, chunk in enumerate(chunks, start=1):
            batch_id = f"imp-{digest[:12]}-{seq:06d}"
            publisher.publish(batch_id, chunk.lines, source=source, mode=mode)
            summary.batches += 1
            summary.lines += len(chunk.lines)
            summary.blank_lines += chunk.blank_lines
            summary.generated_ids += chunk.generated_ids
            summary.repeated_rows += chunk.repeated_rows
            summary.first_batch = summary.first_batch or batch_id
            summary.last_batch = batch_id
            bar.update(raw.tell() - bar.n)
            if watch is not None:
                watch.published(batch_id)
                _note(summary, watch.poll(), on_warning)
        if watch is not None:
            _note(summary, watch.settle(), on_warning)
    return summary


def _note(
    summary: ImportSummary, warning: EarlyWarning | None, on_warning: Callable[[EarlyWarning], None] | None
) -> None:
    if warning is not None:
        summary.warning = warning
        if on_warning is not None:
            on_warning(warning)
