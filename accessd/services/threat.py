"""Setting a facility's threat level."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from accessd.events import ThreatLevelChanged, stage
from accessd.models import Facility
from accessd.models.enums import Entity
from accessd.services import audit
from accessd.services.actors import Actor
from accessd.services.records import get_or_404
from policies.vocabulary import ThreatLevel


async def set_threat_level(
    session: AsyncSession, actor: Actor, facility_id: int, level: ThreatLevel, reason: str
) -> Facility:
    facility = await get_or_404(session, Facility, facility_id, lock=True)
    old = ThreatLevel(facility.threat_level)
    if old is level:
        return facility
    facility.threat_level = level
    await session.flush()
    await audit.record(
        session,
        actor=actor.label,
        action="facility.threat_level",
        entity=Entity.FACILITY,
        entity_id=facility.id,
        data={"from": old, "to": level, "reason": reason},
    )
    stage(session, ThreatLevelChanged(facility.id, level.value))
    return facility
