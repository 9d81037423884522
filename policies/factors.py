"""Which authentication factors evidence gives, and what each SP 800-116 area demands.

Factors count only when bound to an authenticated card: a PIN or a fingerprint next to a
bare CHUID read proves nothing about the card, so CHUID- and badge-only evidence is zero
factors (FIPS 201-3 removed CHUID authentication).
"""

from __future__ import annotations

from collections.abc import Iterable

from policies.vocabulary import AreaClass, Factor, Mechanism

_CARD_AUTH = frozenset({Mechanism.PKI_CAK, Mechanism.SM_AUTH, Mechanism.PKI_AUTH})

#: SP 800-116 Rev 1: the factors a door into each area must demand.
AREA_FACTORS: dict[AreaClass, frozenset[Factor]] = {
    AreaClass.UNRESTRICTED: frozenset(),
    AreaClass.CONTROLLED: frozenset({Factor.HAVE}),
    AreaClass.LIMITED: frozenset({Factor.HAVE, Factor.KNOW}),
    AreaClass.EXCLUSION: frozenset({Factor.HAVE, Factor.KNOW, Factor.ARE}),
}

#: Order in which missing factors are asked for.
FACTOR_ORDER = (Factor.HAVE, Factor.KNOW, Factor.ARE)

#: Factor sets by how many factors they hold (threat levels raise the count).
FACTORS_BY_COUNT: tuple[frozenset[Factor], ...] = (
    frozenset(),
    frozenset({Factor.HAVE}),
    frozenset({Factor.HAVE, Factor.KNOW}),
    frozenset({Factor.HAVE, Factor.KNOW, Factor.ARE}),
)


def factors_of(evidence: Iterable[Mechanism]) -> frozenset[Factor]:
    """The factors a set of verified mechanisms proves."""
    ev = frozenset(evidence)
    if not ev & _CARD_AUTH:
        return frozenset()
    got = {Factor.HAVE}
    if Mechanism.PKI_AUTH in ev or Mechanism.PIN in ev:
        got.add(Factor.KNOW)
    if Mechanism.BIO in ev:
        got.add(Factor.ARE)
    return frozenset(got)


def missing(required: frozenset[Factor], proved: frozenset[Factor]) -> tuple[Factor, ...]:
    return tuple(f for f in FACTOR_ORDER if f in required and f not in proved)
