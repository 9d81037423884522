"""The edge controller: OSDP readers on a serial bus, door relays, and the panel session.

It is a panel like the simulated ones (`drivers.panel.session.PanelSession`: the same MQTT
protocol, offline cache and event buffer), whose readers are real OSDP PDs polled by
`drivers.osdp.bus.ControlPanel`:

- a card read (osdp_RAW) becomes a `Presentation` at the reader's accessd reader id; the
  decision (accessd's, or the cache's when accessd does not answer in time) lights the
  reader's LED green or red and beeps once or three times;
- the door's relay follows `DoorController.locked`: an osdp_OUT on the output the strike
  is wired to (``strike_output`` of the reader at that door);
- at a reader wired with ``piv``, the card is then read through the reader in transparent
  mode (`drivers.osdp.card_transport`): CHUID, certificate and a signed challenge, PKI-CAK,
  or PKI-AUTH with the PIN typed on the keypad before the card (the card checks it);
- key presses (osdp_KEYPAD) are collected per reader as a PIN until ``#``;
- a reader going offline or coming back, and its tamper switch, become events.

LED and buzzer commands from accessd (``cmd/<door>/led``, ``buzzer``) go to the readers of
that door.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from drivers.edge.cards import credential_of
from drivers.errors import DriverError
from drivers.mqtt.messages import Scalar
from drivers.osdp.bus import ControlPanel, OsdpError
from drivers.osdp.card_transport import OsdpCardTransport
from drivers.osdp.codes import Command, Reply
from drivers.osdp.commands import (
    BuzzerControl,
    BuzzerTone,
    LedColor,
    LedControl,
    LedRecord,
    LedTemporaryControl,
    OutputControl,
    OutputControlCode,
    OutputRecord,
    TemporaryLed,
)
from drivers.osdp.frame import Frame
from drivers.osdp.messages import MessageError, decode_reply
from drivers.osdp.replies import KeypadData, LocalStatus, RawCardData
from drivers.panel.doors import DoorController
from drivers.panel.piv_read import read_piv
from drivers.panel.session import AccessResult, PanelSession, Presentation
from drivers.tasks import TaskSet

log = logging.getLogger(__name__)

# The decision's colours on the reader's LED.
RED, GREEN = LedColor.RED, LedColor.GREEN


@dataclass(frozen=True, slots=True)
class ReaderWiring:
    """One OSDP reader: its bus address, accessd's id for it, its door, and the output on
    it that drives the door's strike (None: the strike is wired elsewhere)."""

    address: int
    reader: int
    door: int
    strike_output: int | None = None
    #: The reader passes APDUs to the card (transparent mode): a PIV card read there is
    #: authenticated with PKI-CAK, or PKI-AUTH with the PIN typed on its keypad.
    piv: bool = False


def led(reader: int, color: LedColor, tenths: int) -> bytes:
    """osdp_LED: ``color`` for ``tenths`` of a second, then back to the permanent state."""
    temporary = TemporaryLed(
        control=LedTemporaryControl.SET,
        on_time=tenths,
        on_color=color,
        off_color=color,
        timer=tenths,
    )
    return LedControl((LedRecord(reader, 0, temporary),)).encode()


def beep(reader: int, count: int, tenths: int = 2) -> bytes:
    """osdp_BUZ: ``count`` beeps of the default tone."""
    return BuzzerControl(reader, BuzzerTone.DEFAULT, tenths, tenths, count).encode()


class EdgeController:
    """Joins a `ControlPanel` and a `PanelSession`; `start` both through it."""

    def __init__(
        self,
        cp: ControlPanel,
        session: PanelSession,
        wiring: Sequence[ReaderWiring],
        *,
        badge_format: str = "{facility}:{number}",
    ) -> None:
        self.cp = cp
        self.session = session
        self.badge_format = badge_format
        self.by_address = {w.address: w for w in wiring}
        if len(self.by_address) != len(wiring):
            raise ValueError("two readers share an OSDP address")
        unknown = {w.door for w in wiring} - set(session.doors)
        if unknown:
            raise ValueError(f"readers wired to doors the panel lacks: {sorted(unknown)}")
        self.strikes = {w.door: w for w in wiring if w.strike_output is not None}
        self.pins: dict[int, str] = {}
        self.results: list[AccessResult] = []
        self.unreadable = 0
        self.piv_failures = 0
        self._tamper: dict[int, bool] = {}
        self._tasks = TaskSet(f"edge {session.config.panel}", logger=log)
        cp.on_reply(self._on_reply)
        cp.on_status(self._on_status)
        session.attach(hardware=self._door_changed, indicator=self._indicate)

    async def start(self) -> None:
        await self.session.start()
        self.cp.start()

    async def close(self) -> None:
        await self.cp.close()
        await self._tasks.close()
        await self.session.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        # A door that relocks while the session closes starts nothing: the set is closed.
        if self._tasks.closed:
            coro.close()
            return
        self._tasks.spawn(coro)

    # -- from the readers -----------------------------------------------------------------

    def _on_reply(self, address: int, frame: Frame) -> None:
        wiring = self.by_address.get(address)
        if wiring is None:
            return
        try:
            message = decode_reply(frame.code, frame.data)
        except MessageError:
            self.unreadable += frame.code == Reply.RAW
            return
        if isinstance(message, RawCardData):
            self._card(wiring, message)
        elif isinstance(message, KeypadData):
            self._keys(wiring, message.keys)
        elif (
            isinstance(message, LocalStatus) and self._tamper.get(address, False) != message.tamper
        ):
            self._tamper[address] = message.tamper
            self.session.record(
                "tamper", door=wiring.door, reader=wiring.reader, data={"alarm": message.tamper}
            )

    def _card(self, wiring: ReaderWiring, raw: RawCardData) -> None:
        credential = credential_of(raw.bit_count, raw.data, self.badge_format)
        if credential is None:
            self.unreadable += 1
            self.session.record(
                "card", door=wiring.door, reader=wiring.reader, data={"readable": False}
            )
            return
        # Digits typed before the card go to a PIV card, which checks them; they are not
        # kept for the next card either way.
        pin = self.pins.pop(wiring.address, None)
        presentation = Presentation(reader=wiring.reader, credential=credential)
        self._spawn(self._present(wiring, presentation, pin if wiring.piv else None))

    async def _present(self, wiring: ReaderWiring, p: Presentation, pin: str | None) -> None:
        if wiring.piv:
            p = await self._read_piv(wiring, p, pin)
        result = await self.session.present(p)
        self.results.append(result)
        color, beeps = (GREEN, 1) if result.granted else (RED, 3)
        try:
            await self.cp.command(wiring.address, Command.LED, led(0, color, 20))
            await self.cp.command(wiring.address, Command.BUZ, beep(0, beeps))
        except OsdpError as exc:
            log.warning("reader %d did not take the LED/buzzer: %s", wiring.address, exc)

    async def _read_piv(
        self, wiring: ReaderWiring, read: Presentation, pin: str | None
    ) -> Presentation:
        """The card's PKI-CAK (or PKI-AUTH) presentation; the identifier alone when the
        card cannot be reached through the reader (accessd then says what is missing)."""
        transport = OsdpCardTransport(self.cp, wiring.address)
        try:
            await transport.open()
            return await read_piv(self.session, wiring.reader, transport, pin=pin or None)
        except DriverError as exc:
            self.piv_failures += 1
            log.warning("reader %d: PIV read through the reader failed: %s", wiring.address, exc)
            return read
        finally:
            await transport.close()

    def _keys(self, wiring: ReaderWiring, keys: bytes) -> None:
        typed = self.pins.get(wiring.address, "")
        for key in keys:
            if key == 0x0D:  # '#': entry done, kept for the card that follows
                continue
            if key == 0x7F:  # '*': clear
                typed = ""
            elif 0x30 <= key <= 0x39 and len(typed) < 16:
                typed += chr(key)
        self.pins[wiring.address] = typed

    def _on_status(self, address: int, online: bool) -> None:
        wiring = self.by_address.get(address)
        if wiring is not None:
            data: dict[str, Scalar] = {"alarm": not online, "address": address}
            self.session.record("reader_offline", door=wiring.door, reader=wiring.reader, data=data)

    # -- to the readers -------------------------------------------------------------------

    def _door_changed(self, door: DoorController) -> None:
        wiring = self.strikes.get(door.door)
        if wiring is None or wiring.strike_output is None:
            return
        control = OutputControlCode.OFF if door.locked else OutputControlCode.ON
        out = OutputControl((OutputRecord(wiring.strike_output, control),))
        self._spawn(self._send(wiring.address, Command.OUT, out.encode()))

    def _indicate(self, door: int, verb: str, args: dict[str, Scalar]) -> None:
        for wiring in self.by_address.values():
            if wiring.door != door:
                continue
            if verb == "led":
                color = GREEN if args.get("color") == "green" else RED
                seconds = args.get("seconds", 2)
                tenths = int(seconds * 10) if isinstance(seconds, int | float) else 20
                self._spawn(self._send(wiring.address, Command.LED, led(0, color, tenths)))
            elif verb == "buzzer":
                count = args.get("count", 1)
                beeps = count if isinstance(count, int) and 0 < count < 10 else 1
                self._spawn(self._send(wiring.address, Command.BUZ, beep(0, beeps)))

    async def _send(self, address: int, code: int, data: bytes) -> None:
        try:
            reply = await self.cp.command(address, code, data)
        except OsdpError as exc:
            log.warning("reader %d: command 0x%02X failed: %s", address, code, exc)
            return
        if reply.code != Reply.ACK:
            log.warning("reader %d refused command 0x%02X: 0x%02X", address, code, reply.code)
