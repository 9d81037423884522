"""The panel protocol's payloads: versioned JSON, validated on receipt.

Every payload is a JSON object with ``"v": 1``. Unknown fields are refused (a panel and the
service must agree on the schema; a new field means a new version). Binary values are
standard padded base64. Times are RFC 3339 with an offset. The JSON Schema of each message
is generated from these models (``python -m drivers.mqtt.schema``) and published under
docs/schemas/; a test keeps the files in step.

Requests carry their own ``id`` and may name a ``reply_to`` topic, so request/response works
on MQTT 3.1.1; on MQTT 5 the response topic and correlation data are used as well.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

# Re-exported: decode() raises it and callers know it by this module.
from drivers.errors import PayloadError as PayloadError

#: The largest payload accepted; anything bigger is refused before it is parsed.
MAX_PAYLOAD = 64 * 1024
#: Credential snapshots are the one large message.
MAX_SNAPSHOT = 16 * 1024 * 1024

Base64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$", max_length=11000)]
RequestId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Topic = Annotated[str, StringConstraints(pattern=r"^ac/v1/[A-Za-z0-9_/-]{1,200}$")]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
Hash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Mechanism = Literal["pki_cak", "pki_auth", "sm_auth", "chuid", "pin", "bio", "badge"]
EventType = Literal[
    "card",
    "access",
    "door_pos",
    "rex",
    "forced",
    "held",
    "tamper",
    "power",
    "reader_offline",
    "heartbeat",
    "error",
    #: An offline decision found the cache older than its max age: unknown to it now.
    "cache_stale",
]
Scalar = str | int | float | bool | None

#: The years, in UTC, a request's ``at`` may fall in: the HTTP API's bound for the same
#: input (accessd.api.schemas.common.MOMENT_YEARS). Year 1 at +14:00, or 9999 at a negative
#: offset, cannot even be taken to UTC; no card was presented outside these.
MOMENT_YEARS = (1970, 2999)


def _sane_moment(value: datetime) -> datetime:
    try:
        year = value.astimezone(UTC).year
    except OverflowError:
        year = 0
    first, last = MOMENT_YEARS
    if not first <= year <= last:
        raise ValueError(f"must fall between the years {first} and {last} in UTC")
    return value


#: A moment a panel gives a request: RFC 3339 with an offset, within MOMENT_YEARS.
Moment = Annotated[
    AwareDatetime,
    AfterValidator(_sane_moment),
    Field(
        description=(
            f"RFC 3339 with an offset; in UTC between the years {MOMENT_YEARS[0]} and "
            f"{MOMENT_YEARS[1]}, else the request is refused as invalid"
        )
    ),
]


class Part(BaseModel):
    """Base of the objects inside payloads: frozen, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(Part):
    """Base of every payload: a Part with its version."""

    v: Literal[1] = 1


class CredentialRef(Part):
    """How the reader identified the card."""

    kind: Literal["fasc_n", "card_uuid", "cert_sha256", "badge_number"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class PkiProof(Part):
    """The card's answer to a challenge from ``req/challenge``."""

    mechanism: Literal["pki_cak", "pki_auth"]
    challenge: Base64
    certificate: Base64
    signature: Base64


class BioProof(Part):
    """A match result signed by the reader's attestation key."""

    matched: bool
    score: Annotated[int, Field(ge=0, le=65535)]
    signature: Base64


class PinClaim(Part):
    """The reader's statement that the card verified the holder's PIN (VERIFY answered
    9000) in this presentation, signed with the reader's attestation key over the domain,
    the challenge of ``proof`` and its certificate's SHA-256 (accessd.authn.proofs.pin_message).
    Without it, or without a reader key to check it, a PIN counts only through PKI-AUTH."""

    signature: Base64


class DecideRequest(Message):
    """``req/decide``: a card at a reader; the answer is a DecideReply."""

    id: RequestId
    reader: Id
    at: Moment
    credential: CredentialRef | None = None
    evidence: list[Mechanism] = Field(default_factory=list, max_length=8)
    proof: PkiProof | None = None
    bio: BioProof | None = None
    pin: PinClaim | None = None
    reply_to: Topic | None = None


class DecideReply(Message):
    id: RequestId
    granted: bool
    reason: str
    required: list[str] = Field(default_factory=list)
    unlock_seconds: int = 0
    door: Id | None = None
    #: Why, in words, for the panel's log (may be cut short).
    trail: list[str] = Field(default_factory=list)


class ChallengeRequest(Message):
    """``req/challenge``: challenges for cards at ``reader``, fetched ahead of time."""

    id: RequestId
    reader: Id
    count: Annotated[int, Field(ge=1, le=64)] = 1
    reply_to: Topic | None = None


class ChallengeReply(Message):
    id: RequestId
    challenges: list[Base64]
    expires_at: AwareDatetime


class SnapshotRequest(Message):
    """``req/snapshot``: the panel's cache is missing or a delta did not follow its version."""

    id: RequestId
    have_version: int | None = None
    reply_to: Topic | None = None


class ErrorReply(Message):
    """The answer to a request the service could not take (malformed, not this panel's)."""

    id: RequestId | None = None
    error: str
    detail: str = ""


class Event(Message):
    """``evt/<door>/<type>``: something happened at the panel. ``event_id`` and ``seq`` make a
    replayed event (after an outage) count once."""

    event_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")]
    seq: Annotated[int, Field(ge=0, le=2**63 - 1)]
    at: AwareDatetime
    type: EventType
    door: Id | None = None
    reader: Id | None = None
    data: dict[Annotated[str, StringConstraints(max_length=64)], Scalar] = Field(
        default_factory=dict, max_length=32
    )


#: Most event confirmations in one ``ack`` message: 2,000 seqs of up to 19 digits stay
#: well inside MAX_PAYLOAD.
MAX_ACK = 2000


class EventAck(Message):
    """``ack`` (service → panel): these events of the panel are committed to the database.

    Sent only after the commit, so the panel may forget them; an event the panel uploaded
    and never saw here it uploads again (storage is idempotent by event id). The broker's
    PUBACK says only that the broker has the message, which a broker or service crash can
    still lose. Panels that predate this message ignore it (they never subscribe to it).
    """

    seqs: list[Annotated[int, Field(ge=0, le=2**63 - 1)]] = Field(min_length=1, max_length=MAX_ACK)


class DoorState(Message):
    """``state/<door>`` (retained): how the door is now."""

    lock: Literal["locked", "unlocked"]
    position: Literal["closed", "open", "unknown"]
    mode: str
    at: AwareDatetime


class Birth(Message):
    """``birth`` (retained): who the panel is and what it holds."""

    firmware: Annotated[str, StringConstraints(max_length=64)]
    doors: list[Id] = Field(max_length=256)
    readers: list[Id] = Field(max_length=512)
    cred_version: int = 0
    buffered: int = 0
    protocol: Literal[3, 5] = 5


class Command(Message):
    """``cmd/<door>/<verb>``: the service tells the panel to act; answered on ``res/cmd``."""

    id: RequestId
    verb: Literal["unlock", "mode", "lockdown", "led", "buzzer"]
    #: unlock: ``seconds``; mode: ``mode`` (a door mode); lockdown: ``on``; led: ``color``,
    #: ``seconds``; buzzer: ``pattern``, ``seconds``.
    args: dict[Annotated[str, StringConstraints(max_length=32)], Scalar] = Field(
        default_factory=dict, max_length=8
    )
    #: Commands are not carried out after this (a panel that was offline must not unlock a
    #: door because of an old command).
    expires_at: AwareDatetime


class CommandResult(Message):
    id: RequestId
    ok: bool
    error: str | None = None
    state: DoorState | None = None


class Window(Part):
    """One weekly interval in the facility's local time: day 0 = Monday, minutes."""

    day: Annotated[int, Field(ge=0, le=6)]
    start: Annotated[int, Field(ge=0, le=1440)]
    end: Annotated[int, Field(ge=0, le=1440)]


class OfflineSchedule(Part):
    """A schedule as a panel evaluates it offline."""

    windows: list[Window] = Field(max_length=64)
    holidays: list[date] = Field(default_factory=list, max_length=366)
    #: On a holiday these windows apply instead (empty: closed).
    holiday_windows: list[Window] = Field(default_factory=list, max_length=8)


class OfflineDoor(Part):
    """What an offline decision at a door must still demand."""

    factors: Annotated[int, Field(ge=0, le=3)]
    #: False where accessd must decide (two-person, escort, anti-passback, occupancy, …):
    #: such a door stays shut while the panel is offline.
    offline_allowed: bool


class CacheEntry(Part):
    """One credential that may open some of the panel's doors."""

    #: HMAC-SHA256(salt, "<kind>:<value>"), first 16 bytes, hex: the panel never holds the
    #: identifiers themselves.
    h: Hash
    #: door id (as a string: JSON keys) → schedule id ("always" for none).
    doors: dict[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$")], str]
    valid_until: date


class CredSnapshot(Message):
    """``cred/snapshot`` (retained): the whole cache at ``version``."""

    version: Annotated[int, Field(ge=1)]
    salt: Base64
    timezone: str
    generated_at: AwareDatetime
    #: Past this long without hearing from accessd the panel trusts no entry (a revocation
    #: may be missing) and raises ``cache_stale``; None: no limit (older services).
    max_age_seconds: Annotated[int, Field(ge=60)] | None = None
    doors: dict[str, OfflineDoor]
    schedules: dict[str, OfflineSchedule]
    entries: list[CacheEntry]


class CredDelta(Message):
    """``cred/delta``: from ``from_version`` to ``version``; a panel at another version asks
    for a snapshot instead of applying it."""

    from_version: Annotated[int, Field(ge=1)]
    version: Annotated[int, Field(ge=2)]
    upsert: list[CacheEntry] = Field(default_factory=list)
    remove: list[Hash] = Field(default_factory=list)
    #: Present when door rules or schedules changed too.
    doors: dict[str, OfflineDoor] | None = None
    schedules: dict[str, OfflineSchedule] | None = None


M = TypeVar("M", bound=Message)


def decode(kind: type[M], payload: bytes, *, limit: int = MAX_PAYLOAD) -> M:
    """Parse and validate ``payload`` as ``kind``; PayloadError (too_large, invalid) else."""
    if len(payload) > limit:
        raise PayloadError("too_large", f"{len(payload)} bytes, at most {limit}")
    try:
        return kind.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise PayloadError("invalid", f"{where}: {first['msg']}") from exc


def encode(message: Message) -> bytes:
    """The compact JSON of ``message``."""
    return message.model_dump_json(exclude_none=True).encode()


#: Every message kind by the name its JSON Schema file takes.
SCHEMAS: dict[str, type[Message]] = {
    "decide-request": DecideRequest,
    "decide-reply": DecideReply,
    "challenge-request": ChallengeRequest,
    "challenge-reply": ChallengeReply,
    "snapshot-request": SnapshotRequest,
    "error-reply": ErrorReply,
    "event": Event,
    "event-ack": EventAck,
    "door-state": DoorState,
    "birth": Birth,
    "command": Command,
    "command-result": CommandResult,
    "cred-snapshot": CredSnapshot,
    "cred-delta": CredDelta,
}


def json_schema(kind: type[Message]) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one message kind."""
    schema = kind.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
