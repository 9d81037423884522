"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 04:32:15.126005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "facilities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("security_level", sa.SmallInteger(), nullable=False),
        sa.Column("address", sa.String(length=400), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facilities")),
        sa.UniqueConstraint("code", name=op.f("uq_facilities_code")),
    )
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("affiliation", sa.String(length=24), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
        sa.UniqueConstraint("external_id", name=op.f("uq_people_external_id")),
    )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index("ix_people_family_name", ["family_name"], unique=False)

    op.create_table(
        "areas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("area_class", sa.String(length=16), nullable=False),
        sa.Column("is_scif", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["facilities.id"],
            name=op.f("fk_areas_facility_id_facilities"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["areas.id"], name=op.f("fk_areas_parent_id_areas"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_areas")),
        sa.UniqueConstraint("facility_id", "name", name=op.f("uq_areas_facility_id")),
    )
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_areas_facility_id"), ["facility_id"], unique=False)

    op.create_table(
        "operators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_operators_person_id_people"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
        sa.UniqueConstraint("username", name=op.f("uq_operators_username")),
    )
    op.create_table(
        "panels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["facilities.id"],
            name=op.f("fk_panels_facility_id_facilities"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_panels")),
        sa.UniqueConstraint("facility_id", "name", name=op.f("uq_panels_facility_id")),
    )
    with op.batch_alter_table("panels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_panels_facility_id"), ["facility_id"], unique=False)

    op.create_table(
        "security_records",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("investigation_tier", sa.String(length=8), nullable=False),
        sa.Column("investigation_opened", sa.Date(), nullable=True),
        sa.Column("investigation_closed", sa.Date(), nullable=True),
        sa.Column("adjudication", sa.String(length=16), nullable=False),
        sa.Column("adjudicated_on", sa.Date(), nullable=True),
        sa.Column("eligibility", sa.String(length=16), nullable=False),
        sa.Column("eligibility_suspended", sa.Boolean(), nullable=False),
        sa.Column("reinvestigation_due", sa.Date(), nullable=True),
        sa.Column("cv_enrolled", sa.Boolean(), nullable=False),
        sa.Column("cv_enrolled_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_security_records_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_security_records")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["operators.id"],
            name=op.f("fk_api_tokens_operator_id_operators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_tokens_token_sha256")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_tokens_operator_id"), ["operator_id"], unique=False
        )

    op.create_table(
        "credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("fasc_n", sa.String(length=50), nullable=True),
        sa.Column("card_uuid", sa.String(length=36), nullable=True),
        sa.Column("badge_number", sa.String(length=32), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("sponsor_id", sa.Integer(), nullable=True),
        sa.Column("registrar_id", sa.Integer(), nullable=True),
        sa.Column("adjudicator_id", sa.Integer(), nullable=True),
        sa.Column("issuer_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["adjudicator_id"],
            ["operators.id"],
            name=op.f("fk_credentials_adjudicator_id_operators"),
        ),
        sa.ForeignKeyConstraint(
            ["issuer_id"], ["operators.id"], name=op.f("fk_credentials_issuer_id_operators")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_credentials_person_id_people"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["registrar_id"], ["operators.id"], name=op.f("fk_credentials_registrar_id_operators")
        ),
        sa.ForeignKeyConstraint(
            ["sponsor_id"], ["operators.id"], name=op.f("fk_credentials_sponsor_id_operators")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("badge_number", name=op.f("uq_credentials_badge_number")),
        sa.UniqueConstraint("card_uuid", name=op.f("uq_credentials_card_uuid")),
        sa.UniqueConstraint("fasc_n", name=op.f("uq_credentials_fasc_n")),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credentials_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_credentials_state"), ["state"], unique=False)

    op.create_table(
        "doors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("from_area_id", sa.Integer(), nullable=True),
        sa.Column("panel_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_id"], ["areas.id"], name=op.f("fk_doors_area_id_areas"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["from_area_id"],
            ["areas.id"],
            name=op.f("fk_doors_from_area_id_areas"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["panel_id"], ["panels.id"], name=op.f("fk_doors_panel_id_panels"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doors")),
        sa.UniqueConstraint("area_id", "name", name=op.f("uq_doors_area_id")),
    )
    with op.batch_alter_table("doors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_doors_area_id"), ["area_id"], unique=False)

    op.create_table(
        "vetting_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("suspends_eligibility", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_by", sa.Integer(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_vetting_alerts_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["received_by"], ["operators.id"], name=op.f("fk_vetting_alerts_received_by_operators")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["operators.id"], name=op.f("fk_vetting_alerts_resolved_by_operators")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vetting_alerts")),
    )
    with op.batch_alter_table("vetting_alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vetting_alerts_person_id"), ["person_id"], unique=False
        )

    op.create_table(
        "credential_certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.String(length=2), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_credential_certificates_credential_id_credentials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_certificates")),
        sa.UniqueConstraint(
            "credential_id", "slot", name=op.f("uq_credential_certificates_credential_id")
        ),
        sa.UniqueConstraint("sha256", name=op.f("uq_credential_certificates_sha256")),
    )
    with op.batch_alter_table("credential_certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credential_certificates_credential_id"), ["credential_id"], unique=False
        )

    op.create_table(
        "credential_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["operators.id"],
            name=op.f("fk_credential_transitions_actor_id_operators"),
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_credential_transitions_credential_id_credentials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential_transitions")),
    )
    with op.batch_alter_table("credential_transitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credential_transitions_credential_id"), ["credential_id"], unique=False
        )

    op.create_table(
        "readers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("door_id", sa.Integer(), nullable=False),
        sa.Column("panel_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("direction", sa.String(length=4), nullable=False),
        sa.Column("contact", sa.Boolean(), nullable=False),
        sa.Column("contactless", sa.Boolean(), nullable=False),
        sa.Column("pin_pad", sa.Boolean(), nullable=False),
        sa.Column("biometric", sa.Boolean(), nullable=False),
        sa.Column("osdp_address", sa.SmallInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["door_id"], ["doors.id"], name=op.f("fk_readers_door_id_doors"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["panel_id"],
            ["panels.id"],
            name=op.f("fk_readers_panel_id_panels"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readers")),
    )
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_readers_door_id"), ["door_id"], unique=False)

    op.bulk_insert(
        sa.table("audit_head", sa.column("id"), sa.column("seq"), sa.column("hash")),
        [{"id": 1, "seq": 0, "hash": "0" * 64}],
    )
    # Append-only at the database too: a DBA can still drop the trigger, which is what the
    # hash chain is for (`accessd audit verify` finds the altered row).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    with op.batch_alter_table("readers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_readers_door_id"))

    op.drop_table("readers")
    with op.batch_alter_table("credential_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credential_transitions_credential_id"))

    op.drop_table("credential_transitions")
    with op.batch_alter_table("credential_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credential_certificates_credential_id"))

    op.drop_table("credential_certificates")
    with op.batch_alter_table("vetting_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vetting_alerts_person_id"))

    op.drop_table("vetting_alerts")
    with op.batch_alter_table("doors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_doors_area_id"))

    op.drop_table("doors")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credentials_state"))
        batch_op.drop_index(batch_op.f("ix_credentials_person_id"))

    op.drop_table("credentials")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_operator_id"))

    op.drop_table("api_tokens")
    op.drop_table("security_records")
    with op.batch_alter_table("panels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_panels_facility_id"))

    op.drop_table("panels")
    op.drop_table("operators")
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_areas_facility_id"))

    op.drop_table("areas")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index("ix_people_family_name")

    op.drop_table("people")
    op.drop_table("facilities")
    op.drop_table("audit_log")
    op.drop_table("audit_head")
