"""partial index of purchases for the purchase-velocity look-back

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 12:08:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PURCHASES = sa.text("action = 'purchase'")


def upgrade() -> None:
    """Add ix_events_user_purchases."""
    op.create_index(
        "ix_events_user_purchases",
        "events",
        ["user_id", "ts_ms", "amount_cents"],
        unique=False,
        sqlite_where=_PURCHASES,
        postgresql_where=_PURCHASES,
    )


def downgrade() -> None:
    """Drop ix_events_user_purchases."""
    op.drop_index("ix_events_user_purchases", table_name="events")
