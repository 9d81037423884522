"""Conformance with GSA's ICAM test cards: every card of the set goes through accessd's
real reading (a virtual card serving the card's files and signing with its keys),
inspection, enrollment (POST /v1/enrollments) and a PKI-CAK door decision, once with
revocation over HTTP on loopback (CRLs, caIssuers, OCSP responders) and once from CRL
files alone. Golden cards must be accepted end to end; each negative card must be refused
at inspection and enrollment for its README reason, and never open the door.

The expected answers are `icam_expected.CARDS`, written from the card set's README. A card
whose check accessd does not have yet is a strict xfail naming the check, so the day the
check lands the mark has to go. The run writes docs/conformance/icam-cards.md.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.icam_report import write_report
from tests.e2e.icam_run import PASSES, Answer, Pass, run_pass
from tests.icam_expected import CARDS, Expected
from tests.paths import ICAM_MISSING, ROOT

pytestmark = [
    pytest.mark.skipif(ICAM_MISSING is not None, reason=ICAM_MISSING or ""),
    # One worker runs a pass once for all its cards.
    pytest.mark.xdist_group("icam_cards"),
]

REPORT = ROOT / "docs" / "conformance" / "icam-cards.md"

#: Where accessd does not give the README's answer, by card, and why: a check missing, or
#: the card set's own data contradicting the README. A strict xfail, so the day the answer
#: changes the entry has to go.
_KNOWN: dict[str, str] = {}
MISSING: dict[tuple[Pass, str], str] = {
    (which, card): why for which in PASSES for card, why in _KNOWN.items()
}


@pytest.fixture(scope="module")
def answers() -> dict[Pass, dict[str, Answer]]:
    """Both passes, run once for the module (each a whole service on its own loop)."""
    return {which: asyncio.run(run_pass(which)) for which in PASSES}


def expected_in(which: Pass, card: str) -> Expected:
    expected = CARDS[card]
    if which != "http" and expected.ocsp_only:
        return Expected(expected.why + " (no OCSP in this pass: the card itself is good)")
    return expected


def matches(expected: Expected, answer: Answer) -> bool:
    if expected.accept:
        return answer.accepted
    refused_everywhere = (
        answer.inspection != "accepted"
        and answer.enrollment != "enrolled"
        and answer.door != "granted"
    )
    return refused_everywhere and answer.code in expected.codes


def _cases() -> list[object]:
    cases: list[object] = []
    for which in PASSES:
        for card in CARDS:
            marks = []
            missing = MISSING.get((which, card))
            if missing is not None:
                marks.append(pytest.mark.xfail(strict=True, reason=missing))
            cases.append(pytest.param(which, card, marks=marks, id=f"{which}-{card}"))
    return cases


@pytest.mark.parametrize(("which", "card"), _cases())
def test_each_card_gets_the_readmes_answer(
    answers: dict[Pass, dict[str, Answer]], which: Pass, card: str
) -> None:
    expected, answer = expected_in(which, card), answers[which][card]
    assert matches(expected, answer), (expected.describe(), answer)
    if expected.accept:
        # Enrollment and the door's trail name the source really used: OCSP where it is
        # asked for every card, the CRL files where nothing is fetched.
        source = "ocsp" if which == "http" else "crl"
        assert answer.revocation == f"9a:{source}, 9e:{source}", answer.revocation
        assert answer.door_revocation == source, answer


def test_the_report_names_every_card_and_no_negative_card_opens_the_door(
    answers: dict[Pass, dict[str, Answer]],
) -> None:
    rows = write_report(REPORT, answers, expected_in, matches, MISSING)
    assert len(rows) == len(PASSES) * len(CARDS)
    wrongly_accepted = [
        (which, card)
        for which, per_card in answers.items()
        for card, answer in per_card.items()
        if not expected_in(which, card).accept
        and (answer.door == "granted" or answer.enrollment == "enrolled")
    ]
    assert not wrongly_accepted
