"""Panels and accessd through a real Mosquitto (the project's config and ACL): decisions
on a PKI-CAK proof from a virtual PIV card, the panel's cache kept current and a revocation
reaching it, every event stored once, spoofed and malformed messages refused and
reported, commands answered, and the panel deciding alone while accessd is away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.events import EventBus
from accessd.gateway.service import MqttGateway, gateway_from_settings
from accessd.models import AuditEntry, DecisionEvent, PanelEvent
from accessd.policyfile import loader as policy_loader
from accessd.policyfile import versions
from drivers.errors import MqttConnectRefused, MqttSubscribeRefused
from drivers.mqtt.access import SERVICE_USER, panel_client_id
from drivers.mqtt.client import MqttClient, MqttConfig, MqttSession
from drivers.mqtt.messages import DecideRequest, encode
from drivers.mqtt.topics import DEADLINE_QOS, SERVICE_REQUESTS, SHARE_GROUP, PanelTopics
from drivers.panel.buffer import EventBuffer
from drivers.panel.doors import DoorConfig
from drivers.panel.mqtt_link import MqttPanelLink, panel_mqtt_config
from drivers.panel.session import PanelConfig, PanelSession
from simulators.panel.reader import read_card
from simulators.piv_card import VirtualPivCard
from simulators.pki import CardMaterial
from tests.conftest import Operators
from tests.helpers import act, ok
from tests.mqtt_broker import MosquittoBroker, mosquitto, mqtt_users  # noqa: F401
from tests.piv_helpers import (
    PivService,
    fingerprint,
    ids_by_name,
    issue_piv_credential,
    piv_service,
)
from tests.waiting import until

POLICY = """\
version: 1
groups:
  - name: staff
    members: [E1]
facilities:
  - code: hq
    name: Headquarters
    timezone: America/New_York
    security_level: 3
    panels:
      - {name: p1, transport: mqtt}
      - {name: p2, transport: mqtt}
    areas:
      - name: Lobby
        class: controlled
        escort: {required: false}
    doors:
      - name: Main entrance
        into: Lobby
        panel: p1
        accepts: [pki_cak]
        readers: [{name: Main in, direction: in, contactless: true}]
      - name: Dock door
        into: Lobby
        panel: p2
        accepts: [pki_cak]
        readers: [{name: Dock in, direction: in, contactless: true}]
access_levels:
  - name: Staff
    doors: [hq/Main entrance, hq/Dock door]
    groups: [staff]
"""


@dataclass
class Site:
    svc: PivService
    gateway: MqttGateway
    card: CardMaterial
    cred: dict[str, Any]
    doors: dict[str, int]
    readers: dict[str, int]
    ops: Operators
    sessions: async_sessionmaker[AsyncSession]
    broker: MosquittoBroker
    users: dict[str, str]
    bus: EventBus


@pytest.fixture
async def site(
    db_url: str,
    engine: AsyncEngine,
    bus: EventBus,
    sessions: async_sessionmaker[AsyncSession],
    ops: Operators,
    tmp_path: Path,
    mosquitto: MosquittoBroker,  # noqa: F811
    mqtt_users: dict[str, str],  # noqa: F811
) -> AsyncIterator[Site]:
    async with piv_service(
        db_url,
        engine,
        bus,
        tmp_path,
        mqtt_gateway=True,
        mqtt_url=f"mqtt://127.0.0.1:{mosquitto.port}",
        mqtt_username=SERVICE_USER,
        mqtt_password=mqtt_users[SERVICE_USER],
    ) as svc:
        client = svc.client
        card = svc.pki.issue_card(algorithms={"9a": "p256", "9e": "p256"})
        _person, cred = await issue_piv_credential(client, ops, "E1", card)
        async with sessions() as s:
            await versions.apply(s, "test", policy_loader.parse(POLICY, "site.yaml"))
            await s.commit()
        state = svc.app.state.accessd
        await state.decisions.refresh()
        gateway = state.gateway
        assert gateway is not None
        await until(lambda: len(gateway.directory) == 2)
        fm = await ops.headers("facility_manager")
        doors = await ids_by_name(client, fm, "/v1/doors")
        readers = await ids_by_name(client, fm, "/v1/readers")
        yield Site(
            svc, gateway, card, cred, doors, readers, ops, sessions, mosquitto, mqtt_users, bus
        )


@pytest.fixture
async def panel(site: Site, tmp_path: Path) -> AsyncIterator[PanelSession]:
    session = await _panel(site, tmp_path, "p1", "Main entrance", "Main in")
    yield session
    await session.close()
    session.buffer.close()


async def _panel(
    site: Site, tmp: Path, name: str, door: str, reader: str, *, protocol: int = 5
) -> PanelSession:
    link = MqttPanelLink(
        panel_mqtt_config(
            "hq",
            name,
            host="127.0.0.1",
            port=site.broker.port,
            password=site.users[f"hq.{name}"],
            protocol=protocol,
        ),
        retry_seconds=0.2,
    )
    config = PanelConfig(
        site="hq",
        panel=name,
        doors=(DoorConfig(door=site.doors[door], readers=(site.readers[reader],)),),
        # Online answers take about a millisecond; the margin is for a loaded test machine
        # (the panel's own 300 ms default is exercised in tests/drivers/panel/test_panel_mqtt.py).
        decide_timeout=3.0,
        request_timeout=3.0,
        protocol=5 if protocol == 5 else 3,
    )
    session = PanelSession(config, link, EventBuffer(tmp / f"{name}.db"))
    await session.start()
    await until(lambda: link.connected and len(session.cache) > 0)
    return session


async def _present(site: Site, session: PanelSession, reader: str = "Main in") -> Any:
    rid = site.readers[reader]
    await until(lambda: session.challenges_held(rid) > 0)
    presentation = await read_card(session, rid, VirtualPivCard(site.card))
    return await session.present(presentation)


async def test_a_pki_cak_card_at_a_panel_is_decided_by_accessd(
    site: Site, panel: PanelSession
) -> None:
    result = await _present(site, panel)
    assert (result.granted, result.reason, result.offline) == (True, "granted", False)
    await site.svc.app.state.accessd.decisions.store.flush()
    async with site.sessions() as s:
        stored = (await s.execute(select(DecisionEvent.source, DecisionEvent.granted))).all()
    assert [tuple(r) for r in stored] == [("mqtt", True)]


async def test_the_cache_holds_the_card_and_a_revocation_removes_it(
    site: Site, panel: PanelSession
) -> None:
    from drivers.mqtt.messages import CredentialRef

    cert_ref = CredentialRef(kind="cert_sha256", value=fingerprint(site.card, "9e"))
    assert panel.cache.lookup(cert_ref) is not None
    started = asyncio.get_running_loop().time()
    officer = await site.ops.headers("security_officer")
    ok(await act(site.svc.client, officer, site.cred["id"], "suspend", "card reported lost"))
    await until(lambda: panel.cache.lookup(cert_ref) is None, 5)
    took = asyncio.get_running_loop().time() - started
    assert took < 5  # bounded wait only; bench/decisions_mqtt.py measures it
    # And online the card is refused at once.
    result = await _present(site, panel)
    assert (result.granted, result.reason) == (False, "credential_not_active")


async def test_events_are_stored_once_even_when_uploaded_twice(
    site: Site, panel: PanelSession
) -> None:
    recorded = [
        panel.record("door_pos", door=site.doors["Main entrance"], data={"open": i % 2 == 0})
        for i in range(20)
    ]
    await until(lambda: panel.buffer.pending_count() == 0)
    # The same events again, as a panel would after losing its acknowledgements.
    client = site.gateway.client
    topics = PanelTopics("hq", "p1")
    for ev in recorded[:5]:
        await client.publish(topics.event(site.doors["Main entrance"], "door_pos"), encode(ev))
    # Until the gateway has seen all five again, not for a fixed time.
    await until(lambda: site.gateway.events.duplicates >= 5)
    await site.gateway.events.flush()
    async with site.sessions() as s:
        count = await s.scalar(
            select(func.count()).select_from(PanelEvent).where(PanelEvent.type == "door_pos")
        )
    assert count == 20


async def test_a_panel_asking_for_another_panels_reader_is_refused_and_reported(
    site: Site, panel: PanelSession, tmp_path: Path
) -> None:
    other = await _panel(site, tmp_path, "p2", "Dock door", "Dock in")
    try:
        other_link = other.link
        assert isinstance(other_link, MqttPanelLink)
        request = DecideRequest(
            id="spoof-1",
            reader=site.readers["Main in"],  # p1's reader
            at=datetime.now(UTC),
            reply_to=PanelTopics("hq", "p2").rsp,
        )
        before = site.gateway.counters["spoofed"]
        await other_link.publish(PanelTopics("hq", "p2").leaf("req/decide"), encode(request))
        await until(lambda: site.gateway.counters["spoofed"] > before)
        await site.gateway.events.flush()
        async with site.sessions() as s:
            spoofed = await s.scalar(
                select(func.count()).select_from(PanelEvent).where(PanelEvent.type == "spoofed")
            )
        assert spoofed == 1
    finally:
        await other.close()
        other.buffer.close()


async def test_malformed_payloads_get_an_error_and_the_gateway_goes_on(
    site: Site, panel: PanelSession
) -> None:
    link = panel.link
    assert isinstance(link, MqttPanelLink)
    topics = PanelTopics("hq", "p1")
    for junk in (b"not json", b'{"v": 2}', b"{" * 100, b"x" * 70_000):
        await link.publish(topics.leaf("req/decide"), junk)
    await link.publish(topics.event(site.doors["Main entrance"], "tamper"), b'{"v":1}')
    await until(
        lambda: sum(v for k, v in site.gateway.counters.items() if k.startswith("malformed")) >= 5
    )
    assert site.gateway.counters["malformed_too_large"] == 1
    result = await _present(site, panel)  # still answering
    assert result.granted and not result.offline
    await site.gateway.events.flush()
    async with site.sessions() as s:
        errors = await s.scalar(
            select(func.count()).select_from(PanelEvent).where(PanelEvent.type == "error")
        )
    assert errors == 5


async def test_commands_reach_the_panel_and_their_results_come_back(
    site: Site, panel: PanelSession
) -> None:
    door = site.doors["Main entrance"]
    result = await site.gateway.command(door, "unlock", {"seconds": 3})
    assert result.ok and result.state is not None and result.state.lock == "unlocked"
    lockdown = await site.gateway.lockdown(
        site.svc.app.state.accessd.decisions.snapshot.doors[door].facility_id, True
    )
    assert set(lockdown.values()) == {"ok", "timeout"} or set(lockdown.values()) == {"ok"}


async def test_a_panel_decides_alone_while_accessd_is_away_and_nothing_is_lost(
    site: Site, panel: PanelSession
) -> None:
    state = site.svc.app.state.accessd
    await _present(site, panel)  # online, and the challenge pool filled
    await site.gateway.stop()
    result = await _present(site, panel)
    assert (result.granted, result.reason, result.offline) == (True, "offline_granted", True)
    # accessd comes back with the same broker session: what the panel sent meanwhile was
    # queued for it and is stored now.
    again = gateway_from_settings(
        state.settings, site.sessions, state.decisions, state.authn, site.bus
    )
    state.gateway = again
    await again.start()
    try:
        await until(lambda: again.counters["events"] >= 1)
        await again.events.flush()
        async with site.sessions() as s:
            offline = (
                await s.scalars(select(PanelEvent.data).where(PanelEvent.type == "access"))
            ).all()
        assert any(d.get("offline") is True for d in offline), offline
        online = await _present(site, panel)
        assert online.granted and not online.offline
    finally:
        await again.stop()


async def test_operators_command_doors_and_see_panels_and_their_alarms_over_http(
    site: Site, panel: PanelSession
) -> None:
    client = site.svc.client
    officer = await site.ops.headers("security_officer")
    door = site.doors["Main entrance"]
    answer = ok(
        await client.post(
            f"/v1/doors/{door}/commands",
            json={"verb": "unlock", "args": {"seconds": 4}, "reason": "delivery"},
            headers=officer,
        )
    )
    assert answer["ok"] and answer["state"]["lock"] == "unlocked"
    refused = await client.post(
        f"/v1/doors/{door}/commands",
        json={"verb": "unlock"},
        headers=await site.ops.headers("facility_manager"),
    )
    assert refused.status_code == 403
    dock = site.doors["Dock door"]  # its panel p2 is not connected
    timed_out = await client.post(
        f"/v1/doors/{dock}/commands", json={"verb": "unlock"}, headers=officer
    )
    assert timed_out.status_code == 504, timed_out.text
    status = {p["name"]: p for p in ok(await client.get("/v1/panel-status", headers=officer))}
    assert status["p1"]["online"] and status["p1"]["firmware"]
    assert not status["p2"]["online"]

    link = panel.link
    assert isinstance(link, MqttPanelLink)
    await link.partition(0.5)  # the broker publishes p1's will: an offline alarm
    await until(lambda: site.gateway.counters["panel_offline"] >= 1)
    await site.gateway.events.flush()
    alarms = ok(await client.get("/v1/panel-events?alarm=true", headers=officer))["items"]
    assert "panel_offline" in {a["type"] for a in alarms}
    async with site.sessions() as s:
        actions = (
            await s.scalars(select(AuditEntry.action).where(AuditEntry.action == "door.command"))
        ).all()
    assert len(actions) == 2  # the unlock and the one that timed out


async def test_an_mqtt_3_1_1_panel_is_answered_by_the_ids_in_its_payloads(
    site: Site, tmp_path: Path
) -> None:
    old = await _panel(site, tmp_path, "p2", "Dock door", "Dock in", protocol=3)
    try:
        result = await _present(site, old, reader="Dock in")
        assert (result.granted, result.reason, result.offline) == (True, "granted", False)
    finally:
        await old.close()
        old.buffer.close()


async def test_two_service_instances_share_the_requests(site: Site, panel: PanelSession) -> None:
    state = site.svc.app.state.accessd
    second = gateway_from_settings(
        state.settings.model_copy(update={"mqtt_client_id": "accessd-second"}),
        site.sessions,
        state.decisions,
        state.authn,
        site.bus,
        state.engine,
    )
    await second.start()
    try:
        if state.engine.dialect.name == "postgresql":
            # One publisher of caches (the advisory lock's holder), the other answers only.
            await until(lambda: site.gateway.publishes_caches)
            assert not second.publishes_caches
        first_before = site.gateway.counters["decisions"]
        results = [await _present(site, panel) for _ in range(40)]
        assert all(r.granted and not r.offline for r in results)
        first = site.gateway.counters["decisions"] - first_before
        other = second.counters["decisions"]
        # Each request answered once, by one of the two; both took some.
        assert first + other == 40 and first > 0 and other > 0, (first, other)
    finally:
        await second.stop()


async def test_a_panel_cannot_have_its_answers_sent_to_another_panel(site: Site) -> None:
    # Each login may use only its own client id.
    victim = _login(site, "p1", panel_client_id("hq", "p1"))
    attacker = _login(site, "p2", panel_client_id("hq", "p2"))
    seen: list[tuple[str, bytes]] = []
    answered: list[bytes] = []
    qos: set[int] = set()
    victim.on_message(lambda msg: seen.append((msg.topic, msg.payload)))
    attacker.on_message(lambda msg: (answered.append(msg.payload), qos.add(msg.qos)))
    await victim.connect()
    await attacker.connect()
    try:
        p1, p2 = PanelTopics("hq", "p1"), PanelTopics("hq", "p2")
        await victim.subscribe([(p1.rsp, 1)])
        await attacker.subscribe([(p2.rsp, 1)])
        before = site.gateway.counters["spoofed"]
        for how in ("response_topic", "reply_to"):
            request = DecideRequest(
                id=f"forge-{how}",
                reader=site.readers["Dock in"],  # p2's own reader: a legitimate request
                at=datetime.now(UTC),
                credential={"kind": "card_uuid", "value": site.card.card_uuid},  # type: ignore[arg-type]
                evidence=["pki_cak"],
                reply_to=p1.rsp if how == "reply_to" else None,
            )
            await attacker.publish(
                p2.leaf("req/decide"),
                encode(request),
                response_topic=p1.rsp if how == "response_topic" else None,
                correlation_data=b"p1-pending-request",
            )
        # Both answers go somewhere: to the asking panel's own rsp, never the victim's.
        await until(lambda: len(answered) + len(seen) >= 2)
        await asyncio.sleep(0.2)
        assert seen == []
        assert len(answered) == 2
        # Answers are worth something only before the panel's deadline: no PUBACKs.
        assert qos == {DEADLINE_QOS}
        assert site.gateway.counters["spoofed"] == before + 2
    finally:
        await victim.disconnect()
        await attacker.disconnect()


P1 = PanelTopics("hq", "p1")


def _login(site: Site, name: str, client_id: str) -> MqttClient:
    """A raw connection with panel ``name``'s login and the given client id."""
    return MqttClient(
        MqttConfig(
            host="127.0.0.1",
            port=site.broker.port,
            client_id=client_id,
            username=f"hq.{name}",
            password=site.users[f"hq.{name}"],
            reconnect_min_delay=30,  # one attempt: a refused login must not come back
        )
    )


async def test_a_panel_cannot_join_the_services_shared_subscription(site: Site) -> None:
    # Mosquitto hands each shared-subscription member its turn and drops a message whose
    # delivery the member may not read: an intruder in the group would silence its share
    # of every panel's requests. The broker must refuse it the subscription itself.
    intruder = _login(site, "p2", panel_client_id("hq", "p2"))
    asker = _login(site, "p1", panel_client_id("hq", "p1"))
    stolen: list[str] = []
    answers: list[bytes] = []
    intruder.on_message(lambda msg: stolen.append(msg.topic))
    asker.on_message(lambda msg: answers.append(msg.payload))
    await intruder.connect()
    await asker.connect()
    try:
        refused = 0
        for share in (SERVICE_REQUESTS, f"$share/{SHARE_GROUP}/{P1.leaf('req/decide')}"):
            with contextlib.suppress(MqttSubscribeRefused):
                await intruder.subscribe([(share, DEADLINE_QOS)])
                continue
            refused += 1
        await asker.subscribe([(P1.rsp, DEADLINE_QOS)])
        n = 40
        for i in range(n):
            request = DecideRequest(
                id=f"share-{i}",
                reader=site.readers["Main in"],
                at=datetime.now(UTC),
                credential={"kind": "card_uuid", "value": site.card.card_uuid},  # type: ignore[arg-type]
                evidence=["pki_cak"],
                reply_to=P1.rsp,
            )
            await asker.publish(P1.leaf("req/decide"), encode(request), qos=DEADLINE_QOS)
        # Answers take about a millisecond each; a dropped request is never answered.
        with contextlib.suppress(AssertionError):
            await until(lambda: len(answers) >= n, 5)
        assert (len(answers), stolen, refused) == (n, [], 2)
    finally:
        await intruder.disconnect()
        await asker.disconnect()


async def test_a_panel_cannot_take_another_panels_client_id(
    site: Site, panel: PanelSession
) -> None:
    link = panel.link
    assert isinstance(link, MqttPanelLink)
    offline_before = site.gateway.counters["panel_offline"]
    thief = _login(site, "p2", panel_client_id("hq", "p1"))
    try:
        with pytest.raises(MqttConnectRefused):
            await thief.connect()
    finally:
        await thief.disconnect()
    # Had the broker let it in, p1's connection would have been dropped for it.
    await asyncio.sleep(0.5)
    assert link.connected
    assert site.gateway.counters["panel_offline"] == offline_before
    result = await _present(site, panel)
    assert result.granted and not result.offline


async def test_a_panel_cannot_take_the_services_client_ids(site: Site, panel: PanelSession) -> None:
    feeds, requests = site.gateway.client, site.gateway.requests
    assert isinstance(feeds, MqttSession) and isinstance(requests, MqttSession)
    ids = {feeds.config.client_id, requests.config.client_id}
    assert len(ids) == 2
    lost: list[str] = []
    stops = [link.on_disconnected(lost.append) for link in (feeds, requests)]
    for client_id in sorted(ids):
        thief = _login(site, "p1", client_id)
        try:
            with pytest.raises(MqttConnectRefused):
                await thief.connect()
        finally:
            await thief.disconnect()
    # Had the broker let it in, one of the service's connections would have been dropped.
    await asyncio.sleep(0.5)
    for stop in stops:
        stop()
    assert lost == []
    results = [await _present(site, panel) for _ in range(5)]
    assert all(r.granted and not r.offline for r in results)


async def test_a_pin_a_panels_reader_signs_counts_over_mqtt_and_an_unsigned_one_does_not(
    site: Site, tmp_path: Path
) -> None:
    """Issue 15: a PIN the reader says the card verified counts only when the reader signs
    that claim with its attestation key, over MQTT as over HTTP (otherwise only PKI-AUTH
    proves the PIN). The dock door is made card-and-PIN; the card is read with PKI-CAK."""
    import base64
    from dataclasses import replace

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from accessd.authn.proofs import pin_message
    from drivers.mqtt.messages import PinClaim

    fm = await site.ops.headers("facility_manager")
    client = site.svc.client
    state = site.svc.app.state.accessd
    door = ok(await client.get(f"/v1/doors/{site.doors['Dock door']}", headers=fm))
    ok(
        await client.patch(
            f"/v1/doors/{door['id']}",
            json={"mode": "card_and_pin"},
            headers=fm | {"If-Match": f'"{door["version"]}"'},
        )
    )
    key = ec.generate_private_key(ec.SECP256R1())
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    rid = site.readers["Dock in"]
    reader = ok(await client.get(f"/v1/readers/{rid}", headers=fm))
    ok(
        await client.patch(
            f"/v1/readers/{rid}",
            json={"attestation_key": pem},
            headers=fm | {"If-Match": f'"{reader["version"]}"'},
        )
    )
    state.authn._reader_keys.forget()
    await state.decisions.refresh()
    session = await _panel(site, tmp_path, "p2", "Dock door", "Dock in")
    try:

        async def with_pin(signer: ec.EllipticCurvePrivateKey | None) -> Any:
            await until(lambda: session.challenges_held(rid) > 0)
            read = await read_card(session, rid, VirtualPivCard(site.card))
            assert read.proof is not None and read.proof.mechanism == "pki_cak"
            claim = None
            if signer is not None:
                challenge = base64.b64decode(read.proof.challenge)
                message = pin_message(challenge, fingerprint(site.card, "9e"))
                signature = signer.sign(message, ec.ECDSA(hashes.SHA256()))
                claim = PinClaim(signature=base64.b64encode(signature).decode())
            said = replace(read, evidence=("pki_cak", "pin"), pin_verified=True, pin_claim=claim)
            return await session.present(said)

        unsigned = await with_pin(None)
        assert (unsigned.granted, unsigned.reason, unsigned.offline) == (
            False,
            "factors_missing",
            False,
        )
        signed = await with_pin(key)
        assert (signed.granted, signed.reason, signed.offline) == (True, "granted", False)
        forged = await with_pin(ec.generate_private_key(ec.SECP256R1()))
        assert (forged.granted, forged.reason) == (False, "authentication_failed")
    finally:
        await session.close()
        session.buffer.close()
