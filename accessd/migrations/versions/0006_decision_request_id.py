"""decision request id

A decision row names the panel's request id, which the panel's access event names too,
and says whether the door used the decision (False: answered after the panel's timeout).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("decision_events", sa.Column("request_id", sa.String(length=64), nullable=True))
    op.add_column("decision_events", sa.Column("used", sa.Boolean(), nullable=True))
    op.create_index("ix_decision_events_request_id", "decision_events", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_decision_events_request_id", table_name="decision_events")
    with op.batch_alter_table("decision_events") as batch:
        batch.drop_column("used")
        batch.drop_column("request_id")
