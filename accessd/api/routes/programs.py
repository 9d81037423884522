"""Program read-ins of a person (what clearance-gated areas such as a SCIF check)."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from pydantic import StringConstraints

from accessd.api.deps import IdPath, SessionDep, require
from accessd.api.schemas.common import Input, Public, Reason
from accessd.auth.permissions import Permission
from accessd.services import programs
from accessd.services.actors import Actor

router = APIRouter(prefix="/v1/people/{person_id}/programs", tags=["people"])
ProgramName = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,63}$")]


class ReadIn(Input):
    program: ProgramName
    reason: Reason = ""


class ReadInPublic(Public):
    program: str
    read_in_on: date


@router.get("", response_model=list[ReadInPublic])
async def list_programs(
    person_id: IdPath,
    session: SessionDep,
    _: Annotated[Actor, Depends(require(Permission.SECURITY_READ))],
) -> list[ReadInPublic]:
    return [ReadInPublic.model_validate(r) for r in await programs.programs_of(session, person_id)]


@router.post("", response_model=ReadInPublic, status_code=status.HTTP_201_CREATED)
async def read_in(
    person_id: IdPath,
    body: ReadIn,
    session: SessionDep,
    actor: Annotated[Actor, Depends(require(Permission.PROGRAMS_WRITE))],
) -> ReadInPublic:
    row = await programs.read_in(session, actor, person_id, body.program, body.reason)
    await session.commit()
    return ReadInPublic.model_validate(row)


@router.delete("/{program}", status_code=status.HTTP_204_NO_CONTENT)
async def read_out(
    person_id: IdPath,
    program: Annotated[str, Path(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,63}$")],
    session: SessionDep,
    actor: Annotated[Actor, Depends(require(Permission.PROGRAMS_WRITE))],
) -> None:
    await programs.read_out(session, actor, person_id, program, "")
    await session.commit()
