"""panel events

What MQTT and OSDP panels report, unique per (panel, event id) so replays count once.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "panel_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("panel_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("door_id", sa.Integer(), nullable=True),
        sa.Column("reader_id", sa.Integer(), nullable=True),
        sa.Column("alarm", sa.Boolean(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["panel_id"], ["panels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("panel_id", "event_id"),
    )
    op.create_index("ix_panel_events_panel_seq", "panel_events", ["panel_id", "seq"])
    op.create_index("ix_panel_events_door_id", "panel_events", ["door_id"])
    op.create_index("ix_panel_events_received_at", "panel_events", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_panel_events_received_at", table_name="panel_events")
    op.drop_index("ix_panel_events_door_id", table_name="panel_events")
    op.drop_index("ix_panel_events_panel_seq", table_name="panel_events")
    op.drop_table("panel_events")
