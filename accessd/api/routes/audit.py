"""Reading and verifying the audit trail (auditors and admins)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from accessd.api.deps import SessionDep, require
from accessd.api.paging import LimitQuery, rows_after, shown
from accessd.api.schemas.audit import AuditEntryPublic, AuditVerification
from accessd.api.schemas.common import Page
from accessd.auth.permissions import Permission
from accessd.models import AuditEntry
from accessd.services import audit
from accessd.services.actors import Actor

router = APIRouter(prefix="/v1/audit", tags=["audit"])
Auditor = Annotated[Actor, Depends(require(Permission.AUDIT_READ))]


@router.get("", response_model=Page[AuditEntryPublic])
async def list_entries(
    session: SessionDep,
    _: Auditor,
    # Sequence numbers are BIGINT, beyond the other ids' range.
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: LimitQuery = 100,
    entity: Annotated[str | None, Query(max_length=32)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=80)] = None,
) -> Page[AuditEntryPublic]:
    stmt = select(AuditEntry)
    if entity is not None:
        stmt = stmt.where(AuditEntry.entity == entity)
    if entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    page = await rows_after(session, stmt, AuditEntry.seq, after=after, limit=limit)
    return shown(page, AuditEntryPublic.model_validate)


@router.get("/verify", response_model=AuditVerification)
async def verify_chain(session: SessionDep, _: Auditor) -> audit.VerifyResult:
    """Walks the whole hash chain; names the first entry altered, removed or inserted."""
    return await audit.verify(session)
