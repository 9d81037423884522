"""The credential lifecycle after FIPS 201-3 and its separation-of-duties rules.

States and the actions that move a credential between them are a table; the service asks
`check_action` before every transition and records the result. Nothing here touches a
database: the caller passes the credential's facts and the acting operator.

    requested ──enroll──▶ enrolled ──adjudicate──▶ adjudicated ──issue──▶ issued
        │ (temporary badges: issue straight from requested)                  │ activate
        ▼                                                                     ▼
    terminated ◀──terminate── any live state   suspended ◀─suspend─ issued | active
        │                                       └──reinstate──▶ active
        ▼                         issued/active/suspended ──report_*──▶ lost | stolen | damaged
    destroyed ◀──destroy── terminated | lost | stolen | damaged
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta


class CredentialKind(enum.StrEnum):
    PIV = "piv"
    PIV_I = "piv_i"
    LOCAL_BADGE = "local_badge"
    TEMPORARY = "temporary"
    LAW_ENFORCEMENT = "law_enforcement"


class CredentialState(enum.StrEnum):
    REQUESTED = "requested"
    ENROLLED = "enrolled"
    ADJUDICATED = "adjudicated"
    ISSUED = "issued"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    LOST = "lost"
    STOLEN = "stolen"
    DAMAGED = "damaged"
    DESTROYED = "destroyed"


class Action(enum.StrEnum):
    ENROLL = "enroll"
    ADJUDICATE = "adjudicate"
    ISSUE = "issue"
    ACTIVATE = "activate"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    TERMINATE = "terminate"
    REPORT_LOST = "report_lost"
    REPORT_STOLEN = "report_stolen"
    REPORT_DAMAGED = "report_damaged"
    DESTROY = "destroy"


class Adjudication(enum.StrEnum):
    PENDING = "pending"
    FAVORABLE = "favorable"
    UNFAVORABLE = "unfavorable"


S = CredentialState
_LIVE = frozenset({S.REQUESTED, S.ENROLLED, S.ADJUDICATED, S.ISSUED, S.ACTIVE, S.SUSPENDED})
_IN_HAND = frozenset({S.ISSUED, S.ACTIVE, S.SUSPENDED})

#: action -> (states it may start from, state it leads to)
TRANSITIONS: dict[Action, tuple[frozenset[CredentialState], CredentialState]] = {
    Action.ENROLL: (frozenset({S.REQUESTED}), S.ENROLLED),
    Action.ADJUDICATE: (frozenset({S.ENROLLED}), S.ADJUDICATED),
    Action.ISSUE: (frozenset({S.ADJUDICATED}), S.ISSUED),
    Action.ACTIVATE: (frozenset({S.ISSUED}), S.ACTIVE),
    Action.SUSPEND: (frozenset({S.ISSUED, S.ACTIVE}), S.SUSPENDED),
    Action.REINSTATE: (frozenset({S.SUSPENDED}), S.ACTIVE),
    Action.TERMINATE: (_LIVE, S.TERMINATED),
    Action.REPORT_LOST: (_IN_HAND, S.LOST),
    Action.REPORT_STOLEN: (_IN_HAND, S.STOLEN),
    Action.REPORT_DAMAGED: (_IN_HAND, S.DAMAGED),
    Action.DESTROY: (frozenset({S.TERMINATED, S.LOST, S.STOLEN, S.DAMAGED}), S.DESTROYED),
}

#: States in which a credential can open a door (validity dates permitting).
USABLE_STATES = frozenset({S.ACTIVE})
#: States from which there is no way back to a usable credential.
FINAL_STATES = frozenset({S.TERMINATED, S.LOST, S.STOLEN, S.DAMAGED, S.DESTROYED})

#: FIPS 201-3 §2.9.1: a PIV card expires no later than six years after issuance, counted in
#: calendar years (six years hold one or two 29 Februarys, so no fixed number of days fits).
MAX_VALIDITY_YEARS: dict[CredentialKind, int] = {
    CredentialKind.PIV: 6,
    CredentialKind.PIV_I: 6,
    CredentialKind.LOCAL_BADGE: 6,
    CredentialKind.LAW_ENFORCEMENT: 6,
}
#: HSPD-12 covers people who need access for six months or more, so shorter stays get
#: temporary badges, limited here to 180 days.
MAX_VALIDITY_DAYS: dict[CredentialKind, int] = {CredentialKind.TEMPORARY: 180}

#: Kinds that carry no background-investigation requirement (escorted or short stays).
NO_ADJUDICATION_KINDS = frozenset({CredentialKind.TEMPORARY})

#: Actions an operator may not take on their own credential: only reporting loss is allowed.
_SELF_ALLOWED = frozenset({Action.REPORT_LOST, Action.REPORT_STOLEN, Action.REPORT_DAMAGED})
#: Actions that bring a credential closer to opening doors: none for a person who has left.
_TOWARDS_USE = frozenset(
    {Action.ENROLL, Action.ADJUDICATE, Action.ISSUE, Action.ACTIVATE, Action.REINSTATE}
)


@dataclass(frozen=True, slots=True)
class CredentialFacts:
    """What the lifecycle rules need to know about one credential and its holder."""

    kind: CredentialKind
    state: CredentialState
    holder_person_id: int
    valid_from: date
    valid_until: date
    sponsor_id: int | None
    adjudicator_id: int | None
    holder_adjudication: Adjudication
    holder_eligibility_suspended: bool
    #: The holder's person record says they have separated from the organization.
    holder_separated: bool = False


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an action was refused; `code` is stable, `detail` is for people."""

    code: str
    detail: str


def allowed_actions(kind: CredentialKind, state: CredentialState) -> list[Action]:
    """Actions whose start state matches; other rules may still refuse them."""
    return [a for a in Action if state in _start_states(kind, a)]


def _start_states(kind: CredentialKind, action: Action) -> frozenset[CredentialState]:
    starts, _ = TRANSITIONS[action]
    if action is Action.ISSUE and kind in NO_ADJUDICATION_KINDS:
        return starts | {S.REQUESTED}
    return starts


def target_state(action: Action) -> CredentialState:
    return TRANSITIONS[action][1]


def validity_refusal(kind: CredentialKind, valid_from: date, valid_until: date) -> Refusal | None:
    """Checks a validity window against the kind's maximum."""
    if valid_until < valid_from:
        return Refusal("validity_inverted", "valid_until is before valid_from")
    if valid_until > latest_valid_until(kind, valid_from):
        years = MAX_VALIDITY_YEARS.get(kind)
        limit = f"{years} years" if years else f"{MAX_VALIDITY_DAYS[kind]} days"
        return Refusal(
            "validity_too_long", f"a {kind.value} credential may be valid for at most {limit}"
        )
    return None


def latest_valid_until(kind: CredentialKind, valid_from: date) -> date:
    """The last valid_until the kind allows for a credential valid from `valid_from`."""
    years = MAX_VALIDITY_YEARS.get(kind)
    if years is None:
        return valid_from + timedelta(days=MAX_VALIDITY_DAYS[kind])
    try:
        return valid_from.replace(year=valid_from.year + years)
    except ValueError:  # valid from 29 February, and that year has none
        return valid_from.replace(year=valid_from.year + years, day=28)


def check_action(
    facts: CredentialFacts,
    action: Action,
    *,
    actor_id: int,
    actor_person_id: int | None,
    today: date,
) -> Refusal | None:
    """Returns why `actor_id` may not take `action` now, or None when it is allowed.

    Role permissions are checked by the caller; this covers the state machine, separation of
    duties (FIPS 201-3 §2.8: nobody issues a card alone), adjudication and validity.
    """
    if facts.state not in _start_states(facts.kind, action):
        return Refusal(
            "illegal_transition",
            f"cannot {action.value} a credential that is {facts.state.value}",
        )
    if actor_person_id == facts.holder_person_id and action not in _SELF_ALLOWED:
        return Refusal("self_dealing", "an operator may not act on their own credential")
    if facts.holder_separated and action in _TOWARDS_USE:
        return Refusal(
            "person_separated", "the holder has separated; the credential can only be revoked"
        )
    # Kinds without an investigation requirement go ahead while it is pending, but a person
    # found unsuitable gets no credential of any kind.
    adjudication_ok = facts.holder_adjudication is Adjudication.FAVORABLE or (
        facts.kind in NO_ADJUDICATION_KINDS and facts.holder_adjudication is Adjudication.PENDING
    )
    if action is Action.ADJUDICATE and facts.holder_adjudication is not Adjudication.FAVORABLE:
        return Refusal(
            "adjudication_not_favorable",
            f"the holder's adjudication is {facts.holder_adjudication.value}",
        )
    if action is Action.ISSUE:
        if actor_id == facts.sponsor_id:
            return Refusal(
                "separation_of_duties", "the sponsor of a credential may not also issue it"
            )
        if actor_id == facts.adjudicator_id:
            return Refusal(
                "separation_of_duties", "the adjudicator of a credential may not also issue it"
            )
        if not adjudication_ok:
            return Refusal(
                "adjudication_not_favorable",
                "a credential is issued only after a favorable adjudication",
            )
        if facts.valid_until < today:
            return Refusal("expired", "the credential's validity has already ended")
    if action in (Action.ISSUE, Action.ACTIVATE, Action.REINSTATE):
        if facts.holder_eligibility_suspended:
            return Refusal(
                "eligibility_suspended",
                "the holder's eligibility is suspended by an open vetting alert",
            )
        if action is not Action.ISSUE and not adjudication_ok:
            return Refusal(
                "adjudication_not_favorable",
                f"the holder's adjudication is {facts.holder_adjudication.value}",
            )
    return None
