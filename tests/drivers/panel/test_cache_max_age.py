"""The offline cache's maximum age: past it without hearing from accessd (a revocation may
be missing) every card is refused as the door refuses an unknown one, and the panel raises
one ``cache_stale`` alarm a stale spell; hearing from accessd again makes it current."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drivers.mqtt.messages import CredentialRef, DecideReply
from drivers.panel import cache as reasons
from drivers.panel.cache import CredentialCache, Verified
from drivers.panel.session import Presentation
from tests.drivers.panel.panel_helpers import entry, snapshot
from tests.drivers.panel.test_panel_session import (
    TOPICS,
    UUID,
    Panel,
    cak,
    panel,
)

__all__ = ["panel"]  # a fixture these tests use

MADE = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)  # a Monday morning in New York
HOUR = timedelta(hours=1)


def aged(max_age: timedelta | None, made: datetime = MADE) -> CredentialCache:
    cache = CredentialCache()
    cache.apply_snapshot(
        snapshot([entry("card_uuid", UUID, {"1": "always"})]).model_copy(
            update={
                "generated_at": made,
                "max_age_seconds": int(max_age.total_seconds()) if max_age else None,
            }
        )
    )
    return cache


BADGE = Verified(identifiers=(CredentialRef(kind="card_uuid", value=UUID),), pin=True)


def test_within_its_max_age_the_cache_decides() -> None:
    cache = aged(HOUR)
    assert cache.decide(1, BADGE, MADE + HOUR / 2).reason == reasons.GRANTED
    assert not cache.take_alarm()


def test_past_its_max_age_every_card_is_refused_and_one_alarm_is_due() -> None:
    cache = aged(HOUR)
    late = MADE + 2 * HOUR
    decision = cache.decide(1, BADGE, late)
    assert (decision.granted, decision.reason) == (False, reasons.STALE)
    assert cache.take_alarm()
    cache.decide(1, BADGE, late + HOUR)
    assert not cache.take_alarm(), "one alarm a stale spell"
    cache.heard(late + HOUR)  # accessd reached the panel: current again
    assert cache.decide(1, BADGE, late + HOUR).reason != reasons.STALE
    cache.decide(1, BADGE, late + 3 * HOUR)
    assert cache.take_alarm(), "a new spell raises a new alarm"


def test_a_snapshot_without_a_max_age_never_goes_stale() -> None:
    cache = aged(None)
    assert cache.decide(1, BADGE, MADE + 1000 * HOUR).reason != reasons.STALE


def test_a_door_that_needs_accessd_still_says_so_first() -> None:
    assert aged(HOUR).decide(3, BADGE, MADE + 2 * HOUR).reason == reasons.DOOR_NEEDS_ACCESSD


async def test_a_stale_panel_refuses_offline_and_raises_the_alarm(panel: Panel) -> None:
    session, link, clock = panel
    cached = session.cache.max_age, session.cache.heard_at
    assert cached == (None, snapshot([]).generated_at)
    session.cache.max_age = HOUR  # as a snapshot of a site with a one-hour limit says
    session.cache.heard_at = clock.now() - 2 * HOUR
    first = await session.present(cak())  # accessd does not answer: offline
    second = await session.present(cak())
    assert (first.offline, first.reason) == (True, reasons.STALE)
    assert second.reason == reasons.STALE
    alarms = [e for e in session.buffer.pending(100) if e.type == "cache_stale"]
    assert len(alarms) == 1 and alarms[0].door == 1
    # accessd answers again: the panel hears from it, and the cache is current.
    link.deliver(
        TOPICS.rsp, DecideReply(id="x", granted=False, reason="late").model_dump_json().encode()
    )
    uuid_only = Presentation(reader=1, credential=CredentialRef(kind="card_uuid", value=UUID))
    assert (await session.present(uuid_only)).reason != reasons.STALE
