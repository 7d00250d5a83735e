"""Storage schema: SQLAlchemy 2 typed models shared by workers, dashboard and CLI."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Identifiers sort by code point everywhere, as in the offline reference ("C" on PostgreSQL).
Key = String(256).with_variant(String(256, collation="C"), "postgresql")


class Base(DeclarativeBase):
    """Declarative base for every ecomrisk table."""


class Event(Base):
    """One accepted, cleaned event plus its derived per-user sequence fields."""

    __tablename__ = "events"

    event_id: Mapped[str] = mapped_column(Key, primary_key=True)
    user_id: Mapped[str] = mapped_column(Key)
    session_id: Mapped[str | None] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(256))
    product: Mapped[str | None] = mapped_column(String(256))
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    ts_ms: Mapped[int] = mapped_column(BigInteger, doc="Event time, UTC epoch milliseconds.")
    utc_offset_min: Mapped[int] = mapped_column(
        SmallInteger, server_default=text("0"), doc="The offset its timestamp carried; local = ts + this."
    )
    user_agent: Mapped[str | None] = mapped_column(String(512))
    content_hash: Mapped[str] = mapped_column(String(32), doc="Tells redelivery from id clashes.")
    batch_id: Mapped[str] = mapped_column(String(128))
    line_no: Mapped[int] = mapped_column(Integer)
    ingested_ms: Mapped[int] = mapped_column(BigInteger)
    # Derived, kept equal to an offline recompute over (ts_ms, event_id) order per user. A bet's
    # steps (opening stake, chasing, rhythm) are derived from the purchase index when needed.
    gap_ms: Mapped[int | None] = mapped_column(BigInteger, doc="Gap to the user's previous event.")
    is_rapid: Mapped[bool] = mapped_column(Boolean)
    is_steady: Mapped[bool] = mapped_column(Boolean, doc="Gap within tolerance of the previous gap.")
    session_no: Mapped[int] = mapped_column(Integer, doc="1-based session ordinal per user.")
    burst_len: Mapped[int] = mapped_column(Integer, doc="Rapid events in the run ending here.")
    session_ms: Mapped[int] = mapped_column(
        BigInteger, server_default=text("0"), doc="Time since the first event of its session."
    )
    awake_ms: Mapped[int] = mapped_column(
        BigInteger, server_default=text("0"), doc="Time since the first event after the last rest."
    )

    __table_args__ = (
        Index("ix_events_user_ts", "user_id", "ts_ms", "event_id"),
        # Purchases only: the per-batch look-back for purchase velocity and an anchor's bets read
        # this index alone instead of every event of the user's last hour or session.
        Index(
            "ix_events_user_purchases",
            "user_id",
            "ts_ms",
            "amount_cents",
            sqlite_where=text("action = 'purchase'"),
            postgresql_where=text("action = 'purchase'"),
        ),
    )


class UserRisk(Base):
    """One row per user: lifetime counts, the current window's features and score, the lifetime peak."""

    __tablename__ = "user_risk"

    user_id: Mapped[str] = mapped_column(Key, primary_key=True)
    events: Mapped[int] = mapped_column(Integer)
    rapid_events: Mapped[int] = mapped_column(Integer)
    max_burst: Mapped[int] = mapped_column(Integer)
    gap_count: Mapped[int] = mapped_column(Integer, doc="Within-session gaps.")
    gap_sum_ms: Mapped[int] = mapped_column(BigInteger)
    gap_sumsq_ms: Mapped[int] = mapped_column(BigInteger, doc="Sum of squared gaps, ms^2.")
    steady_gaps: Mapped[int] = mapped_column(Integer, doc="Within-session gaps close to the previous one.")
    purchases: Mapped[int] = mapped_column(Integer)
    spend_cents: Mapped[int] = mapped_column(BigInteger)
    max_purchases_window: Mapped[int] = mapped_column(Integer)
    max_spend_window_cents: Mapped[int] = mapped_column(BigInteger)
    night_events: Mapped[int] = mapped_column(Integer)
    sessions: Mapped[int] = mapped_column(Integer)
    first_seen_ms: Mapped[int] = mapped_column(BigInteger)
    last_seen_ms: Mapped[int] = mapped_column(BigInteger)
    # The current window (risk_buckets up to the user's latest one), scored by workers.risk.assess.
    window_events: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    rapid_share: Mapped[float] = mapped_column(Float)
    fast_share: Mapped[float] = mapped_column(Float, server_default=text("0"))
    gap_mean_s: Mapped[float | None] = mapped_column(Float)
    gap_cv: Mapped[float | None] = mapped_column(Float)
    steady_share: Mapped[float] = mapped_column(Float)
    night_share: Mapped[float] = mapped_column(Float, doc="Share in the night hours of local time.")
    night_sessions: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    raised_share: Mapped[float] = mapped_column(Float, server_default=text("0"))
    browse_share: Mapped[float] = mapped_column(Float, server_default=text("0"))
    agent_share: Mapped[float] = mapped_column(Float, server_default=text("0"))
    avg_session_s: Mapped[float] = mapped_column(Float)
    max_session_s: Mapped[float] = mapped_column(Float, server_default=text("0"))
    max_awake_s: Mapped[float] = mapped_column(Float, server_default=text("0"))
    automation_score: Mapped[int] = mapped_column(Integer)
    loss_of_control_score: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    band: Mapped[str] = mapped_column(String(16))
    risk_kind: Mapped[str] = mapped_column(String(32), doc="automation, loss_of_control or none.")
    markers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # The lifetime peak: the highest score of any window ending at one of the user's buckets.
    peak_score: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    peak_band: Mapped[str] = mapped_column(String(16), server_default=text("'low'"))
    peak_kind: Mapped[str] = mapped_column(String(32), server_default=text("'none'"))
    peak_ms: Mapped[int] = mapped_column(BigInteger, server_default=text("0"), doc="Its last bucket's start.")
    # The best window ending before the latest bucket: the peak, but for the one window that moves.
    closed_peak_score: Mapped[int | None] = mapped_column(Integer)
    closed_peak_kind: Mapped[str | None] = mapped_column(String(32))
    closed_peak_ms: Mapped[int | None] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        # The user id breaks ties, so deep pages of the sorted risk table stay index scans.
        Index("ix_user_risk_score", "score", "user_id"),
        Index("ix_user_risk_band", "band", "score", "user_id"),
        Index("ix_user_risk_last_seen", "last_seen_ms", "user_id"),
    )


class RiskBucket(Base):
    """One user's figures over one bucket of event time, and the score of the window ending with it."""

    __tablename__ = "risk_buckets"

    user_id: Mapped[str] = mapped_column(Key, primary_key=True)
    bucket_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True, doc="Bucket start, epoch ms.")
    events: Mapped[int] = mapped_column(Integer)
    rapid_events: Mapped[int] = mapped_column(Integer)
    gap_count: Mapped[int] = mapped_column(Integer, doc="Within-session gaps ending in the bucket.")
    gap_sum_ms: Mapped[int] = mapped_column(BigInteger)
    gap_sumsq_ms: Mapped[int] = mapped_column(BigInteger)
    steady_gaps: Mapped[int] = mapped_column(Integer)
    fast_gaps: Mapped[int] = mapped_column(Integer, doc="Within-session gaps under the motor limit.")
    sessions: Mapped[int] = mapped_column(Integer, doc="Sessions started in the bucket.")
    night_events: Mapped[int] = mapped_column(Integer, doc="Events in the night hours of local time.")
    night_sessions: Mapped[int] = mapped_column(Integer)
    purchases: Mapped[int] = mapped_column(Integer)
    spend_cents: Mapped[int] = mapped_column(BigInteger)
    browse_events: Mapped[int] = mapped_column(Integer, doc="Views and searches.")
    agent_events: Mapped[int] = mapped_column(Integer, doc="Events of automation user agents.")
    stake_bets: Mapped[int] = mapped_column(Integer)
    raised_bets: Mapped[int] = mapped_column(Integer)
    trade_events: Mapped[int] = mapped_column(Integer, doc="Cart and purchase actions.")
    rapid_trades: Mapped[int] = mapped_column(Integer, doc="Of those, the ones under the rapid gap.")
    logins: Mapped[int] = mapped_column(Integer)
    bet_gaps: Mapped[int] = mapped_column(Integer, doc="Purchases after their session's first.")
    steady_bets: Mapped[int] = mapped_column(Integer, doc="Of those, the ones with a steady gap.")
    max_burst: Mapped[int] = mapped_column(Integer)
    max_session_ms: Mapped[int] = mapped_column(BigInteger)
    max_awake_ms: Mapped[int] = mapped_column(BigInteger)
    max_purchases_window: Mapped[int] = mapped_column(Integer)
    max_spend_window_cents: Mapped[int] = mapped_column(BigInteger)
    window_score: Mapped[int] = mapped_column(Integer, doc="Score of the window ending with this bucket.")
    window_kind: Mapped[str] = mapped_column(String(32))


class Alert(Base):
    """A user's crossing into the high band; written once per crossing."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(256))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    score: Mapped[int] = mapped_column(Integer)
    band: Mapped[str] = mapped_column(String(16))
    risk_kind: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    batch_id: Mapped[str] = mapped_column(String(128))

    __table_args__ = (
        Index("ix_alerts_created", "created_ms"),
        # A user's alerts (review history, allow-list), and a batch's alerts (webhook fan-out).
        Index("ix_alerts_user", "user_id", "id"),
        Index("ix_alerts_batch", "batch_id"),
    )


class AlertReview(Base):
    """One analyst decision on an alert; append-only, the newest per alert is current."""

    __tablename__ = "alert_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(Key)
    status: Mapped[str] = mapped_column(String(16), doc="acknowledged or resolved.")
    label: Mapped[str | None] = mapped_column(
        String(32), doc="confirmed_automation, confirmed_harm, false_positive."
    )
    note: Mapped[str | None] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(128), doc="The API token's name.")
    created_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_alert_reviews_alert", "alert_id", "id"),
        Index("ix_alert_reviews_user", "user_id", "id"),
    )


class AlertState(Base):
    """The current review state of each reviewed alert, kept with the review that set it; no row: open."""

    __tablename__ = "alert_state"

    alert_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(32))
    review_id: Mapped[int] = mapped_column(Integer, doc="The newest review of the alert.")
    reviewed_ms: Mapped[int] = mapped_column(BigInteger)
    first_ack_ms: Mapped[int] = mapped_column(BigInteger, doc="When the alert was first reviewed.")

    __table_args__ = (Index("ix_alert_state_status", "status", "alert_id"),)


class AllowListEntry(Base):
    """A user whose crossings raise no alert until expires_ms; append-only, any live entry counts."""

    __tablename__ = "allow_list"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(Key)
    alert_id: Mapped[int | None] = mapped_column(Integer, doc="The false-positive alert behind it.")
    expires_ms: Mapped[int] = mapped_column(BigInteger)
    reviewer: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_allow_list_user", "user_id", "expires_ms"),)


class WebhookDelivery(Base):
    """The delivery log: one row per alert and endpoint, created at its first attempt."""

    __tablename__ = "webhook_deliveries"

    alert_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    endpoint: Mapped[str] = mapped_column(String(16), primary_key=True, doc="Hash of the endpoint URL.")
    host: Mapped[str] = mapped_column(String(256), doc="The endpoint's host, for people; never its path.")
    attempts: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, doc="Of the last answer.")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_ms: Mapped[int | None] = mapped_column(BigInteger)
    lease_until_ms: Mapped[int | None] = mapped_column(BigInteger, doc="An attempt is in flight until then.")
    next_attempt_ms: Mapped[int | None] = mapped_column(BigInteger, doc="When the next retry is due.")
    queued_ms: Mapped[int | None] = mapped_column(BigInteger, doc="When the outbox sweep last sent it again.")
    delivered_ms: Mapped[int | None] = mapped_column(BigInteger)
    dead_ms: Mapped[int | None] = mapped_column(BigInteger, doc="Dead-lettered after the last attempt.")


class QuarantinedLine(Base):
    """One rejected input line, kept verbatim with a typed reason."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(128))
    line_no: Mapped[int] = mapped_column(Integer)
    # The reason it fails with now: a replay that finds another reason changes these two.
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    # What it was quarantined for when it arrived; never changed.
    first_reason: Mapped[str] = mapped_column(String(32))
    first_detail: Mapped[str] = mapped_column(Text)
    raw_text: Mapped[str] = mapped_column(Text)
    quarantined_ms: Mapped[int] = mapped_column(BigInteger)
    released_ms: Mapped[int | None] = mapped_column(BigInteger, doc="Set when a replay accepted it.")

    __table_args__ = (
        Index("ux_quarantine_batch_line", "batch_id", "line_no", unique=True),
        Index("ix_quarantine_time", "quarantined_ms"),
        Index("ix_quarantine_reason", "reason"),
    )


class Batch(Base):
    """The ledger: one row per committed batch; received = stored_new + duplicates + quarantined."""

    __tablename__ = "batches"

    batch_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    source: Mapped[str] = mapped_column(String(256))
    received: Mapped[int] = mapped_column(Integer)
    stored_new: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
    quarantined: Mapped[int] = mapped_column(Integer)
    produced_ms: Mapped[int | None] = mapped_column(BigInteger)
    committed_ms: Mapped[int] = mapped_column(BigInteger)
    max_event_ts_ms: Mapped[int | None] = mapped_column(BigInteger)
    # The batch's mode (contract.wire.BatchMode): how its lines were judged, and a replay judges them.
    historical: Mapped[bool] = mapped_column(Boolean, server_default=false(), doc="A file of history.")
    history_end_ms: Mapped[int | None] = mapped_column(BigInteger, doc="Newest event of the history file.")
    unpriced_purchases: Mapped[bool] = mapped_column(
        Boolean, server_default=false(), doc="Purchases may carry no amount."
    )

    __table_args__ = (Index("ix_batches_committed", "committed_ms"),)


class ActivityRollup(Base):
    """Per-minute event and rapid counts by action and category, for the dashboard."""

    __tablename__ = "activity_rollup"

    minute_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True, doc="Event-time minute start.")
    action: Mapped[str] = mapped_column(String(32), primary_key=True)
    category: Mapped[str] = mapped_column(String(256), primary_key=True, doc="'' when absent.")
    events: Mapped[int] = mapped_column(Integer)
    rapid: Mapped[int] = mapped_column(Integer)


class ActivityMix(Base):
    """All-time event and rapid counts by action and category: a handful of rows."""

    __tablename__ = "activity_mix"

    action: Mapped[str] = mapped_column(String(32), primary_key=True)
    category: Mapped[str] = mapped_column(String(256), primary_key=True, doc="'' when absent.")
    events: Mapped[int] = mapped_column(Integer)
    rapid: Mapped[int] = mapped_column(Integer)


class ActivityHours(Base):
    """All-time event counts by weekday (0 = Monday) and hour of each event's local time: 168 rows at most."""

    __tablename__ = "activity_hours"

    weekday: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    events: Mapped[int] = mapped_column(Integer)
