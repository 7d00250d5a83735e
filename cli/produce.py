"""The `produce` and `import` commands: read options and settings, then call the producer."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from tqdm import tqdm

from cli.errors import load_settings, require_broker
from config.settings import Settings
from contract.wire import broker_client
from producer.delivery import Outcome
from producer.early_warning import EarlyWarning, FirstBatchesWatch
from producer.faults import FaultRates, parse_assignments
from producer.generator import RunSummary, plan_run, run_generator
from producer.importer import FileFormat, ImportSummary, detect_format, parse_record_path
from producer.importer import import_file as import_path
from producer.labels import LabelWriter
from producer.mapping import preset_names, resolve_mapping
from producer.publisher import BrokerAuthError, Publisher
from producer.scenarios import DEFAULT_MIX, SCENARIOS
from producer.timestamps import format_timestamp
from store.db import create_reader_engine

BatchSize = Annotated[
    int | None,
    typer.Option(min=1, max=100_000, help="Lines per batch (default: ECOMRISK_BATCH_SIZE)."),
]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")]


def produce(
    count: Annotated[
        int | None,
        typer.Option(min=1, help="Stop after N events; without --rate they go as fast as possible."),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            min=0.001, help="Events/s; event time follows the wall clock (default: ECOMRISK_PRODUCER_RATE)."
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=0, help="Stop after S seconds (default: run until Ctrl-C).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(min=0, help="Same seed: same users, events, ids and faults.")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(help="ISO 8601 time of the first simulated moment (no zone means UTC)."),
    ] = None,
    batch_size: BatchSize = None,
    users: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Concurrent users of a paced run, or the users of a --count run (default: sized from it).",
        ),
    ] = None,
    persona: Annotated[
        list[str] | None,
        typer.Option(
            help="Share of users, e.g. --persona bot=0.2 (a persona: its sub-types keep their proportions) "
            f"or --persona stake_chaser=0.05 (a sub-type: {', '.join(SCENARIOS)}). Repeat."
        ),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Fault rate per event, e.g. --fault not_json=0.02 (repeat)."),
    ] = None,
    no_faults: Annotated[bool, typer.Option("--no-faults", help="Inject no faults.")] = False,
    progress: Progress = True,
) -> None:
    """Simulate shoppers, gamblers and bots of every sub-type, and publish their events for ingestion."""
    settings = _settings(batch_size)
    try:
        rates = FaultRates.none() if no_faults else FaultRates()
        config = plan_run(
            settings,
            count=count,
            rate=rate,
            duration_s=duration,
            seed=seed,
            start=_parse_start(start) if start else None,
            users=users,
            mix=DEFAULT_MIX.with_shares(parse_assignments(persona or [])),
            rates=rates.with_rates(parse_assignments(fault or [])),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    publisher = Publisher(broker_client(settings), settings)
    with sigterm_as_interrupt(), refusal_reported():
        summary = run_generator(
            config, publisher=publisher, labels=LabelWriter(settings.labels_path), progress=progress
        )
    typer.echo(_describe_run(summary, settings))


def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="File to import.")],
    preset: Annotated[
        str | None, typer.Option(help=f"Built-in mapping ({', '.join(preset_names())}).")
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Mapping JSON file (preset format)."),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="FIELD=COLUMN[,FALLBACK...], e.g. --map timestamp=event_time."),
    ] = None,
    value: Annotated[
        list[str] | None,
        typer.Option(help="Value translation FIELD:RAW=OURS, e.g. --value action:cart=add_to_cart."),
    ] = None,
    file_format: Annotated[
        FileFormat | None, typer.Option("--format", help="Default: from the suffix or content.")
    ] = None,
    records: Annotated[
        str | None,
        typer.Option(
            help="Key of the list of events inside each line (a dotted path reaches deeper), e.g."
            " --records events; a key an event lacks is read from its parent."
        ),
    ] = None,
    timestamp_format: Annotated[
        str | None, typer.Option(help="strptime format of the source timestamps.")
    ] = None,
    default_zone: Annotated[
        str | None,
        typer.Option(
            help="Zone of source times without one, and the local offset of epoch times: an IANA name"
            " (Europe/Berlin), an offset (+02:00) or UTC; a --map zone=COLUMN value wins."
        ),
    ] = None,
    assume_utc: Annotated[
        bool, typer.Option("--assume-utc", help="Source times without a zone are UTC (--default-zone UTC).")
    ] = False,
    historical: Annotated[
        bool,
        typer.Option(
            "--historical",
            help="A file of history: no past window; no time beyond the earlier of the file's newest"
            " event and the workers' clock (plus ECOMRISK_MAX_FUTURE_SKEW_S).",
        ),
    ] = False,
    unpriced_purchases: Annotated[
        bool,
        typer.Option(
            "--unpriced-purchases",
            help="The export's purchases carry no price: store them without an amount (counted, no spend).",
        ),
    ] = False,
    batch_size: BatchSize = None,
    progress: Progress = True,
) -> None:
    """Publish a file: our NDJSON or JSON as is, other exports through a column mapping."""
    settings = _settings(batch_size)
    if assume_utc and default_zone:
        raise typer.BadParameter("--assume-utc is --default-zone UTC: give one of them")
    try:
        column_mapping = resolve_mapping(
            preset=preset,
            mapping_file=mapping,
            columns=map_ or [],
            values=value or [],
            timestamp_format=timestamp_format,
            default_zone="UTC" if assume_utc else default_zone,
        )
        record_path = records or (column_mapping.records if column_mapping else None)
        keys = parse_record_path(record_path) if record_path else None
    except (ValueError, KeyError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    file_format = file_format or detect_format(file)
    if keys and file_format is FileFormat.CSV:
        raise typer.BadParameter(f"--records {record_path} needs a JSON or NDJSON file, not CSV")
    publisher = Publisher(broker_client(settings), settings)
    engine = create_reader_engine(settings.resolved_database_url)
    if historical:
        typer.echo(f"--historical: reading {file.name} once for its newest event first", err=True)
    try:
        with refusal_reported():
            summary = import_path(
                file,
                publisher,
                batch_size=settings.batch_size,
                mapping=column_mapping,
                file_format=file_format,
                records=keys,
                historical=historical,
                unpriced_purchases=unpriced_purchases,
                progress=progress,
                watch=FirstBatchesWatch(engine),
                on_warning=_print_warning,
            )
    finally:
        engine.dispose()
    typer.echo(_describe_import(summary, settings))


def _print_warning(warning: EarlyWarning) -> None:
    tqdm.write(warning.message(), file=sys.stderr)  # above the progress bar, not through it


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM (docker stop, systemd, kill) stops a run exactly as Ctrl-C does."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def refusal_reported() -> Iterator[None]:
    """A broker that refuses the password ends the command with one line, not a traceback."""
    try:
        yield
    except BrokerAuthError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _settings(batch_size: int | None) -> Settings:
    """The checked settings with a broker; --batch-size overrides ECOMRISK_BATCH_SIZE."""
    settings = load_settings()
    require_broker(settings)
    return settings.model_copy(update={"batch_size": batch_size}) if batch_size else settings


def _parse_start(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"--start {text!r} is not an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _describe_run(summary: RunSummary, settings: Settings) -> str:
    expected = summary.expected
    quarantined = {k: n for k, n in expected.items() if k not in set(Outcome)}
    reasons = ", ".join(f"{k} {n:,}" for k, n in sorted(quarantined.items()))
    lines = [
        f"Run {summary.run_id} (seed {summary.seed}, {summary.population:,} "
        + ("users)" if summary.cohort else "concurrent users)")
        + (" - interrupted" if summary.interrupted else ""),
        f"Published {summary.batches:,} batches, {summary.lines:,} lines from "
        f"{summary.events:,} events: {summary.first_batch} .. {summary.last_batch}",
        f"Expected: stored {expected[Outcome.STORED]:,}, duplicate {expected[Outcome.DUPLICATE]:,}, "
        f"quarantined {sum(quarantined.values()):,}" + (f" ({reasons})" if reasons else ""),
        f"Raw batches: {settings.raw_dir}",
        f"Labels: {settings.labels_path} (+{summary.users:,} users)",
    ]
    return "\n".join(lines)


def _describe_import(summary: ImportSummary, settings: Settings) -> str:
    blank = f" ({summary.blank_lines:,} blank, not counted)" if summary.blank_lines else ""
    lines = [
        f"Imported {summary.path} as {summary.file_format} (sha256 {summary.digest[:12]})",
        f"Published {summary.batches:,} batches, {summary.lines:,} lines{blank}: "
        f"{summary.first_batch} .. {summary.last_batch}",
    ]
    if summary.records is not None:
        parents = summary.parents
        lines.append(
            f"Records at {'.'.join(summary.records)!r}: {parents.parents:,} parent lines,"
            f" {parents.empty:,} with an empty list (no lines), {parents.malformed:,} without a list"
            " (published as read, one line each)"
        )
    mode = summary.mode
    if mode.historical:
        newest = (
            "no line has a readable time"
            if mode.history_end_ms is None
            else f"newest event {format_timestamp(mode.history_end_ms)}"
        )
        lines.append(f"Historical: no past window; {newest}")
    if mode.unpriced_purchases:
        lines.append("Purchases without an amount are stored without one (counted, no spend)")
    lines += [
        f"Generated ids: {summary.generated_ids:,} ({summary.repeated_rows:,} repeat earlier rows)",
        f"Raw batches: {settings.raw_dir}",
    ]
    return "\n".join(lines)
