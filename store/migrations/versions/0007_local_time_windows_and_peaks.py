"""local time, current windows and lifetime peaks: event offsets, runs and bet steps, risk_buckets, peaks

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 20:00:00

Rows stored before this revision get neutral values (offset 0, no runs, empty buckets);
`ecomrisk rebuild` recomputes every derived figure from the stored events.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Key = sa.String(256).with_variant(sa.String(256, collation="C"), "postgresql")
_USER_RISK_COLUMNS = (
    ("window_events", sa.Integer(), "0"),
    ("fast_share", sa.Float(), "0"),
    ("night_sessions", sa.Integer(), "0"),
    ("raised_share", sa.Float(), "0"),
    ("browse_share", sa.Float(), "0"),
    ("agent_share", sa.Float(), "0"),
    ("max_session_s", sa.Float(), "0"),
    ("max_awake_s", sa.Float(), "0"),
    ("peak_score", sa.Integer(), "0"),
    ("peak_band", sa.String(16), "'low'"),
    ("peak_kind", sa.String(32), "'none'"),
    ("peak_ms", sa.BigInteger(), "0"),
)


def upgrade() -> None:
    """Event offsets, session and awake lengths, stake steps; user_risk window and peak; risk_buckets."""
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column("utc_offset_min", sa.SmallInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(
            sa.Column("session_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(sa.Column("awake_ms", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
        batch.add_column(sa.Column("open_stake", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("stake_raised", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("last_bet_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("bet_gap_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("bet_rhythm", sa.SmallInteger(), nullable=True))
    with op.batch_alter_table("user_risk") as batch:
        for name, kind, default in _USER_RISK_COLUMNS:
            batch.add_column(sa.Column(name, kind, server_default=sa.text(default), nullable=False))
        batch.add_column(sa.Column("closed_peak_score", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("closed_peak_kind", sa.String(32), nullable=True))
        batch.add_column(sa.Column("closed_peak_ms", sa.BigInteger(), nullable=True))
    counts = (
        "events", "rapid_events", "gap_count", "steady_gaps", "fast_gaps", "sessions", "night_events",
        "night_sessions", "purchases", "browse_events", "agent_events", "stake_bets", "raised_bets",
        "trade_events", "rapid_trades", "logins", "bet_gaps", "steady_bets", "max_burst",
        "max_purchases_window",
    )  # fmt: skip
    wide = (
        "gap_sum_ms",
        "gap_sumsq_ms",
        "spend_cents",
        "max_session_ms",
        "max_awake_ms",
        "max_spend_window_cents",
    )
    op.create_table(
        "risk_buckets",
        sa.Column("user_id", Key, nullable=False),
        sa.Column("bucket_ms", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in counts),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in wide),
        sa.Column("window_score", sa.Integer(), nullable=False),
        sa.Column("window_kind", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "bucket_ms"),
    )


def downgrade() -> None:
    """Drop risk_buckets and the added columns."""
    op.drop_table("risk_buckets")
    with op.batch_alter_table("user_risk") as batch:
        for name in ("closed_peak_ms", "closed_peak_kind", "closed_peak_score"):
            batch.drop_column(name)
        for name, _, _ in reversed(_USER_RISK_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("events") as batch:
        for name in (
            "bet_rhythm",
            "bet_gap_ms",
            "last_bet_ms",
            "stake_raised",
            "open_stake",
            "awake_ms",
            "session_ms",
            "utc_offset_min",
        ):
            batch.drop_column(name)
