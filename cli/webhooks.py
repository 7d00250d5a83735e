"""`ecomrisk webhooks verify | test | retry | list`: check a signature, send a sample, revive dead letters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli.errors import fail, load_settings, require_broker
from cli.reports import delivery_table, format_ms, open_store

webhooks_app = typer.Typer(help="Signed alert webhooks: verify, test, retry, list.", no_args_is_help=True)


@webhooks_app.command("verify")
def verify(
    body: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The raw request body, as received.")
    ],
    signature: Annotated[str, typer.Option(help="The X-Ecomrisk-Signature header value.")],
    tolerance: Annotated[
        float, typer.Option(min=0, help="Largest accepted age of the signature (s).")
    ] = 300.0,
) -> None:
    """Check a received body against its signature with ECOMRISK_WEBHOOK_SECRET; exit 1 if it fails."""
    settings = load_settings()
    from contract.webhook import SignatureError, verify_signature

    if not settings.webhook_secret:
        raise fail("ECOMRISK_WEBHOOK_SECRET is not set: it is the key the signature was made with.")
    try:
        timestamp = verify_signature(
            settings.webhook_secret, body.read_bytes(), signature, tolerance_s=tolerance
        )
    except SignatureError as exc:
        typer.echo(f"invalid: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"valid: signed at {format_ms(timestamp * 1000)}")


@webhooks_app.command("test")
def test(
    url: Annotated[str, typer.Argument(help="The endpoint to POST a signed sample alert to.")],
    slack: Annotated[bool, typer.Option(help="Send the Slack-compatible body instead.")] = False,
) -> None:
    """POST a signed sample alert (alert_id 0) to URL and print the answer; exit 1 unless it is 2xx."""
    settings = load_settings()
    import httpx

    from contract.wire import now_ms
    from store.webhooks import AlertRecord
    from workers.webhooks import request_body, signed_headers

    if not settings.webhook_secret:
        raise fail("ECOMRISK_WEBHOOK_SECRET is not set: webhooks are always signed.")
    sample = AlertRecord(
        id=0,
        user_id="sample-user",
        score=80,
        band="high",
        risk_kind="automation",
        reasons=[
            {"name": "regular_timing", "value": 0.02, "threshold": 0.25, "weight": 80, "kind": "automation"}
        ],
        created_ms=now_ms(),
    )
    body = request_body(sample, slack=slack)
    try:
        response = httpx.post(
            url,
            content=body,
            headers=signed_headers(settings.webhook_secret, body, 0),
            timeout=settings.webhook_timeout_s,
        )
    except httpx.HTTPError as exc:
        typer.echo(f"{url}: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{url}: HTTP {response.status_code} {response.text[:200]}")
    raise typer.Exit(0 if response.is_success else 1)


@webhooks_app.command("retry")
def retry(
    alert: Annotated[
        list[int] | None, typer.Option(help="Only this alert's deliveries (repeatable).")
    ] = None,
) -> None:
    """Give every dead-lettered delivery (or those of --alert) a fresh set of attempts and send it now."""
    settings = load_settings()
    require_broker(settings)
    from contract.wire import broker_client
    from store.db import open_writer
    from store.webhooks import revive_dead
    from workers.celery_app import DELIVER_TASK

    revived = revive_dead(open_writer(settings), alert_ids=alert)
    client = broker_client(settings)
    for alert_id, endpoint in revived:
        client.send_task(
            DELIVER_TASK, kwargs={"alert_id": alert_id, "endpoint": endpoint}, queue=settings.webhook_queue
        )
    typer.echo(f"re-sent {len(revived):,} dead-lettered deliveries")


@webhooks_app.command("list")
def list_deliveries(
    dead: Annotated[bool, typer.Option(help="Only dead-lettered deliveries.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Rows to show.")] = 20,
) -> None:
    """The delivery log, newest attempt first."""
    settings = load_settings()
    from store.webhooks import read_deliveries

    console = Console()
    engine = open_store(settings, console)
    if engine is None:
        raise typer.Exit(1)
    console.print(
        delivery_table(read_deliveries(engine, dead_only=dead, limit=limit), title="Webhook deliveries")
    )
