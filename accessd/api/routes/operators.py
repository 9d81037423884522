"""Operator accounts (admin only)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from sqlalchemy import select

from accessd.api.deps import AfterQuery, IdPath, IfMatchDep, SessionDep, etag, require
from accessd.api.paging import LimitQuery, rows_after, shown
from accessd.api.schemas.common import Page
from accessd.api.schemas.operators import OperatorCreate, OperatorPublic, OperatorUpdate
from accessd.auth.permissions import Permission
from accessd.models import Operator
from accessd.services import operators
from accessd.services.actors import Actor

router = APIRouter(prefix="/v1/operators", tags=["operators"])
Admin = Annotated[Actor, Depends(require(Permission.OPERATORS_MANAGE))]


@router.get("", response_model=Page[OperatorPublic])
async def list_operators(
    session: SessionDep,
    _: Admin,
    after: AfterQuery = 0,
    limit: LimitQuery = 100,
) -> Page[OperatorPublic]:
    page = await rows_after(session, select(Operator), Operator.id, after=after, limit=limit)
    return shown(page, OperatorPublic.model_validate)


@router.post("", response_model=OperatorPublic, status_code=status.HTTP_201_CREATED)
async def create_operator(
    body: OperatorCreate, session: SessionDep, response: Response, actor: Admin
) -> Operator:
    op = await operators.create_operator(
        session,
        actor,
        username=body.username,
        password=body.password,
        roles=[r.value for r in body.roles],
        display_name=body.display_name,
        person_id=body.person_id,
        readers=body.readers,
    )
    await session.commit()
    response.headers["ETag"] = etag(op.version)
    return op


@router.get("/{operator_id}", response_model=OperatorPublic)
async def get_operator(
    operator_id: IdPath, session: SessionDep, response: Response, _: Admin
) -> Operator:
    op = await operators.get_operator(session, operator_id)
    response.headers["ETag"] = etag(op.version)
    return op


@router.patch("/{operator_id}", response_model=OperatorPublic)
async def update_operator(
    operator_id: IdPath,
    body: OperatorUpdate,
    session: SessionDep,
    response: Response,
    version: IfMatchDep,
    actor: Admin,
) -> Operator:
    """Changes roles, disables the account (its tokens stop working) or resets a password;
    for a door_reader, changes the readers it serves (its tokens stay, bound anew)."""
    op = await operators.update_operator(session, actor, operator_id, body.changes(), version)
    await session.commit()
    response.headers["ETag"] = etag(op.version)
    return op
