"""The offline credential cache: snapshots, deltas in order, and decisions from it alone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from drivers.mqtt.messages import CredDelta, CredentialRef, OfflineDoor
from drivers.panel import cache as reasons
from drivers.panel.cache import CredentialCache, Verified, credential_hash
from drivers.panel.errors import CacheOutOfStep
from drivers.panel.proofs import verified_certificate
from tests.drivers.panel.panel_helpers import SALT, CardKey, entry, snapshot

# Monday 3 March 2025, 14:00 UTC = 09:00 in New York (EST): inside weekdays 8-18.
MONDAY_MORNING = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
# Monday 23:30 UTC = 18:30 New York: after hours, though still daytime in UTC.
MONDAY_EVENING = datetime(2025, 3, 3, 23, 30, tzinfo=UTC)
UUID = "0f4a5b6c-1111-2222-3333-444455556666"


@pytest.fixture
def card() -> CardKey:
    return CardKey.new()


def loaded(card: CardKey, **doors: str) -> CredentialCache:
    cache = CredentialCache()
    cache.apply_snapshot(
        snapshot(
            [
                entry("cert_sha256", card.sha256, doors or {"1": "always"}),
                entry("card_uuid", UUID, doors or {"1": "always"}),
            ]
        )
    )
    return cache


def pki(card: CardKey) -> Verified:
    proof = card.proof(b"a challenge of the panel's own")
    return Verified(pki_cert_sha256=verified_certificate(proof))


def test_the_hash_is_hmac_sha256_of_kind_and_value_cut_to_16_bytes() -> None:
    import hashlib
    import hmac

    want = hmac.new(SALT, b"card_uuid:" + UUID.encode(), hashlib.sha256).hexdigest()[:32]
    assert credential_hash(SALT, "card_uuid", UUID) == want


def test_a_verified_pki_signature_of_a_cached_certificate_opens_a_one_factor_door(
    card: CardKey,
) -> None:
    decision = loaded(card).decide(1, pki(card), MONDAY_MORNING)
    assert (decision.granted, decision.reason, decision.factors) == (True, reasons.GRANTED, 1)


def test_a_signature_that_does_not_verify_counts_no_factor(card: CardKey) -> None:
    forged = card.proof(b"the challenge", sign_this=b"something else")
    assert verified_certificate(forged) is None
    seen = Verified(identifiers=(CredentialRef(kind="card_uuid", value=UUID),))
    decision = loaded(card).decide(1, seen, MONDAY_MORNING)
    assert (decision.granted, decision.reason) == (False, reasons.FACTORS_MISSING)


def test_a_chuid_read_identifies_but_is_no_factor(card: CardKey) -> None:
    seen = Verified(identifiers=(CredentialRef(kind="card_uuid", value=UUID),))
    assert loaded(card).decide(1, seen, MONDAY_MORNING).reason == reasons.FACTORS_MISSING


def test_a_pki_factor_for_another_certificate_does_not_count_for_this_card(
    card: CardKey,
) -> None:
    stranger = CardKey.new("stranger")
    seen = Verified(
        identifiers=(CredentialRef(kind="card_uuid", value=UUID),),
        pki_cert_sha256=verified_certificate(stranger.proof(b"c")),
    )
    decision = loaded(card).decide(1, seen, MONDAY_MORNING)
    assert (decision.reason, decision.factors) == (reasons.FACTORS_MISSING, 0)


def test_an_unknown_credential_is_refused(card: CardKey) -> None:
    other = CardKey.new("other")
    assert loaded(card).decide(1, pki(other), MONDAY_MORNING).reason == reasons.UNKNOWN_CREDENTIAL


def test_a_door_the_entry_does_not_list_is_refused(card: CardKey) -> None:
    assert loaded(card).decide(2, pki(card), MONDAY_MORNING).reason == reasons.NOT_THIS_DOOR


def test_a_two_factor_door_wants_the_pin_as_well(card: CardKey) -> None:
    cache = loaded(card, **{"2": "always"})
    assert cache.decide(2, pki(card), MONDAY_MORNING).reason == reasons.FACTORS_MISSING
    with_pin = Verified(pki_cert_sha256=pki(card).pki_cert_sha256, pin=True)
    assert cache.decide(2, with_pin, MONDAY_MORNING).granted


def test_a_door_that_needs_accessd_stays_shut_offline(card: CardKey) -> None:
    cache = loaded(card, **{"3": "always"})
    assert cache.decide(3, pki(card), MONDAY_MORNING).reason == reasons.DOOR_NEEDS_ACCESSD


def test_schedules_are_evaluated_in_the_facility_timezone(card: CardKey) -> None:
    cache = loaded(card, **{"1": "weekdays"})
    assert cache.decide(1, pki(card), MONDAY_MORNING).granted
    assert cache.decide(1, pki(card), MONDAY_EVENING).reason == reasons.OUTSIDE_SCHEDULE


def test_a_holiday_uses_its_own_windows(card: CardKey) -> None:
    cache = loaded(card, **{"1": "weekdays"})
    # Friday 4 July 2025: 09:00 EDT is inside the weekday window but not the holiday's.
    nine = datetime(2025, 7, 4, 13, 0, tzinfo=UTC)
    eleven = datetime(2025, 7, 4, 15, 0, tzinfo=UTC)
    assert cache.decide(1, pki(card), nine).reason == reasons.OUTSIDE_SCHEDULE
    assert cache.decide(1, pki(card), eleven).granted


def test_a_schedule_the_snapshot_lacks_keeps_the_door_shut(card: CardKey) -> None:
    cache = loaded(card, **{"1": "night-shift"})
    assert cache.decide(1, pki(card), MONDAY_MORNING).reason == reasons.OUTSIDE_SCHEDULE


def test_an_entry_past_valid_until_in_local_time_is_refused(card: CardKey) -> None:
    cache = CredentialCache()
    cache.apply_snapshot(
        snapshot([entry("cert_sha256", card.sha256, {"1": "always"}, date(2025, 3, 2))])
    )
    # 3 March 03:00 UTC is still 2 March in New York: valid; 3 March 14:00 UTC is not.
    assert cache.decide(1, pki(card), datetime(2025, 3, 3, 3, 0, tzinfo=UTC)).granted
    assert cache.decide(1, pki(card), MONDAY_MORNING).reason == reasons.EXPIRED


def test_without_a_snapshot_nothing_opens(card: CardKey) -> None:
    assert CredentialCache().decide(1, pki(card), MONDAY_MORNING).reason == reasons.NO_CACHE


def test_deltas_apply_in_order_and_a_removal_revokes(card: CardKey) -> None:
    cache = loaded(card)
    newcomer = CardKey.new("newcomer")
    cache.apply_delta(
        CredDelta(
            from_version=1,
            version=2,
            upsert=[entry("cert_sha256", newcomer.sha256, {"1": "always"})],
            remove=[credential_hash(SALT, "cert_sha256", card.sha256)],
        )
    )
    assert cache.version == 2
    assert cache.decide(1, pki(newcomer), MONDAY_MORNING).granted
    assert cache.decide(1, pki(card), MONDAY_MORNING).reason == reasons.UNKNOWN_CREDENTIAL


def test_a_delta_that_skips_a_version_is_refused_and_changes_nothing(card: CardKey) -> None:
    cache = loaded(card)
    gap = CredDelta(
        from_version=2, version=3, remove=[credential_hash(SALT, "cert_sha256", card.sha256)]
    )
    with pytest.raises(CacheOutOfStep) as caught:
        cache.apply_delta(gap)
    assert (caught.value.have, caught.value.delta_from) == (1, 2)
    assert cache.version == 1
    assert cache.decide(1, pki(card), MONDAY_MORNING).granted


def test_a_delta_before_any_snapshot_is_out_of_step() -> None:
    with pytest.raises(CacheOutOfStep):
        CredentialCache().apply_delta(CredDelta(from_version=1, version=2))


def test_a_delta_can_replace_door_rules(card: CardKey) -> None:
    cache = loaded(card)
    cache.apply_delta(
        CredDelta(
            from_version=1, version=2, doors={"1": OfflineDoor(factors=1, offline_allowed=False)}
        )
    )
    assert cache.decide(1, pki(card), MONDAY_MORNING).reason == reasons.DOOR_NEEDS_ACCESSD


def test_a_snapshot_in_an_unknown_timezone_is_refused_whole(card: CardKey) -> None:
    cache = loaded(card)
    bad = snapshot([], version=9).model_copy(update={"timezone": "Mars/Olympus_Mons"})
    with pytest.raises(ValueError, match="timezone"):
        cache.apply_snapshot(bad)
    assert cache.version == 1 and len(cache) == 2
