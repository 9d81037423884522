"""Topic names of the panel protocol (docs/protocols.md, "MQTT panel protocol").

Every topic lives under ``ac/v1/<site>/<panel>/``: ``site`` is the facility code and
``panel`` the panel's wire name, each 1-64 of ``[A-Za-z0-9_-]`` (MQTT wildcards, ``/``,
``$`` and NUL can never appear in them). Door segments are accessd door ids, or ``panel``
for what concerns the whole panel (enclosure tamper, power).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Re-exported: parse() and check_segment() raise it and callers know it by this module.
from drivers.errors import TopicError as TopicError

ROOT = "ac/v1"
SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PANEL_DOOR = "panel"  # door segment of panel-level events and commands
SHARE_GROUP = "accessd"

# Leaves under a panel's prefix.
STATUS = "status"  # retained "online" / "offline" (last will)
BIRTH = "birth"  # retained JSON: firmware, doors, readers, credential-cache version
REQ_DECIDE = "req/decide"
REQ_CHALLENGE = "req/challenge"
REQ_SNAPSHOT = "req/snapshot"
RSP = "rsp"  # service → panel answers when the request names no reply topic
RES_CMD = "res/cmd"  # panel → service command results
#: service → panel: events committed to the database (EventAck), QoS 1. The panel keeps an
#: event until it is named here, not merely until the broker has it.
ACK = "ack"
CRED_SNAPSHOT = "cred/snapshot"
CRED_DELTA = "cred/delta"

#: QoS of decision and challenge requests and of every answer on ``rsp``. They are worth
#: something only within the panel's deadline (300 ms by default), after which the panel
#: decides from its cache and the access event it records (QoS 1, buffered) is the audit
#: trail; QoS 1 would only add two PUBACKs to each round trip (bench/decisions_mqtt.py:
#: sequential p99 2.8 ms at QoS 1, 1.4 ms at QoS 0 for a bare echo) and let a broker
#: redeliver a stale request after a reconnect.
DEADLINE_QOS = 0

EVENT_TYPES = frozenset(
    {
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
    }
)
COMMAND_VERBS = frozenset({"unlock", "mode", "lockdown", "led", "buzzer"})


def check_segment(value: str, what: str) -> str:
    if not SEGMENT.match(value):
        raise TopicError(f"{what} {value!r} must be 1-64 of A-Z a-z 0-9 _ -")
    return value


@dataclass(frozen=True, slots=True)
class PanelTopics:
    """The topics of one panel."""

    site: str
    panel: str

    def __post_init__(self) -> None:
        check_segment(self.site, "site")
        check_segment(self.panel, "panel")

    @property
    def prefix(self) -> str:
        return f"{ROOT}/{self.site}/{self.panel}"

    def leaf(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    @property
    def status(self) -> str:
        return self.leaf(STATUS)

    @property
    def birth(self) -> str:
        return self.leaf(BIRTH)

    @property
    def rsp(self) -> str:
        return self.leaf(RSP)

    @property
    def ack(self) -> str:
        return self.leaf(ACK)

    def event(self, door: int | str, kind: str) -> str:
        if kind not in EVENT_TYPES:
            raise TopicError(f"unknown event type {kind!r}")
        return f"{self.prefix}/evt/{_door(door)}/{kind}"

    def state(self, door: int) -> str:
        return f"{self.prefix}/state/{_door(door)}"

    def command(self, door: int | str, verb: str) -> str:
        if verb not in COMMAND_VERBS:
            raise TopicError(f"unknown command {verb!r}")
        return f"{self.prefix}/cmd/{_door(door)}/{verb}"

    # The subscriptions a panel makes.
    @property
    def panel_subscriptions(self) -> tuple[str, ...]:
        return (self.rsp, self.ack, f"{self.prefix}/cmd/#", f"{self.prefix}/cred/#")


def _door(door: int | str) -> str:
    if isinstance(door, int):
        if door < 1:
            raise TopicError("door ids are positive")
        return str(door)
    if door != PANEL_DOOR:
        raise TopicError(f"door segment must be an id or {PANEL_DOOR!r}")
    return door


#: The requests without the share, for a broker that has no shared subscriptions: one
#: service instance then takes them all.
SERVICE_REQUESTS_UNSHARED = f"{ROOT}/+/+/req/#"
#: What the service subscribes to: requests through the shared subscription, so several
#: instances share them, and everything else from every panel.
SERVICE_REQUESTS = f"$share/{SHARE_GROUP}/{SERVICE_REQUESTS_UNSHARED}"
SERVICE_FEEDS = (
    f"{ROOT}/+/+/{STATUS}",
    f"{ROOT}/+/+/{BIRTH}",
    f"{ROOT}/+/+/evt/#",
    f"{ROOT}/+/+/state/#",
    f"{ROOT}/+/+/{RES_CMD}",
)


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """A topic taken apart: whose it is and what it is."""

    site: str
    panel: str
    kind: str  # status, birth, req/decide, evt, state, cmd, res/cmd, cred/snapshot, …
    door: str | None = None
    leaf: str | None = None  # the event type or command verb


def parse(topic: str) -> ParsedTopic:
    """Take a protocol topic apart; TopicError for anything else."""
    parts = topic.split("/")
    if len(parts) < 5 or f"{parts[0]}/{parts[1]}" != ROOT:
        raise TopicError(f"not a panel topic: {topic!r}")
    site, panel, rest = parts[2], parts[3], parts[4:]
    check_segment(site, "site")
    check_segment(panel, "panel")
    head = rest[0]
    if len(rest) == 1 and head in (STATUS, BIRTH, RSP, ACK):
        return ParsedTopic(site, panel, head)
    if len(rest) == 2 and "/".join(rest) in (
        REQ_DECIDE,
        REQ_CHALLENGE,
        REQ_SNAPSHOT,
        RES_CMD,
        CRED_SNAPSHOT,
        CRED_DELTA,
    ):
        return ParsedTopic(site, panel, "/".join(rest))
    if head == "evt" and len(rest) == 3 and rest[2] in EVENT_TYPES:
        return ParsedTopic(site, panel, "evt", _door_segment(rest[1]), rest[2])
    if head == "state" and len(rest) == 2:
        return ParsedTopic(site, panel, "state", _door_segment(rest[1]))
    if head == "cmd" and len(rest) == 3 and rest[2] in COMMAND_VERBS:
        return ParsedTopic(site, panel, "cmd", _door_segment(rest[1]), rest[2])
    raise TopicError(f"not a panel topic: {topic!r}")


def _door_segment(value: str) -> str:
    if value == PANEL_DOOR or (value.isdigit() and value[0] != "0" and len(value) <= 10):
        return value
    raise TopicError(f"door segment {value!r} is neither an id nor {PANEL_DOOR!r}")
