"""presence changes

What decisions did to presence (anti-passback, occupancy, waits, first-person-in), so
that it is shared by instances and survives restarts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 04:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "presence_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("instance", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("door_id", sa.Integer(), nullable=True),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("companions", sa.JSON(), nullable=False),
        sa.Column("may_escort", sa.Boolean(), nullable=False),
        sa.Column("starts_free_access", sa.Boolean(), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=True),
        sa.Column("forgiven", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_presence_changes_at", "presence_changes", ["at"])


def downgrade() -> None:
    op.drop_index("ix_presence_changes_at", table_name="presence_changes")
    op.drop_table("presence_changes")
