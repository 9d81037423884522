"""What a panel is told of a decision: what it acts on, nothing of whose card it was (issue
15: an HTTP door reader learned the person; a panel's reply carried the trail, which names
people and their vetting)."""

from __future__ import annotations

from accessd.gateway.service import _reply_of
from policies.decision import Decision, Reason


def test_a_panel_is_told_no_trail_and_no_personal_reason() -> None:
    d = Decision(
        granted=False,
        reason=Reason.ELIGIBILITY_SUSPENDED,
        steps=(("person {} eligibility {}", 17, "suspended"),),
        door_id=3,
        person_id=17,
    )
    reply = _reply_of("r1", d)
    assert (reply.granted, reply.reason, reply.trail, reply.door) == (
        False,
        "not_authorized",
        [],
        3,
    )
    assert "17" not in reply.model_dump_json()


def test_a_panel_is_told_what_it_acts_on() -> None:
    d = Decision(
        granted=False,
        reason=Reason.FACTORS_MISSING,
        required=("pin",),
        steps=(("controlled demands {}", "pin"),),
        door_id=3,
    )
    reply = _reply_of("r2", d)
    assert (reply.reason, reply.required) == ("factors_missing", ["pin"])
