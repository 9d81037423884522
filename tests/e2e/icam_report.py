"""docs/conformance/icam-cards.md: each ICAM card, what the README expects, what accessd
answered, and whether they agree; written by tests/e2e/test_icam_cards.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from tests.e2e.icam_run import PASSES, Answer, Pass
from tests.icam_expected import CARDS, Expected

_PASS_WORDS = {
    "http": "revocation over HTTP on loopback (CRLs, caIssuers, OCSP always)",
    "crl-files": "revocation from CRL files in crl_directory, nothing fetched",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _answer(answer: Answer) -> str:
    if answer.accepted:
        return f"accept ({answer.revocation})"
    return f"refuse: {answer.code}"


def write_report(
    path: Path,
    answers: Mapping[Pass, Mapping[str, Answer]],
    expected_in: Callable[[Pass, str], Expected],
    matches: Callable[[Expected, Answer], bool],
    missing: Mapping[tuple[Pass, str], str],
) -> list[str]:
    """Writes the report; returns its table rows (one a card a pass, in the set's order)."""
    rows: list[str] = []
    lines = [
        "# ICAM test cards: conformance",
        "",
        "Written by `tests/e2e/test_icam_cards.py` from GSA's ICAM test card set",
        "(`../shared/icam-cards`); do not edit. Each card is read over a virtual card,",
        "inspected, enrolled with `POST /v1/enrollments` and presented at a PKI-CAK door.",
        "Expected answers come from the card set's README, not from accessd.",
        "",
        "The run is at today's date. Cards whose certificates have expired since the set was",
        "made (11 and 56 among the negatives, the `-X` variants) are refused as `expired`",
        "first; the check each was made for is proven on its own as of 2020-06-01, when",
        "everything else on it was valid, by `tests/service/pki/test_card_inspection.py`",
        "(11: `certificate_outlives_chuid`, 56: `content_signer_expires_before_chuid`).",
        "",
    ]
    for which in PASSES:
        per_card = answers[which]
        passed = failed = known = 0
        table = [
            "| card | expected | accessd | reason code | door | result |",
            "|---|---|---|---|---|---|",
        ]
        for card in CARDS:
            expected, answer = expected_in(which, card), per_card[card]
            agrees = matches(expected, answer)
            gap = missing.get((which, card))
            if agrees:
                passed += 1
                result = "pass"
            elif gap is not None:
                known += 1
                result = f"fail (known: {gap})"
            else:
                failed += 1
                result = "FAIL"
            row = (
                f"| {card} | {_cell(expected.describe())} ({_cell(expected.why)}) "
                f"| {_cell(_answer(answer))} | {_cell(answer.code or '-')} "
                f"| {_cell(answer.door)} | {result} |"
            )
            table.append(row)
            rows.append(row)
        lines += [
            f"## Pass `{which}`: {_PASS_WORDS[which]}",
            "",
            f"{len(CARDS)} cards: {passed} pass, {failed} fail, {known} known disagreements "
            "(a strict xfail each, its reason in the row).",
            "",
            *table,
            "",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return rows
