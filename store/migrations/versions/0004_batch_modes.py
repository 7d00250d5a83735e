"""batch modes in the ledger: historical imports and purchases without amounts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add batches.historical, history_end_ms and unpriced_purchases; earlier batches were live."""
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("historical", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("history_end_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("unpriced_purchases", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    """Drop the batch mode columns."""
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("unpriced_purchases")
        batch_op.drop_column("history_end_ms")
        batch_op.drop_column("historical")
