"""People, their personnel-security records and vetting alerts."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import or_, select

from accessd.api.deps import AfterQuery, IdPath, IfMatchDep, SessionDep, etag, require
from accessd.api.paging import LimitQuery, rows_after, shown
from accessd.api.schemas.common import Page
from accessd.api.schemas.people import (
    AlertCreate,
    AlertPublic,
    AlertRaised,
    AlertResolve,
    PersonCreate,
    PersonPublic,
    PersonUpdate,
    SecurityFields,
    SecurityPublic,
)
from accessd.auth.permissions import Permission
from accessd.models import Person, VettingAlert
from accessd.models.enums import Affiliation, PersonStatus
from accessd.services import people
from accessd.services.actors import Actor
from accessd.services.records import get_or_404

router = APIRouter(prefix="/v1/people", tags=["people"])
alerts_router = APIRouter(prefix="/v1/alerts", tags=["vetting"])


@router.get("", response_model=Page[PersonPublic])
async def list_people(
    session: SessionDep,
    _: Annotated[Actor, Depends(require(Permission.PEOPLE_READ))],
    after: AfterQuery = 0,
    limit: LimitQuery = 100,
    q: Annotated[str | None, Query(max_length=100, description="name prefix")] = None,
    external_id: Annotated[str | None, Query(max_length=64)] = None,
    affiliation: Affiliation | None = None,
    status_: Annotated[PersonStatus | None, Query(alias="status")] = None,
) -> Page[PersonPublic]:
    stmt = select(Person)
    if q:
        like = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(
            or_(
                Person.family_name.like(like, escape="\\"),
                Person.given_name.like(like, escape="\\"),
            )
        )
    if external_id is not None:
        stmt = stmt.where(Person.external_id == external_id)
    if affiliation is not None:
        stmt = stmt.where(Person.affiliation == affiliation)
    if status_ is not None:
        stmt = stmt.where(Person.status == status_)
    page = await rows_after(session, stmt, Person.id, after=after, limit=limit)
    return shown(page, PersonPublic.model_validate)


@router.post("", response_model=PersonPublic, status_code=status.HTTP_201_CREATED)
async def create_person(
    body: PersonCreate,
    session: SessionDep,
    response: Response,
    actor: Annotated[Actor, Depends(require(Permission.PEOPLE_CREATE))],
) -> Person:
    person = await people.create_person(session, actor, body.model_dump())
    await session.commit()
    response.headers["ETag"] = etag(person.version)
    response.headers["Location"] = f"/v1/people/{person.id}"
    return person


@router.get("/{person_id}", response_model=PersonPublic)
async def get_person(
    person_id: IdPath,
    session: SessionDep,
    response: Response,
    _: Annotated[Actor, Depends(require(Permission.PEOPLE_READ))],
) -> Person:
    person = await get_or_404(session, Person, person_id)
    response.headers["ETag"] = etag(person.version)
    return person


@router.patch("/{person_id}", response_model=PersonPublic)
async def update_person(
    person_id: IdPath,
    body: PersonUpdate,
    session: SessionDep,
    response: Response,
    version: IfMatchDep,
    actor: Annotated[Actor, Depends(require(Permission.PEOPLE_WRITE))],
) -> Person:
    person = await people.update_person(session, actor, person_id, body.changes(), version)
    await session.commit()
    response.headers["ETag"] = etag(person.version)
    return person


@router.get("/{person_id}/security", response_model=SecurityPublic)
async def get_security(
    person_id: IdPath,
    session: SessionDep,
    response: Response,
    _: Annotated[Actor, Depends(require(Permission.SECURITY_READ))],
) -> object:
    record = await people.get_security(session, person_id)
    response.headers["ETag"] = etag(record.version)
    return record


@router.patch("/{person_id}/security", response_model=SecurityPublic)
async def update_security(
    person_id: IdPath,
    body: SecurityFields,
    session: SessionDep,
    response: Response,
    version: IfMatchDep,
    actor: Annotated[Actor, Depends(require(Permission.SECURITY_WRITE))],
) -> object:
    """Investigation, adjudication and eligibility. An unfavorable adjudication suspends
    every issued or active credential of the person in the same transaction."""
    record = await people.update_security(session, actor, person_id, body.changes(), version)
    await session.commit()
    response.headers["ETag"] = etag(record.version)
    return record


@router.get("/{person_id}/alerts", response_model=list[AlertPublic])
async def list_alerts(
    person_id: IdPath,
    session: SessionDep,
    _: Annotated[Actor, Depends(require(Permission.SECURITY_READ))],
) -> list[VettingAlert]:
    await get_or_404(session, Person, person_id)
    rows = await session.scalars(
        select(VettingAlert).where(VettingAlert.person_id == person_id).order_by(VettingAlert.id)
    )
    return list(rows.all())


@router.post("/{person_id}/alerts", response_model=AlertRaised, status_code=status.HTTP_201_CREATED)
async def raise_alert(
    person_id: IdPath,
    body: AlertCreate,
    session: SessionDep,
    actor: Annotated[Actor, Depends(require(Permission.VETTING_WRITE))],
) -> AlertRaised:
    """Records a continuous-vetting alert; one that suspends eligibility suspends every
    issued or active credential at once and tells every decision cache."""
    alert, suspended = await people.raise_alert(session, actor, person_id, **body.model_dump())
    await session.commit()
    return AlertRaised.model_validate(
        {**AlertPublic.model_validate(alert).model_dump(), "suspended_credential_ids": suspended}
    )


@alerts_router.post("/{alert_id}/resolve", response_model=AlertPublic)
async def resolve_alert(
    alert_id: IdPath,
    body: AlertResolve,
    session: SessionDep,
    actor: Annotated[Actor, Depends(require(Permission.VETTING_WRITE))],
) -> VettingAlert:
    alert = await people.resolve_alert(
        session, actor, alert_id, upheld=body.upheld, resolution=body.resolution
    )
    await session.commit()
    return alert
