"""A virtual PIV card (SP 800-73-4 Part 2) built from the test PKI's `CardMaterial`.

One object answers APDUs whether it sits behind `LoopbackTransport` in process or in a
vpcd reader slot (`PivReaderSlot`), so the same card is read by our client, OpenSC and
yubico-piv-tool. It keeps a PIN retry counter, the PIN's security status, command chaining
and pending GET RESPONSE data. The private keys do the card's operations: raw RSA
(m^d mod n from the private numbers, by CRT, as a card does; `cryptography` has no raw
RSA) and ECDSA over the digest the host sends. PIN, PUK and keys are never logged or shown by repr.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils

from drivers.errors import MalformedData
from drivers.piv import objects, tlv
from drivers.piv.cardedge import algorithm_for
from drivers.piv.objects import Algorithm, ApplicationTemplate, Ccc, Discovery
from simulators.card import VirtualCard
from simulators.pki import CardMaterial
from simulators.vpcd import CTRL_POWER_OFF, CTRL_POWER_ON, CTRL_RESET, VirtualReaderSlot

log = logging.getLogger(__name__)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# T=1; historical bytes: compact-TLV card capabilities (73) announcing command chaining and
# no extended lengths, matching no middleware's table of known cards on purpose.
_ATR_BODY = bytes.fromhex("3B8580018073000080")

SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_SECURITY = 0x6982
SW_BLOCKED = 0x6983
SW_CONDITIONS = 0x6985
SW_CHAIN_UNSUPPORTED = 0x6884
SW_WRONG_DATA = 0x6A80
SW_FUNC_UNSUPPORTED = 0x6A81
SW_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6A86
SW_REF_NOT_FOUND = 0x6A88
SW_INS = 0x6D00
SW_CLA = 0x6E00

INS_SELECT, INS_GET_DATA, INS_VERIFY, INS_CHANGE, INS_RESET_RETRY = 0xA4, 0xCB, 0x20, 0x24, 0x2C
INS_GENERAL_AUTHENTICATE, INS_GET_RESPONSE = 0x87, 0xC0
PIN_REF, PUK_REF, GLOBAL_PIN_REF = 0x80, 0x81, 0x00
MAX_CHAIN = 4096
MAX_DIGEST = 64  # SHA-512, the longest digest a host may send for ECDSA


def _tck(body: bytes) -> bytes:
    check = 0
    for b in body[1:]:
        check ^= b
    return body + bytes((check,))


DEFAULT_ATR = _tck(_ATR_BODY)


class _Reply(Exception):
    """Ends command processing with a status word (and optional data)."""

    def __init__(self, sw: int, data: bytes = b"") -> None:
        self.sw = sw
        self.data = data


@dataclass(frozen=True, slots=True)
class _Apdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int  # 0 when absent; 256 / 65536 for the "maximum" encodings


def _parse(raw: bytes) -> _Apdu:
    """ISO 7816-4 cases 1-4, short and extended."""
    if len(raw) < 4:
        raise _Reply(SW_WRONG_LENGTH)
    cla, ins, p1, p2 = raw[:4]
    body = raw[4:]
    if not body:
        return _Apdu(cla, ins, p1, p2, b"", 0)
    if len(body) == 1:
        return _Apdu(cla, ins, p1, p2, b"", body[0] or 256)
    if body[0] != 0:
        lc = body[0]
        rest = body[1:]
        if len(rest) == lc:
            return _Apdu(cla, ins, p1, p2, rest, 0)
        if len(rest) == lc + 1:
            return _Apdu(cla, ins, p1, p2, rest[:lc], rest[lc] or 256)
        raise _Reply(SW_WRONG_LENGTH)
    # Extended: 00 then two bytes of Lc (or of Le when nothing else follows).
    if len(body) == 3:
        return _Apdu(cla, ins, p1, p2, b"", int.from_bytes(body[1:3], "big") or 65536)
    lc = int.from_bytes(body[1:3], "big")
    rest = body[3:]
    if lc and len(rest) == lc:
        return _Apdu(cla, ins, p1, p2, rest, 0)
    if lc and len(rest) == lc + 2:
        return _Apdu(cla, ins, p1, p2, rest[:lc], int.from_bytes(rest[lc:], "big") or 65536)
    raise _Reply(SW_WRONG_LENGTH)


def _padded(value: str) -> bytes:
    return value.encode("ascii").ljust(8, b"\xff")


class _Counter:
    """A reference value with a retry counter; the value never leaves this object."""

    def __init__(self, value: str, tries: int) -> None:
        self._value = _padded(value)
        self.max_tries = tries
        self.tries = tries

    def __repr__(self) -> str:
        return f"_Counter(tries={self.tries}/{self.max_tries})"

    @property
    def blocked(self) -> bool:
        return self.tries == 0

    def check(self, candidate: bytes) -> None:
        """Raise the right reply unless ``candidate`` matches; counts down on a mismatch."""
        if self.blocked:
            raise _Reply(SW_BLOCKED)
        if len(candidate) != 8:
            raise _Reply(SW_WRONG_DATA)
        if candidate != self._value:
            self.tries -= 1
            raise _Reply(0x63C0 | self.tries)
        self.tries = self.max_tries

    def change(self, new: bytes) -> None:
        digits = new.rstrip(b"\xff")
        if len(new) != 8 or not 6 <= len(digits) <= 8 or not digits.isdigit():
            raise _Reply(SW_WRONG_DATA)
        self._value = new
        self.tries = self.max_tries


@dataclass(frozen=True, slots=True)
class CardContents:
    """What a card holds, as stored on it: GET DATA objects by id and private keys by slot.

    ``objects`` maps an object id (``objects.CHUID``…) to the bytes GET DATA answers (the
    53-wrapped container, or 7E for discovery). A ``global_pin`` makes VERIFY accept key
    reference 00 too, as cards whose discovery object announces the global PIN do.
    """

    name: str
    objects: dict[bytes, bytes]
    keys: dict[str, PrivateKey]
    pin: str
    puk: str
    global_pin: str | None = None

    def __repr__(self) -> str:
        return (
            f"CardContents({self.name!r}, objects={len(self.objects)}, slots={sorted(self.keys)})"
        )


def contents_of(material: CardMaterial, *, compress_certificates: bool = False) -> CardContents:
    """The test PKI's card as stored objects: its CHUID, security object and certificates."""
    stored: dict[bytes, bytes] = {
        objects.DISCOVERY: Discovery(objects.AID, b"\x40\x00").encode(),
        objects.CHUID: material.chuid,
        objects.CCC: Ccc(_card_identifier(material.card_uuid)).encode(),
        objects.SECURITY_OBJECT: material.security_object,
    }
    for slot_name, cert in material.certificates.items():
        der = cert.public_bytes(serialization.Encoding.DER)
        stored[objects.slot(slot_name).object_id] = objects.encode_certificate(
            der, compress=compress_certificates
        )
    return CardContents(material.name, stored, dict(material.keys), material.pin, material.puk)


class VirtualPivCard(VirtualCard):
    """A PIV card application with the keys, certificates, CHUID and security object given."""

    def __init__(
        self,
        material: CardMaterial | CardContents,
        *,
        atr: bytes = DEFAULT_ATR,
        pin_tries: int = 3,
        puk_tries: int = 3,
        compress_certificates: bool = False,
        label: str = "accessd virtual PIV",
    ) -> None:
        contents = (
            material
            if isinstance(material, CardContents)
            else contents_of(material, compress_certificates=compress_certificates)
        )
        self.atr = atr
        self.name = contents.name
        self._pin = _Counter(contents.pin, pin_tries)
        self._puk = _Counter(contents.puk, puk_tries)
        self._global_pin = (
            _Counter(contents.global_pin, pin_tries) if contents.global_pin is not None else None
        )
        self._keys: dict[int, PrivateKey] = {}
        self._algorithms: dict[int, Algorithm] = {}
        for slot_name, key in contents.keys.items():
            slot = objects.slot(slot_name)
            self._keys[slot.key] = key
            self._algorithms[slot.key] = algorithm_for(key.public_key())
        self._objects: dict[bytes, bytes] = dict(contents.objects)
        self._template = ApplicationTemplate(
            aid_suffix=objects.AID[5:],
            authority=objects.NIST_RID,
            label=label,
            algorithms=tuple(sorted({int(a) for a in self._algorithms.values()})),
        ).encode()
        self.selected = False
        self.pin_verified = False
        self._pin_fresh = False  # a VERIFY since the last PIN-always (9C) operation
        self._pending = b""
        self._chain: tuple[int, int, int] | None = None
        self._chain_data = b""
        self.operations = 0  # private-key operations done, for tests

    def __repr__(self) -> str:
        return f"VirtualPivCard({self.name!r}, slots={sorted(hex(k) for k in self._keys)})"

    @property
    def pin_tries(self) -> int:
        """PIN tries left."""
        return self._pin.tries

    def reset(self) -> None:
        """Power cycle: nothing selected, PIN status cleared, half-done exchanges dropped."""
        self.selected = False
        self.pin_verified = self._pin_fresh = False
        self._pending = b""
        self._chain = None
        self._chain_data = b""

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU."""
        try:
            command = _parse(apdu)
            data, sw = self._dispatch(command), SW_OK
        except _Reply as reply:
            data, sw = reply.data, reply.sw
        return data + sw.to_bytes(2, "big")

    def _dispatch(self, command: _Apdu) -> bytes:
        if command.cla & ~0x10 != 0x00:
            raise _Reply(SW_CLA)
        if command.ins == INS_GET_RESPONSE:
            return self._get_response(command)
        self._pending = b""
        command = self._unchain(command)
        if command.cla & 0x10:
            return b""  # one part of a chain, stored
        if command.ins == INS_SELECT:
            return self._frame(self._select(command), command.le)
        if not self.selected:
            raise _Reply(SW_CONDITIONS)
        handlers = {
            INS_GET_DATA: self._get_data,
            INS_VERIFY: self._verify,
            INS_CHANGE: self._change_reference,
            INS_RESET_RETRY: self._reset_retry,
            INS_GENERAL_AUTHENTICATE: self._general_authenticate,
        }
        handler = handlers.get(command.ins)
        if handler is None:
            raise _Reply(SW_INS)
        return self._frame(handler(command), command.le)

    def _unchain(self, command: _Apdu) -> _Apdu:
        key = (command.ins, command.p1, command.p2)
        if self._chain is not None and self._chain != key:
            # A different command breaks the chain (ISO 7816-4 5.1.1.1).
            self._chain, self._chain_data = None, b""
        if command.cla & 0x10:
            if command.ins != INS_GENERAL_AUTHENTICATE:
                raise _Reply(SW_CHAIN_UNSUPPORTED)
            if len(self._chain_data) + len(command.data) > MAX_CHAIN:
                self._chain, self._chain_data = None, b""
                raise _Reply(SW_WRONG_LENGTH)
            self._chain = key
            self._chain_data += command.data
            return command
        if self._chain is None:
            return command
        data = self._chain_data + command.data
        self._chain, self._chain_data = None, b""
        return _Apdu(command.cla, command.ins, command.p1, command.p2, data, command.le)

    def _frame(self, data: bytes, le: int) -> bytes:
        """Send what fits in one short response; the rest waits for GET RESPONSE (61xx)."""
        limit = min(le or 256, 256)
        if len(data) <= limit:
            return data
        self._pending = data[limit:]
        raise _Reply(0x6100 | (min(len(self._pending), 256) % 256), data[:limit])

    def _get_response(self, command: _Apdu) -> bytes:
        if not self._pending:
            raise _Reply(SW_CONDITIONS)
        pending, self._pending = self._pending, b""
        return self._frame(pending, command.le)

    def _select(self, command: _Apdu) -> bytes:
        if command.p1 != 0x04:
            raise _Reply(SW_FUNC_UNSUPPORTED)
        if not command.data or not objects.AID.startswith(command.data):
            # Middleware probes other applets first; a miss leaves the current one selected.
            raise _Reply(SW_NOT_FOUND)
        if self.selected:
            self.pin_verified = self._pin_fresh = False  # reselecting resets security status
        self.selected = True
        return b"" if command.p2 == 0x0C else self._template

    def _get_data(self, command: _Apdu) -> bytes:
        if (command.p1, command.p2) != (0x3F, 0xFF):
            raise _Reply(SW_WRONG_P1P2)
        try:
            request = tlv.decode_one(command.data)
        except MalformedData:
            raise _Reply(SW_WRONG_DATA) from None
        if request.tag != 0x5C:
            raise _Reply(SW_WRONG_DATA)
        found = self._objects.get(request.value)
        if found is None:
            raise _Reply(SW_NOT_FOUND)
        return found

    def _verify(self, command: _Apdu) -> bytes:
        counter = self._pin if command.p2 == PIN_REF else None
        if command.p2 == GLOBAL_PIN_REF and self._global_pin is not None:
            counter = self._global_pin
        if counter is None:
            raise _Reply(SW_REF_NOT_FOUND)
        if command.p1 == 0xFF:
            if command.data:
                raise _Reply(SW_WRONG_P1P2)
            self.pin_verified = self._pin_fresh = False
            return b""
        if command.p1 != 0x00:
            raise _Reply(SW_WRONG_P1P2)
        if not command.data:
            if counter.blocked:
                raise _Reply(SW_BLOCKED)
            if self.pin_verified:
                return b""
            raise _Reply(0x63C0 | counter.tries)
        try:
            counter.check(command.data)
        except _Reply:
            self.pin_verified = self._pin_fresh = False
            raise
        self.pin_verified = self._pin_fresh = True
        return b""

    def _change_reference(self, command: _Apdu) -> bytes:
        counter = {PIN_REF: self._pin, PUK_REF: self._puk}.get(command.p2)
        if command.p1 != 0x00 or counter is None:
            raise _Reply(SW_REF_NOT_FOUND if command.p1 == 0 else SW_WRONG_P1P2)
        if len(command.data) != 16:
            raise _Reply(SW_WRONG_DATA)
        counter.check(command.data[:8])
        counter.change(command.data[8:])
        return b""

    def _reset_retry(self, command: _Apdu) -> bytes:
        if (command.p1, command.p2) != (0x00, PIN_REF):
            raise _Reply(SW_WRONG_P1P2)
        if len(command.data) != 16:
            raise _Reply(SW_WRONG_DATA)
        self._puk.check(command.data[:8])
        self._pin.change(command.data[8:])
        self.pin_verified = self._pin_fresh = False
        return b""

    def _general_authenticate(self, command: _Apdu) -> bytes:
        key = self._keys.get(command.p2)
        if key is None:
            raise _Reply(SW_REF_NOT_FOUND)
        if self._algorithms[command.p2] != command.p1:
            raise _Reply(SW_WRONG_P1P2)
        if command.p2 != 0x9E:
            if not self.pin_verified:
                raise _Reply(SW_SECURITY)
            if objects.SLOTS["9c"].key == command.p2:
                if not self._pin_fresh:
                    raise _Reply(SW_SECURITY)
                self._pin_fresh = False
        try:
            template = tlv.decode_one(command.data)
            items = template.children() if template.tag == 0x7C else []
        except MalformedData:
            raise _Reply(SW_WRONG_DATA) from None
        response, challenge = tlv.find(items, 0x82), tlv.find(items, 0x81)
        exponentiation = tlv.find(items, 0x85)
        if response is not None and not response.value and challenge is not None:
            result = self._sign(key, challenge.value)
        elif response is not None and not response.value and exponentiation is not None:
            result = self._agree(key, exponentiation.value)
        else:
            raise _Reply(SW_WRONG_DATA)
        self.operations += 1
        return tlv.encode(0x7C, tlv.encode(0x82, result))

    @staticmethod
    def _sign(key: PrivateKey, challenge: bytes) -> bytes:
        if isinstance(key, rsa.RSAPrivateKey):
            size = key.key_size // 8
            numbers = key.private_numbers()
            n = numbers.public_numbers.n
            m = int.from_bytes(challenge, "big")
            if len(challenge) != size or m >= n:
                raise _Reply(SW_WRONG_DATA)
            # CRT: the same m^d mod n as pow(m, d, n), about four times faster.
            m1 = pow(m, numbers.dmp1, numbers.p)
            m2 = pow(m, numbers.dmq1, numbers.q)
            h = numbers.iqmp * (m1 - m2) % numbers.p
            return (m2 + h * numbers.q).to_bytes(size, "big")
        size = (key.curve.key_size + 7) // 8
        if not 0 < len(challenge) <= MAX_DIGEST:
            raise _Reply(SW_WRONG_DATA)
        # Middleware sends digests of other sizes than the curve's (yubico-piv-tool: SHA-256
        # for P-384). ECDSA reads the digest as an integer from its leftmost bits, so left
        # zero padding or cutting to the field size signs exactly what was asked.
        challenge = challenge[:size].rjust(size, b"\x00")
        # The host sends the digest; Prehashed needs a hash of that size, which it only
        # uses for its length, so the matching SHA-2 stands in.
        prehashed = utils.Prehashed(hashes.SHA256() if size == 32 else hashes.SHA384())
        return key.sign(challenge, ec.ECDSA(prehashed))

    @staticmethod
    def _agree(key: PrivateKey, point: bytes) -> bytes:
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise _Reply(SW_WRONG_DATA)
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, point)
        except ValueError:
            raise _Reply(SW_WRONG_DATA) from None
        return key.exchange(ec.ECDH(), peer)


def _card_identifier(card_uuid: str) -> bytes:
    """CCC F0: GSC-RID, manufacturer 0xFF (none), card type 0x02 (Java Card), 14-byte id."""
    card_id = bytes.fromhex(card_uuid.replace("-", ""))[:14]
    return bytes.fromhex("A000000116") + b"\xff\x02" + card_id


class PivReaderSlot(VirtualReaderSlot):
    """A vpcd slot that also tells a `VirtualPivCard` about power-off and reset."""

    def _answer(self, payload: bytes) -> bytes | None:
        card = self.card
        if (
            len(payload) == 1
            and payload[0] in (CTRL_POWER_OFF, CTRL_POWER_ON, CTRL_RESET)
            and isinstance(card, VirtualPivCard)
        ):
            card.reset()
        return super()._answer(payload)
