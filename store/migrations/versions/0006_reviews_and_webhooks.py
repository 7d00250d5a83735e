"""analyst reviews, alert state, the allow-list and the webhook delivery log

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = sa.String(256).with_variant(sa.String(256, collation="C"), "postgresql")


def upgrade() -> None:
    """Create alert_reviews, alert_state, allow_list, webhook_deliveries; index alerts by user, batch."""
    op.create_index("ix_alerts_user", "alerts", ["user_id", "id"])
    op.create_index("ix_alerts_batch", "alerts", ["batch_id"])
    op.create_table(
        "alert_reviews",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("user_id", _KEY, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.String(32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_alert_reviews_alert", "alert_reviews", ["alert_id", "id"])
    op.create_index("ix_alert_reviews_user", "alert_reviews", ["user_id", "id"])
    op.create_table(
        "alert_state",
        sa.Column("alert_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.String(32), nullable=True),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("reviewed_ms", sa.BigInteger(), nullable=False),
        sa.Column("first_ack_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_alert_state_status", "alert_state", ["status", "alert_id"])
    op.create_table(
        "allow_list",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", _KEY, nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_allow_list_user", "allow_list", ["user_id", "expires_ms"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("alert_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("endpoint", sa.String(16), primary_key=True),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_ms", sa.BigInteger(), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=True),
        sa.Column("queued_ms", sa.BigInteger(), nullable=True),
        sa.Column("delivered_ms", sa.BigInteger(), nullable=True),
        sa.Column("dead_ms", sa.BigInteger(), nullable=True),
    )


def downgrade() -> None:
    """Drop the review and webhook tables."""
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_allow_list_user", table_name="allow_list")
    op.drop_table("allow_list")
    op.drop_index("ix_alert_state_status", table_name="alert_state")
    op.drop_table("alert_state")
    op.drop_index("ix_alert_reviews_user", table_name="alert_reviews")
    op.drop_index("ix_alert_reviews_alert", table_name="alert_reviews")
    op.drop_table("alert_reviews")
    op.drop_index("ix_alerts_batch", table_name="alerts")
    op.drop_index("ix_alerts_user", table_name="alerts")
