"""`ecomrisk status`, `evaluate` and `reconcile`: read the store, print plain tables."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from config.settings import Settings
from contract.wire import REASON_DESCRIPTIONS, Reason
from producer.reconcile import RawAccount, account_raw_logs
from store.db import create_reader_engine, sqlite_path
from store.summaries import (
    LedgerTotals,
    has_schema,
    latest_alerts,
    ledger_totals,
    quarantine_by_reason,
    quarantine_first_reasons,
)
from store.webhooks import DeliveryRow, read_deliveries
from workers.evaluation import Evaluation, JudgedAt, ReviewPrecision


def open_store(settings: Settings, console: Console) -> Engine | None:
    """A read-only engine, or None (with the reason printed) when there is no database yet."""
    url = settings.resolved_database_url
    path = sqlite_path(url)
    if path is not None and not path.exists():
        console.print(f"No database yet at {path}: start the workers (`ecomrisk up` or `ecomrisk worker`).")
        return None
    engine = create_reader_engine(url)
    if not has_schema(engine):
        console.print("The database has no ecomrisk tables yet: start a worker to create them.")
        return None
    return engine


def format_ms(ms: int | None) -> str:
    """An epoch-millisecond time as UTC ISO text."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def status_table(totals: LedgerTotals, account: RawAccount, dead_letters: int | None) -> Table:
    """Produced versus accounted-for counts; 'missing' must reach 0 after reconcile."""
    table = Table(title="Ledger", show_header=True)
    table.add_column("figure")
    table.add_column("count", justify="right")
    produced = totals.received + account.missing_lines
    for name, value in [
        ("raw batches", account.raw_batches),
        ("batches committed", totals.batches),
        ("produced lines", produced),
        ("received", totals.received),
        ("stored (new)", totals.stored_new),
        ("duplicates", totals.duplicates),
        ("quarantined (held)", totals.held),
        ("released by replay", totals.released),
        ("missing batches", len(account.missing)),
        ("missing lines", account.missing_lines),
        ("dead-lettered batches", dead_letters),
    ]:
        table.add_row(name, "unknown" if value is None else f"{value:,}")  # None: Redis did not answer
    table.caption = f"last batch {format_ms(totals.last_committed_ms)}; " + (
        "balanced" if totals.balanced else "UNBALANCED: received != stored + duplicates + held"
    )
    return table


def print_status(settings: Settings, console: Console, *, dead_letters: int | None, alerts: int = 10) -> None:
    """Ledger totals, quarantine counts by reason, and the latest alerts."""
    engine = open_store(settings, console)
    if engine is None:
        return
    console.print(
        status_table(ledger_totals(engine), account_raw_logs(settings.raw_dir, engine), dead_letters)
    )
    reasons = Table(title="Quarantine by reason (the one each line fails with now)")
    reasons.add_column("reason")
    reasons.add_column("lines", justify="right")
    reasons.add_column("meaning")
    reasons.add_column("first held as")
    history = quarantine_first_reasons(engine)  # lines a replay found failing for another reason
    for reason, count in quarantine_by_reason(engine).items():
        earlier = ", ".join(f"{first} {n:,}" for first, n in sorted(history.get(reason, {}).items()))
        reasons.add_row(reason, f"{count:,}", describe_reason(reason), earlier)
    console.print(reasons)
    feed = Table(title="Latest alerts (entered the high band)")
    for column in ("time", "user", "score", "kind", "reasons"):
        feed.add_column(column)
    for alert in latest_alerts(engine, limit=alerts):
        names = ", ".join(f"{r['name']}={r['value']}" for r in alert["reasons"][:3])
        feed.add_row(
            format_ms(alert["created_ms"]), alert["user_id"], str(alert["score"]), alert["risk_kind"], names
        )
    console.print(feed)
    if settings.webhook_endpoints:
        dead = read_deliveries(engine, dead_only=True, limit=20)
        table = delivery_table(dead, title=f"Dead-lettered webhook deliveries ({len(dead):,} shown)")
        table.caption = "`ecomrisk webhooks retry` sends them again" if dead else "none"
        console.print(table)


def delivery_table(rows: list[DeliveryRow], *, title: str) -> Table:
    """Delivery log rows as a table."""
    table = Table(title=title)
    for column in (
        "alert",
        "endpoint",
        "attempts",
        "status",
        "last attempt",
        "delivered",
        "dead",
        "last error",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r.alert_id),
            r.host,
            str(r.attempts),
            "-" if r.status_code is None else str(r.status_code),
            format_ms(r.last_attempt_ms),
            format_ms(r.delivered_ms),
            format_ms(r.dead_ms),
            (r.last_error or "")[:80],
        )
    return table


def print_review_precision(result: ReviewPrecision, console: Console) -> None:
    """Precision from analyst labels per band, kind and marker; the lowest first."""
    share = "-" if result.precision is None else f"{result.precision:.3f}"
    console.print(
        f"{result.labelled:,} labelled alerts: {result.true_positives:,} confirmed, "
        f"{result.false_positives:,} false positives, precision {share}"
    )
    for title, frame in (
        ("per band", result.by_band),
        ("per kind", result.by_kind),
        ("per marker (lowest first: the weights to lower)", result.by_marker),
    ):
        table = Table(title=f"Precision {title}")
        for column in ("value", "confirmed", "false positives", "precision"):
            table.add_column(column, justify="left" if column == "value" else "right")
        for name, row in frame.iterrows():
            table.add_row(
                str(name),
                f"{int(row['true_positives']):,}",
                f"{int(row['false_positives']):,}",
                f"{row['precision']:.3f}",
            )
        console.print(table)


def describe_reason(code: str) -> str:
    """What a stored reason code means ("" for a code this release does not know)."""
    try:
        return REASON_DESCRIPTIONS[Reason(code)]
    except ValueError:
        return ""


def print_evaluation(
    result: Evaluation,
    labels_path: Path,
    console: Console,
    *,
    judged_at: JudgedAt,
    other: tuple[JudgedAt, Evaluation] | None = None,
) -> None:
    """Confusion matrix, headline scores, the per-sub-type table, error markers and score spread."""
    moment = "lifetime peak" if judged_at is JudgedAt.PEAK else "current score"
    matrix = Table(
        title=f"Persona x predicted band/kind at each user's {moment} "
        f"({result.users:,} labelled users, {labels_path})"
    )
    matrix.add_column("persona")
    for column in result.confusion.columns:
        matrix.add_column(str(column), justify="right")
    for persona, row in result.confusion.iterrows():
        matrix.add_row(str(persona), *(f"{int(v):,}" for v in row))
    console.print(matrix)
    console.print(
        f"at risk (impulsive or bot) vs normal: precision {result.precision:.3f}  "
        f"recall {result.recall:.3f}  F1 {result.f1:.3f}\n"
        f"false-positive rate on normal users: {result.false_positive_rate:.2%}\n"
        f"bot vs impulsive kind accuracy: {result.kind_accuracy:.3f}"
    )
    if other is not None:
        at, figures = other
        console.print(
            f"judged at the {'lifetime peak' if at is JudgedAt.PEAK else 'current score'} instead: "
            f"F1 {figures.f1:.3f}  false-positive rate {figures.false_positive_rate:.2%}  "
            f"kind accuracy {figures.kind_accuracy:.3f}"
        )
    console.print(sub_type_table(result))
    console.print(error_marker_table(result))
    console.print(score_table(result))


def sub_type_table(result: Evaluation) -> Table:
    """One row per sub-type: users, correct, wrong band, wrong kind and the markers behind the errors."""
    table = Table(title="Per sub-type (correct: normal -> low; at risk -> elevated/high with the right kind)")
    for column in (
        "persona",
        "sub-type",
        "users",
        "correct",
        "wrong band",
        "wrong kind",
        "share",
        "median score",
    ):
        table.add_column(
            column, justify="left" if column in ("persona", "sub-type") else "right", no_wrap=True
        )
    table.add_column("markers of the misjudged", overflow="fold")
    for row in result.by_sub_type.itertuples(index=False):
        table.add_row(
            str(row.persona),
            str(row.sub_type),
            f"{row.users:,}",
            f"{row.correct:,}",
            f"{row.wrong_band:,}",
            f"{row.wrong_kind:,}",
            f"{row.correct_share:.3f}",
            f"{row.median_score:g}",
            str(row.error_markers),
        )
    return table


def error_marker_table(result: Evaluation, limit: int = 10) -> Table:
    """The markers that fired most often on misjudged users, by kind of error."""
    table = Table(title="Markers behind the errors (misjudged users on whom each fired)")
    table.add_column("marker")
    for column in result.error_markers.columns:
        table.add_column(str(column).replace("_", " "), justify="right")
    for marker, row in result.error_markers.head(limit).iterrows():
        table.add_row(str(marker), *(f"{int(v):,}" for v in row))
    return table


def score_table(result: Evaluation) -> Table:
    """Score quantiles and users per ten-point bucket, per persona."""
    table = Table(title="Score distribution by persona")
    table.add_column("persona")
    quantiles = result.score_quantiles
    buckets = result.score_buckets
    for column in (*quantiles.columns, *buckets.columns):
        table.add_column(str(column), justify="right")
    for persona in quantiles.index:
        figures = [f"{int(quantiles.loc[persona, 'users']):,}", f"{quantiles.loc[persona, 'mean']:.1f}"]
        figures += [f"{quantiles.loc[persona, c]:g}" for c in quantiles.columns[2:]]
        figures += [f"{int(v):,}" for v in buckets.loc[persona]]
        table.add_row(str(persona), *figures)
    return table


def read_dead_letters(settings: Settings) -> int:
    """How many batches are parked as dead letters (0 when no broker is configured)."""
    if not settings.redis_url:
        return 0
    from workers.deliveries import DeliveryBook

    return len(DeliveryBook.from_url(settings.redis_url).dead_letters())


def run_reconcile(settings: Settings, console: Console, *, dry_run: bool) -> int:
    """Report raw batches missing from the ledger and, unless dry_run, send them again."""
    from contract.wire import broker_client
    from producer.publisher import Publisher
    from producer.reconcile import resend_missing
    from store.db import open_writer

    engine = open_writer(settings)
    account = account_raw_logs(settings.raw_dir, engine)
    console.print(
        f"{account.raw_batches:,} raw batches, {account.committed_batches:,} in the ledger, "
        f"{len(account.missing):,} missing ({account.missing_lines:,} lines)"
    )
    if dry_run or not account.missing:
        return 0
    sent = resend_missing(account, Publisher(broker_client(settings), settings))
    console.print(f"re-enqueued {sent:,} batches; the ledger turns a batch that did arrive into a no-op")
    return sent
