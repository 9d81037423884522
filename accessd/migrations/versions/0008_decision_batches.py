"""decision batches

The token of each batch of decision rows committed, so that a batch whose commit was not
acknowledged is not written twice.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "decision_batches",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token"),
    )
    op.create_index("ix_decision_batches_written_at", "decision_batches", ["written_at"])


def downgrade() -> None:
    op.drop_index("ix_decision_batches_written_at", table_name="decision_batches")
    op.drop_table("decision_batches")
