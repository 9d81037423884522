"""The pure lifecycle rules (policies.lifecycle): the FIPS 201-3 state table, validity limits,
self-dealing and separation of duties, checked against a table written out here, not imported."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.lifecycle import (
    Action,
    Adjudication,
    CredentialFacts,
    CredentialKind,
    CredentialState,
    allowed_actions,
    check_action,
    target_state,
    validity_refusal,
)

TODAY = date(2026, 6, 15)

STATES = [s.value for s in CredentialState]
ACTIONS = [a.value for a in Action]
KINDS = [k.value for k in CredentialKind]
LIVE = ("requested", "enrolled", "adjudicated", "issued", "active", "suspended")
IN_HAND = ("issued", "active", "suspended")
REPORTS = ("report_lost", "report_stolen", "report_damaged")
#: What a separated person's credential may no longer do: anything but being revoked.
TOWARDS_USE = ("enroll", "adjudicate", "issue", "activate", "reinstate")

#: (state, action) -> next state, as FIPS 201-3 and docs/architecture.md describe the lifecycle.
TABLE: dict[tuple[str, str], str] = {
    ("requested", "enroll"): "enrolled",
    ("enrolled", "adjudicate"): "adjudicated",
    ("adjudicated", "issue"): "issued",
    ("issued", "activate"): "active",
    ("issued", "suspend"): "suspended",
    ("active", "suspend"): "suspended",
    ("suspended", "reinstate"): "active",
    **{(s, "terminate"): "terminated" for s in LIVE},
    **{(s, "report_lost"): "lost" for s in IN_HAND},
    **{(s, "report_stolen"): "stolen" for s in IN_HAND},
    **{(s, "report_damaged"): "damaged" for s in IN_HAND},
    **{(s, "destroy"): "destroyed" for s in ("terminated", "lost", "stolen", "damaged")},
}
#: Temporary (visitor) badges carry no investigation, so they may be issued on request.
TEMPORARY_TABLE = {**TABLE, ("requested", "issue"): "issued"}


def table_for(kind: str) -> dict[tuple[str, str], str]:
    return TEMPORARY_TABLE if kind == "temporary" else TABLE


SPONSOR, REGISTRAR, ADJUDICATOR, ISSUER, OFFICER = 1, 2, 3, 4, 5
HOLDER = 100


def facts(**changes: object) -> CredentialFacts:
    """A credential that every rule other than the one under test would allow."""
    base = CredentialFacts(
        kind=CredentialKind.PIV,
        state=CredentialState.REQUESTED,
        holder_person_id=HOLDER,
        valid_from=TODAY,
        valid_until=TODAY + timedelta(days=365),
        sponsor_id=SPONSOR,
        adjudicator_id=ADJUDICATOR,
        holder_adjudication=Adjudication.FAVORABLE,
        holder_eligibility_suspended=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def check(f: CredentialFacts, action: str, actor: int = ISSUER, person: int | None = None) -> str:
    """The refusal code, or "ok"."""
    refusal = check_action(f, Action(action), actor_id=actor, actor_person_id=person, today=TODAY)
    return "ok" if refusal is None else refusal.code


def _legal(kinds: tuple[str, ...]) -> list[tuple[str, str, str, str]]:
    return [(k, s, a, t) for k in kinds for (s, a), t in table_for(k).items()]


def _illegal(kinds: tuple[str, ...]) -> list[tuple[str, str, str]]:
    return [(k, s, a) for k in kinds for s in STATES for a in ACTIONS if (s, a) not in table_for(k)]


# --- the state table ---------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "state", "action", "target"), _legal(("piv", "temporary")))
def test_every_legal_transition_is_allowed_and_leads_to_its_state(
    kind: str, state: str, action: str, target: str
) -> None:
    f = facts(kind=CredentialKind(kind), state=CredentialState(state))
    assert check(f, action) == "ok"
    assert target_state(Action(action)) == target


@pytest.mark.parametrize(("kind", "state", "action"), _illegal(("piv", "temporary")))
def test_every_other_transition_is_illegal(kind: str, state: str, action: str) -> None:
    f = facts(kind=CredentialKind(kind), state=CredentialState(state))
    assert check(f, action) == "illegal_transition"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("state", STATES)
def test_allowed_actions_lists_exactly_the_table_row(kind: str, state: str) -> None:
    expected = {a for (s, a) in table_for(kind) if s == state}
    assert {a.value for a in allowed_actions(CredentialKind(kind), CredentialState(state))} == (
        expected
    )


def test_destroyed_is_final() -> None:
    for kind in KINDS:
        assert allowed_actions(CredentialKind(kind), CredentialState.DESTROYED) == []
        f = facts(kind=CredentialKind(kind), state=CredentialState.DESTROYED)
        for action in ACTIONS:
            assert check(f, action, actor=ISSUER) == "illegal_transition"


def test_illegal_transition_detail_names_action_and_state() -> None:
    refusal = check_action(
        facts(state=CredentialState.ACTIVE),
        Action.ENROLL,
        actor_id=REGISTRAR,
        actor_person_id=None,
        today=TODAY,
    )
    assert refusal is not None and "enroll" in refusal.detail and "active" in refusal.detail


# --- temporary badges --------------------------------------------------------------------


def test_temporary_badge_is_issued_from_requested_without_adjudication() -> None:
    f = facts(
        kind=CredentialKind.TEMPORARY,
        adjudicator_id=None,
        holder_adjudication=Adjudication.PENDING,
    )
    assert check(f, "issue") == "ok"
    # …and activated with the adjudication still pending.
    assert check(replace(f, state=CredentialState.ISSUED), "activate") == "ok"
    assert check(replace(f, state=CredentialState.SUSPENDED), "reinstate", OFFICER) == "ok"


@pytest.mark.parametrize("kind", ["piv", "piv_i", "local_badge", "law_enforcement"])
def test_other_kinds_cannot_skip_enrolment_and_adjudication(kind: str) -> None:
    assert check(facts(kind=CredentialKind(kind)), "issue") == "illegal_transition"


def test_temporary_badge_still_needs_a_second_operator() -> None:
    f = facts(kind=CredentialKind.TEMPORARY, adjudicator_id=None)
    assert check(f, "issue", actor=SPONSOR) == "separation_of_duties"


@pytest.mark.parametrize(
    ("state", "action"),
    [("requested", "issue"), ("issued", "activate"), ("suspended", "reinstate")],
)
def test_unfavorable_adjudication_blocks_temporary_badges_too(state: str, action: str) -> None:
    """Pending is fine for a visitor; a person found unsuitable gets no badge at all (else the
    suspension an unfavorable adjudication causes could be undone by a plain reinstate)."""
    f = facts(
        kind=CredentialKind.TEMPORARY,
        state=CredentialState(state),
        adjudicator_id=None,
        holder_adjudication=Adjudication.UNFAVORABLE,
    )
    assert check(f, action, OFFICER) == "adjudication_not_favorable"


# --- validity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "latest"),
    [
        (date(2026, 11, 28), date(2032, 11, 28)),  # two 29 Februarys inside: 2192 days
        (date(2027, 3, 1), date(2033, 3, 1)),  # 2028 and 2032: 2192 days
        (date(2025, 1, 1), date(2031, 1, 1)),  # one 29 February: 2191 days
        (date(2028, 2, 29), date(2034, 2, 28)),  # no 29 February in 2034
    ],
)
@pytest.mark.parametrize("kind", ["piv", "piv_i", "local_badge", "law_enforcement"])
def test_six_calendar_years_is_the_most(kind: str, start: date, latest: date) -> None:
    k = CredentialKind(kind)
    assert validity_refusal(k, start, latest) is None
    too_long = validity_refusal(k, start, latest + timedelta(days=1))
    assert too_long is not None and too_long.code == "validity_too_long"


def test_temporary_badge_is_valid_for_at_most_180_days() -> None:
    k = CredentialKind.TEMPORARY
    assert validity_refusal(k, TODAY, TODAY + timedelta(days=180)) is None
    refusal = validity_refusal(k, TODAY, TODAY + timedelta(days=181))
    assert refusal is not None and refusal.code == "validity_too_long"
    assert "180" in refusal.detail


@pytest.mark.parametrize("kind", KINDS)
def test_inverted_validity_is_refused_and_one_day_is_fine(kind: str) -> None:
    k = CredentialKind(kind)
    refusal = validity_refusal(k, TODAY, TODAY - timedelta(days=1))
    assert refusal is not None and refusal.code == "validity_inverted"
    assert validity_refusal(k, TODAY, TODAY) is None


def test_expired_credential_is_not_issued() -> None:
    f = facts(
        state=CredentialState.ADJUDICATED,
        valid_from=TODAY - timedelta(days=30),
        valid_until=TODAY - timedelta(days=1),
    )
    assert check(f, "issue") == "expired"
    assert check(replace(f, valid_until=TODAY), "issue") == "ok"  # the last day still counts


# --- self-dealing ------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "action"), sorted(TABLE))
def test_operator_cannot_act_on_own_credential_except_reporting_it(state: str, action: str) -> None:
    f = facts(state=CredentialState(state))
    own = check(f, action, actor=OFFICER, person=HOLDER)
    if action in REPORTS:
        assert own == "ok"
    else:
        assert own == "self_dealing"
    # The same operator acting on somebody else's credential is not self-dealing.
    assert check(f, action, actor=OFFICER, person=HOLDER + 1) == "ok"


# --- separation of duties and adjudication -----------------------------------------------


def test_sponsor_cannot_issue() -> None:
    f = facts(state=CredentialState.ADJUDICATED)
    refusal = check_action(f, Action.ISSUE, actor_id=SPONSOR, actor_person_id=None, today=TODAY)
    assert refusal is not None and refusal.code == "separation_of_duties"
    assert "sponsor" in refusal.detail


def test_adjudicator_cannot_issue() -> None:
    f = facts(state=CredentialState.ADJUDICATED)
    refusal = check_action(f, Action.ISSUE, actor_id=ADJUDICATOR, actor_person_id=None, today=TODAY)
    assert refusal is not None and refusal.code == "separation_of_duties"
    assert "adjudicator" in refusal.detail


def test_registrar_may_issue_a_card_sponsored_and_adjudicated_by_others() -> None:
    assert check(facts(state=CredentialState.ADJUDICATED), "issue", actor=REGISTRAR) == "ok"


@pytest.mark.parametrize("outcome", ["pending", "unfavorable"])
def test_adjudicate_and_issue_need_a_favorable_adjudication(outcome: str) -> None:
    adj = Adjudication(outcome)
    enrolled = facts(state=CredentialState.ENROLLED, holder_adjudication=adj)
    assert check(enrolled, "adjudicate", ADJUDICATOR) == "adjudication_not_favorable"
    adjudicated = facts(state=CredentialState.ADJUDICATED, holder_adjudication=adj)
    assert check(adjudicated, "issue") == "adjudication_not_favorable"
    issued = facts(state=CredentialState.ISSUED, holder_adjudication=adj)
    assert check(issued, "activate") == "adjudication_not_favorable"
    suspended = facts(state=CredentialState.SUSPENDED, holder_adjudication=adj)
    assert check(suspended, "reinstate", OFFICER) == "adjudication_not_favorable"


@pytest.mark.parametrize(
    ("state", "action"),
    [("adjudicated", "issue"), ("issued", "activate"), ("suspended", "reinstate")],
)
def test_suspended_eligibility_blocks_making_a_card_usable(state: str, action: str) -> None:
    f = facts(state=CredentialState(state), holder_eligibility_suspended=True)
    assert check(f, action, OFFICER) == "eligibility_suspended"


@pytest.mark.parametrize(
    ("state", "action"),
    [(s, a) for (s, a) in sorted(TABLE) if a in ("suspend", "terminate", "destroy", *REPORTS)],
)
def test_revoking_is_never_blocked_by_adjudication_or_eligibility(state: str, action: str) -> None:
    f = facts(
        state=CredentialState(state),
        holder_adjudication=Adjudication.UNFAVORABLE,
        holder_eligibility_suspended=True,
    )
    assert check(f, action, SPONSOR) == "ok"


@pytest.mark.parametrize(("state", "action"), sorted(TEMPORARY_TABLE))
def test_separated_holder_credentials_can_only_be_revoked(state: str, action: str) -> None:
    f = facts(kind=CredentialKind.TEMPORARY, state=CredentialState(state), holder_separated=True)
    expected = "person_separated" if action in TOWARDS_USE else "ok"
    assert check(f, action, OFFICER) == expected


# --- property: the function agrees with the table and the rules written out here ---------


def expected_refusals(
    f: CredentialFacts, action: str, actor: int, person: int | None, today: date
) -> set[str]:
    reasons: set[str] = set()
    kind, state = f.kind.value, f.state.value
    if (state, action) not in table_for(kind):
        reasons.add("illegal_transition")
    if person is not None and person == f.holder_person_id and action not in REPORTS:
        reasons.add("self_dealing")
    if f.holder_separated and action in TOWARDS_USE:
        reasons.add("person_separated")
    favorable = f.holder_adjudication is Adjudication.FAVORABLE
    unfavorable = f.holder_adjudication is Adjudication.UNFAVORABLE
    if action == "adjudicate" and not favorable:
        reasons.add("adjudication_not_favorable")
    if action in ("issue", "activate", "reinstate"):
        if unfavorable or (kind != "temporary" and not favorable):
            reasons.add("adjudication_not_favorable")
        if f.holder_eligibility_suspended:
            reasons.add("eligibility_suspended")
    if action == "issue":
        if actor in (f.sponsor_id, f.adjudicator_id):
            reasons.add("separation_of_duties")
        if f.valid_until < today:
            reasons.add("expired")
    return reasons


operator_ids = st.integers(min_value=1, max_value=3)
person_ids = st.integers(min_value=100, max_value=101)


#: Half the draws start from a pair the table allows, so the other rules get exercised too.
state_actions = st.sampled_from(sorted(TEMPORARY_TABLE)) | st.tuples(
    st.sampled_from(STATES), st.sampled_from(ACTIONS)
)


@st.composite
def credential_facts(draw: st.DrawFn, state: str) -> CredentialFacts:
    start = draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31)))
    return CredentialFacts(
        kind=draw(st.sampled_from(CredentialKind)),
        state=CredentialState(state),
        holder_person_id=draw(person_ids),
        valid_from=start,
        valid_until=start + timedelta(days=draw(st.integers(0, 2192))),
        sponsor_id=draw(st.none() | operator_ids),
        adjudicator_id=draw(st.none() | operator_ids),
        holder_adjudication=draw(st.sampled_from(Adjudication)),
        holder_eligibility_suspended=draw(st.booleans()),
        holder_separated=draw(st.booleans()),
    )


@settings(max_examples=1500)
@given(
    data=st.data(),
    state_action=state_actions,
    actor=operator_ids,
    person=st.none() | person_ids,
    today=st.dates(min_value=date(2024, 1, 1), max_value=date(2036, 12, 31)),
)
def test_check_action_agrees_with_the_independent_rules(
    data: st.DataObject,
    state_action: tuple[str, str],
    actor: int,
    person: int | None,
    today: date,
) -> None:
    state, action = state_action
    f = data.draw(credential_facts(state), label="facts")
    refusal = check_action(f, Action(action), actor_id=actor, actor_person_id=person, today=today)
    reasons = expected_refusals(f, action, actor, person, today)
    if refusal is None:
        assert not reasons
        # Spelled out, the two properties that matter most:
        assert (f.state.value, action) in table_for(f.kind.value)
        if action == "issue":
            assert actor != f.sponsor_id and actor != f.adjudicator_id
    else:
        assert refusal.code in reasons
        if "illegal_transition" in reasons:
            # The state machine answers first: a refused-by-state action says so.
            assert refusal.code == "illegal_transition"
