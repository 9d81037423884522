"""Monotonicity of the decision engine, over random people, doors, times and evidence:
taking something away (a credential, eligibility, a lower threat level) never grants more,
and granting an access level never takes access away."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.decision import AccessRequest, Decision
from policies.engine import evaluate
from policies.presence import Presence
from policies.snapshot import IdKind, Snapshot
from policies.vocabulary import Eligibility, Mechanism, ThreatLevel
from tests.policies.policy_site import (
    CORRIDOR_IN,
    CORRIDOR_OUT,
    HQ,
    LVL_ALL,
    LVL_BUSINESS,
    LVL_SCIF,
    MAIN_IN,
    SECURITY_GROUP,
    SIDE_IN,
    STAFF_GROUP,
    VAULT_IN,
    VAULT_OUT,
    add_person,
    site,
)

READERS = [MAIN_IN, CORRIDOR_IN, CORRIDOR_OUT, VAULT_IN, VAULT_OUT, SIDE_IN]
LEVELS = [LVL_ALL, LVL_BUSINESS, LVL_SCIF]
START = datetime(2026, 1, 1, tzinfo=UTC)

people = st.fixed_dictionaries(
    {
        "levels": st.frozensets(st.sampled_from(LEVELS)),
        "groups": st.frozensets(st.sampled_from([STAFF_GROUP, SECURITY_GROUP])),
        "eligibility": st.sampled_from(list(Eligibility)),
        "programs": st.frozensets(st.sampled_from(["ALPHA", "BRAVO"])),
    }
)
badges = st.lists(
    st.tuples(
        st.integers(0, 3),  # which person
        st.sampled_from(READERS),
        st.integers(0, 60 * 24 * 400),  # minutes after START: every weekday, DST, holidays
        st.frozensets(st.sampled_from(list(Mechanism))),
    ),
    min_size=1,
    max_size=12,
)


def build(persons: list[dict[str, object]]) -> tuple[Snapshot, list[str]]:
    s = site()
    cards = [add_person(s, i + 1, **p) for i, p in enumerate(persons)]  # type: ignore[arg-type]
    return s, cards


def run(
    s: Snapshot, cards: list[str], seq: list[tuple[int, int, int, frozenset[Mechanism]]]
) -> list[Decision]:
    """Badges in order, recording each decision as the service does."""
    presence = Presence()
    out = []
    for who, reader, minute, evidence in sorted(seq, key=lambda b: b[2]):
        at = START + timedelta(minutes=minute)
        d = evaluate(AccessRequest(reader, at, IdKind.CARD_UUID, cards[who], evidence), s, presence)
        presence.record(d, at, at.astimezone(s.facilities[HQ].tz).date())
        out.append(d)
    return out


# Each property compares one badge at a time against a fresh presence state. Across a
# sequence the properties would not hold, and should not: a revoked person who is refused
# does not fill the last place in an occupancy-limited room, so someone else gets in.
def each(
    s: Snapshot, cards: list[str], seq: list[tuple[int, int, int, frozenset[Mechanism]]]
) -> list[bool]:
    return [run(s, cards, [b])[0].granted for b in seq]


@settings(max_examples=150, deadline=None)
@given(st.lists(people, min_size=4, max_size=4), badges, st.integers(0, 3))
def test_suspending_a_credential_never_grants_more(persons, seq, victim) -> None:  # type: ignore[no-untyped-def]
    s, cards = build(persons)
    before = each(s, cards, seq)
    s.set_credential_usable((victim + 1) * 10, False, "suspended")
    after = each(s, cards, seq)
    assert all(a <= b for a, b in zip(after, before, strict=True))
    assert not any(g for g, (who, *_) in zip(after, seq, strict=True) if who == victim)


@settings(max_examples=150, deadline=None)
@given(st.lists(people, min_size=4, max_size=4), badges, st.integers(0, 3))
def test_suspending_eligibility_never_grants_more(persons, seq, victim) -> None:  # type: ignore[no-untyped-def]
    s, cards = build(persons)
    before = each(s, cards, seq)
    s.put_person(replace(s.people[victim + 1], eligibility_suspended=True))
    after = each(s, cards, seq)
    assert all(a <= b for a, b in zip(after, before, strict=True))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(people, min_size=4, max_size=4),
    badges,
    st.sampled_from(list(ThreatLevel)),
    st.sampled_from(list(ThreatLevel)),
)
def test_raising_the_threat_level_never_grants_more(persons, seq, low, high) -> None:  # type: ignore[no-untyped-def]
    if low.rank > high.rank:
        low, high = high, low
    s, cards = build(persons)
    s.set_threat(HQ, low)
    before = each(s, cards, seq)
    s.set_threat(HQ, high)
    after = each(s, cards, seq)
    assert all(a <= b for a, b in zip(after, before, strict=True))


@settings(max_examples=150, deadline=None)
@given(st.lists(people, min_size=4, max_size=4), badges, st.integers(0, 3), st.sampled_from(LEVELS))
def test_granting_an_access_level_never_removes_access(persons, seq, who, level) -> None:  # type: ignore[no-untyped-def]
    s, cards = build(persons)
    before = each(s, cards, seq)
    person = s.people[who + 1]
    s.put_person(replace(person, levels=person.levels | {level}))
    after = each(s, cards, seq)
    assert all(b <= a for a, b in zip(after, before, strict=True))


def test_the_properties_can_fail() -> None:
    """Guard against a property that holds vacuously: a level does open a door here."""
    s, cards = build([{"levels": frozenset()}] * 4)
    seq = [(0, MAIN_IN, 60 * 24 * 2 + 15 * 60, frozenset({Mechanism.PKI_CAK}))]
    assert each(s, cards, seq) == [False]
    s.put_person(replace(s.people[1], levels=frozenset({LVL_ALL})))
    assert each(s, cards, seq) == [True]
