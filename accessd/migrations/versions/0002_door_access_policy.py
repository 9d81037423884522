"""door access policy

Existing rows get server defaults: card-only doors, no anti-passback, normal threat.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 05:01:55.809248
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "decision_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reader_id", sa.Integer(), nullable=True),
        sa.Column("door_id", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("credential_id", sa.Integer(), nullable=True),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("required", sa.JSON(), nullable=False),
        sa.Column("violation", sa.String(length=32), nullable=True),
        sa.Column("trail", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_events")),
    )
    with op.batch_alter_table("decision_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decision_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_decision_events_door_id"), ["door_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_decision_events_person_id"), ["person_id"], unique=False
        )

    op.create_table(
        "holiday_calendars",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holiday_calendars")),
        sa.UniqueConstraint("name", name=op.f("uq_holiday_calendars_name")),
    )
    op.create_table(
        "person_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=400), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_person_groups_name")),
    )
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=400), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_versions")),
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("week", sa.JSON(), nullable=False),
        sa.Column("holiday", sa.JSON(), nullable=False),
        sa.Column("calendar_ids", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_schedules_name")),
    )
    op.create_table(
        "access_levels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(length=400), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_access_levels_schedule_id_schedules"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_levels")),
        sa.UniqueConstraint("name", name=op.f("uq_access_levels_name")),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["person_groups.id"],
            name=op.f("fk_group_members_group_id_person_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_group_members_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "person_id", name=op.f("pk_group_members")),
    )
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.create_index("ix_group_members_person", ["person_id"], unique=False)

    op.create_table(
        "holidays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["holiday_calendars.id"],
            name=op.f("fk_holidays_calendar_id_holiday_calendars"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holidays")),
        sa.UniqueConstraint("calendar_id", "day", name=op.f("uq_holidays_calendar_id")),
    )
    with op.batch_alter_table("holidays", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holidays_calendar_id"), ["calendar_id"], unique=False)

    op.create_table(
        "program_read_ins",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("program", sa.String(length=64), nullable=False),
        sa.Column("read_in_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_program_read_ins_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", "program", name=op.f("pk_program_read_ins")),
    )
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("level_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["person_groups.id"],
            name=op.f("fk_access_grants_group_id_person_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["level_id"],
            ["access_levels.id"],
            name=op.f("fk_access_grants_level_id_access_levels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_access_grants_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_grants")),
        sa.UniqueConstraint(
            "level_id", "person_id", "group_id", name=op.f("uq_access_grants_level_id")
        ),
    )
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_grants_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_grants_level_id"), ["level_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_grants_person_id"), ["person_id"], unique=False)

    op.create_table(
        "access_level_doors",
        sa.Column("level_id", sa.Integer(), nullable=False),
        sa.Column("door_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["door_id"],
            ["doors.id"],
            name=op.f("fk_access_level_doors_door_id_doors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["level_id"],
            ["access_levels.id"],
            name=op.f("fk_access_level_doors_level_id_access_levels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("level_id", "door_id", name=op.f("pk_access_level_doors")),
    )
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "min_eligibility", sa.String(length=16), nullable=False, server_default="none"
            )
        )
        batch_op.add_column(sa.Column("programs", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("two_person_window_s", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("escort_required", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("escort_window_s", sa.Integer(), nullable=False, server_default="30")
        )
        batch_op.add_column(
            sa.Column("anti_passback", sa.String(length=8), nullable=False, server_default="none")
        )
        batch_op.add_column(
            sa.Column("apb_reset_s", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("occupancy_limit", sa.Integer(), nullable=True))

    with op.batch_alter_table("doors", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mode", sa.String(length=24), nullable=False, server_default="card_only")
        )
        batch_op.add_column(sa.Column("unlock_schedule_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("unlock_seconds", sa.Integer(), nullable=False, server_default="5")
        )
        batch_op.add_column(sa.Column("accepts", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.create_foreign_key(
            batch_op.f("fk_doors_unlock_schedule_id_schedules"),
            "schedules",
            ["unlock_schedule_id"],
            ["id"],
            ondelete="RESTRICT",
        )

    with op.batch_alter_table("facilities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("threat_level", sa.String(length=16), nullable=False, server_default="normal")
        )
        batch_op.add_column(sa.Column("threat_rules", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("facilities", schema=None) as batch_op:
        batch_op.drop_column("threat_rules")
        batch_op.drop_column("threat_level")

    with op.batch_alter_table("doors", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_doors_unlock_schedule_id_schedules"), type_="foreignkey"
        )
        batch_op.drop_column("accepts")
        batch_op.drop_column("unlock_seconds")
        batch_op.drop_column("unlock_schedule_id")
        batch_op.drop_column("mode")

    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.drop_column("occupancy_limit")
        batch_op.drop_column("apb_reset_s")
        batch_op.drop_column("anti_passback")
        batch_op.drop_column("escort_window_s")
        batch_op.drop_column("escort_required")
        batch_op.drop_column("two_person_window_s")
        batch_op.drop_column("programs")
        batch_op.drop_column("min_eligibility")

    op.drop_table("access_level_doors")
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_grants_person_id"))
        batch_op.drop_index(batch_op.f("ix_access_grants_level_id"))
        batch_op.drop_index(batch_op.f("ix_access_grants_group_id"))

    op.drop_table("access_grants")
    op.drop_table("program_read_ins")
    with op.batch_alter_table("holidays", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holidays_calendar_id"))

    op.drop_table("holidays")
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_index("ix_group_members_person")

    op.drop_table("group_members")
    op.drop_table("access_levels")
    op.drop_table("schedules")
    op.drop_table("policy_versions")
    op.drop_table("person_groups")
    op.drop_table("holiday_calendars")
    with op.batch_alter_table("decision_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decision_events_person_id"))
        batch_op.drop_index(batch_op.f("ix_decision_events_door_id"))
        batch_op.drop_index(batch_op.f("ix_decision_events_at"))

    op.drop_table("decision_events")
