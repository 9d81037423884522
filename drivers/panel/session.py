"""The panel's MQTT session: asks accessd, decides alone when it must, and loses no event.

Joins the pieces: `DoorController`s for the doors, the `CredentialCache` for offline
decisions, the `EventBuffer` for events, a `PanelLink` for the broker. Every event is on
disk before it is published and is forgotten only when accessd confirms it committed (an
``ack`` message naming its seq), never on the broker's PUBACK alone: a broker that dies
with its queue, or an accessd killed between receipt and commit, would lose it. Events go
up in ``seq`` order, at most ``confirm_window`` unconfirmed at a time; what is not
confirmed goes up again on every reconnect and after ``confirm_timeout`` without a
confirmation (accessd stores an event once however often it arrives). A decision waits
``decide_timeout`` for accessd, then comes from the cache and its event says ``offline:
true``. Nothing a peer sends can crash the session: a payload that does not parse becomes
an ``error`` event.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from drivers.mqtt import topics
from drivers.mqtt.messages import (
    MAX_PAYLOAD,
    MAX_SNAPSHOT,
    BioProof,
    Birth,
    ChallengeReply,
    ChallengeRequest,
    Command,
    CommandResult,
    CredDelta,
    CredentialRef,
    CredSnapshot,
    DecideReply,
    DecideRequest,
    ErrorReply,
    Event,
    EventAck,
    EventType,
    Mechanism,
    Message,
    PayloadError,
    PinClaim,
    PkiProof,
    Scalar,
    SnapshotRequest,
    decode,
    encode,
)
from drivers.mqtt.replies import Pending
from drivers.mqtt.topics import PANEL_DOOR, PanelTopics, TopicError
from drivers.panel.buffer import EventBuffer
from drivers.panel.cache import CredentialCache, Verified
from drivers.panel.clock import Clock, SystemClock
from drivers.panel.doors import DoorConfig, DoorController
from drivers.panel.errors import CacheOutOfStep, LinkDown
from drivers.panel.link import PanelLink
from drivers.panel.proofs import verified_certificate
from drivers.tasks import TaskSet

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Message)
#: A challenge this close to its end is dropped, not used: the card's answer still has to
#: travel to accessd, which refuses it once expired.
CHALLENGE_MARGIN = timedelta(seconds=5)
#: Seconds before asking again for challenges accessd did not give.
REFILL_BACKOFF = 2.0

#: led / buzzer commands go to the hardware through this: door, verb, args.
Indicator = Callable[[int, str, dict[str, Scalar]], None]


@dataclass(frozen=True, slots=True)
class PanelConfig:
    site: str
    panel: str
    doors: tuple[DoorConfig, ...]
    firmware: str = "accessd-panel/1"
    protocol: Literal[3, 5] = 5
    decide_timeout: float = 0.3
    #: How long to wait for challenges and the first snapshot before asking or giving up.
    request_timeout: float = 2.0
    heartbeat_seconds: float = 60.0
    #: Challenges kept per reader; refilled below half.
    challenge_pool: int = 4
    #: QoS 1 event publishes in flight during an upload.
    upload_window: int = 32
    #: Events uploaded and not yet confirmed by accessd, at most: bounds what a broker
    #: queues for an absent accessd from one panel (deploy/mosquitto sizes its queue for
    #: it) and what is sent again when confirmations stop.
    confirm_window: int = 2000
    #: Seconds without a confirmation after which the unconfirmed events go up again
    #: (accessd crashed after receiving them, or the broker lost them).
    confirm_timeout: float = 10.0
    tick_seconds: float = 0.1


@dataclass(frozen=True, slots=True)
class Presentation:
    """A card at a reader, as the reader read it."""

    reader: int
    credential: CredentialRef | None = None
    evidence: tuple[Mechanism, ...] = ()
    proof: PkiProof | None = None
    bio: BioProof | None = None
    #: The card accepted the PIN (VERIFY answered 9000): a factor the panel saw itself.
    pin_verified: bool = False
    #: The reader's signed statement of it, which accessd counts as the PIN factor.
    pin_claim: PinClaim | None = None
    #: Other identifiers read from the card, for the offline lookup.
    identifiers: tuple[CredentialRef, ...] = ()
    #: The proof signs a challenge of the panel's own, which only an offline check accepts.
    local_challenge: bool = False
    #: When the card was read, if the reader says (a reader with a clock of its own, a
    #: simulated one running at another time); None: now, by the panel's clock. Decided as
    #: of this time, online and offline; the panel's events keep the panel's clock.
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccessResult:
    granted: bool
    reason: str
    offline: bool
    door: int
    event: Event
    required: tuple[str, ...] = ()


@dataclass(slots=True)
class SessionStats:
    """What happened, for the simulator's report."""

    granted: int = 0
    denied: int = 0
    offline: int = 0
    uploaded: int = 0  # publishes the broker PUBACKed
    confirmed: int = 0  # events accessd confirmed stored
    resent: int = 0  # events uploaded again for want of a confirmation
    errors: int = 0
    commands: int = 0
    commands_refused: int = 0
    snapshots: int = 0
    deltas: int = 0
    snapshot_requests: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Challenge:
    value: bytes
    expires_at: datetime


class PanelSession:
    """One panel on one link; `start()` it, `present()` cards, `close()` it."""

    def __init__(
        self,
        config: PanelConfig,
        link: PanelLink,
        buffer: EventBuffer,
        *,
        clock: Clock | None = None,
        cache: CredentialCache | None = None,
        indicator: Indicator | None = None,
        hardware: Callable[[DoorController], None] | None = None,
    ) -> None:
        self.config = config
        self.topics = PanelTopics(config.site, config.panel)
        self.link = link
        self.buffer = buffer
        self.clock: Clock = clock or SystemClock()
        self.cache = cache or CredentialCache()
        self.stats = SessionStats()
        self._indicator = indicator
        # Called on every change of a door's state (lock, mode), for real relays to follow.
        self._hardware = hardware
        self.doors: dict[int, DoorController] = {}
        self._reader_door: dict[int, int] = {}
        for door_config in config.doors:
            self.doors[door_config.door] = DoorController(
                door_config,
                self.clock,
                self._door_emitter(door_config.door),
                self._door_changed,
            )
            for reader in door_config.readers:
                self._reader_door[reader] = door_config.door
        # Answers on ``rsp`` by request id: whether it is an ErrorReply, and the payload.
        self._replies: Pending[str, tuple[bool, bytes]] = Pending()
        self._challenges: dict[int, deque[_Challenge]] = {r: deque() for r in self._reader_door}
        self._refilling: set[int] = set()
        self._refill_after: dict[int, float] = {}  # reader -> loop time of the next ask
        self._wake = asyncio.Event()
        # The last seq uploaded since the unconfirmed were last sent again; 0: send all.
        self._sent_upto = 0
        # Loop time of the last sign of progress (an upload or a confirmation).
        self._progress_at = 0.0
        self._subscribed = False
        self._connections = 0
        self._link_ups = 0  # connections seen (announced or not): to tell a stale ask
        # A link that goes down under a publish is the normal course of things: the event
        # stays buffered, the request is decided offline.
        self._tasks = TaskSet(f"panel {config.panel}", logger=log, expected=(LinkDown,))
        self._closed = False

    def attach(
        self,
        *,
        hardware: Callable[[DoorController], None] | None = None,
        indicator: Indicator | None = None,
    ) -> None:
        """Connects real outputs after construction: ``hardware(door)`` on every change of
        a door's state, ``indicator`` for accessd's led and buzzer commands."""
        if hardware is not None:
            self._hardware = hardware
        if indicator is not None:
            self._indicator = indicator

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def announced(self) -> bool:
        """Connected now, and subscribed and announced (status, birth) at least once."""
        return self._connections > 0 and self.link.connected

    async def start(self) -> None:
        self.link.on_message(self._on_message)
        self.link.on_connection(self._on_connection)
        panel = self.config.panel
        self._tasks.spawn(self._upload_loop(), name=f"{panel} upload")
        self._tasks.spawn(self._tick_loop(), name=f"{panel} doors")
        self._tasks.spawn(self._heartbeat_loop(), name=f"{panel} heartbeat")
        await self.link.start()

    async def close(self) -> None:
        """Say offline (retained), disconnect cleanly, stop the loops; the buffer stays open."""
        self._closed = True
        if self.link.connected:
            with contextlib.suppress(LinkDown):
                await self.link.publish(self.topics.status, b"offline", retain=True)
        await self._tasks.close()
        self._replies.cancel_all()
        await self.link.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        # A message or door change handled while closing starts nothing: the set is closed.
        if self._tasks.closed:
            coro.close()
            return
        self._tasks.spawn(coro)

    def _on_connection(self, up: bool) -> None:
        if up and not self._closed:
            self._link_ups += 1
            # What went up over the last connection may be in no queue now (a broker that
            # restarted without it): all that is unconfirmed goes again.
            self._sent_upto = 0
            self._spawn(self._announce())
        elif not up:
            # Requests in flight will get no answer over this connection: decide now.
            self._replies.fail_all(LinkDown("connection lost"))

    async def _announce(self) -> None:
        if not self._subscribed:
            await self.link.subscribe([(t, 1) for t in self.topics.panel_subscriptions])
            self._subscribed = True
        await self.link.publish(self.topics.status, b"online", retain=True)
        await self._publish_birth()
        for door in self.doors.values():
            await self._publish_state(door)
        self._wake.set()
        # A new connection is a new chance: an ask that went unanswered over the last one
        # says nothing of this one, so the back-off does not hold the pools empty.
        self._refill_after.clear()
        for reader in self._challenges:
            self._refill(reader)
        self._connections += 1
        if self._connections > 1:
            # Deltas published while we were away are gone (clean session), and the
            # retained snapshot may be older than they were: ask for the current cache.
            await self._request_snapshot()
        elif self.cache.version is None:
            # A retained snapshot normally arrives with the subscription; ask if it does not.
            await asyncio.sleep(self.config.request_timeout)
            if self.cache.version is None:
                await self._request_snapshot()

    async def _publish_birth(self) -> None:
        birth = Birth(
            firmware=self.config.firmware,
            doors=sorted(self.doors),
            readers=sorted(self._reader_door),
            cred_version=self.cache.version or 0,
            buffered=self.buffer.pending_count(),
            protocol=self.config.protocol,
        )
        await self.link.publish(self.topics.birth, encode(birth), retain=True)

    async def _publish_state(self, door: DoorController) -> None:
        await self.link.publish(self.topics.state(door.door), encode(door.state()), retain=True)

    # --- events ---------------------------------------------------------------------------

    def record(
        self,
        type_: EventType,
        *,
        door: int | None = None,
        reader: int | None = None,
        data: dict[str, Scalar] | None = None,
    ) -> Event:
        """Buffer an event on disk and wake the uploader."""
        event = self.buffer.append(type_, self.clock.now(), door=door, reader=reader, data=data)
        self._wake.set()
        return event

    def _door_emitter(self, door: int) -> Callable[[EventType, dict[str, Scalar]], None]:
        def emit(type_: EventType, data: dict[str, Scalar]) -> None:
            self.record(type_, door=door, data=data)

        return emit

    def _door_changed(self, door: DoorController) -> None:
        if self._hardware is not None:
            try:
                self._hardware(door)
            except Exception:
                log.exception("door hardware callback failed for door %d", door.door)
        if self.link.connected:
            self._spawn(self._publish_state(door))

    def _event_topic(self, event: Event) -> str:
        return self.topics.event(event.door if event.door is not None else PANEL_DOOR, event.type)

    async def _upload_loop(self) -> None:
        loop = asyncio.get_running_loop()
        self._progress_at = loop.time()
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            # that arrives as the wait ends, and close() would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.confirm_timeout / 4):
                    await self._wake.wait()
            self._wake.clear()
            self._resend_if_unconfirmed(loop.time())
            while self.link.connected:
                room = self.config.confirm_window - self.buffer.unacked_through(self._sent_upto)
                if room <= 0:
                    break  # a confirmation (or the resend timer) wakes us again
                batch = self.buffer.pending(
                    min(self.config.upload_window, room), after=self._sent_upto
                )
                if not batch:
                    break
                results = await asyncio.gather(
                    *(self.link.publish(self._event_topic(e), encode(e)) for e in batch),
                    return_exceptions=True,
                )
                failed = False
                for event, result in zip(batch, results, strict=True):
                    if isinstance(result, BaseException):
                        failed = True
                        if not isinstance(result, LinkDown):
                            log.warning("event %d not published: %s", event.seq, result)
                    elif not failed:
                        # Only up to the first failure: what follows it goes again, in order.
                        self._sent_upto = max(self._sent_upto, event.seq)
                        self.stats.uploaded += 1
                self._progress_at = loop.time()
                if failed:
                    break  # the next connection wakes us again

    def _resend_if_unconfirmed(self, now: float) -> None:
        """Uploads again what accessd has not confirmed for ``confirm_timeout``."""
        if self._sent_upto == 0 or now - self._progress_at < self.config.confirm_timeout:
            return
        unconfirmed = self.buffer.unacked_through(self._sent_upto)
        if unconfirmed:
            log.warning(
                "panel %s: %d events unconfirmed for %.0f s; uploading them again",
                self.config.panel,
                unconfirmed,
                self.config.confirm_timeout,
            )
            self.stats.resent += unconfirmed
            self._sent_upto = 0
        self._progress_at = now

    def _on_ack(self, payload: bytes) -> None:
        try:
            ack = decode(EventAck, payload)
        except PayloadError as exc:
            self._error(exc.reason, topics.ACK, exc.detail)
            return
        self.stats.confirmed += self.buffer.ack_many(ack.seqs)
        self._progress_at = asyncio.get_running_loop().time()
        self._wake.set()  # room in the window

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            for door in self.doors.values():
                door.tick()
            # Keep accessd's challenges fresh at idle readers too: a pool left to expire
            # would make the next card sign a challenge of the panel's own, which only an
            # offline decision accepts (a quiet door would decide offline though accessd
            # is up, and doors that need accessd would refuse valid cards).
            for reader in self._challenges:
                self._drop_stale(reader)
                self._refill(reader)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            self.record(
                "heartbeat",
                data={
                    "buffered": self.buffer.pending_count(),
                    "cred_version": self.cache.version or 0,
                    "connected": self.link.connected,
                },
            )

    def _error(self, reason: str, where: str, detail: str = "") -> None:
        self.stats.errors += 1
        log.warning("panel %s refused a payload on %s: %s", self.config.panel, where, reason)
        self.record("error", data={"reason": reason, "topic": where, "detail": detail[:200]})

    # --- requests -------------------------------------------------------------------------

    async def _request(
        self, topic: str, message: Message, request_id: str, reply: type[R], wait: float
    ) -> R | ErrorReply | None:
        """Publish a request and wait for its answer on ``rsp``; None on timeout or LinkDown."""
        if not self.link.connected:
            return None
        future = self._replies.expect(request_id)

        async def send() -> None:
            # In the background: the deadline counts from now, publish included.
            try:
                await self.link.publish(topic, encode(message), qos=topics.DEADLINE_QOS)
            except LinkDown as exc:
                self._replies.fail(request_id, exc)

        self._spawn(send())
        try:
            is_error, payload = await self._replies.wait(request_id, future, wait)
        except (TimeoutError, LinkDown):
            return None
        try:
            return decode(ErrorReply, payload) if is_error else decode(reply, payload)
        except PayloadError as exc:
            self._error(exc.reason, "rsp", exc.detail)
            return None

    def _on_rsp(self, payload: bytes) -> None:
        try:
            body = json.loads(payload) if len(payload) <= MAX_SNAPSHOT else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._error("invalid", "rsp", "not a JSON object")
            return
        request_id = body.get("id")
        if isinstance(request_id, str):
            # Nobody waits for a late answer (after its timeout) or someone else's.
            is_error = "error" in body and "granted" not in body
            self._replies.resolve(request_id, (is_error, payload))

    async def present(self, p: Presentation) -> AccessResult:
        """Decide on a card at a reader: accessd if it answers in time, else the cache."""
        door = self.doors[self._reader_door[p.reader]]
        reply: DecideReply | ErrorReply | None = None
        request_id: str | None = None
        required: tuple[str, ...] = ()
        if not door.accepts_cards:
            granted, reason, offline, required = False, f"door_{door.mode}", False, ()
        elif door.needs_pin and not p.pin_verified:
            granted, reason, offline, required = False, "pin_required", False, ("pin",)
        else:
            if not p.local_challenge:
                request_id = uuid.uuid4().hex
                reply = await self._ask_decision(p, request_id)
            if isinstance(reply, DecideReply):
                granted, reason, offline = reply.granted, reply.reason, False
                required = tuple(reply.required)
            elif isinstance(reply, ErrorReply):
                granted, reason, offline, required = False, f"service_{reply.error}", False, ()
            else:
                decision = self.cache.decide(door.door, self._verified(p), p.at or self.clock.now())
                granted, reason, offline, required = (
                    decision.granted,
                    decision.reason,
                    True,
                    (),
                )
        if granted:
            unlock = reply.unlock_seconds if isinstance(reply, DecideReply) else 0
            door.grant(unlock or None)
        data: dict[str, Scalar] = {"granted": granted, "reason": reason, "offline": offline}
        if p.credential is not None:
            data["credential_kind"] = p.credential.kind  # never the value
        if p.proof is not None:
            data["mechanism"] = p.proof.mechanism
        if request_id is not None:
            # accessd's decision row names it too: a late answer is marked unused there.
            data["request"] = request_id
        event = self.record("access", door=door.door, reader=p.reader, data=data)
        if offline and self.cache.take_alarm():
            self.record("cache_stale", door=door.door, data={"version": self.cache.version or 0})
        self.stats.granted += granted
        self.stats.denied += not granted
        self.stats.offline += offline
        self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
        return AccessResult(granted, reason, offline, door.door, event, required)

    async def _ask_decision(
        self, p: Presentation, request_id: str
    ) -> DecideReply | ErrorReply | None:
        request = DecideRequest(
            id=request_id,
            reader=p.reader,
            at=p.at or self.clock.now(),
            credential=p.credential,
            evidence=list(p.evidence),
            proof=p.proof,
            bio=p.bio,
            pin=p.pin_claim,
            reply_to=self.topics.rsp,
        )
        return await self._request(
            self.topics.leaf(topics.REQ_DECIDE),
            request,
            request_id,
            DecideReply,
            self.config.decide_timeout,
        )

    @staticmethod
    def _verified(p: Presentation) -> Verified:
        identifiers = ((p.credential,) if p.credential is not None else ()) + p.identifiers
        return Verified(
            identifiers=identifiers,
            pki_cert_sha256=verified_certificate(p.proof) if p.proof is not None else None,
            pin=p.pin_verified,
            bio=p.bio is not None and p.bio.matched,
        )

    # --- challenges -----------------------------------------------------------------------

    def take_challenge(self, reader: int) -> tuple[bytes, bool]:
        """A challenge for a card at ``reader``: (value, from_accessd). Without a fresh one
        from accessd the panel makes its own, which only an offline decision accepts."""
        pool = self._challenges.get(reader, deque())
        self._drop_stale(reader)
        self._refill(reader)
        if pool:
            return pool.popleft().value, True
        return os.urandom(32), False

    def _drop_stale(self, reader: int) -> None:
        """Forget challenges that would expire before an answer signed now reached accessd."""
        pool = self._challenges.get(reader)
        if not pool:
            return
        limit = self.clock.now() + CHALLENGE_MARGIN
        while pool and pool[0].expires_at <= limit:
            pool.popleft()

    def challenges_held(self, reader: int) -> int:
        return len(self._challenges.get(reader, ()))

    def _refill(self, reader: int) -> None:
        pool = self._challenges.get(reader)
        if pool is None or reader in self._refilling or not self.link.connected:
            return
        if asyncio.get_running_loop().time() < self._refill_after.get(reader, 0.0):
            return  # accessd did not answer the last ask: not again at every tick
        if len(pool) * 2 > self.config.challenge_pool:
            return
        self._refilling.add(reader)
        self._spawn(self._fetch_challenges(reader, self.config.challenge_pool - len(pool)))

    async def _fetch_challenges(self, reader: int, count: int) -> None:
        asked_on = self._link_ups
        answered = False
        try:
            request_id = uuid.uuid4().hex
            request = ChallengeRequest(
                id=request_id, reader=reader, count=count, reply_to=self.topics.rsp
            )
            reply = await self._request(
                self.topics.leaf(topics.REQ_CHALLENGE),
                request,
                request_id,
                ChallengeReply,
                self.config.request_timeout,
            )
            if isinstance(reply, ChallengeReply) and reply.expires_at > self.clock.now():
                pool = self._challenges[reader]
                for value in reply.challenges:
                    pool.append(_Challenge(base64.b64decode(value), reply.expires_at))
                answered = True
        finally:
            self._refilling.discard(reader)
            if answered:
                self._refill_after.pop(reader, None)
            elif self._link_ups == asked_on:
                self._refill_after[reader] = asyncio.get_running_loop().time() + REFILL_BACKOFF
            elif not self._closed:
                # Asked over a connection that has since gone: what it missed says nothing
                # of the new one, which must not wait out a back-off for it.
                self._refill(reader)

    # --- what the service sends -----------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            parsed = topics.parse(topic)
        except TopicError:
            return  # not a protocol topic: the ACL should not let it reach us
        if (parsed.site, parsed.panel) != (self.config.site, self.config.panel):
            return
        # accessd reached us: its deltas did too, so the cache is current (its max age).
        self.cache.heard(self.clock.now())
        if parsed.kind == topics.RSP:
            self._on_rsp(payload)
        elif parsed.kind == topics.ACK:
            self._on_ack(payload)
        elif parsed.kind == "cmd":
            self._on_command(parsed.door or "", parsed.leaf or "", payload)
        elif parsed.kind == topics.CRED_SNAPSHOT:
            self._on_snapshot(payload)
        elif parsed.kind == topics.CRED_DELTA:
            self._on_delta(payload)

    def _on_snapshot(self, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained message
        try:
            snapshot = decode(CredSnapshot, payload, limit=MAX_SNAPSHOT)
            if self.cache.version is not None and snapshot.version < self.cache.version:
                return  # a retained snapshot older than the deltas we applied since
            self.cache.apply_snapshot(snapshot)
        except PayloadError as exc:
            self._error(exc.reason, topics.CRED_SNAPSHOT, exc.detail)
            return
        except ValueError as exc:
            self._error("invalid", topics.CRED_SNAPSHOT, str(exc))
            return
        self.stats.snapshots += 1
        if self.link.connected:
            self._spawn(self._publish_birth())

    def _on_delta(self, payload: bytes) -> None:
        try:
            delta = decode(CredDelta, payload, limit=MAX_SNAPSHOT)
        except PayloadError as exc:
            self._error(exc.reason, topics.CRED_DELTA, exc.detail)
            return
        if self.cache.version is not None and delta.version <= self.cache.version:
            return  # already applied (a redelivery): nothing to catch up on
        try:
            self.cache.apply_delta(delta)
        except CacheOutOfStep:
            self._spawn(self._request_snapshot())
            return
        self.stats.deltas += 1
        if self.link.connected:
            self._spawn(self._publish_birth())

    async def _request_snapshot(self) -> None:
        """Ask for the whole cache; accessd publishes it on our ``cred/snapshot``."""
        self.stats.snapshot_requests += 1
        request = SnapshotRequest(
            id=uuid.uuid4().hex,
            have_version=self.cache.version,
            reply_to=self.topics.leaf(topics.CRED_SNAPSHOT),
        )
        await self.link.publish(self.topics.leaf(topics.REQ_SNAPSHOT), encode(request))

    def _on_command(self, door_segment: str, verb: str, payload: bytes) -> None:
        try:
            command = decode(Command, payload, limit=MAX_PAYLOAD)
        except PayloadError as exc:
            self._error(exc.reason, f"cmd/{door_segment}/{verb}", exc.detail)
            return
        self.stats.commands += 1
        result = self._obey(door_segment, verb, command)
        if not result.ok:
            self.stats.commands_refused += 1
        if self.link.connected:
            self._spawn(self.link.publish(self.topics.leaf(topics.RES_CMD), encode(result)))

    def _obey(self, door_segment: str, verb: str, command: Command) -> CommandResult:
        def refuse(error: str) -> CommandResult:
            return CommandResult(id=command.id, ok=False, error=error)

        if command.verb != verb:
            return refuse("verb_mismatch")
        # An old command from before an outage must not open a door now.
        if command.expires_at <= self.clock.now():
            return refuse("expired")
        if door_segment == PANEL_DOOR:
            targets = list(self.doors.values())
        else:
            door = self.doors.get(int(door_segment))
            if door is None:
                return refuse("unknown_door")
            targets = [door]
        args = command.args
        ok = True
        for door in targets:
            if verb == "unlock":
                seconds = args.get("seconds", door.config.default_unlock_seconds)
                if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                    return refuse("bad_args")
                if not 0 < seconds <= 3600:
                    return refuse("bad_args")
                ok = door.unlock_for(float(seconds)) and ok
            elif verb == "mode":
                mode = args.get("mode")
                if not isinstance(mode, str) or not door.set_mode(mode):
                    return refuse("bad_args")
            elif verb == "lockdown":
                on = args.get("on", True)
                if not isinstance(on, bool):
                    return refuse("bad_args")
                door.lockdown(on)
            elif self._indicator is not None:  # led, buzzer
                self._indicator(door.door, verb, dict(args))
        if not ok:
            return refuse("lockdown")
        state = targets[0].state() if len(targets) == 1 else None
        return CommandResult(id=command.id, ok=True, state=state)
