from __future__ import annotations

from datetime import datetime

from accessd.api.schemas.common import Input, Public, Reason
from policies.vocabulary import ThreatLevel


class ThreatLevelSet(Input):
    level: ThreatLevel
    reason: Reason = ""


class Forgiveness(Input):
    reason: Reason = ""


class ThreatLevelPublic(Public):
    facility_id: int
    level: ThreatLevel
    version: int


class WhatIfAnswer(Public):
    person_id: int
    door_id: int
    #: Authorized, possibly needing company (a second person, an escort).
    allowed: bool
    granted: bool
    reason: str
    required: list[str]
    trail: list[str]


class WhatIf(Public):
    at: datetime
    threat: ThreatLevel | None
    answers: list[WhatIfAnswer]
