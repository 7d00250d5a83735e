"""quarantine keeps the first reason and detail; reason and detail become the current ones

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 11:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add first_reason and first_detail, filled from reason and detail (no replay changed those yet)."""
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("first_detail", sa.Text(), nullable=True))
    op.execute("UPDATE quarantine SET first_reason = reason, first_detail = detail")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.alter_column("first_reason", existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column("first_detail", existing_type=sa.Text(), nullable=False)


def downgrade() -> None:
    """Drop first_reason and first_detail (reason and detail keep the current ones)."""
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_column("first_detail")
        batch_op.drop_column("first_reason")
