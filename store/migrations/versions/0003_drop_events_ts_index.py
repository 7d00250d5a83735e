"""drop ix_events_ts: no query reads events by time alone, and every insert paid for it

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 13:55:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Drop ix_events_ts (time series come from the rollups; a user's events from ix_events_user_ts)."""
    op.drop_index("ix_events_ts", table_name="events")


def downgrade() -> None:
    """Recreate ix_events_ts."""
    op.create_index("ix_events_ts", "events", ["ts_ms"], unique=False)
