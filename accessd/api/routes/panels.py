"""Door panels: their status and events, and commands to their doors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from accessd.api.deps import AfterQuery, IdPath, IdQuery, SessionDep, StateDep, require
from accessd.api.schemas.common import Page
from accessd.api.schemas.panels import (
    DoorCommandIn,
    DoorCommandPublic,
    DoorStatePublic,
    LockdownIn,
    LockdownPublic,
    PanelEventPublic,
    PanelStatusPublic,
)
from accessd.api.state import AppState
from accessd.auth.permissions import Permission
from accessd.errors import DeviceUnavailable, NotFound
from accessd.gateway.service import CommandFailed, MqttGateway
from accessd.models import Door, Facility, PanelEvent
from accessd.services import audit
from accessd.services.actors import Actor

router = APIRouter(tags=["panels"])


def _gateway(state: AppState) -> MqttGateway:
    if state.gateway is None:
        raise DeviceUnavailable(
            "this instance runs no MQTT panel gateway (settings: mqtt_gateway)",
            code="no_gateway",
        )
    return state.gateway


@router.post("/v1/doors/{door_id}/commands", response_model=DoorCommandPublic)
async def command_door(
    door_id: IdPath,
    body: DoorCommandIn,
    session: SessionDep,
    state: StateDep,
    actor: Annotated[Actor, Depends(require(Permission.DOORS_CONTROL))],
) -> DoorCommandPublic:
    """Sends a command to the door's panel and answers with the panel's result."""
    if await session.get(Door, door_id) is None:
        raise NotFound(f"door {door_id} does not exist")
    gateway = _gateway(state)
    try:
        result = await gateway.command(door_id, body.verb, body.args)
    except CommandFailed as exc:
        # Each kind of failure is its own service error (503 unreachable, 504 no answer):
        # audited, then answered as a problem by its type.
        await _audit(session, actor, door_id, body, exc.reason)
        raise
    await _audit(session, actor, door_id, body, "ok" if result.ok else result.error or "refused")
    state_out = None
    if result.state is not None:
        state_out = DoorStatePublic(
            lock=result.state.lock,
            position=result.state.position,
            mode=result.state.mode,
            at=result.state.at,
        )
    return DoorCommandPublic(
        door_id=door_id, verb=body.verb, ok=result.ok, error=result.error, state=state_out
    )


async def _audit(
    session: SessionDep, actor: Actor, door_id: int, body: DoorCommandIn, outcome: str
) -> None:
    # Who opened which door remotely, and what came of it, is evidence.
    await audit.record(
        session,
        actor=actor.label,
        action="door.command",
        entity="door",
        entity_id=door_id,
        data={
            "verb": body.verb,
            "args": dict(body.args),
            "reason": body.reason,
            "outcome": outcome,
        },
    )
    await session.commit()


@router.post("/v1/facilities/{facility_id}/lockdown", response_model=LockdownPublic)
async def lockdown(
    facility_id: IdPath,
    body: LockdownIn,
    session: SessionDep,
    state: StateDep,
    actor: Annotated[Actor, Depends(require(Permission.DOORS_CONTROL))],
) -> LockdownPublic:
    """Locks down (or releases) every door of the facility at its panels at once."""
    if await session.get(Facility, facility_id) is None:
        raise NotFound(f"facility {facility_id} does not exist")
    results = await _gateway(state).lockdown(facility_id, body.on)
    await audit.record(
        session,
        actor=actor.label,
        action="facility.lockdown",
        entity="facility",
        entity_id=facility_id,
        data={
            "on": body.on,
            "reason": body.reason,
            "panels": {str(k): v for k, v in results.items()},
        },
    )
    await session.commit()
    return LockdownPublic(facility_id=facility_id, on=body.on, panels=results)


@router.get("/v1/panel-status", response_model=list[PanelStatusPublic])
async def panel_status(
    state: StateDep,
    _: Annotated[Actor, Depends(require(Permission.FACILITIES_READ))],
) -> list[PanelStatusPublic]:
    """Every MQTT panel this instance's gateway knows: online or not, when last heard, its
    birth (an empty list where this instance runs no gateway)."""
    gateway = state.gateway
    if gateway is None:
        return []
    out = []
    for panel in gateway.directory.panels():
        seen = gateway.presence.get(panel.id)
        birth = seen.birth if seen else None
        out.append(
            PanelStatusPublic(
                panel_id=panel.id,
                site=panel.site,
                name=panel.name,
                online=bool(seen and seen.online),
                last_seen=seen.last_seen if seen else None,
                firmware=birth.firmware if birth else None,
                cred_version=birth.cred_version if birth else None,
                buffered=birth.buffered if birth else None,
            )
        )
    return out


@router.get("/v1/panel-events", response_model=Page[PanelEventPublic])
async def panel_events(
    session: SessionDep,
    _: Annotated[Actor, Depends(require(Permission.DECISIONS_READ))],
    after: AfterQuery = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    panel_id: IdQuery = None,
    door_id: IdQuery = None,
    type: Annotated[str | None, Query(max_length=24, pattern=r"^[a-z_]+$")] = None,
    alarm: bool | None = None,
) -> Page[PanelEventPublic]:
    """What panels reported (and what accessd noted about them), oldest first."""
    stmt = select(PanelEvent).where(PanelEvent.id > after)
    if panel_id is not None:
        stmt = stmt.where(PanelEvent.panel_id == panel_id)
    if door_id is not None:
        stmt = stmt.where(PanelEvent.door_id == door_id)
    if type is not None:
        stmt = stmt.where(PanelEvent.type == type)
    if alarm is not None:
        stmt = stmt.where(PanelEvent.alarm.is_(alarm))
    rows = list((await session.scalars(stmt.order_by(PanelEvent.id).limit(limit))).all())
    return Page(
        items=[PanelEventPublic.model_validate(r) for r in rows],
        next_after=rows[-1].id if len(rows) == limit else None,
    )
