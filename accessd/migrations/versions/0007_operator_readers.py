"""operator readers

A door_reader account names the readers it serves; it may ask for decisions at those
only. Existing accounts start bound to none: an administrator binds each device account
to its readers (PATCH /v1/operators/{id} or `accessd operators bind`) before it decides
again, which is the safe way round for a token that could ask for any reader before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("operators", schema=None) as batch_op:
        batch_op.add_column(sa.Column("readers", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("operators", schema=None) as batch_op:
        batch_op.drop_column("readers")
