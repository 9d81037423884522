"""What each operator role may do. Endpoints name one permission; roles grant sets of them."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from accessd.models.enums import Role
from policies.lifecycle import Action


class Permission(enum.StrEnum):
    PEOPLE_READ = "people:read"
    #: Adding a person (the sponsor's step); editing one is the registrar's.
    PEOPLE_CREATE = "people:create"
    PEOPLE_WRITE = "people:write"
    SECURITY_READ = "security:read"
    SECURITY_WRITE = "security:write"
    VETTING_WRITE = "vetting:write"
    CREDENTIALS_READ = "credentials:read"
    CREDENTIALS_SPONSOR = "credentials:sponsor"
    CREDENTIALS_IDENTIFY = "credentials:identify"
    CREDENTIALS_ENROLL = "credentials:enroll"
    CREDENTIALS_ADJUDICATE = "credentials:adjudicate"
    CREDENTIALS_ISSUE = "credentials:issue"
    CREDENTIALS_ACTIVATE = "credentials:activate"
    CREDENTIALS_SUSPEND = "credentials:suspend"
    CREDENTIALS_TERMINATE = "credentials:terminate"
    CREDENTIALS_REPORT = "credentials:report"
    CREDENTIALS_DESTROY = "credentials:destroy"
    FACILITIES_READ = "facilities:read"
    FACILITIES_WRITE = "facilities:write"
    OPERATORS_MANAGE = "operators:manage"
    AUDIT_READ = "audit:read"
    #: Ask for an access decision (door readers and panels).
    DECISIONS_REQUEST = "decisions:request"
    DECISIONS_READ = "decisions:read"
    #: Read people into compartmented programs, and out of them.
    PROGRAMS_WRITE = "programs:write"
    #: Forgive an anti-passback violation (forget where a person is).
    PRESENCE_WRITE = "presence:write"
    #: Raise or lower a facility's threat level.
    THREAT_SET = "threat:set"
    #: Command doors through their panels: momentary unlock, mode, lockdown.
    DOORS_CONTROL = "doors:control"
    IMPORT = "import"


P = Permission

#: The permission each lifecycle action needs.
ACTION_PERMISSION: dict[Action, Permission] = {
    Action.ENROLL: P.CREDENTIALS_ENROLL,
    Action.ADJUDICATE: P.CREDENTIALS_ADJUDICATE,
    Action.ISSUE: P.CREDENTIALS_ISSUE,
    Action.ACTIVATE: P.CREDENTIALS_ACTIVATE,
    Action.SUSPEND: P.CREDENTIALS_SUSPEND,
    Action.REINSTATE: P.CREDENTIALS_SUSPEND,
    Action.TERMINATE: P.CREDENTIALS_TERMINATE,
    Action.REPORT_LOST: P.CREDENTIALS_REPORT,
    Action.REPORT_STOLEN: P.CREDENTIALS_REPORT,
    Action.REPORT_DAMAGED: P.CREDENTIALS_REPORT,
    Action.DESTROY: P.CREDENTIALS_DESTROY,
}

_STAFF_READ = {P.PEOPLE_READ, P.CREDENTIALS_READ}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.SPONSOR: frozenset(_STAFF_READ | {P.PEOPLE_CREATE, P.CREDENTIALS_SPONSOR}),
    Role.REGISTRAR: frozenset(
        _STAFF_READ
        | {
            P.PEOPLE_CREATE,
            P.PEOPLE_WRITE,
            P.CREDENTIALS_IDENTIFY,
            P.CREDENTIALS_ENROLL,
            P.CREDENTIALS_ACTIVATE,
            P.CREDENTIALS_REPORT,
        }
    ),
    Role.ADJUDICATOR: frozenset(
        _STAFF_READ | {P.SECURITY_READ, P.SECURITY_WRITE, P.VETTING_WRITE, P.CREDENTIALS_ADJUDICATE}
    ),
    Role.ISSUER: frozenset(
        _STAFF_READ
        | {
            P.CREDENTIALS_IDENTIFY,
            P.CREDENTIALS_ISSUE,
            P.CREDENTIALS_ACTIVATE,
            P.CREDENTIALS_REPORT,
            P.CREDENTIALS_DESTROY,
        }
    ),
    Role.SECURITY_OFFICER: frozenset(
        _STAFF_READ
        | {
            P.SECURITY_READ,
            P.VETTING_WRITE,
            P.CREDENTIALS_SUSPEND,
            P.CREDENTIALS_TERMINATE,
            P.CREDENTIALS_REPORT,
            P.CREDENTIALS_DESTROY,
            P.FACILITIES_READ,
            P.DECISIONS_READ,
            P.THREAT_SET,
            P.PROGRAMS_WRITE,
            P.PRESENCE_WRITE,
            P.DOORS_CONTROL,
        }
    ),
    Role.FACILITY_MANAGER: frozenset(
        {P.PEOPLE_READ, P.CREDENTIALS_READ, P.FACILITIES_READ, P.FACILITIES_WRITE, P.DECISIONS_READ}
    ),
    Role.AUDITOR: frozenset(
        _STAFF_READ | {P.SECURITY_READ, P.FACILITIES_READ, P.AUDIT_READ, P.DECISIONS_READ}
    ),
    # A device account: an IP reader or panel asks for decisions and nothing else.
    Role.DOOR_READER: frozenset({P.DECISIONS_REQUEST}),
    # Administers accounts and bulk data; separation of duties still applies per credential.
    Role.ADMIN: frozenset(Permission),
}


def permissions_of(roles: Iterable[str]) -> frozenset[Permission]:
    granted: set[Permission] = set()
    for name in roles:
        try:
            granted |= ROLE_PERMISSIONS[Role(name)]
        except ValueError:
            continue  # a role removed from the code grants nothing
    return frozenset(granted)
