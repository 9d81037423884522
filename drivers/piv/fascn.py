"""The 25-byte FASC-N (TIG SCEPACS v2.3, SP 800-73-4): 40 five-bit characters.

Each character is 4 data bits, least significant first, then an odd-parity bit; the
200 bits are packed most significant first. Layout::

    SS AGENCY(4) FS SYSTEM(4) FS CREDENTIAL(6) FS CS(1) FS ICI(1) FS
       PI(10) OC(1) OI(4) POA(1) ES LRC

The LRC is the XOR of the data bits of all 39 preceding characters, with its own parity.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from drivers.errors import FascnError

LENGTH = 25
_CHARS = 40
SS, FS, ES = 0xB, 0xD, 0xF

# (field name, digit count); None stands for a field separator.
_LAYOUT: tuple[tuple[str, int] | None, ...] = (
    ("agency_code", 4),
    None,
    ("system_code", 4),
    None,
    ("credential_number", 6),
    None,
    ("credential_series", 1),
    None,
    ("individual_credential_issue", 1),
    None,
    ("person_identifier", 10),
    ("organizational_category", 1),
    ("organizational_identifier", 4),
    ("association_category", 1),
)


def _char(value: int) -> int:
    """The 5-bit character for a 4-bit value, as written on the wire (data LSB first, parity)."""
    bits = 0
    for i in range(4):
        bits = (bits << 1) | ((value >> i) & 1)
    parity = 0 if bin(value).count("1") % 2 else 1
    return (bits << 1) | parity


_DECODE = {_char(v): v for v in range(16)}


@dataclass(frozen=True, slots=True)
class Fascn:
    """A decoded FASC-N; every field is a string of decimal digits of fixed width."""

    agency_code: str
    system_code: str
    credential_number: str
    credential_series: str
    individual_credential_issue: str
    person_identifier: str
    organizational_category: str
    organizational_identifier: str
    association_category: str

    def __post_init__(self) -> None:
        widths = {spec[0]: spec[1] for spec in _LAYOUT if spec is not None}
        for f in fields(self):
            value = getattr(self, f.name)
            if (
                not isinstance(value, str)
                or len(value) != widths[f.name]
                or not all("0" <= c <= "9" for c in value)
            ):
                raise FascnError(f"{f.name} must be {widths[f.name]} decimal digits")

    def _values(self) -> list[int]:
        values = [SS]
        for spec in _LAYOUT:
            if spec is None:
                values.append(FS)
            else:
                values.extend(int(c) for c in getattr(self, spec[0]))
        values.append(ES)
        lrc = 0
        for v in values:
            lrc ^= v
        values.append(lrc)
        return values

    def encode(self) -> bytes:
        """The 25-byte encoding."""
        acc = 0
        for v in self._values():
            acc = (acc << 5) | _char(v)
        return acc.to_bytes(LENGTH, "big")

    def hex(self) -> str:
        """50 lowercase hex digits, the form the service stores."""
        return self.encode().hex()

    def redacted(self) -> str:
        """A log-safe form: agency and system codes and the last 4 credential digits only."""
        return f"{self.agency_code}-{self.system_code}-**{self.credential_number[-4:]}"

    def __repr__(self) -> str:
        # Keeps the full FASC-N out of logs and tracebacks that repr() the object.
        return f"Fascn({self.redacted()})"

    @classmethod
    def decode(cls, data: bytes) -> Fascn:
        """Parse 25 bytes; raises `FascnError` naming the offending character index."""
        if len(data) != LENGTH:
            raise FascnError(f"FASC-N must be {LENGTH} bytes, got {len(data)}")
        acc = int.from_bytes(data, "big")
        values: list[int] = []
        for index in range(_CHARS):
            raw = (acc >> (5 * (_CHARS - 1 - index))) & 0x1F
            value = _DECODE.get(raw)
            if value is None:
                raise FascnError(f"parity error in character {index}")
            values.append(value)
        lrc = 0
        for v in values[:-1]:
            lrc ^= v
        if lrc != values[-1]:
            raise FascnError(f"LRC mismatch in character {_CHARS - 1}")
        return cls(**_split(values))

    @classmethod
    def from_hex(cls, text: str) -> Fascn:
        """Parse the stored 50-hex-digit form."""
        try:
            data = bytes.fromhex(text)
        except ValueError as exc:
            raise FascnError("FASC-N hex is not hexadecimal") from exc
        return cls.decode(data)


def _expect(values: list[int], index: int, want: int, name: str) -> None:
    if values[index] != want:
        raise FascnError(f"character {index}: expected {name}, got {values[index]:X}")


def _split(values: list[int]) -> dict[str, str]:
    _expect(values, 0, SS, "start sentinel")
    out: dict[str, str] = {}
    index = 1
    for spec in _LAYOUT:
        if spec is None:
            _expect(values, index, FS, "field separator")
            index += 1
            continue
        name, width = spec
        digits = values[index : index + width]
        for offset, d in enumerate(digits):
            if d > 9:
                raise FascnError(f"character {index + offset}: {d:X} is not a digit in {name}")
        out[name] = "".join(str(d) for d in digits)
        index += width
    _expect(values, index, ES, "end sentinel")
    return out
