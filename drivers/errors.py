"""Errors raised by the device drivers; every one derives from `DriverError`.

The hierarchy, kept in step with the classes below::

    DriverError
    ├── MalformedData          bytes from a device or store that do not parse
    │   ├── TlvError           BER-TLV structure (tag, length, nesting, trailing bytes)
    │   ├── FascnError         FASC-N characters, parity, separators, LRC
    │   ├── ChuidError         CHUID data object (missing or bad elements)
    │   ├── PivObjectError     other PIV objects: APT, CCC, discovery, certificate, 7C answer
    │   ├── MessageError (.reason, a NakReason) an OSDP payload (drivers/osdp/codec.py)
    │   ├── PayloadError (.reason, .detail) an MQTT panel-protocol payload (also a ValueError)
    │   ├── TopicError     a topic or segment outside the MQTT panel protocol (also a ValueError)
    │   └── MalformedResponse  (also an ApduError) fewer than 2 bytes, runaway GET RESPONSE
    ├── SignatureInvalid       a challenge signature does not verify (drivers/piv/challenge.py)
    ├── ApduError              the APDU layer (drivers/apdu.py)
    │   └── CardError (.sw)    any status word other than 9000
    │       ├── WrongLength 6700, SecurityStatusNotSatisfied 6982, AuthenticationBlocked 6983
    │       └── WrongData 6A80, FileNotFound 6A82, InsNotSupported 6D00, WrongPin 63Cx
    ├── PcscError (.hresult) the PC/SC stack (drivers/pcsc.py)
    │   ├── PcscUnavailable, ReaderUnavailable, NoCard, CardRemoved
    │   └── OsdpCardError      a card behind an OSDP reader not reached (osdp/card_transport.py)
    ├── OsdpLineError          the serial line (drivers/osdp/transport.py)
    ├── OsdpError              an OSDP exchange (drivers/osdp/bus.py)
    │   └── PdOffline, BusClosed, HandshakeRefused
    ├── SecureChannelError     the OSDP secure channel (drivers/osdp/secure.py); each ends it
    │   ├── HandshakeError     └── CryptogramMismatch: the peer holds another key
    │   └── NotEstablished, WrongSecurityBlock, BadMac, BadPadding
    └── MqttError              the MQTT stack (drivers/mqtt/connection.py, session.py, memory.py)
        ├── MqttUnreachable    no TCP/TLS connection to the broker (OSError underneath)
        ├── MqttConnectRefused (.reason_code) CONNACK refused: bad credentials, not authorized
        ├── MqttNotConnected   an operation while the client is not connected
        ├── MqttTimeout        no CONNACK, PUBACK, SUBACK or reply in time
        ├── MqttSubscribeRefused (.topic, .reason_code) SUBACK refused a filter
        └── MqttPublishRefused (.reason_code) MQTT 5 PUBACK with a failure (not authorized)

Callers at the service boundary catch `DriverError`; codec callers catch `MalformedData`.
"""

from __future__ import annotations


class DriverError(Exception):
    """Base class of every error raised by `drivers`."""


class MalformedData(DriverError):
    """Data that does not decode; the message says where the decoder stopped."""


class TlvError(MalformedData):
    """A BER-TLV encoding that is truncated, over-long, too deep or followed by junk."""


class FascnError(MalformedData):
    """A FASC-N with a bad length, parity, separator, digit or LRC."""


class ChuidError(MalformedData):
    """A CHUID data object with a missing, duplicated or malformed element."""


class PivObjectError(MalformedData):
    """A PIV data object or card answer (other than the CHUID) that is malformed or unusable."""


class PayloadError(MalformedData, ValueError):
    """An MQTT panel-protocol payload that is too big, not JSON, or not the schema;
    ``reason`` is short (too_large, invalid) and goes into the error reply.

    Also a ValueError, which callers caught before it joined this tree."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class TopicError(MalformedData, ValueError):
    """A topic that is not one of the MQTT panel protocol's, or a segment that may not be
    used in one (also a ValueError, as before it joined this tree)."""


class SignatureInvalid(DriverError):
    """A signature over a challenge does not verify against the certificate's public key."""


class ApduError(DriverError):
    """An APDU exchange with a card failed."""


class MalformedResponse(ApduError, MalformedData):
    """The card answered something that is not a response APDU, or too much of it."""


class CardError(ApduError):
    """The card answered with an error status word, kept in ``sw``."""

    def __init__(self, sw: int, message: str = "") -> None:
        self.sw = sw
        super().__init__(f"card returned SW {sw:04X}" + (f": {message}" if message else ""))


class WrongLength(CardError):
    """6700: Lc or Le is wrong for this command."""


class SecurityStatusNotSatisfied(CardError):
    """6982: the command needs a PIN or authentication first."""


class AuthenticationBlocked(CardError):
    """6983: the PIN or key is blocked."""


class WrongData(CardError):
    """6A80: the command data is wrong."""


class FileNotFound(CardError):
    """6A82: no such file or application."""


class InsNotSupported(CardError):
    """6D00: the instruction is not supported."""


class WrongPin(CardError):
    """63Cx: verification failed; ``tries_left`` attempts remain."""

    def __init__(self, sw: int) -> None:
        self.tries_left = sw & 0x0F
        super().__init__(sw, f"{self.tries_left} tries left")


class PcscError(DriverError):
    """The PC/SC stack (pcscd via pyscard) failed; ``hresult`` is its code, or -1."""

    def __init__(self, message: str, hresult: int = -1) -> None:
        self.hresult = hresult
        super().__init__(message)


class PcscUnavailable(PcscError):
    """pcscd is not running or not reachable."""


class ReaderUnavailable(PcscError):
    """The named reader does not exist or has gone away."""


class NoCard(PcscError):
    """The reader holds no card to connect to."""


class CardRemoved(PcscError):
    """The card was removed (or reset) while connected; reconnect to go on."""


class MqttError(DriverError):
    """The MQTT client failed; paho's errors and reason codes come out as its subclasses."""


class MqttUnreachable(MqttError):
    """The broker could not be reached (refused, unresolvable, TLS failure)."""


class MqttConnectRefused(MqttError):
    """The broker refused the CONNECT; ``reason_code`` is the MQTT 5 reason code (3.1.1
    return codes as MQTT 5 codes: 0x86 bad user name or password, 0x87 not authorized)."""

    def __init__(self, reason_code: int, reason: str) -> None:
        self.reason_code = reason_code
        self.reason = reason
        super().__init__(f"broker refused the connection: {reason} (0x{reason_code:02X})")


class MqttNotConnected(MqttError):
    """The client is not connected (not yet, no longer, or between reconnects)."""


class MqttTimeout(MqttError):
    """An acknowledgement or reply did not come in time."""


class MqttSubscribeRefused(MqttError):
    """The broker refused a subscription (granted QoS 0x80, or an MQTT 5 failure code)."""

    def __init__(self, topic: str, reason_code: int, reason: str) -> None:
        self.topic = topic
        self.reason_code = reason_code
        self.reason = reason
        super().__init__(f"subscription to {topic!r} refused: {reason} (0x{reason_code:02X})")


class MqttPublishRefused(MqttError):
    """The broker answered a QoS 1/2 publish with a failure reason code (MQTT 5 only; a 3.1.1
    broker drops what it refuses without saying so)."""

    def __init__(self, topic: str, reason_code: int, reason: str) -> None:
        self.topic = topic
        self.reason_code = reason_code
        self.reason = reason
        super().__init__(f"publish to {topic!r} refused: {reason} (0x{reason_code:02X})")
