"""What-if questions over a snapshot: who can open a door at a time (under a threat
level), and where can a person go. Each answer is a real evaluation with full evidence (all
three factors) and nobody else at the door, so rules that need company (two-person,
escort) show up as what they still require rather than as a refusal."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import datetime

from policies.decision import AccessRequest, Decision, Reason
from policies.engine import evaluate
from policies.presence import Presence
from policies.snapshot import CredentialPolicy, Snapshot
from policies.vocabulary import Direction, Mechanism, ThreatLevel

FULL_EVIDENCE = frozenset({Mechanism.PKI_AUTH, Mechanism.BIO})
#: Refusals that only mean "not alone": the person is authorized given company.
CONDITIONAL = frozenset({Reason.AWAITING_SECOND_PERSON, Reason.AWAITING_ESCORT})


@dataclass(frozen=True, slots=True)
class Answer:
    person_id: int
    door_id: int
    decision: Decision

    @property
    def allowed(self) -> bool:
        return self.decision.granted or self.decision.reason in CONDITIONAL


def under_threat(snap: Snapshot, facility_id: int, level: ThreatLevel | None) -> Snapshot:
    """A view of the snapshot with one facility at another threat level (shares the rest)."""
    if level is None:
        return snap
    view = copy.copy(snap)
    view.facilities = dict(snap.facilities)
    view.facilities[facility_id] = replace(snap.facilities[facility_id], threat=level)
    return view


def _entry_readers(snap: Snapshot) -> dict[int, int]:
    """door -> its first entry ("in") reader."""
    out: dict[int, int] = {}
    for reader in snap.readers.values():
        if reader.direction is Direction.IN:
            out.setdefault(reader.door_id, reader.id)
    return out


def _card_of(snap: Snapshot) -> dict[int, tuple[str, str]]:
    """person -> an identifier of one usable credential (the first found)."""
    usable: dict[int, CredentialPolicy] = {}
    for cred in snap.credentials.values():
        if cred.usable and cred.person_id not in usable:
            usable[cred.person_id] = cred
    index = snap.ids_index()
    out: dict[int, tuple[str, str]] = {}
    for pid, cred in usable.items():
        ids = index.get(cred.id)
        if ids:
            out[pid] = ids[0]
    return out


def who_can_open(
    snap: Snapshot, door_id: int, at: datetime, threat: ThreatLevel | None = None
) -> list[Answer]:
    """Everyone whose access levels name the door, with the decision each would get."""
    door = snap.doors[door_id]
    view = under_threat(snap, door.facility_id, threat)
    reader = _entry_readers(view).get(door_id)
    if reader is None:
        return []
    levels = {lid for lid, lv in view.levels.items() if door_id in lv.doors}
    groups = {g for g, lvls in view.group_levels.items() if lvls & levels}
    cards = _card_of(view)
    answers = []
    for person in view.people.values():
        if not (person.levels & levels or person.groups & groups):
            continue
        card = cards.get(person.id)
        if card is None:
            continue
        req = AccessRequest(reader, at, card[0], card[1], FULL_EVIDENCE)
        answers.append(Answer(person.id, door_id, evaluate(req, view, Presence())))
    return answers


def where_can_go(
    snap: Snapshot,
    person_id: int,
    at: datetime,
    threat: ThreatLevel | None = None,
    facility_id: int | None = None,
) -> list[Answer]:
    """Every door (with an entry reader) and the decision the person would get there."""
    card = _card_of(snap).get(person_id)
    if card is None:
        return []
    answers = []
    readers = _entry_readers(snap)
    for door in snap.doors.values():
        if facility_id is not None and door.facility_id != facility_id:
            continue
        view = under_threat(snap, door.facility_id, threat)
        reader = readers.get(door.id)
        if reader is None:
            continue
        req = AccessRequest(reader, at, card[0], card[1], FULL_EVIDENCE)
        answers.append(Answer(person_id, door.id, evaluate(req, view, Presence())))
    return answers
