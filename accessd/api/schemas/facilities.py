from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from accessd.api.schemas.common import Id, Input, Name, ShortName, Update, VersionedPublic
from accessd.models.enums import AreaClass, PanelTransport, ReaderDirection

Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
WireName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
SecurityLevel = Annotated[int, Field(ge=1, le=5, description="ISC facility security level I-V")]
Timezone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Address = Annotated[str, StringConstraints(max_length=400)]
OsdpAddress = Annotated[int, Field(ge=0, le=126)]


class FacilityCreate(Input):
    code: Code
    name: Name
    timezone: Timezone
    security_level: SecurityLevel
    address: Address = ""


class FacilityUpdate(Update):
    code: Code | None = None
    name: Name | None = None
    timezone: Timezone | None = None
    security_level: SecurityLevel | None = None
    address: Address | None = None


class FacilityPublic(VersionedPublic):
    code: str
    name: str
    timezone: str
    security_level: int
    address: str


class AreaCreate(Input):
    facility_id: Id
    parent_id: Id | None = None
    name: Name
    area_class: AreaClass
    is_scif: bool = False


class AreaUpdate(Update):
    nullable = frozenset({"parent_id"})

    parent_id: Id | None = None
    name: Name | None = None
    area_class: AreaClass | None = None
    is_scif: bool | None = None


class AreaPublic(VersionedPublic):
    facility_id: int
    parent_id: int | None
    name: str
    area_class: AreaClass
    is_scif: bool


class PanelCreate(Input):
    facility_id: Id
    name: WireName
    transport: PanelTransport


class PanelUpdate(Update):
    name: WireName | None = None
    transport: PanelTransport | None = None


class PanelPublic(VersionedPublic):
    facility_id: int
    name: str
    transport: PanelTransport


class DoorCreate(Input):
    area_id: Id
    from_area_id: Id | None = None
    panel_id: Id | None = None
    name: Name


class DoorUpdate(Update):
    nullable = frozenset({"from_area_id", "panel_id"})

    area_id: Id | None = None
    from_area_id: Id | None = None
    panel_id: Id | None = None
    name: Name | None = None


class DoorPublic(VersionedPublic):
    area_id: int
    from_area_id: int | None
    panel_id: int | None
    name: str


class ReaderCreate(Input):
    door_id: Id
    panel_id: Id | None = None
    name: Name
    direction: ReaderDirection
    contact: bool = False
    contactless: bool = True
    pin_pad: bool = False
    biometric: bool = False
    osdp_address: OsdpAddress | None = None


class ReaderUpdate(Update):
    nullable = frozenset({"panel_id", "osdp_address"})

    door_id: Id | None = None
    panel_id: Id | None = None
    name: Name | None = None
    direction: ReaderDirection | None = None
    contact: bool | None = None
    contactless: bool | None = None
    pin_pad: bool | None = None
    biometric: bool | None = None
    osdp_address: OsdpAddress | None = None


class ReaderPublic(VersionedPublic):
    door_id: int
    panel_id: int | None
    name: str
    direction: ReaderDirection
    contact: bool
    contactless: bool
    pin_pad: bool
    biometric: bool
    osdp_address: int | None


__all__ = ["ShortName"]
