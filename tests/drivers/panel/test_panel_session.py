"""The panel session over an in-memory link: decisions online and offline, the upload of
buffered events, credential deltas, commands, challenges."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drivers import tasks
from drivers.mqtt.messages import (
    ChallengeReply,
    ChallengeRequest,
    Command,
    CommandResult,
    CredDelta,
    CredentialRef,
    DecideReply,
    DecideRequest,
    ErrorReply,
    Event,
    EventAck,
    Message,
    SnapshotRequest,
    decode,
    encode,
)
from drivers.mqtt.topics import PanelTopics
from drivers.panel.buffer import EventBuffer
from drivers.panel.cache import credential_hash
from drivers.panel.clock import ManualClock
from drivers.panel.doors import DoorConfig
from drivers.panel.errors import LinkDown
from drivers.panel.link import ConnectionHandler, MessageHandler, PanelLink
from drivers.panel.session import PanelConfig, PanelSession, Presentation
from tests.drivers.panel.panel_helpers import SALT, CardKey, entry, snapshot
from tests.waiting import until

TOPICS = PanelTopics("hq", "p1")
MONDAY_MORNING = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
Responder = Callable[[str, bytes], Message | None]


class FakeLink(PanelLink):
    """A broker in memory: publishes are kept (and PUBACKed) while connected; a responder
    plays accessd by answering requests on the panel's rsp topic, and, while ``confirm``
    is on, accessd's confirmation of every event on the panel's ack topic."""

    def __init__(self) -> None:
        self.up = False
        self.published: list[tuple[str, bytes, bool]] = []
        self.subscriptions: list[str] = []
        self.responder: Responder | None = None
        self.fail_next = 0  # publishes to drop as a lost connection would
        self.confirm = True
        self._messages: list[MessageHandler] = []
        self._connections: list[ConnectionHandler] = []

    @property
    def connected(self) -> bool:
        return self.up

    async def start(self) -> None:
        self.set_up(True)

    async def close(self) -> None:
        self.up = False

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        await asyncio.sleep(0)
        if not self.up:
            raise LinkDown("fake link is down")
        if self.fail_next:
            self.fail_next -= 1
            raise LinkDown("dropped before the PUBACK")
        self.published.append((topic, payload, retain))
        if self.confirm and "/evt/" in topic:
            ack = EventAck(seqs=[decode(Event, payload).seq])
            asyncio.get_running_loop().call_soon(self.deliver, TOPICS.ack, encode(ack))
        if self.responder is not None:
            answer = self.responder(topic, payload)
            if answer is not None:
                asyncio.get_running_loop().call_soon(self.deliver, TOPICS.rsp, encode(answer))

    async def subscribe(self, topics: Sequence[tuple[str, int]]) -> None:
        self.subscriptions += [t for t, _ in topics]

    def on_message(self, handler: MessageHandler) -> Callable[[], None]:
        self._messages.append(handler)
        return lambda: self._messages.remove(handler)

    def on_connection(self, handler: ConnectionHandler) -> Callable[[], None]:
        self._connections.append(handler)
        return lambda: self._connections.remove(handler)

    def set_up(self, up: bool) -> None:
        self.up = up
        for handler in self._connections:
            handler(up)

    def deliver(self, topic: str, payload: bytes) -> None:
        for handler in self._messages:
            handler(topic, payload)

    def on(self, leaf: str) -> list[bytes]:
        return [p for t, p, _ in self.published if t == TOPICS.leaf(leaf)]

    def events(self) -> list[Event]:
        return [decode(Event, p) for t, p, _ in self.published if "/evt/" in t]


CARD = CardKey.new("holder")
Panel = tuple[PanelSession, "FakeLink", ManualClock]
UUID = "0f4a5b6c-1111-2222-3333-444455556666"


@pytest.fixture
async def panel(tmp_path: Path) -> AsyncIterator[Panel]:
    link = FakeLink()
    clock = ManualClock(MONDAY_MORNING)
    config = PanelConfig(
        site="hq",
        panel="p1",
        doors=(DoorConfig(door=1, readers=(1,)), DoorConfig(door=2, readers=(2,))),
        decide_timeout=0.05,
        request_timeout=0.05,
        challenge_pool=4,
    )
    session = PanelSession(config, link, EventBuffer(tmp_path / "p1.db"), clock=clock)
    session.cache.apply_snapshot(
        snapshot(
            [
                entry("cert_sha256", CARD.sha256, {"1": "always", "2": "always"}),
                entry("card_uuid", UUID, {"1": "always"}),
            ]
        )
    )
    await session.start()
    await until(lambda: bool(link.on("birth")))
    yield session, link, clock
    await session.close()
    session.buffer.close()


def cak(challenge: bytes = b"panel-made challenge", reader: int = 1) -> Presentation:
    return Presentation(
        reader=reader,
        credential=CredentialRef(kind="cert_sha256", value=CARD.sha256),
        evidence=("pki_cak",),
        proof=CARD.proof(challenge),
    )


def answer_decisions(granted: bool, reason: str = "granted") -> Responder:
    def respond(topic: str, payload: bytes) -> Message | None:
        if topic != TOPICS.leaf("req/decide"):
            return None
        request = decode(DecideRequest, payload)
        return DecideReply(id=request.id, granted=granted, reason=reason, unlock_seconds=4)

    return respond


async def test_start_announces_online_and_birth_retained_and_subscribes(panel: Panel) -> None:
    _session, link, _ = panel
    assert (TOPICS.status, b"online", True) in link.published
    birth = json.loads(link.on("birth")[-1])
    assert birth["doors"] == [1, 2] and birth["readers"] == [1, 2] and birth["cred_version"] == 1
    assert set(link.subscriptions) == set(TOPICS.panel_subscriptions)
    assert any(t == TOPICS.state(1) and retain for t, _, retain in link.published)


async def test_an_answer_from_accessd_decides_and_unlocks(panel: Panel) -> None:
    session, link, _ = panel
    link.responder = answer_decisions(True)
    result = await session.present(cak())
    assert (result.granted, result.reason, result.offline) == (True, "granted", False)
    assert not session.doors[1].locked
    request = decode(DecideRequest, link.on("req/decide")[-1])
    assert request.reply_to == TOPICS.rsp and request.proof is not None
    await until(lambda: any(e.type == "access" for e in link.events()))
    access = next(e for e in link.events() if e.type == "access")
    assert access.data["offline"] is False and access.door == 1 and access.reader == 1
    assert UUID not in json.dumps(access.data) and CARD.sha256 not in json.dumps(access.data)


async def test_a_denial_from_accessd_is_not_overridden_by_the_cache(panel: Panel) -> None:
    session, link, _ = panel
    link.responder = answer_decisions(False, "revoked")
    result = await session.present(cak())
    assert (result.granted, result.reason, result.offline) == (False, "revoked", False)
    assert session.doors[1].locked


async def test_no_answer_within_the_timeout_decides_from_the_cache(panel: Panel) -> None:
    session, link, _ = panel
    result = await session.present(cak())
    assert link.on("req/decide"), "the panel asked accessd first"
    assert (result.granted, result.reason, result.offline) == (True, "offline_granted", True)
    assert result.event.data["offline"] is True


async def test_while_disconnected_it_decides_offline_without_asking(panel: Panel) -> None:
    session, link, _ = panel
    link.set_up(False)
    asked = len(link.on("req/decide"))
    uuid_only = Presentation(reader=1, credential=CredentialRef(kind="card_uuid", value=UUID))
    result = await session.present(uuid_only)
    assert (result.offline, result.reason) == (True, "offline_factors_missing")
    assert len(link.on("req/decide")) == asked


async def test_an_error_reply_denies_without_falling_back(panel: Panel) -> None:
    session, link, _ = panel

    def refuse(topic: str, payload: bytes) -> Message | None:
        if topic.endswith("req/decide"):
            return ErrorReply(id=decode(DecideRequest, payload).id, error="unknown_reader")
        return None

    link.responder = refuse
    result = await session.present(cak())
    assert (result.granted, result.reason, result.offline) == (
        False,
        "service_unknown_reader",
        False,
    )


async def test_events_buffered_while_disconnected_go_up_in_order_after_reconnect(
    panel: Panel,
) -> None:
    session, link, _ = panel
    await until(lambda: session.buffer.pending_count() == 0)
    link.set_up(False)
    recorded = [session.record("tamper", data={"n": i}) for i in range(50)]
    await asyncio.sleep(0.02)
    assert session.buffer.pending_count() == 50
    link.set_up(True)
    await until(lambda: session.buffer.pending_count() == 0)
    uploaded = [e for e in link.events() if e.type == "tamper"]
    assert [e.event_id for e in uploaded] == [e.event_id for e in recorded]
    assert [e.seq for e in uploaded] == sorted(e.seq for e in uploaded)


async def test_an_event_whose_puback_never_came_stays_buffered_and_is_sent_again(
    panel: Panel,
) -> None:
    session, link, _ = panel
    await until(lambda: session.buffer.pending_count() == 0)
    link.fail_next = 1
    event = session.record("tamper", data={"n": 1})
    await until(lambda: link.fail_next == 0)
    assert [e.seq for e in session.buffer.pending()] == [event.seq]
    link.set_up(False)
    link.set_up(True)
    await until(lambda: session.buffer.pending_count() == 0)
    assert [e.event_id for e in link.events() if e.type == "tamper"] == [event.event_id]


async def test_a_delta_in_order_is_applied_and_the_birth_says_so(panel: Panel) -> None:
    session, link, _ = panel
    revoke = CredDelta(
        from_version=1, version=2, remove=[credential_hash(SALT, "cert_sha256", CARD.sha256)]
    )
    link.deliver(TOPICS.leaf("cred/delta"), encode(revoke))
    assert session.cache.version == 2
    await until(lambda: json.loads(link.on("birth")[-1])["cred_version"] == 2)
    link.set_up(False)
    result = await session.present(cak())
    assert (result.granted, result.reason) == (False, "offline_unknown_credential")


async def test_a_delta_out_of_order_asks_for_a_snapshot(panel: Panel) -> None:
    session, link, _ = panel
    link.deliver(TOPICS.leaf("cred/delta"), encode(CredDelta(from_version=5, version=6)))
    await until(lambda: bool(link.on("req/snapshot")))
    request = decode(SnapshotRequest, link.on("req/snapshot")[-1])
    assert request.have_version == 1 and request.reply_to == TOPICS.leaf("cred/snapshot")
    assert session.cache.version == 1


async def test_a_redelivered_old_delta_is_ignored(panel: Panel) -> None:
    session, link, _ = panel
    link.deliver(TOPICS.leaf("cred/delta"), encode(CredDelta(from_version=1, version=2)))
    link.deliver(TOPICS.leaf("cred/delta"), encode(CredDelta(from_version=1, version=2)))
    await asyncio.sleep(0.02)
    assert session.cache.version == 2 and not link.on("req/snapshot")


async def test_an_older_retained_snapshot_does_not_undo_newer_deltas(panel: Panel) -> None:
    session, link, _ = panel
    link.deliver(TOPICS.leaf("cred/delta"), encode(CredDelta(from_version=1, version=2)))
    link.deliver(TOPICS.leaf("cred/snapshot"), encode(snapshot([], version=1)))
    assert session.cache.version == 2 and len(session.cache) == 2
    link.deliver(TOPICS.leaf("cred/snapshot"), encode(snapshot([], version=3)))
    assert session.cache.version == 3 and len(session.cache) == 0


async def test_a_reconnect_asks_for_the_current_cache(panel: Panel) -> None:
    _, link, _ = panel
    link.set_up(False)
    link.set_up(True)
    await until(lambda: bool(link.on("req/snapshot")))


def command(verb: str, clock: ManualClock, expires_in: float = 30, **args: object) -> bytes:
    return encode(
        Command(
            id=f"c-{verb}",
            verb=verb,  # type: ignore[arg-type]
            args=args,  # type: ignore[arg-type]
            expires_at=clock.now() + timedelta(seconds=expires_in),
        )
    )


def results(link: FakeLink) -> list[CommandResult]:
    return [decode(CommandResult, p) for p in link.on("res/cmd")]


async def test_an_unlock_command_is_obeyed_and_answered_with_the_state(panel: Panel) -> None:
    session, link, clock = panel
    link.deliver(TOPICS.command(1, "unlock"), command("unlock", clock, seconds=10))
    assert not session.doors[1].locked
    await until(lambda: bool(link.on("res/cmd")))
    result = results(link)[-1]
    assert result.ok and result.state is not None and result.state.lock == "unlocked"


async def test_an_expired_command_is_refused(panel: Panel) -> None:
    session, link, clock = panel
    link.deliver(TOPICS.command(1, "unlock"), command("unlock", clock, expires_in=-1))
    assert session.doors[1].locked
    await until(lambda: bool(link.on("res/cmd")))
    assert (results(link)[-1].ok, results(link)[-1].error) == (False, "expired")


async def test_mode_and_lockdown_commands_change_the_doors(panel: Panel) -> None:
    session, link, clock = panel
    link.deliver(TOPICS.command(2, "mode"), command("mode", clock, mode="card_and_pin"))
    assert session.doors[2].mode == "card_and_pin"
    link.deliver(TOPICS.command("panel", "lockdown"), command("lockdown", clock, on=True))
    assert {d.mode for d in session.doors.values()} == {"lockdown"}
    link.deliver(TOPICS.command(1, "mode"), command("mode", clock, mode="wide_open"))
    link.deliver(TOPICS.command(1, "unlock"), command("mode", clock, mode="unlocked"))
    await until(lambda: len(link.on("res/cmd")) == 4)
    assert [(r.ok, r.error) for r in results(link)] == [
        (True, None),
        (True, None),
        (False, "bad_args"),
        (False, "verb_mismatch"),
    ]
    refused = await session.present(cak())
    assert (refused.granted, refused.reason) == (False, "door_lockdown")


async def test_a_malformed_command_becomes_an_error_event(panel: Panel) -> None:
    session, link, _ = panel
    link.deliver(TOPICS.command(1, "unlock"), b'{"v":1,"id":"x","verb":"unlock"')
    assert session.stats.errors == 1 and session.doors[1].locked
    await until(lambda: any(e.type == "error" for e in link.events()))
    error = next(e for e in link.events() if e.type == "error")
    assert error.data["reason"] == "invalid"


async def test_card_and_pin_mode_refuses_a_card_without_the_pin(panel: Panel) -> None:
    session, _link, _ = panel
    session.doors[1].set_mode("card_and_pin")
    assert (await session.present(cak())).reason == "pin_required"


def challenge_issuer(clock: ManualClock) -> Responder:
    """accessd's challenge endpoint: ``count`` values (reader, i) * 16, good for 60 s."""

    def issue(topic: str, payload: bytes) -> Message | None:
        if not topic.endswith("req/challenge"):
            return None
        request = decode(ChallengeRequest, payload)
        values = [
            base64.b64encode(bytes([request.reader, i]) * 16).decode() for i in range(request.count)
        ]
        return ChallengeReply(
            id=request.id, challenges=values, expires_at=clock.now() + timedelta(seconds=60)
        )

    return issue


async def test_challenges_are_prefetched_and_expired_ones_discarded(panel: Panel) -> None:
    session, link, clock = panel
    link.responder = challenge_issuer(clock)
    link.set_up(False)
    link.set_up(True)  # the reconnect refills the pools
    await until(lambda: session.challenges_held(1) == 4)
    value, from_accessd = session.take_challenge(1)
    assert from_accessd and value == bytes([1, 0]) * 16
    clock.advance(120)
    value, from_accessd = session.take_challenge(1)
    assert not from_accessd and len(value) == 32  # all expired: the panel's own nonce


@pytest.fixture
async def quiet_panel(tmp_path: Path) -> AsyncIterator[Panel]:
    """A panel whose door ticks never come during a test: only connections refill pools."""
    link, clock = FakeLink(), ManualClock(MONDAY_MORNING)
    config = PanelConfig(
        site="hq",
        panel="p1",
        doors=(DoorConfig(door=1, readers=(1,)),),
        request_timeout=5.0,
        tick_seconds=3600,
        challenge_pool=4,
    )
    session = PanelSession(config, link, EventBuffer(tmp_path / "q.db"), clock=clock)
    await session.start()
    yield session, link, clock
    await session.close()
    session.buffer.close()


async def test_an_ask_lost_with_its_connection_is_asked_again_on_the_next(
    quiet_panel: Panel,
) -> None:
    session, link, clock = quiet_panel
    await until(lambda: len(link.on("req/challenge")) == 1)  # in flight, unanswered
    link.set_up(False)  # the ask dies with the connection, before any answer
    link.responder = challenge_issuer(clock)
    link.set_up(True)
    await until(lambda: session.challenges_held(1) == 4)
    assert len(link.on("req/challenge")) == 2


async def test_an_unanswered_ask_is_not_repeated_at_once_on_the_same_connection(
    quiet_panel: Panel,
) -> None:
    session, link, clock = quiet_panel
    await until(lambda: len(link.on("req/challenge")) == 1)
    session._replies.fail_all(TimeoutError())  # accessd's answer never comes
    await until(lambda: 1 not in session._refilling)
    link.responder = challenge_issuer(clock)
    assert session.take_challenge(1)[1] is False  # the card signs a local nonce
    await asyncio.sleep(0.05)
    assert len(link.on("req/challenge")) == 1  # backed off, not asked at every card


async def test_a_proof_over_a_local_challenge_is_decided_offline_at_once(panel: Panel) -> None:
    session, link, _ = panel
    link.responder = answer_decisions(True)
    asked = len(link.on("req/decide"))
    p = cak()
    local = Presentation(
        reader=p.reader,
        credential=p.credential,
        evidence=p.evidence,
        proof=p.proof,
        local_challenge=True,
    )
    result = await session.present(local)
    assert (result.granted, result.offline) == (True, True)
    assert len(link.on("req/decide")) == asked


async def test_a_failing_background_task_is_logged_and_counted_and_the_panel_goes_on(
    panel: Panel, caplog: pytest.LogCaptureFixture
) -> None:
    session, link, _ = panel
    before = tasks.FAILURES["panel p1"]
    publish = link.publish

    async def broken_once(
        topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        if topic == TOPICS.status:
            link.publish = publish  # type: ignore[method-assign]
            raise RuntimeError("a bug in the announcement")
        await publish(topic, payload, qos=qos, retain=retain)

    link.publish = broken_once  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="drivers.panel.session"):
        link.set_up(False)
        link.set_up(True)  # the reconnect's announcement fails
        await until(lambda: tasks.FAILURES["panel p1"] == before + 1, what="the failure counted")
    assert any(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in caplog.records)
    link.responder = answer_decisions(True)
    result = await session.present(cak())
    assert result.granted and not result.offline  # the session still asks accessd


async def test_an_event_the_broker_took_but_accessd_never_confirmed_goes_up_again(
    tmp_path: Path,
) -> None:
    link = FakeLink()
    link.confirm = False  # accessd received it and died before its commit
    config = PanelConfig(
        site="hq", panel="p1", doors=(DoorConfig(door=1, readers=(1,)),), confirm_timeout=0.2
    )
    session = PanelSession(config, link, EventBuffer(tmp_path / "p1.db"))
    await session.start()
    try:
        event = session.record("tamper")
        await until(lambda: session.stats.resent >= 1)
        assert session.buffer.pending_count() >= 1  # PUBACKed, still kept
        link.confirm = True
        await until(lambda: session.buffer.pending_count() == 0)
        copies = [e for e in link.events() if e.event_id == event.event_id]
        assert len(copies) >= 2
        assert session.stats.confirmed >= 1
    finally:
        await session.close()
        session.buffer.close()


async def test_unconfirmed_events_go_up_again_on_reconnect_and_at_most_a_window_at_once(
    tmp_path: Path,
) -> None:
    link = FakeLink()
    link.confirm = False
    config = PanelConfig(
        site="hq",
        panel="p1",
        doors=(DoorConfig(door=1, readers=(1,)),),
        confirm_window=10,
        upload_window=4,
        confirm_timeout=60.0,
    )
    session = PanelSession(config, link, EventBuffer(tmp_path / "p1.db"))
    await session.start()
    try:
        for i in range(25):
            session.record("tamper", data={"n": i})
        await until(lambda: len(link.events()) >= 10)
        await asyncio.sleep(0.05)
        assert len([e for e in link.events() if e.type == "tamper"]) == 10  # the window
        link.set_up(False)
        link.confirm = True
        link.set_up(True)
        await until(lambda: session.buffer.pending_count() == 0)
        sent = [e for e in link.events() if e.type == "tamper"]
        # The first ten went twice (before and after the reconnect), the rest once.
        assert sorted(int(e.data["n"] or 0) for e in sent) == sorted([*range(10), *range(25)])
    finally:
        await session.close()
        session.buffer.close()


async def test_a_confirmation_twice_or_for_an_unknown_seq_changes_nothing(panel: Panel) -> None:
    session, link, _ = panel
    await until(lambda: session.buffer.pending_count() == 0)
    link.confirm = False
    event = session.record("tamper")
    await until(lambda: any(e.event_id == event.event_id for e in link.events()))
    link.deliver(TOPICS.ack, encode(EventAck(seqs=[event.seq + 1000])))
    assert session.buffer.pending_count() == 1
    link.deliver(TOPICS.ack, encode(EventAck(seqs=[event.seq])))
    confirmed = session.stats.confirmed
    link.deliver(TOPICS.ack, encode(EventAck(seqs=[event.seq])))
    assert session.stats.confirmed == confirmed
    assert session.buffer.pending_count() == 0


async def test_a_malformed_confirmation_is_an_error_event_not_a_crash(panel: Panel) -> None:
    _session, link, _ = panel
    link.deliver(TOPICS.ack, b'{"v": 1, "seqs": "all"}')
    await until(lambda: any(e.type == "error" for e in link.events()))
    errors = [e for e in link.events() if e.type == "error"]
    assert errors[0].data["topic"] == "ack"
