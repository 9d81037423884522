from __future__ import annotations

from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import AfterValidator, Field, StringConstraints

from accessd.api.schemas.common import Id, Input, Name, Update, VersionedPublic
from accessd.models.enums import (
    AntiPassback,
    AreaClass,
    DoorMode,
    Eligibility,
    PanelTransport,
    ReaderDirection,
    ThreatLevel,
)
from policies.vocabulary import Mechanism

Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
WireName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
SecurityLevel = Annotated[int, Field(ge=1, le=5, description="ISC facility security level I-V")]
Timezone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Address = Annotated[str, StringConstraints(max_length=400)]
OsdpAddress = Annotated[int, Field(ge=0, le=126)]


def _public_key_pem(text: str) -> str:
    # Refuse at the door what the BIO check could not use later: a key it cannot load.
    try:
        key = load_pem_public_key(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("attestation_key must be a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise ValueError("attestation_key must be an EC, Ed25519 or RSA public key")
    return text.strip() + "\n"


AttestationKey = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4096),
    AfterValidator(_public_key_pem),
]


class ThreatRuleIn(Input):
    """What a threat level changes at every door: at least this many factors, and when
    `only_groups` is set, only members of those groups (by name) pass."""

    min_factors: Annotated[int, Field(ge=0, le=3)] = 0
    only_groups: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = None


ThreatRules = dict[ThreatLevel, ThreatRuleIn]


class FacilityCreate(Input):
    code: Code
    name: Name
    timezone: Timezone
    security_level: SecurityLevel
    address: Address = ""
    #: Overrides of the default threat-level rules; levels not named keep the defaults.
    threat_rules: ThreatRules | None = None


class FacilityUpdate(Update):
    nullable = frozenset({"threat_rules"})

    code: Code | None = None
    name: Name | None = None
    timezone: Timezone | None = None
    security_level: SecurityLevel | None = None
    address: Address | None = None
    threat_rules: ThreatRules | None = None


class FacilityPublic(VersionedPublic):
    code: str
    name: str
    timezone: str
    security_level: int
    address: str
    threat_level: str
    threat_rules: dict[str, Any] | None


Seconds = Annotated[int, Field(ge=0, le=24 * 3600)]
Program = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,63}$")]


class AreaPolicyFields(Input):
    """What decisions into the area check besides its class."""

    min_eligibility: Eligibility = Eligibility.NONE
    programs: list[Program] = []
    two_person_window_s: Seconds = 0
    escort_required: bool = True
    escort_window_s: Seconds = 30
    anti_passback: AntiPassback = AntiPassback.NONE
    apb_reset_s: Seconds = 0
    occupancy_limit: Annotated[int, Field(ge=1, le=100_000)] | None = None


class AreaCreate(AreaPolicyFields):
    facility_id: Id
    parent_id: Id | None = None
    name: Name
    area_class: AreaClass
    is_scif: bool = False


class AreaUpdate(Update):
    nullable = frozenset({"parent_id", "occupancy_limit"})

    parent_id: Id | None = None
    name: Name | None = None
    area_class: AreaClass | None = None
    is_scif: bool | None = None
    min_eligibility: Eligibility | None = None
    programs: list[Program] | None = None
    two_person_window_s: Seconds | None = None
    escort_required: bool | None = None
    escort_window_s: Seconds | None = None
    anti_passback: AntiPassback | None = None
    apb_reset_s: Seconds | None = None
    occupancy_limit: Annotated[int, Field(ge=1, le=100_000)] | None = None


class AreaPublic(VersionedPublic):
    facility_id: int
    parent_id: int | None
    name: str
    area_class: AreaClass
    is_scif: bool
    min_eligibility: Eligibility
    programs: list[str]
    two_person_window_s: int
    escort_required: bool
    escort_window_s: int
    anti_passback: AntiPassback
    apb_reset_s: int
    occupancy_limit: int | None


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


UnlockSeconds = Annotated[int, Field(ge=1, le=3600)]


class DoorCreate(Input):
    area_id: Id
    from_area_id: Id | None = None
    panel_id: Id | None = None
    name: Name
    mode: DoorMode = DoorMode.CARD_ONLY
    unlock_schedule_id: Id | None = None
    unlock_seconds: UnlockSeconds = 5
    #: Mechanisms its readers verify; what the SP 800-116 compliance report weighs.
    accepts: list[Mechanism] = []


class DoorUpdate(Update):
    nullable = frozenset({"from_area_id", "panel_id", "unlock_schedule_id"})

    area_id: Id | None = None
    from_area_id: Id | None = None
    panel_id: Id | None = None
    name: Name | None = None
    mode: DoorMode | None = None
    unlock_schedule_id: Id | None = None
    unlock_seconds: UnlockSeconds | None = None
    accepts: list[Mechanism] | None = None


class DoorPublic(VersionedPublic):
    area_id: int
    from_area_id: int | None
    panel_id: int | None
    name: str
    mode: DoorMode
    unlock_schedule_id: int | None
    unlock_seconds: int
    accepts: list[str]


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
    #: PEM public key the reader signs biometric match results with.
    attestation_key: AttestationKey | None = None


class ReaderUpdate(Update):
    nullable = frozenset({"panel_id", "osdp_address", "attestation_key"})

    door_id: Id | None = None
    panel_id: Id | None = None
    name: Name | None = None
    direction: ReaderDirection | None = None
    contact: bool | None = None
    contactless: bool | None = None
    pin_pad: bool | None = None
    biometric: bool | None = None
    osdp_address: OsdpAddress | None = None
    attestation_key: AttestationKey | None = None


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
    attestation_key: str | None
