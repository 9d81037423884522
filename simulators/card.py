"""The virtual card seam and a small probe card for exercising the PC/SC stack."""

from __future__ import annotations

from abc import ABC, abstractmethod

PIV_AID = bytes.fromhex("A000000308000010000100")
SW_OK = b"\x90\x00"
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_NO_PENDING = b"\x69\x85"  # conditions of use not satisfied: GET RESPONSE with nothing left
INS_SELECT = 0xA4
INS_GET_RESPONSE = 0xC0
INS_LONG_TEST = 0xE0  # proprietary: answers LONG_TEST_SIZE bytes through 61xx


class VirtualCard(ABC):
    """A card a virtual reader slot can hold: an ATR and one response per command APDU."""

    atr: bytes

    @abstractmethod
    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU with one response APDU (data + SW1 SW2)."""


class ProbeCard(VirtualCard):
    """Selects by (a prefix of) one AID, serves a long answer via 61xx, else 6D00."""

    LONG_TEST_SIZE = 600

    def __init__(
        self,
        aid: bytes = PIV_AID,
        atr: bytes = bytes.fromhex("3B8880010000000000000000"),
        frame: int = 256,
    ) -> None:
        self.aid = aid
        self.atr = atr
        self.frame = frame
        self.selected: bytes | None = None
        self._pending = b""

    def process(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        ins, p1 = apdu[1], apdu[2]
        if ins == INS_GET_RESPONSE:
            return self._get_response(apdu)
        self._pending = b""
        if ins == INS_SELECT and p1 == 0x04:
            return self._select(apdu)
        if ins == INS_LONG_TEST:
            self._pending = bytes(i % 251 for i in range(self.LONG_TEST_SIZE))
            return self._next_frame(self.frame)
        return SW_INS_NOT_SUPPORTED

    def _select(self, apdu: bytes) -> bytes:
        if len(apdu) < 5 or len(apdu) < 5 + apdu[4]:
            return SW_WRONG_LENGTH
        aid = apdu[5 : 5 + apdu[4]]
        if not aid or not self.aid.startswith(aid):
            # A failed probe of another applet leaves the current selection alone.
            return SW_FILE_NOT_FOUND
        self.selected = self.aid
        return SW_OK

    def _get_response(self, apdu: bytes) -> bytes:
        if not self._pending:
            return SW_NO_PENDING
        le = apdu[4] if len(apdu) > 4 else 0
        return self._next_frame(le or 256)

    def _next_frame(self, limit: int) -> bytes:
        chunk, self._pending = self._pending[:limit], self._pending[limit:]
        if not self._pending:
            return chunk + SW_OK
        return chunk + bytes((0x61, min(len(self._pending), 256) % 256))
