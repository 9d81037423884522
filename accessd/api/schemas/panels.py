from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from accessd.api.schemas.common import Input, Public
from accessd.api.schemas.common import Reason as ReasonText

Scalar = str | int | float | bool | None


class DoorCommandIn(Input):
    verb: Literal["unlock", "mode", "lockdown", "led", "buzzer"]
    #: unlock: seconds; mode: mode; lockdown: on; led: color, seconds; buzzer: pattern, seconds.
    args: dict[Annotated[str, StringConstraints(max_length=32)], Scalar] = Field(
        default_factory=dict, max_length=8
    )
    reason: ReasonText = ""


class DoorStatePublic(Public):
    lock: str
    position: str
    mode: str
    at: datetime


class DoorCommandPublic(Public):
    door_id: int
    verb: str
    ok: bool
    error: str | None
    state: DoorStatePublic | None


class LockdownIn(Input):
    on: bool
    reason: ReasonText = ""


class LockdownPublic(Public):
    facility_id: int
    on: bool
    #: panel id → "ok" or why not (timeout, offline, what the panel said)
    panels: dict[int, str]


class PanelStatusPublic(Public):
    panel_id: int
    site: str
    name: str
    online: bool
    last_seen: datetime | None
    firmware: str | None
    cred_version: int | None
    buffered: int | None


class PanelEventPublic(Public):
    id: int
    panel_id: int
    event_id: str
    seq: int | None
    at: datetime
    received_at: datetime
    type: str
    door_id: int | None
    reader_id: int | None
    alarm: bool
    data: dict[str, Any]
    source: str
