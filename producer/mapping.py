"""Column mappings: how a row of another tool's export becomes an event in our wire schema.

A value that cannot be converted is kept as it was (or left null when absent), so the
worker quarantines the line with a reason; the producer never drops or repairs a row.
Besides the wire fields a mapping may name a `zone` column: the IANA zone or offset in which
that row's times without a zone are read (else the timestamp rule's default zone).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from producer.timestamps import normalise_timestamp, parse_zone

WIRE_FIELDS = (
    "event_id",
    "user_id",
    "session_id",
    "action",
    "category",
    "product",
    "amount",
    "timestamp",
    "user_agent",
)
# Read from a row but not sent: the zone of the row's times that carry none.
ZONE_FIELD = "zone"
_NUMBER_FIELDS = frozenset({"amount"})


@dataclass(frozen=True, slots=True)
class FieldRule:
    """Where one wire field comes from and how its value is translated."""

    columns: tuple[str, ...]
    join: str | None = None  # None: first non-empty column wins; else all non-empty joined
    values: Mapping[str, str] = field(default_factory=dict)
    only_for_actions: frozenset[str] | None = None
    timestamp_format: str | None = None
    default_zone: str | None = None  # times without a zone (and epoch numbers) are read in it


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Rules per wire field; a field without a rule is null."""

    name: str
    rules: Mapping[str, FieldRule]
    file_format: str | None = None  # the format the mapping is meant for, e.g. "csv"
    records: str | None = None  # record path of nested exports, e.g. "events" (see producer.importer)
    unpriced_purchases: bool = False  # the export's purchases carry no amount (stored without one)

    def __post_init__(self) -> None:
        unknown = set(self.rules) - {*WIRE_FIELDS, ZONE_FIELD}
        if unknown:
            raise ValueError(f"mapping {self.name!r} targets unknown field(s): {sorted(unknown)}")
        for rule in self.rules.values():
            if rule.default_zone is not None and parse_zone(rule.default_zone) is None:
                raise ValueError(
                    f"mapping {self.name!r}: unknown zone {rule.default_zone!r};"
                    " expected an IANA name such as Europe/Berlin, an offset such as +02:00, or UTC"
                )

    @classmethod
    def identity(cls) -> ColumnMapping:
        """Columns named like the wire fields map to them."""
        return cls("identity", {name: FieldRule((name,)) for name in WIRE_FIELDS})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str = "custom") -> ColumnMapping:
        """Build from the JSON mapping format (see producer/presets/rees46.json)."""
        rules = {target: _rule_from_json(spec) for target, spec in data["fields"].items()}
        return cls(
            str(data.get("name", name)),
            rules,
            data.get("format"),
            data.get("records"),
            bool(data.get("unpriced_purchases", False)),
        )

    def updated(
        self,
        columns: Mapping[str, str] | None = None,
        values: Mapping[str, Mapping[str, str]] | None = None,
        *,
        timestamp_format: str | None = None,
        default_zone: str | None = None,
    ) -> ColumnMapping:
        """A copy with columns, value translations and timestamp options overridden."""
        rules = dict(self.rules)
        for target, source in (columns or {}).items():
            old = rules.get(target)
            rule = FieldRule(tuple(c.strip() for c in source.split(",")))
            rules[target] = replace(old, columns=rule.columns) if old else rule
        for target, table in (values or {}).items():
            rule = rules.get(target) or FieldRule((target,))
            rules[target] = replace(rule, values={**rule.values, **table})
        if "timestamp" in rules and (timestamp_format or default_zone):
            rule = rules["timestamp"]
            rules["timestamp"] = replace(
                rule,
                timestamp_format=timestamp_format or rule.timestamp_format,
                default_zone=default_zone or rule.default_zone,
            )
        return ColumnMapping(self.name, rules, self.file_format, self.records, self.unpriced_purchases)


def _rule_from_json(spec: str | Mapping[str, Any]) -> FieldRule:
    if isinstance(spec, str):
        return FieldRule((spec,))
    columns = spec.get("columns", spec.get("column"))
    only = spec.get("only_for_actions")
    return FieldRule(
        columns=(columns,) if isinstance(columns, str) else tuple(columns),
        join=spec.get("join"),
        values=dict(spec.get("values", {})),
        only_for_actions=frozenset(only) if only is not None else None,
        timestamp_format=spec.get("format"),
        # "assume_utc": true is how mapping files said "default_zone": "UTC" before zones.
        default_zone=spec.get("default_zone") or ("UTC" if spec.get("assume_utc") else None),
    )


def preset_names() -> list[str]:
    """Names of the built-in mappings in producer/presets."""
    folder = resources.files("producer") / "presets"
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def load_preset(name: str) -> ColumnMapping:
    """A built-in mapping by name, e.g. "rees46"."""
    if name not in preset_names():
        raise ValueError(f"no preset {name!r}; available: {', '.join(preset_names())}")
    text = (resources.files("producer") / "presets" / f"{name}.json").read_text("utf-8")
    return ColumnMapping.from_dict(json.loads(text), name=name)


def load_mapping_file(path: Path) -> ColumnMapping:
    """A mapping from a JSON file in the preset format."""
    return ColumnMapping.from_dict(json.loads(path.read_text("utf-8")), name=path.stem)


def parse_value_options(options: Sequence[str]) -> dict[str, dict[str, str]]:
    """Turn ["action:cart=add_to_cart", ...] into {"action": {"cart": "add_to_cart"}}."""
    tables: dict[str, dict[str, str]] = {}
    for option in options:
        target, colon, pair = option.partition(":")
        raw, equals, ours = pair.partition("=")
        if not (colon and equals and target.strip()):
            raise ValueError(f"expected FIELD:RAW=OURS, got {option!r}")
        tables.setdefault(target.strip(), {})[raw] = ours
    return tables


def parse_map_options(options: Sequence[str]) -> dict[str, str]:
    """Turn ["user_id=uid", "category=category_code,category_id"] into {field: columns}."""
    columns: dict[str, str] = {}
    for option in options:
        target, equals, source = option.partition("=")
        if not (equals and target.strip() and source.strip()):
            raise ValueError(f"expected FIELD=COLUMN[,FALLBACK...], got {option!r}")
        columns[target.strip()] = source
    return columns


def map_record(record: Mapping[str, Any], mapping: ColumnMapping) -> dict[str, Any]:
    """One row as a wire object (all fields, in wire order); bad values stay raw."""
    event: dict[str, Any] = {}
    for name in WIRE_FIELDS:
        rule = mapping.rules.get(name)
        if rule is None:
            event[name] = None
        elif name == "timestamp":
            event[name] = _convert_timestamp(_pick(record, rule), rule, _row_zone(record, mapping))
        else:
            event[name] = _convert(name, _pick(record, rule), rule)
    for name, rule in mapping.rules.items():
        if rule.only_for_actions is not None and event["action"] not in rule.only_for_actions:
            event[name] = None
    return event


def map_timestamp(record: Mapping[str, Any], mapping: ColumnMapping) -> Any:
    """The wire timestamp of one row, as map_record gives it, without mapping the other fields."""
    rule = mapping.rules.get("timestamp")
    return None if rule is None else _convert_timestamp(_pick(record, rule), rule, _row_zone(record, mapping))


def _row_zone(record: Mapping[str, Any], mapping: ColumnMapping) -> str | None:
    """The row's zone column if it holds text, else None (the timestamp rule's default zone applies)."""
    rule = mapping.rules.get(ZONE_FIELD)
    if rule is None:
        return None
    value = _pick(record, rule)
    # A zone that is no text cannot be read; as text it fails parse_zone, and the time stays raw.
    return None if value is None else str(value)


def _pick(record: Mapping[str, Any], rule: FieldRule) -> Any:
    present = [record.get(c) for c in rule.columns if not _is_empty(record.get(c))]
    if not present:
        return None
    if rule.join is None:
        return present[0]
    return rule.join.join(_as_text(v) for v in present)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _as_text(value: Any) -> Any:
    """Numbers from an export become their text; other non-strings stay for the worker to reject."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _convert(name: str, value: Any, rule: FieldRule) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and value in rule.values:
        return rule.values[value]
    if name in _NUMBER_FIELDS:
        return _as_number(value)
    return _as_text(value)


def _convert_timestamp(value: Any, rule: FieldRule, row_zone: str | None) -> Any:
    """An ISO 8601 time with its own offset, or the value as it was when it cannot be placed."""
    if isinstance(value, str) and value in rule.values:
        return rule.values[value]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return value
    text = value if isinstance(value, str) else repr(value)
    return normalise_timestamp(text, rule.timestamp_format, row_zone or rule.default_zone) or value


def _as_number(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


def resolve_mapping(
    *,
    preset: str | None = None,
    mapping_file: Path | None = None,
    columns: Sequence[str] = (),
    values: Sequence[str] = (),
    timestamp_format: str | None = None,
    default_zone: str | None = None,
) -> ColumnMapping | None:
    """The mapping the import options describe, or None to read our own format as is."""
    # --map/--value adjust the preset or file; alone they start from the identity mapping,
    # so columns already named like wire fields need no --map.
    if preset and mapping_file:
        raise ValueError("give either a preset or a mapping file, not both")
    base = load_preset(preset) if preset else load_mapping_file(mapping_file) if mapping_file else None
    if not (columns or values or timestamp_format or default_zone):
        return base
    return (base or ColumnMapping.identity()).updated(
        parse_map_options(columns),
        parse_value_options(values),
        timestamp_format=timestamp_format,
        default_zone=default_zone,
    )
