"""slimmer events: drop gap_s (gap_ms in seconds) and the stored bet steps, derived when needed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 06:30:00

Every insert bound six more columns for values that other columns already give: gap_s is
gap_ms / 1000, and a bet's steps (opening stake, chasing, rhythm) follow from the purchases of
its session, which the purchase index holds. A downgrade adds the columns back empty;
`ecomrisk rebuild` of that release fills them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BET_STEPS = (
    ("open_stake", sa.BigInteger()),
    ("stake_raised", sa.SmallInteger()),
    ("last_bet_ms", sa.BigInteger()),
    ("bet_gap_ms", sa.BigInteger()),
    ("bet_rhythm", sa.SmallInteger()),
)


def upgrade() -> None:
    """Drop gap_s and the bet-step columns of events."""
    with op.batch_alter_table("events") as batch:
        batch.drop_column("gap_s")
        for name, _ in _BET_STEPS:
            batch.drop_column(name)


def downgrade() -> None:
    """Add the columns back, empty (gap_s from gap_ms)."""
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("gap_s", sa.Float(), nullable=True))
        for name, kind in _BET_STEPS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.execute("UPDATE events SET gap_s = gap_ms / 1000.0")
