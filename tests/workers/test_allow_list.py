"""Allow-listed users are still scored but raise no alert until the entry expires (SQLite, PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from config.settings import Settings
from contract.wire import RawBatch, now_ms
from store.db import open_writer
from store.models import Alert, UserRisk
from store.reviews import allow_user, record_review
from tests.api.support import recrossing_phases
from workers.ingest import ingest_batch

USERS = ("allowed", "control", "expired")


def alerts_of(engine: Engine) -> dict[str, list[int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(Alert.user_id, Alert.id).order_by(Alert.id)).all()
    found: dict[str, list[int]] = {u: [] for u in USERS}
    for user_id, alert_id in rows:
        found[user_id].append(alert_id)
    return found


def bands(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(UserRisk.user_id, UserRisk.band)).all())  # type: ignore[arg-type]


def test_an_allow_listed_user_crosses_again_without_an_alert(db_settings: Settings) -> None:
    engine = open_writer(db_settings)
    phases = {user: recrossing_phases(user) for user in USERS}
    seen_bands = []
    for n in range(3):
        lines = [line for user in USERS for line in phases[user][n]]
        ingest_batch(engine, RawBatch(f"phase-{n}", "\n".join(lines), "test"), settings=db_settings)
        seen_bands.append(bands(engine))
        if n == 0:  # every user crossed once; two are resolved as false positives and allow-listed
            first = alerts_of(engine)
            at = now_ms()
            for user, expires in (("allowed", at + 86_400_000), ("expired", at + 1)):
                (alert_id,) = first[user]
                record_review(
                    engine, alert_id=alert_id, status="resolved", label="false_positive", note=None,
                    reviewer="test", at_ms=at,
                )  # fmt: skip
                allow_user(engine, user_id=user, expires_ms=expires, reviewer="test", note=None, at_ms=at)
    # Each user went high, back to low, and high again: a second crossing each.
    assert [b["control"] for b in seen_bands] == ["high", "low", "high"]
    assert seen_bands[2] == {u: "high" for u in USERS}  # still scored and shown
    alerts = alerts_of(engine)
    assert len(alerts["control"]) == 2
    assert len(alerts["expired"]) == 2  # the entry had expired when it crossed again
    assert len(alerts["allowed"]) == 1  # no alert while allow-listed
    engine.dispose()
