"""The MQTT gateway: door panels' requests answered through the decision path, their events
stored once, their caches kept current, commands sent and their results awaited.

Requests arrive through the shared subscription ``$share/accessd/ac/v1/+/+/req/#``, so
several service instances split them (or, with ``shared_requests`` off for a broker without
shared subscriptions, through ``ac/v1/+/+/req/#`` to a single instance); everything else
(status, birth, events, door state, command results) every instance hears. A message
whose topic names a panel accessd does not know, or names a reader or door that is not that
panel's own, is dropped and reported as a ``spoofed`` event (the broker's ACL should
already stop a panel writing another's topics; this catches a misconfigured one). A
malformed payload is answered with an ErrorReply where it has a reply topic, counted,
stored as an ``error`` event within its panel's budget (`accessd.budget`: past it,
only counted), and never stops the gateway. A request whose handling fails
(the decision path can reach the database) is answered with an ``internal`` ErrorReply at
once, so the panel need not wait out its deadline, and logged and counted as a failed task.

A panel's event is confirmed to it on its ``ack`` topic only after the event's batch has
committed (`accessd.gateway.events`); on stop, the gateway stops taking events, makes one
last flush within ``final_flush_seconds`` and confirms what it wrote: what it could not
write (the database is down or hangs) is simply not confirmed, and the panels that sent
it upload it again to whichever instance runs next.

The gateway talks to the broker through `drivers.mqtt.link.MqttLink`: an `MqttSession` in
service, a `drivers.mqtt.memory.MemoryBroker` link in the tests of its logic.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.authn.proofs import Authenticator
from accessd.budget import RecordBudget
from accessd.config import Settings
from accessd.decisions.requests import access_request, pin_from, proofs_from
from accessd.decisions.service import DecisionService, SnapshotChange
from accessd.errors import AccessdError, DeviceTimeout, DeviceUnavailable, InvalidInput
from accessd.events import CredentialsRevoked, CredentialStateChanged, DomainEvent, EventBus
from accessd.gateway.cache import CachePublisher
from accessd.gateway.directory import PanelDirectory, PanelInfo
from accessd.gateway.events import PanelEventStore
from accessd.gateway.leader import Leadership
from accessd.heap import freeze_long_lived
from drivers.errors import MqttError
from drivers.mqtt import messages as m
from drivers.mqtt import topics as t
from drivers.mqtt.config import IncomingMessage
from drivers.mqtt.link import MqttLink
from drivers.mqtt.replies import Pending, json_reply_id
from drivers.mqtt.session import MqttSession
from drivers.tasks import TaskSet
from policies.decision import Decision
from policies.reasons import for_the_door
from policies.vocabulary import Mechanism

log = logging.getLogger(__name__)

#: How long after its last heartbeat or message a panel that said nothing is offline.
SILENCE_LIMIT = timedelta(seconds=180)
#: The bound of the last flush at stop: long enough for a healthy database to take a
#: full queue, short enough that a stop during an outage does not look hung (what is not
#: written by then stays with the panels, unconfirmed).
FINAL_FLUSH_SECONDS = 10.0


@dataclass
class PanelPresence:
    online: bool = False
    last_seen: datetime | None = None
    birth: m.Birth | None = None


class CommandFailed(AccessdError):
    """A command that did not reach its panel or got no answer; the subclass says which,
    and, being also the service error it means, how the API answers it. ``reason`` is the
    word the audit trail and lockdown results use."""

    reason: ClassVar[str] = "failed"

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class NoMqttPanel(CommandFailed, DeviceUnavailable):
    """The door is on no panel this gateway reaches over MQTT."""

    reason = "no_panel"
    code = "no_panel"


class PanelOffline(CommandFailed, DeviceUnavailable):
    """The command could not be published (the broker connection is down)."""

    reason = "offline"
    code = "offline"


class CommandTimedOut(CommandFailed, DeviceTimeout):
    """The panel did not answer within the command's deadline."""

    reason = "timeout"


class MqttGateway:
    def __init__(
        self,
        client: MqttLink,
        sessions: async_sessionmaker[AsyncSession],
        decisions: DecisionService,
        authn: Authenticator,
        bus: EventBus,
        *,
        require_proofs: bool = True,
        silence_limit: timedelta = SILENCE_LIMIT,
        leadership: Leadership | None = None,
        requests: MqttLink | None = None,
        shared_requests: bool = True,
        freeze_heap: bool = False,
        final_flush_seconds: float = FINAL_FLUSH_SECONDS,
    ) -> None:
        self.final_flush_seconds = final_flush_seconds
        #: Feeds (events, status) and every publish: a session the broker keeps.
        self.client = client
        #: The shared request subscription, on a session the broker forgets when the
        #: instance goes: a persistent one would keep taking its share of the requests
        #: while nobody reads them. The same client when none is given.
        self.requests = requests or client
        self._unsubscribe_requests: Callable[[], None] = lambda: None
        self._requests_topic = (
            t.SERVICE_REQUESTS if shared_requests else t.SERVICE_REQUESTS_UNSHARED
        )
        self.silence_limit = silence_limit
        #: Whether the caches, once built on taking the lead, are frozen (accessd.heap).
        self.freeze_heap = freeze_heap
        self._leadership = leadership
        self._sessions = sessions
        self._decisions = decisions
        self._authn = authn
        self._bus = bus
        self._require_proofs = require_proofs
        self.directory = PanelDirectory()
        self.events = PanelEventStore(sessions)
        self._acks_wake = asyncio.Event()
        self.events.on_confirmed.add(self._acks_wake.set)
        self.caches = CachePublisher(self.directory, lambda: decisions.snapshot, self._publish)
        self.presence: dict[int, PanelPresence] = {}
        self.counters: Counter[str] = Counter()
        #: How many malformed messages a panel may have stored as rows.
        self.malformed_budget = RecordBudget()
        self._tasks = TaskSet("mqtt gateway", logger=log)
        self._commands: Pending[tuple[int, str], m.CommandResult] = Pending()
        self._unsubscribe: Callable[[], None] | None = None
        self._unsubscribe_bus: Callable[[], None] = lambda: None
        self._unsubscribe_changes: Callable[[], None] = lambda: None
        self._changed: set[int] = set()
        self._full_refresh = False
        self._changed_wake = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.directory.load(self._sessions)
        for line in self.directory.skipped:
            log.warning("not reachable over MQTT: %s", line)
        self.events.start()
        self._unsubscribe = self.client.on_message(self._on_message)
        # The subscriptions are asked before the first attempt: the links remember them and
        # make them on whichever connection comes first, so a broker that is away at start
        # (start() returns after one attempt and keeps trying in the background) delays
        # them, never loses them. The HTTP API must not wait for the broker.
        feeds = [(topic, 1) for topic in t.SERVICE_FEEDS]
        if self.requests is self.client:
            await self.client.subscribe([(self._requests_topic, 1), *feeds])
            await self.client.start()
        else:
            self._unsubscribe_requests = self.requests.on_message(self._on_message)
            await self.client.subscribe(feeds)
            await self.requests.subscribe([(self._requests_topic, 1)])
            await asyncio.gather(self.client.start(), self.requests.start())
        self._unsubscribe_bus = self._bus.subscribe(self._on_domain_event)
        self._unsubscribe_changes = self._decisions.on_change(self._on_snapshot_change)
        self._tasks.spawn(self._silence_loop(), name="panel silence")
        self._tasks.spawn(self._ack_loop(), name="event confirmations")

        leadership = self._leadership

        async def once_connected() -> None:
            # Caches published while the broker is away would only fail, panel by panel,
            # and an instance that cannot publish them must not hold the lead meanwhile.
            await self.client.connected.wait()
            if leadership is None:
                await self._lead()
            else:
                await leadership.run(self._lead)

        if leadership is None and self.client.connected.is_set():
            await self._take_lead()
            self._tasks.spawn(self._keep_caches(), name="panel caches")
        else:
            self._tasks.spawn(once_connected(), name="cache leadership")

    async def _lead(self) -> None:
        """A term of leadership: runs until the Leadership cancels it (accessd.gateway.leader),
        so the loops it starts end with the term and a later term starts them afresh."""
        await self._take_lead()
        await self._keep_caches()

    async def _take_lead(self) -> None:
        # Elected: our caches become the panels' caches.
        await self.caches.publish_all()
        if self.freeze_heap:
            freeze_long_lived("panel caches")

    async def _keep_caches(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._cache_loop(), name="panel caches")
            group.create_task(self.caches.retain_loop(), name="retained caches")

    @property
    def publishes_caches(self) -> bool:
        return self._leadership is None or self._leadership.leading

    async def stop(self) -> None:
        self._unsubscribe_bus()
        self._unsubscribe_bus = lambda: None
        self._unsubscribe_changes()
        self._unsubscribe_changes = lambda: None
        await self._tasks.close()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.requests is not self.client:
            self._unsubscribe_requests()
            self._unsubscribe_requests = lambda: None
        # Events still arriving are not taken (their panels send them again); what was
        # taken is written if the database lets it, and only that is confirmed.
        self.events.stop_timeout = self.final_flush_seconds
        await self.events.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.final_flush_seconds):
                await self._send_acks()
        if self.requests is not self.client:
            with contextlib.suppress(MqttError, ValueError):
                # Leave the share first: the broker stops sending this instance requests.
                await self.requests.unsubscribe([self._requests_topic])
            with contextlib.suppress(MqttError, ValueError):
                await self.requests.disconnect()
        with contextlib.suppress(MqttError):
            await self.client.disconnect()

    def _spawn(self, coro: Coroutine[Any, Any, object], name: str) -> None:
        # What a message or change starts after stop() would outlive the gateway: nothing.
        if self._tasks.closed:
            coro.close()
            return
        self._tasks.spawn(coro, name=name)

    async def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        await self.client.publish(topic, payload, 1, retain)

    # -- credential changes -----------------------------------------------------------------

    def _on_domain_event(self, ev: DomainEvent) -> None:
        # Runs after the decision service patched its snapshot (it subscribed first).
        if isinstance(ev, CredentialsRevoked):
            self._changed.update(ev.credential_ids)
        elif isinstance(ev, CredentialStateChanged):
            self._changed.add(ev.credential_id)
        else:
            return
        self._changed_wake.set()

    def _on_snapshot_change(self, change: SnapshotChange) -> None:
        if change.policy:
            # Panels, doors or readers may have come or gone with the policy; every
            # instance needs that to check who may send what.
            self._spawn(self.directory.load(self._sessions), "panel directory")
        # Policy or people reloaded: anyone's rights may differ, so every cache is diffed.
        if change.policy or change.people:
            self._full_refresh = True
        self._changed.update(change.credentials)
        self._changed_wake.set()

    async def _cache_loop(self) -> None:
        while True:
            await self._changed_wake.wait()
            self._changed_wake.clear()
            changed, self._changed = self._changed, set()
            full, self._full_refresh = self._full_refresh, False
            try:
                if changed:
                    await self.caches.credentials_changed(changed)
                if full:
                    # Panels, doors or readers may have come or gone with the policy.
                    await self.directory.load(self._sessions)
                    await self.caches.refresh()
            except Exception:
                log.exception("updating the panels' caches failed")

    async def _silence_loop(self) -> None:
        # A panel whose connection died without the broker noticing yet (or whose network
        # loop hangs) sends no will: heartbeats that stop are the other sign.
        while True:
            await asyncio.sleep(min(10.0, self.silence_limit.total_seconds() / 3))
            now = datetime.now(UTC)
            for panel_id, seen in list(self.presence.items()):
                panel = self.directory.by_id(panel_id)
                if (
                    panel is not None
                    and seen.online
                    and seen.last_seen is not None
                    and now - seen.last_seen > self.silence_limit
                ):
                    self._online(panel, False, why="silent")

    # -- event confirmations ----------------------------------------------------------------

    async def _ack_loop(self) -> None:
        while True:
            await self._acks_wake.wait()
            self._acks_wake.clear()
            await self._send_acks()

    async def _send_acks(self) -> None:
        """Tells each panel which of its events are committed (``ack``, QoS 1)."""
        sends = []
        for panel_id, seqs in self.events.take_confirmed().items():
            panel = self.directory.by_id(panel_id)
            if panel is None:
                continue  # gone from the policy since: it will not hear of them
            for start in range(0, len(seqs), m.MAX_ACK):
                ack = m.EventAck(seqs=seqs[start : start + m.MAX_ACK])
                sends.append(self.client.publish(panel.topics.ack, m.encode(ack), 1))
        for result in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(result, MqttError):
                # The panel sends those events again and hears of them then.
                self.counters["ack_failed"] += 1
            elif isinstance(result, BaseException):
                raise result
            else:
                self.counters["acks"] += 1

    # -- incoming ---------------------------------------------------------------------------

    def _on_message(self, msg: IncomingMessage) -> None:
        self.counters["received"] += 1
        try:
            parsed = t.parse(msg.topic)
        except t.TopicError:
            self.counters["foreign_topic"] += 1
            return
        panel = self.directory.get(parsed.site, parsed.panel)
        if panel is None:
            self.counters["unknown_panel"] += 1
            return
        self._seen(panel)
        kind = parsed.kind
        if kind != "status" and not self.presence[panel.id].online:
            self._online(panel, True, why="heard")
        if kind == "req/decide":
            self._spawn(self._answer(self._decide, panel, msg), "req/decide")
        elif kind == "req/challenge":
            self._spawn(self._answer(self._challenge, panel, msg), "req/challenge")
        elif kind == "req/snapshot":
            self._spawn(self._answer(self._snapshot, panel, msg), "req/snapshot")
        elif kind == "evt":
            self._event(panel, parsed, msg)
        elif kind == "status":
            self._status(panel, msg)
        elif kind == "birth":
            self._birth(panel, msg)
        elif kind == "res/cmd":
            self._command_result(panel, msg)
        elif kind == "state":
            self.counters["state"] += 1

    def _seen(self, panel: PanelInfo) -> None:
        self.presence.setdefault(panel.id, PanelPresence()).last_seen = datetime.now(UTC)

    def _malformed(self, panel: PanelInfo, what: str, exc: m.PayloadError) -> None:
        self.counters[f"malformed_{exc.reason}"] += 1
        if not self.malformed_budget.allow(panel.id, f"{panel.site}/{panel.name}"):
            self.counters["malformed_dropped"] += 1
            return
        self.events.add(
            panel_id=panel.id,
            event_id=str(uuid.uuid4()),
            type="error",
            at=datetime.now(UTC),
            data={"what": what, "reason": exc.reason, "detail": exc.detail[:200]},
            source="accessd",
        )

    def _spoofed(
        self, panel: PanelInfo, what: str, detail: str, event: m.Event | None = None
    ) -> None:
        self.counters["spoofed"] += 1
        # The same budget as malformed messages: a panel login sending thousands of
        # messages in another's name must not become thousands of rows and log lines. One
        # dropped is not confirmed either: the panel sends its event again later.
        if not self.malformed_budget.allow(panel.id, f"{panel.site}/{panel.name}"):
            self.counters["spoofed_dropped"] += 1
            return
        log.warning("panel %s/%s: %s %s", panel.site, panel.name, what, detail)
        data: dict[str, Any] = {"what": what, "detail": detail[:200]}
        if event is not None:
            data["event_id"] = event.event_id
        self.events.add(
            panel_id=panel.id,
            event_id=str(uuid.uuid4()),
            type="spoofed",
            at=datetime.now(UTC),
            data=data,
            source="accessd",
            # The refused event is confirmed once its refusal is stored: sent again it
            # would be refused again, and a panel whose unconfirmed window filled with such
            # events would stop uploading the rest.
            confirms=event.seq if event is not None else None,
        )

    async def _reply(
        self, panel: PanelInfo, msg: IncomingMessage, reply_to: str | None, body: m.Message
    ) -> None:
        # Every reply topic, the payload's reply_to and the MQTT 5 response topic alike, must
        # be the panel's own: the service may write anywhere, so a panel naming another's
        # rsp topic could hand that panel a forged answer (with correlation data of its
        # choosing) that the broker's ACL would never let it publish itself.
        own = panel.topics.prefix + "/"
        target = reply_to if reply_to and reply_to.startswith(own) else panel.topics.rsp
        if reply_to and not reply_to.startswith(own):
            self._spoofed(panel, "reply_to", f"{reply_to!r} is not the panel's own topic")
        payload = m.encode(body)
        try:
            if msg.response_topic is None or msg.response_topic.startswith(own):
                await self.requests.respond(msg, payload, topic=target, qos=t.DEADLINE_QOS)
            else:
                self._spoofed(
                    panel, "response_topic", f"{msg.response_topic!r} is not the panel's own"
                )
                await self.requests.publish(
                    target, payload, t.DEADLINE_QOS, correlation_data=msg.correlation_data
                )
        except MqttError:
            self.counters["reply_failed"] += 1

    async def _answer(
        self,
        handle: Callable[[PanelInfo, IncomingMessage], Awaitable[None]],
        panel: PanelInfo,
        msg: IncomingMessage,
    ) -> None:
        """Runs a request's handler; if it fails, the panel hears so at once."""
        try:
            await handle(panel, msg)
        except Exception:
            self.counters["request_failed"] += 1
            await self._reply(panel, msg, None, _error_reply(msg, "internal"))
            raise  # the task set logs it with its traceback and counts it for /metrics

    async def _error(
        self, panel: PanelInfo, msg: IncomingMessage, what: str, exc: m.PayloadError
    ) -> None:
        self._malformed(panel, what, exc)
        await self._reply(panel, msg, None, _error_reply(msg, exc.reason, exc.detail))

    async def _decide(self, panel: PanelInfo, msg: IncomingMessage) -> None:
        try:
            req = m.decode(m.DecideRequest, msg.payload)
        except m.PayloadError as exc:
            await self._error(panel, msg, "req/decide", exc)
            return
        if req.reader not in panel.readers:
            self._spoofed(panel, "req/decide", f"reader {req.reader} is not on this panel")
            await self._reply(
                panel, msg, req.reply_to, m.ErrorReply(id=req.id, error="not_your_reader")
            )
            return
        try:
            proof, bio = proofs_from(
                (
                    req.proof.mechanism,
                    req.proof.challenge,
                    req.proof.certificate,
                    req.proof.signature,
                )
                if req.proof
                else None,
                (req.bio.matched, req.bio.score, req.bio.signature) if req.bio else None,
            )
            pin = pin_from(req.pin.signature if req.pin else None)
        except InvalidInput as exc:
            await self._error(panel, msg, "req/decide", m.PayloadError("invalid", exc.detail))
            return
        request = await access_request(
            self._authn,
            reader_id=req.reader,
            at=req.at,
            credential=(req.credential.kind, req.credential.value) if req.credential else None,
            evidence=[Mechanism(e) for e in req.evidence],
            proof=proof,
            bio=bio,
            pin=pin,
            require_proofs=self._require_proofs,
        )
        decision = await self._decisions.decide_in_turn(request, source="mqtt", request_id=req.id)
        self.counters["decisions"] += 1
        await self._reply(panel, msg, req.reply_to, _reply_of(req.id, decision))

    async def _challenge(self, panel: PanelInfo, msg: IncomingMessage) -> None:
        try:
            req = m.decode(m.ChallengeRequest, msg.payload)
        except m.PayloadError as exc:
            await self._error(panel, msg, "req/challenge", exc)
            return
        if req.reader not in panel.readers:
            self._spoofed(panel, "req/challenge", f"reader {req.reader} is not on this panel")
            return
        book = self._authn.challenges
        issued = [book.issue(req.reader) for _ in range(req.count)]
        reply = m.ChallengeReply(
            id=req.id,
            challenges=[base64.b64encode(c.value).decode() for c in issued],
            expires_at=datetime.fromtimestamp(min(c.expires_at for c in issued), UTC),
        )
        await self._reply(panel, msg, req.reply_to, reply)

    async def _snapshot(self, panel: PanelInfo, msg: IncomingMessage) -> None:
        try:
            m.decode(m.SnapshotRequest, msg.payload)
        except m.PayloadError as exc:
            await self._error(panel, msg, "req/snapshot", exc)
            return
        self.counters["snapshot_requests"] += 1
        if self.publishes_caches:
            await self.caches.send_snapshot(panel.id)

    def _event(self, panel: PanelInfo, parsed: t.ParsedTopic, msg: IncomingMessage) -> None:
        try:
            ev = m.decode(m.Event, msg.payload)
        except m.PayloadError as exc:
            self._malformed(panel, msg.topic, exc)
            return
        door = None if parsed.door == t.PANEL_DOOR else int(parsed.door or 0)
        if ev.type != parsed.leaf or ev.door != door:
            self._spoofed(panel, msg.topic, "the payload names another door or type", ev)
            return
        if door is not None and door not in panel.doors:
            self._spoofed(panel, msg.topic, f"door {door} is not on this panel", ev)
            return
        if ev.reader is not None and ev.reader not in panel.readers:
            self._spoofed(panel, msg.topic, f"reader {ev.reader} is not on this panel", ev)
            return
        self.counters["events"] += 1
        if ev.type == "heartbeat":
            self._online(panel, True)
        self.events.add(
            panel_id=panel.id,
            event_id=ev.event_id,
            seq=ev.seq,
            type=ev.type,
            at=ev.at,
            door_id=door,
            reader_id=ev.reader,
            data=dict(ev.data),
        )

    def _status(self, panel: PanelInfo, msg: IncomingMessage) -> None:
        text = msg.payload.decode("ascii", "replace").strip()
        if text not in ("online", "offline"):
            self._malformed(panel, "status", m.PayloadError("invalid", "online or offline"))
            return
        self._online(panel, text == "online")

    def _online(self, panel: PanelInfo, online: bool, *, why: str = "status") -> None:
        state = self.presence.setdefault(panel.id, PanelPresence())
        if state.online == online:
            return
        state.online = online
        self.counters["panel_online" if online else "panel_offline"] += 1
        self.events.add(
            panel_id=panel.id,
            event_id=str(uuid.uuid4()),
            type="panel_online" if online else "panel_offline",
            at=datetime.now(UTC),
            data={"why": why},
            source="accessd",
        )

    def _birth(self, panel: PanelInfo, msg: IncomingMessage) -> None:
        try:
            birth = m.decode(m.Birth, msg.payload)
        except m.PayloadError as exc:
            self._malformed(panel, "birth", exc)
            return
        self.presence.setdefault(panel.id, PanelPresence()).birth = birth
        cache = self.caches.cache_of(panel.id)
        if self.publishes_caches and cache is not None and birth.cred_version != cache.version:
            # It missed something while away: the whole cache again.
            self._spawn(self.caches.send_snapshot(panel.id), "cache snapshot")

    # -- commands ---------------------------------------------------------------------------

    def _command_result(self, panel: PanelInfo, msg: IncomingMessage) -> None:
        try:
            result = m.decode(m.CommandResult, msg.payload)
        except m.PayloadError as exc:
            self._malformed(panel, "res/cmd", exc)
            return
        self._commands.resolve((panel.id, result.id), result)

    async def command(
        self,
        door_id: int,
        verb: str,
        args: dict[str, m.Scalar] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the command's own deadline
    ) -> m.CommandResult:
        """Sends a command to the panel of ``door_id`` and returns its result; raises
        CommandFailed (no_panel, offline, timeout, or what the panel said)."""
        panel = self.directory.panel_of_door(door_id)
        if panel is None:
            raise NoMqttPanel(f"door {door_id} is on no MQTT panel")
        return await self._command(panel, door_id, verb, args or {}, timeout)

    async def lockdown(self, facility_id: int, on: bool, *, timeout: float = 5.0) -> dict[int, str]:  # noqa: ASYNC109
        """Lockdown on or off at every panel of a facility; panel id → "ok" or why not."""
        panels = [p for p in self.directory.panels() if p.facility_id == facility_id]

        async def one(panel: PanelInfo) -> tuple[int, str]:
            try:
                result = await self._command(panel, t.PANEL_DOOR, "lockdown", {"on": on}, timeout)
            except CommandFailed as exc:
                return panel.id, exc.reason
            return panel.id, "ok" if result.ok else (result.error or "refused")

        return dict(await asyncio.gather(*(one(p) for p in panels)))

    async def _command(
        self,
        panel: PanelInfo,
        door: int | str,
        verb: str,
        args: dict[str, m.Scalar],
        timeout: float,  # noqa: ASYNC109
    ) -> m.CommandResult:
        command = m.Command(
            id=uuid.uuid4().hex,
            verb=verb,
            args=args,
            expires_at=datetime.now(UTC) + timedelta(seconds=max(timeout, 1.0)),
        )
        send = self.client.publish(panel.topics.command(door, verb), m.encode(command), 1)
        try:
            result = await self._commands.ask((panel.id, command.id), send, timeout)
        except TimeoutError as exc:
            raise CommandTimedOut(f"panel {panel.name} did not answer") from exc
        except MqttError as exc:
            raise PanelOffline(str(exc)) from exc
        self.counters[f"command_{'ok' if result.ok else 'refused'}"] += 1
        return result


def _error_reply(msg: IncomingMessage, error: str, detail: str = "") -> m.ErrorReply:
    """An ErrorReply carrying the request's own id when the payload has a usable one: a
    panel on MQTT 3.1.1 has nothing else to match it to its request by."""
    try:
        return m.ErrorReply(id=json_reply_id(msg.payload), error=error, detail=detail)
    except ValidationError:  # not an id the protocol allows: the topic must do
        return m.ErrorReply(error=error, detail=detail)


def _reply_of(request_id: str, d: Decision) -> m.DecideReply:
    """What a panel is told: what it acts on, nothing of who the card belongs to (no trail,
    which names people and their vetting; no personal reason), as an HTTP door is
    (accessd.api.routes.decisions.public). The decision log keeps the rest."""
    return m.DecideReply(
        id=request_id,
        granted=d.granted,
        reason=for_the_door(d.reason),
        required=list(d.required),
        unlock_seconds=d.unlock_seconds,
        door=d.door_id,
    )


def gateway_from_settings(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    decisions: DecisionService,
    authn: Authenticator,
    bus: EventBus,
    engine: AsyncEngine | None = None,
) -> MqttGateway:
    """The gateway the settings describe (``mqtt_url``, ``mqtt_username``, …)."""
    from urllib.parse import urlsplit

    from drivers.mqtt.config import MqttConfig

    url = urlsplit(settings.mqtt_url)
    if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
        raise ValueError(f"mqtt_url must be mqtt://host:port or mqtts://host:port, not {url!r}")
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    client_id = settings.mqtt_client_id or f"accessd-{socket.gethostname()}"
    config = MqttConfig(
        host=url.hostname,
        port=url.port or (8883 if url.scheme == "mqtts" else 1883),
        client_id=client_id,
        # A session the broker keeps over a restart of the service: events panels send
        # meanwhile are queued for it, not lost.
        clean_start=False,
        username=settings.mqtt_username,
        password=password,
        protocol=settings.mqtt_protocol,
        tls=url.scheme == "mqtts",
        reconnect_max_delay=settings.mqtt_reconnect_max_seconds,
    )
    # Requests: a panel that gets no answer in 300 ms decides alone, so a request queued
    # for a dead instance is worse than none; this session ends with the connection.
    requests_config = replace(config, client_id=f"{client_id}-req", clean_start=True)
    gateway = MqttGateway(
        MqttSession(config),
        sessions,
        decisions,
        authn,
        bus,
        require_proofs=settings.require_card_proofs,
        leadership=Leadership(engine) if engine is not None else None,
        freeze_heap=settings.gc_freeze,
        requests=MqttSession(requests_config),
        shared_requests=settings.mqtt_shared_requests,
    )
    gateway.caches.max_age = timedelta(seconds=settings.offline_cache_max_age_seconds)
    return gateway
