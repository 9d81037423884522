"""The OSDP 2.2 secure channel (SIA OSDP 2.2, Annex D) for either end of the link.

The handshake is two command/reply pairs, each message marked by its security block
(``[len, type, key number]``; key number 0x01 = the PD's SCBK, 0x00 = the default SCBK-D)::

    CP  osdp_CHLNG   SCS_11  RND.A (8)                                  -> PD
    PD  osdp_CCRYPT  SCS_12  cUID (8), RND.B (8), client cryptogram     -> CP
    CP  osdp_SCRYPT  SCS_13  server cryptogram (16)                     -> PD
    PD  osdp_RMAC_I  SCS_14  R-MAC_I (16)  (block data 0x01: CP accepted) -> CP

Session keys are AES-128-ECB under the SCBK of ``01 82 | 01 01 | 01 02`` followed by
RND.A[0:6] and eight zeros (S-ENC, S-MAC1, S-MAC2). The client cryptogram is
AES(S-ENC, RND.A || RND.B), the server cryptogram AES(S-ENC, RND.B || RND.A) and
R-MAC_I = AES(S-MAC2, AES(S-MAC1, server cryptogram)). Each side checks the other's
cryptogram, so a wrong key fails at CCRYPT (on the CP) or SCRYPT (on the PD).

After it, every message carries a MAC: AES-CBC over the bytes from SOM to the end of the
data (`Frame.header_and_body`), padded with 0x80 and zeros only when not already a whole
number of blocks, with S-MAC1 for all blocks but the last and S-MAC2 for the last; the
first 4 bytes of the 16-byte result go on the wire. The IV is the chain, two 16-byte values
both sides keep:

* C-MAC, the full MAC of the last command; R-MAC, that of the last reply (R-MAC_I at first);
* a command's MAC starts from R-MAC and becomes C-MAC; a reply's starts from C-MAC and
  becomes R-MAC. So the CP seals from R-MAC and opens from C-MAC, the PD opens from R-MAC
  and seals from C-MAC, and a replayed or reordered message fails because the chain has
  moved on.

Data under SCS_17 (commands) and SCS_18 (replies) is AES-CBC under S-ENC with IV = the
bitwise complement of the message's chain value (~R-MAC for a command, ~C-MAC for a reply,
i.e. of the last MAC the sender received), always padded with 0x80 and zeros; the MAC is
computed over the encrypted bytes. A message without data is sent as SCS_15/16: there is
nothing to encrypt. On receipt an SCS_17/18 message with no data is taken as empty (libosdp
tolerates the same).

Failures end the session. Every `SecureChannelError` raised by a `SecureChannel` method
leaves it in `Phase.IDLE` with its session keys dropped; a PD answers osdp_NAK 0x06
(security conditions not met, `NakReason.SECURITY_REQUIRED`) in the clear and waits for a
new osdp_CHLNG, the CP starts again with `SecureChannel.challenge`. Nothing here
retransmits: a retry resends the encoded bytes of the sealed frame (sealing the same command
twice moves the chain), and a PD that sees a repeated sequence number resends its last
reply's bytes without calling `SecureChannel.open`.

Keys, randoms and cryptograms appear in no repr, log line or exception message. The error
hierarchy (all under `drivers.errors.DriverError`)::

    SecureChannelError
    ├── HandshakeError       a handshake message out of order or malformed, or a key the
    │   │                    peer cannot use (SCBK-D outside install mode)
    │   └── CryptogramMismatch  the peer's cryptogram or R-MAC_I does not verify: other key
    ├── NotEstablished       seal/open with no session (or a reply before any command)
    ├── WrongSecurityBlock   no security block, or a type not for this direction
    ├── BadMac               the MAC does not verify: tampered, replayed or out of the chain
    └── BadPadding           encrypted data not whole blocks, or without its 0x80 marker
"""

from __future__ import annotations

import enum
import hmac
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from drivers.errors import DriverError
from drivers.osdp.codes import Command, Reply, SecurityBlock
from drivers.osdp.frame import MAC_SIZE, Frame

#: The default secure channel base key, "0123456789:;<=>?", used in install mode.
SCBK_D: Final = bytes(range(0x30, 0x40))
KEY_SIZE: Final = 16
BLOCK_SIZE: Final = 16
RANDOM_SIZE: Final = 8
CUID_SIZE: Final = 8
#: Key number byte of SCS_11..13: which base key the session is built on.
KEY_SCBK: Final = 0x01
KEY_SCBK_D: Final = 0x00
#: SCS_14 block data when the PD accepted the server cryptogram.
CP_ACCEPTED: Final = 0x01
_PAD: Final = 0x80

#: Where randoms come from: called with a size, answers that many bytes.
RandomSource = Callable[[int], bytes]


class SecureChannelError(DriverError):
    """The secure channel refused a message or a call; the session is over."""


class HandshakeError(SecureChannelError):
    """A handshake message is out of order, malformed, or asks for a key this end lacks."""


class CryptogramMismatch(HandshakeError):
    """The peer's cryptogram (or R-MAC_I) does not verify: the two ends hold other keys."""


class NotEstablished(SecureChannelError):
    """`seal` or `open` without a session, or a reply before any command of the session."""


class WrongSecurityBlock(SecureChannelError):
    """No security block, or one whose type is not for this direction (SCS_15/17 are
    commands, SCS_16/18 replies)."""


class BadMac(SecureChannelError):
    """The MAC does not verify: the frame was altered, replayed or is out of the chain."""


class BadPadding(SecureChannelError):
    """Encrypted data that is not whole AES blocks or lacks the 0x80 end marker."""


@dataclass(frozen=True, slots=True, eq=False)
class SessionKeys:
    """S-ENC, S-MAC1 and S-MAC2 of one session (16 bytes each; never in the repr)."""

    enc: bytes = field(repr=False)
    mac1: bytes = field(repr=False)
    mac2: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if any(len(key) != KEY_SIZE for key in (self.enc, self.mac1, self.mac2)):
            raise ValueError("session keys are 16 bytes each")


def _ecb(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - one block
    return encryptor.update(block) + encryptor.finalize()


def _cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    context = cipher.decryptor() if decrypt else cipher.encryptor()
    return context.update(data) + context.finalize()


def _complement(value: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in value)


def _check(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, not {len(value)}")


def derive_session_keys(scbk: bytes, rnd_a: bytes) -> SessionKeys:
    """S-ENC, S-MAC1, S-MAC2 from the base key and the CP's random RND.A."""
    _check("the SCBK", scbk, KEY_SIZE)
    _check("RND.A", rnd_a, RANDOM_SIZE)
    tail = rnd_a[:6] + bytes(8)
    return SessionKeys(
        enc=_ecb(scbk, b"\x01\x82" + tail),
        mac1=_ecb(scbk, b"\x01\x01" + tail),
        mac2=_ecb(scbk, b"\x01\x02" + tail),
    )


def client_cryptogram(keys: SessionKeys, rnd_a: bytes, rnd_b: bytes) -> bytes:
    """The PD's proof of the key, sent in osdp_CCRYPT: AES(S-ENC, RND.A || RND.B)."""
    _check("RND.A", rnd_a, RANDOM_SIZE)
    _check("RND.B", rnd_b, RANDOM_SIZE)
    return _ecb(keys.enc, rnd_a + rnd_b)


def server_cryptogram(keys: SessionKeys, rnd_a: bytes, rnd_b: bytes) -> bytes:
    """The CP's proof of the key, sent in osdp_SCRYPT: AES(S-ENC, RND.B || RND.A)."""
    _check("RND.A", rnd_a, RANDOM_SIZE)
    _check("RND.B", rnd_b, RANDOM_SIZE)
    return _ecb(keys.enc, rnd_b + rnd_a)


def initial_rmac(keys: SessionKeys, server_crypt: bytes) -> bytes:
    """R-MAC_I, the chain's starting value: AES(S-MAC2, AES(S-MAC1, server cryptogram))."""
    _check("the server cryptogram", server_crypt, BLOCK_SIZE)
    return _ecb(keys.mac2, _ecb(keys.mac1, server_crypt))


def compute_mac(keys: SessionKeys, message: bytes, chain: bytes) -> bytes:
    """The full 16-byte MAC of ``message`` (SOM to end of data) chained from ``chain``.

    ``chain`` is R-MAC for a command and C-MAC for a reply; the result is the next C-MAC or
    R-MAC, and its first 4 bytes are the MAC on the wire.
    """
    _check("the chain value", chain, BLOCK_SIZE)
    if not message:
        raise ValueError("nothing to MAC")
    if len(message) % BLOCK_SIZE:
        message += bytes((_PAD,)) + bytes(-(len(message) + 1) % BLOCK_SIZE)
    iv = chain
    if len(message) > BLOCK_SIZE:
        iv = _cbc(keys.mac1, chain, message[:-BLOCK_SIZE])[-BLOCK_SIZE:]
    return _cbc(keys.mac2, iv, message[-BLOCK_SIZE:])


def encrypt_data(keys: SessionKeys, data: bytes, chain: bytes) -> bytes:
    """SCS_17/18 data: 0x80-and-zeros padded, AES-CBC under S-ENC with IV = ~``chain``."""
    _check("the chain value", chain, BLOCK_SIZE)
    padded = data + bytes((_PAD,)) + bytes(-(len(data) + 1) % BLOCK_SIZE)
    return _cbc(keys.enc, _complement(chain), padded)


def decrypt_data(keys: SessionKeys, data: bytes, chain: bytes) -> bytes:
    """The plaintext of `encrypt_data`'s output; raises `BadPadding` if it is not one."""
    _check("the chain value", chain, BLOCK_SIZE)
    if not data or len(data) % BLOCK_SIZE:
        raise BadPadding(f"encrypted data of {len(data)} bytes is not whole AES blocks")
    plain = _cbc(keys.enc, _complement(chain), data, decrypt=True)
    end = len(plain.rstrip(b"\x00")) - 1
    # The marker sits in the last block: a sender pads to the next boundary, no further.
    if end < len(plain) - BLOCK_SIZE or plain[end] != _PAD:
        raise BadPadding("decrypted data has no 0x80 end marker in its last block")
    return plain[:end]


class Side(enum.Enum):
    """Which end of the link a `SecureChannel` is."""

    CP = "cp"
    PD = "pd"


class Phase(enum.Enum):
    """Where a `SecureChannel` is in its session."""

    IDLE = "idle"  # no session: the CP sends osdp_CHLNG, the PD waits for one
    AWAIT_CCRYPT = "await_ccrypt"  # CP: osdp_CHLNG sent
    AWAIT_SCRYPT = "await_scrypt"  # PD: osdp_CCRYPT sent
    AWAIT_RMAC_I = "await_rmac_i"  # CP: osdp_SCRYPT sent
    ESTABLISHED = "established"  # MACs (and encryption) on every message


@dataclass(frozen=True, slots=True)
class HandshakeMessage:
    """One handshake command or reply to send: code, whole security block and data."""

    code: int
    scb: bytes
    data: bytes = field(repr=False)  # randoms and cryptograms: kept out of logs
    reply: bool

    def frame(self, address: int, sequence: int, *, use_crc: bool = True) -> Frame:
        """The message as a `Frame` to ``address`` with the bus's ``sequence``."""
        return Frame(
            address=address,
            code=self.code,
            data=self.data,
            sequence=sequence,
            reply=self.reply,
            use_crc=use_crc,
            scb=self.scb,
        )


def _direction(frame: Frame) -> str:
    return "replies" if frame.reply else "commands"


def _type_name(frame: Frame) -> str:
    kind = frame.security_type
    if kind is None:
        return "no security block"
    try:
        return SecurityBlock(kind).name
    except ValueError:
        return f"security block type 0x{kind:02X}"


class SecureChannel:
    """One end's secure channel state: the handshake, then `seal` and `open` of each frame.

    A CP calls `challenge`, `accept_ccrypt`, `accept_rmac_i`, then seals commands and opens
    replies; a PD calls `accept_challenge`, `accept_scrypt`, then opens commands and seals
    replies. Any `SecureChannelError` drops the session (see the module docstring). Not
    thread-safe: one bus task owns it.
    """

    __slots__ = (
        "_c_mac",
        "_cuid",
        "_expected",
        "_install_mode",
        "_key_number",
        "_keys",
        "_phase",
        "_r_mac",
        "_random",
        "_rnd_a",
        "_scbk",
        "_side",
    )

    def __init__(
        self,
        side: Side,
        scbk: bytes | None,
        *,
        cuid: bytes | None = None,
        install_mode: bool = False,
        random: RandomSource = os.urandom,
    ) -> None:
        """Prefer `for_cp` and `for_pd`."""
        if scbk is not None:
            _check("the SCBK", scbk, KEY_SIZE)
        elif side is Side.CP or not install_mode:
            raise ValueError("without an SCBK only a PD in install mode has a key (SCBK-D)")
        if cuid is not None:
            _check("the cUID", cuid, CUID_SIZE)
        elif side is Side.PD:
            cuid = bytes(CUID_SIZE)
        self._side = side
        self._scbk = scbk
        self._install_mode = install_mode
        self._cuid = cuid
        self._random = random
        self._key_number = KEY_SCBK
        self._phase = Phase.IDLE
        self._keys: SessionKeys | None = None
        self._rnd_a = b""
        self._expected = b""  # PD: the server cryptogram due; CP: the R-MAC_I due
        self._c_mac: bytes | None = None
        self._r_mac: bytes | None = None

    @classmethod
    def for_cp(cls, scbk: bytes, *, random: RandomSource = os.urandom) -> SecureChannel:
        """The CP end, keyed with the PD's SCBK; pass `SCBK_D` for a PD in install mode."""
        return cls(Side.CP, scbk, random=random)

    @classmethod
    def for_pd(
        cls,
        scbk: bytes | None,
        *,
        cuid: bytes = bytes(CUID_SIZE),
        install_mode: bool = False,
        random: RandomSource = os.urandom,
    ) -> SecureChannel:
        """The PD end: its SCBK (None for a PD that has none yet, only in install mode) and
        the 8-byte client UID it reports in osdp_CCRYPT. In install mode a CP may ask for a
        session on SCBK-D (key number 0x00); otherwise such a request is refused."""
        return cls(Side.PD, scbk, cuid=cuid, install_mode=install_mode, random=random)

    def __repr__(self) -> str:
        default = " on SCBK-D" if self.uses_default_key and self._keys else ""
        return f"<SecureChannel {self._side.value} {self._phase.value}{default}>"

    @property
    def side(self) -> Side:
        return self._side

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def established(self) -> bool:
        """Whether frames can be sealed and opened."""
        return self._phase is Phase.ESTABLISHED

    @property
    def uses_default_key(self) -> bool:
        """Whether the (last) session is built on SCBK-D rather than the PD's own key."""
        return self._key_number == KEY_SCBK_D

    @property
    def cuid(self) -> bytes | None:
        """The PD's client UID: its own on a PD, the one osdp_CCRYPT reported on a CP."""
        return self._cuid

    def reset(self) -> None:
        """Drops the session and its keys (a PD does this on sequence number 0)."""
        self._phase = Phase.IDLE
        self._keys = None
        self._rnd_a = b""
        self._expected = b""
        self._c_mac = None
        self._r_mac = None

    @contextmanager
    def _ending_session_on_error(self) -> Iterator[None]:
        try:
            yield
        except SecureChannelError:
            self.reset()
            raise

    def _require_side(self, side: Side, what: str) -> None:
        if self._side is not side:
            raise HandshakeError(f"{what} is a {side.name} step; this is the {self._side.name}")

    def _require_phase(self, phase: Phase, what: str) -> None:
        if self._phase is not phase:
            raise HandshakeError(f"{what} while {self._phase.value}, not {phase.value}")

    @staticmethod
    def _require_message(
        frame: Frame, code: int, kind: SecurityBlock, size: int, *, reply: bool
    ) -> int | None:
        """Checks a handshake frame's shape; returns its key number byte (if it has one)."""
        name = Reply(code).name if reply else Command(code).name
        if frame.reply != reply or frame.code != code:
            raise HandshakeError(f"expected osdp_{name}, got code 0x{frame.code:02X}")
        if frame.security_type != kind:
            raise HandshakeError(f"osdp_{name} with {_type_name(frame)}, not {kind.name}")
        if len(frame.data) != size:
            raise HandshakeError(f"osdp_{name} with {len(frame.data)} data bytes, not {size}")
        assert frame.scb is not None
        return frame.scb[2] if len(frame.scb) > 2 else None

    # CP side of the handshake.

    def challenge(self) -> HandshakeMessage:
        """CP: osdp_CHLNG with a new RND.A; starts a session (dropping any current one)."""
        with self._ending_session_on_error():
            self._require_side(Side.CP, "osdp_CHLNG")
            self.reset()
            assert self._scbk is not None
            self._key_number = KEY_SCBK_D if hmac.compare_digest(self._scbk, SCBK_D) else KEY_SCBK
            rnd_a = self._random(RANDOM_SIZE)
            if len(rnd_a) != RANDOM_SIZE:
                raise ValueError("the random source returned the wrong number of bytes")
            self._rnd_a = rnd_a
            self._phase = Phase.AWAIT_CCRYPT
            return HandshakeMessage(
                code=Command.CHLNG,
                scb=bytes((3, SecurityBlock.SCS_11, self._key_number)),
                data=rnd_a,
                reply=False,
            )

    def accept_ccrypt(self, frame: Frame) -> HandshakeMessage:
        """CP: checks the PD's osdp_CCRYPT and answers osdp_SCRYPT.

        Raises `CryptogramMismatch` when the PD holds another key (for a PD in install mode
        start over with ``SecureChannel.for_cp(SCBK_D)``).
        """
        with self._ending_session_on_error():
            self._require_side(Side.CP, "osdp_CCRYPT")
            self._require_phase(Phase.AWAIT_CCRYPT, "osdp_CCRYPT")
            pd_key = self._require_message(
                frame, Reply.CCRYPT, SecurityBlock.SCS_12, CUID_SIZE + RANDOM_SIZE + 16, reply=True
            )
            assert self._scbk is not None
            cuid, rnd_b, cryptogram = frame.data[:8], frame.data[8:16], frame.data[16:]
            keys = derive_session_keys(self._scbk, self._rnd_a)
            if not hmac.compare_digest(cryptogram, client_cryptogram(keys, self._rnd_a, rnd_b)):
                hint = ""
                if pd_key is not None and pd_key != self._key_number:
                    hint = (
                        "; the PD answered on SCBK-D (install mode)"
                        if pd_key == KEY_SCBK_D
                        else "; the PD answered on its own SCBK, not SCBK-D"
                    )
                raise CryptogramMismatch(f"the PD's client cryptogram does not verify{hint}")
            self._cuid = cuid
            self._keys = keys
            crypt = server_cryptogram(keys, self._rnd_a, rnd_b)
            self._expected = initial_rmac(keys, crypt)
            self._phase = Phase.AWAIT_RMAC_I
            return HandshakeMessage(
                code=Command.SCRYPT,
                scb=bytes((3, SecurityBlock.SCS_13, self._key_number)),
                data=crypt,
                reply=False,
            )

    def accept_rmac_i(self, frame: Frame) -> None:
        """CP: checks osdp_RMAC_I (that the PD accepted us, and its value); the session is
        established and the first command's MAC chains from R-MAC_I."""
        with self._ending_session_on_error():
            self._require_side(Side.CP, "osdp_RMAC_I")
            self._require_phase(Phase.AWAIT_RMAC_I, "osdp_RMAC_I")
            accepted = self._require_message(
                frame, Reply.RMAC_I, SecurityBlock.SCS_14, BLOCK_SIZE, reply=True
            )
            if accepted != CP_ACCEPTED:
                raise CryptogramMismatch("the PD did not accept the server cryptogram")
            if not hmac.compare_digest(frame.data, self._expected):
                raise CryptogramMismatch("the PD's R-MAC_I does not verify")
            self._r_mac = self._expected
            self._expected = b""
            self._phase = Phase.ESTABLISHED

    # PD side of the handshake.

    def accept_challenge(self, frame: Frame) -> HandshakeMessage:
        """PD: answers osdp_CHLNG with osdp_CCRYPT; a challenge always starts a new session.

        Raises `HandshakeError` if the CP asks for SCBK-D outside install mode, or for the
        PD's SCBK when it has none.
        """
        with self._ending_session_on_error():
            self._require_side(Side.PD, "osdp_CHLNG")
            self.reset()
            key_number = self._require_message(
                frame, Command.CHLNG, SecurityBlock.SCS_11, RANDOM_SIZE, reply=False
            )
            if key_number == KEY_SCBK_D:
                if not self._install_mode:
                    raise HandshakeError("the CP asks for SCBK-D and this PD is not installing")
                scbk = SCBK_D
            elif key_number == KEY_SCBK:
                if self._scbk is None:
                    raise HandshakeError("the CP asks for the SCBK and this PD has none yet")
                scbk = self._scbk
            else:
                raise HandshakeError(f"osdp_CHLNG with key number {key_number!r}, not 0 or 1")
            rnd_b = self._random(RANDOM_SIZE)
            if len(rnd_b) != RANDOM_SIZE:
                raise ValueError("the random source returned the wrong number of bytes")
            rnd_a = frame.data
            keys = derive_session_keys(scbk, rnd_a)
            self._key_number = key_number
            self._keys = keys
            self._expected = server_cryptogram(keys, rnd_a, rnd_b)
            self._phase = Phase.AWAIT_SCRYPT
            assert self._cuid is not None
            return HandshakeMessage(
                code=Reply.CCRYPT,
                scb=bytes((3, SecurityBlock.SCS_12, key_number)),
                data=self._cuid + rnd_b + client_cryptogram(keys, rnd_a, rnd_b),
                reply=True,
            )

    def accept_scrypt(self, frame: Frame) -> HandshakeMessage:
        """PD: checks osdp_SCRYPT and answers osdp_RMAC_I; the session is established and
        the PD's first reply chains from the C-MAC of the command it answers."""
        with self._ending_session_on_error():
            self._require_side(Side.PD, "osdp_SCRYPT")
            self._require_phase(Phase.AWAIT_SCRYPT, "osdp_SCRYPT")
            key_number = self._require_message(
                frame, Command.SCRYPT, SecurityBlock.SCS_13, BLOCK_SIZE, reply=False
            )
            if key_number != self._key_number:
                raise HandshakeError("osdp_SCRYPT names another key than osdp_CHLNG did")
            if not hmac.compare_digest(frame.data, self._expected):
                raise CryptogramMismatch("the CP's server cryptogram does not verify")
            assert self._keys is not None
            self._r_mac = initial_rmac(self._keys, frame.data)
            self._expected = b""
            self._phase = Phase.ESTABLISHED
            return HandshakeMessage(
                code=Reply.RMAC_I,
                scb=bytes((3, SecurityBlock.SCS_14, CP_ACCEPTED)),
                data=self._r_mac,
                reply=True,
            )

    # The established session.

    def _session(self) -> SessionKeys:
        if self._phase is not Phase.ESTABLISHED or self._keys is None:
            raise NotEstablished(f"no secure channel session ({self._phase.value})")
        return self._keys

    def _chain(self, command: bool) -> bytes:
        chain = self._r_mac if command else self._c_mac
        if chain is None:
            raise NotEstablished("a reply before any command of this session")
        return chain

    def seal(self, frame: Frame, *, encrypt: bool = True) -> Frame:
        """The plaintext ``frame`` as sent in the session: SCS_17/18 with its data encrypted
        (SCS_15/16 when it has no data or ``encrypt`` is false) and its MAC.

        A CP seals commands, a PD replies; ``frame`` carries no security block yet. The
        chain moves on: send the result once (a retry resends its encoded bytes).
        """
        with self._ending_session_on_error():
            keys = self._session()
            if frame.scb is not None or frame.mac is not None:
                raise ValueError("seal takes a frame without a security block")
            if frame.reply != (self._side is Side.PD):
                raise ValueError(f"the {self._side.name} does not send {_direction(frame)}")
            command = not frame.reply
            chain = self._chain(command)
            data = frame.data
            if encrypt and data:
                kind = SecurityBlock.SCS_17 if command else SecurityBlock.SCS_18
                data = encrypt_data(keys, data, chain)
            else:
                kind = SecurityBlock.SCS_15 if command else SecurityBlock.SCS_16
            sealed = replace(frame, scb=bytes((2, kind)), data=data, mac=bytes(MAC_SIZE), raw=b"")
            mac = compute_mac(keys, sealed.header_and_body(), chain)
            if command:
                self._c_mac = mac
            else:
                self._r_mac = mac
            return replace(sealed, mac=mac[:MAC_SIZE])

    def open(self, frame: Frame) -> Frame:
        """The plaintext of a received ``frame``: MAC verified, data decrypted, no security
        block or MAC left. A CP opens replies, a PD commands.

        Raises `WrongSecurityBlock`, `BadMac`, `BadPadding` or `NotEstablished`, each of
        which ends the session; a reply in the clear (the osdp_NAK of a PD that dropped the
        session) raises `WrongSecurityBlock`, and the caller still holds the frame. The
        MAC is checked over ``frame.raw`` when the frame came from `FrameDecoder`, and those
        bytes must match the frame's fields.
        """
        with self._ending_session_on_error():
            keys = self._session()
            command = self._side is Side.PD
            allowed = (
                (SecurityBlock.SCS_15, SecurityBlock.SCS_17)
                if command
                else (SecurityBlock.SCS_16, SecurityBlock.SCS_18)
            )
            if frame.reply == command:
                raise WrongSecurityBlock(
                    f"the {self._side.name} does not receive {_direction(frame)}"
                )
            kind = frame.security_type
            if kind not in allowed or frame.mac is None:
                raise WrongSecurityBlock(
                    f"{_type_name(frame)} where {allowed[0].name} or {allowed[1].name} belongs"
                )
            chain = self._chain(command)
            message = frame.header_and_body()
            if frame.raw and frame.raw != message:
                raise BadMac("the frame's fields do not match the bytes it was received as")
            mac = compute_mac(keys, message, chain)
            if not hmac.compare_digest(mac[:MAC_SIZE], frame.mac):
                raise BadMac("the MAC does not verify (altered, replayed or out of the chain)")
            data = frame.data
            if kind in (SecurityBlock.SCS_17, SecurityBlock.SCS_18) and data:
                data = decrypt_data(keys, data, chain)
            if command:
                self._c_mac = mac
            else:
                self._r_mac = mac
            return replace(frame, scb=None, mac=None, data=data, raw=b"")
