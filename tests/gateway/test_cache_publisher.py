"""The gateway's copy of each panel's offline cache: the entries kept as JSON text (out of
the cyclic collector's way) are the `CacheEntry` models the schema defines, the snapshot
built from them decodes to what the models would give, and refreshes and revocations send
the right deltas."""

from __future__ import annotations

import asyncio
import base64
import gc
from datetime import date

from accessd.gateway.cache import CachePublisher, entry_model
from accessd.gateway.directory import PanelDirectory, PanelInfo
from drivers.mqtt import messages as m
from drivers.mqtt.topics import PanelTopics
from drivers.panel.cache import credential_hash
from policies.snapshot import CredentialPolicy, IdKind, Snapshot
from tests.policies.policy_site import LVL_ALL, MAIN, SIDE, STAFF_GROUP, VAULT, add_person, site

TODAY = date(2026, 12, 1)
A, B = 1, 2
PANEL_A = PanelInfo(A, 1, PanelTopics("hq", "panel-a"), frozenset({MAIN, SIDE}), {})
PANEL_B = PanelInfo(B, 1, PanelTopics("hq", "panel-b"), frozenset({VAULT}), {})

Sent = list[tuple[str, bytes, bool]]


def publisher(s: Snapshot) -> tuple[CachePublisher, Sent]:
    directory = PanelDirectory()
    directory.set_panels([PANEL_A, PANEL_B])
    sent: Sent = []

    async def publish(topic: str, payload: bytes, retain: bool) -> None:
        sent.append((topic, payload, retain))

    return CachePublisher(directory, lambda: s, publish, today=lambda: TODAY), sent


def on(sent: Sent, panel: PanelInfo, leaf: str) -> list[bytes]:
    return [p for t, p, _ in sent if t == panel.topics.leaf(leaf)]


def uuid_hash(snapshot: m.CredSnapshot, uuid: str) -> str:
    return credential_hash(base64.b64decode(snapshot.salt), IdKind.CARD_UUID, uuid)


async def test_the_snapshot_is_what_the_models_would_encode() -> None:
    s = site()
    first = add_person(s, 1, levels=frozenset({LVL_ALL}))
    add_person(s, 2, groups=frozenset({STAFF_GROUP}))
    s.put_credential(
        CredentialPolicy(21, 2, True, date(2024, 1, 1), date(2027, 6, 30)),
        [(IdKind.CARD_UUID, "00000000-0000-4000-8000-00000000002a"), (IdKind.FASC_N, "ab" * 25)],
    )
    caches, sent = publisher(s)
    await caches.publish_all()
    cache = caches.cache_of(A)
    assert cache is not None and len(cache.entries) == 4
    # Text, not containers: nothing here for the cyclic collector to walk.
    assert not gc.is_tracked(cache.entries)
    for h, text in cache.entries.items():
        model = entry_model(text)
        assert model.h == h
        assert text == model.model_dump_json(exclude_none=True).encode()
    (payload,) = on(sent, PANEL_A, "cred/snapshot")
    snap = m.decode(m.CredSnapshot, payload)
    assert [e.h for e in snap.entries] == list(cache.entries)
    rebuilt = m.encode(
        snap.model_copy(update={"entries": [entry_model(t) for t in cache.entries.values()]})
    )
    assert payload == rebuilt
    held = {e.h: e for e in snap.entries}
    assert held[uuid_hash(snap, first)].doors == {str(MAIN): "always"}
    # Panel B's vault needs accessd: an empty list, still a valid snapshot.
    assert m.decode(m.CredSnapshot, on(sent, PANEL_B, "cred/snapshot")[0]).entries == []


async def test_a_refresh_sends_what_changed_as_a_delta_in_order() -> None:
    s = site()
    add_person(s, 1, levels=frozenset({LVL_ALL}))
    gone = add_person(s, 2, levels=frozenset({LVL_ALL}))
    caches, sent = publisher(s)
    await caches.publish_all()
    snap = m.decode(m.CredSnapshot, on(sent, PANEL_A, "cred/snapshot")[0])
    s.drop_credential(20)
    new = add_person(s, 3, levels=frozenset({LVL_ALL}))
    await caches.refresh()
    (payload,) = on(sent, PANEL_A, "cred/delta")
    delta = m.decode(m.CredDelta, payload)
    assert (delta.from_version, delta.version) == (snap.version, snap.version + 1)
    assert delta.remove == [uuid_hash(snap, gone)]
    assert [e.h for e in delta.upsert] == [uuid_hash(snap, new)]
    assert on(sent, PANEL_B, "cred/delta") == []  # nothing changed there
    await caches.refresh()
    assert len(on(sent, PANEL_A, "cred/delta")) == 1  # no change, no delta


async def test_a_revocation_takes_the_fast_path_to_every_panel_holding_it() -> None:
    s = site()
    kept = add_person(s, 1, levels=frozenset({LVL_ALL}))
    lost = add_person(s, 2, levels=frozenset({LVL_ALL}))
    caches, sent = publisher(s)
    await caches.publish_all()
    snap = m.decode(m.CredSnapshot, on(sent, PANEL_A, "cred/snapshot")[0])
    s.drop_credential(20)
    await caches.credentials_changed([20])
    (payload,) = on(sent, PANEL_A, "cred/delta")
    delta = m.decode(m.CredDelta, payload)
    assert delta.remove == [uuid_hash(snap, lost)] and delta.upsert == []
    cache = caches.cache_of(A)
    assert cache is not None and list(cache.entries) == [uuid_hash(snap, kept)]
    # The retained snapshot follows the deltas (once a burst is over).
    retain = caches.retain_loop(quiet=0)
    task = asyncio.create_task(retain)
    try:
        for _ in range(100):
            if len(on(sent, PANEL_A, "cred/snapshot")) == 2:
                break
            await asyncio.sleep(0)
    finally:
        task.cancel()
    latest = m.decode(m.CredSnapshot, on(sent, PANEL_A, "cred/snapshot")[-1])
    assert latest.version == delta.version
    assert [e.h for e in latest.entries] == [uuid_hash(snap, kept)]
