"""Which authentication factors evidence gives, and what each SP 800-116 area demands.

Factors count only when bound to an authenticated card: a PIN or a fingerprint next to a
bare CHUID read proves nothing about the card, so CHUID- and badge-only evidence is zero
factors (FIPS 201-3 removed CHUID authentication).
"""

from __future__ import annotations

from functools import lru_cache

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


@lru_cache(maxsize=256)
def factors_of(evidence: frozenset[Mechanism]) -> frozenset[Factor]:
    """The factors a set of verified mechanisms proves."""
    ev = evidence
    if not ev & _CARD_AUTH:
        return frozenset()
    got = {Factor.HAVE}
    if Mechanism.PKI_AUTH in ev or Mechanism.PIN in ev:
        got.add(Factor.KNOW)
    if Mechanism.BIO in ev:
        got.add(Factor.ARE)
    return frozenset(got)


@lru_cache(maxsize=256)
def missing(required: frozenset[Factor], proved: frozenset[Factor]) -> tuple[str, ...]:
    """The factors still to prove, by name, in the order a reader should ask for them."""
    return tuple(f.value for f in FACTOR_ORDER if f in required and f not in proved)


@lru_cache(maxsize=256)
def demanded(area_class: AreaClass | None, pin_mode: bool, min_factors: int) -> frozenset[Factor]:
    """What a door demands: its area's class, a card-and-PIN mode and the threat level's
    minimum (which applies only where the area demands something already: nobody needs
    three factors to walk out into the street)."""
    need = AREA_FACTORS[area_class] if area_class is not None else frozenset()
    if pin_mode:
        need = need | {Factor.HAVE, Factor.KNOW}
    if need and min_factors > len(need):
        need = need | FACTORS_BY_COUNT[min(min_factors, 3)]
    return need
