"""Decision reasons in words, for whoever reads a decision: an operator at the API or the
command line, the demo's output, a panel's log.

A decision carries its reason code and its trail, the rules that decided in the order they
were checked, the deciding one last. `in_words` puts the two together in one sentence, and
works as well on a stored decision (its code and trail as text) as on a fresh one.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from policies.decision import Reason

#: Each reason code as a person would say it.
SENTENCES = MappingProxyType(
    {
        Reason.GRANTED: "granted",
        Reason.GRANTED_FREE_ACCESS: "granted: the door stands open by its schedule",
        Reason.UNKNOWN_READER: "the reader is not known",
        Reason.UNKNOWN_CREDENTIAL: "the card is not known",
        Reason.CREDENTIAL_NOT_ACTIVE: "the credential is not active",
        Reason.CREDENTIAL_EXPIRED: "the credential has expired",
        Reason.CREDENTIAL_NOT_YET_VALID: "the credential is not valid yet",
        Reason.PERSON_INACTIVE: "the person is not active",
        Reason.ELIGIBILITY_SUSPENDED: "eligibility is suspended by continuous vetting",
        Reason.DOOR_LOCKED: "the door is locked",
        Reason.DOOR_LOCKDOWN: "the facility is in lockdown",
        Reason.THREAT_LEVEL_RESTRICTED: "the threat level keeps them out",
        Reason.NO_ACCESS_LEVEL: "no access to this door",
        Reason.OUTSIDE_SCHEDULE: "outside the schedule",
        Reason.INSUFFICIENT_CLEARANCE: "their clearance is not enough for the area",
        Reason.NOT_READ_IN: "not read into the area's programs",
        Reason.FACTORS_MISSING: "more authentication is needed",
        Reason.OCCUPANCY_FULL: "the area is full",
        Reason.ANTI_PASSBACK: "anti-passback: the last badge put them elsewhere",
        Reason.AWAITING_ESCORT: "a visitor waits for an escort",
        Reason.AWAITING_SECOND_PERSON: "the two-person rule waits for a second person",
        Reason.AUTHENTICATION_FAILED: "the card failed authentication",
    }
)


def in_words(reason: str, trail: Sequence[str] = (), required: Sequence[str] = ()) -> str:
    """One sentence for a decision: its reason in words, then for a denial the rule that
    decided (the trail's last line) and what is still required. A code this version does
    not know (a panel's own, such as ``offline_outside_schedule``) is read as it stands."""
    try:
        code = Reason(reason)
    except ValueError:
        return reason.replace("_", " ")
    sentence = SENTENCES[code]
    if code in (Reason.GRANTED, Reason.GRANTED_FREE_ACCESS):
        return sentence
    if trail:
        sentence += f" ({trail[-1]})"
    if required:
        sentence += f"; still required: {', '.join(required)}"
    return sentence


#: Denials that would tell whoever stands at the door about the person's security record
#: (status, vetting, clearance, programs): a door, HTTP reader or MQTT panel, is told them
#: all as one.
PERSONAL_REASONS = frozenset(
    {
        Reason.PERSON_INACTIVE,
        Reason.ELIGIBILITY_SUSPENDED,
        Reason.INSUFFICIENT_CLEARANCE,
        Reason.NOT_READ_IN,
    }
)
#: The reason a door is given instead of one of those.
NOT_AUTHORIZED = "not_authorized"


def for_the_door(reason: Reason) -> str:
    """The reason code a door is told (the decision log keeps the real one)."""
    return NOT_AUTHORIZED if reason in PERSONAL_REASONS else reason.value
