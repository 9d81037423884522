"""BER-TLV as PIV uses it: 1 to 3 byte tags, short and 0x81/0x82/0x83 long-form lengths.

Decoding is strict: truncated input, lengths running past the end, trailing bytes,
non-minimal length encodings and nesting deeper than `MAX_DEPTH` raise `TlvError`
with the byte offset where decoding stopped.

PIV does not honour the BER constructed bit: the CHUID container 53 is "primitive" yet
holds elements, and its FASC-N tag 30 is "constructed" yet holds raw bytes. So `decode`
is flat; callers descend with `Tlv.children()` where the PIV data model says a value
nests, and `decode_tree` follows the constructed bit only for true BER objects (7C).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from drivers.errors import TlvError

MAX_DEPTH = 8
MAX_LENGTH = 0xFFFFFF


@dataclass(frozen=True, slots=True)
class Tlv:
    """One data element: `tag` as an int of its encoded bytes, `value` its content bytes."""

    tag: int
    value: bytes

    @property
    def constructed(self) -> bool:
        """True when bit 6 of the first tag byte marks the value as nested TLVs."""
        return bool(_tag_bytes(self.tag)[0] & 0x20)

    def children(self) -> list[Tlv]:
        """Decode the value as a sequence of TLVs, whatever the constructed bit says."""
        return decode(self.value)

    def encode(self) -> bytes:
        """This element's encoding."""
        return encode(self.tag, self.value)


def _tag_bytes(tag: int) -> bytes:
    if tag < 0 or tag > 0xFFFFFF:
        raise TlvError(f"tag {tag:#x} does not fit in 3 bytes")
    raw = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    _check_tag_bytes(raw, tag)
    return raw


def _check_tag_bytes(raw: bytes, tag: int) -> None:
    multi = raw[0] & 0x1F == 0x1F
    if not multi and len(raw) != 1:
        raise TlvError(f"tag {tag:#x}: first byte does not announce a multi-byte tag")
    if multi:
        if len(raw) == 1:
            raise TlvError(f"tag {tag:#x}: multi-byte tag without subsequent bytes")
        for i, b in enumerate(raw[1:], start=1):
            last = i == len(raw) - 1
            if bool(b & 0x80) == last:
                raise TlvError(f"tag {tag:#x}: bad continuation bit in byte {i}")


def encode_length(length: int) -> bytes:
    """Minimal BER length: short form below 0x80, else 0x81/0x82/0x83."""
    if length < 0 or length > MAX_LENGTH:
        raise TlvError(f"length {length} out of range")
    if length < 0x80:
        return bytes([length])
    n = (length.bit_length() + 7) // 8
    return bytes([0x80 | n]) + length.to_bytes(n, "big")


def encode(tag: int, value: bytes) -> bytes:
    """Encode one element."""
    return _tag_bytes(tag) + encode_length(len(value)) + value


def encode_all(items: Iterable[Tlv]) -> bytes:
    """Concatenate the encodings of `items`."""
    return b"".join(item.encode() for item in items)


def constructed(tag: int, children: Iterable[Tlv]) -> Tlv:
    """An element whose value is the encoding of `children`."""
    return Tlv(tag, encode_all(children))


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    start = pos
    if pos >= len(data):
        raise TlvError(f"truncated tag at offset {pos}")
    tag = data[pos]
    pos += 1
    if tag & 0x1F == 0x1F:
        while True:
            if pos >= len(data):
                raise TlvError(f"truncated multi-byte tag at offset {start}")
            if pos - start >= 3:
                raise TlvError(f"tag longer than 3 bytes at offset {start}")
            b = data[pos]
            tag = (tag << 8) | b
            pos += 1
            if not b & 0x80:
                break
    return tag, pos


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError(f"truncated length at offset {pos}")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    if n == 0 or n > 3:
        raise TlvError(f"unsupported length form {first:#04x} at offset {pos}")
    if pos + 1 + n > len(data):
        raise TlvError(f"truncated length at offset {pos}")
    length = int.from_bytes(data[pos + 1 : pos + 1 + n], "big")
    if len(encode_length(length)) != 1 + n:
        raise TlvError(f"over-long length encoding at offset {pos}")
    return length, pos + 1 + n


def _decode_at(data: bytes, pos: int) -> tuple[Tlv, int]:
    start = pos
    tag, pos = _read_tag(data, pos)
    length, pos = _read_length(data, pos)
    end = pos + length
    if end > len(data):
        raise TlvError(
            f"tag {tag:X} at offset {start}: length {length} runs past the end "
            f"({len(data) - pos} bytes left)"
        )
    return Tlv(tag, data[pos:end]), end


def _check_depth(item: Tlv, depth: int, max_depth: int) -> None:
    if not item.constructed:
        return
    if depth > max_depth:
        raise TlvError(f"tag {item.tag:X}: nesting deeper than {max_depth}")
    pos = 0
    while pos < len(item.value):
        child, pos = _decode_at(item.value, pos)
        _check_depth(child, depth + 1, max_depth)


def decode(data: bytes) -> list[Tlv]:
    """Decode a flat sequence of elements filling `data` exactly."""
    items: list[Tlv] = []
    pos = 0
    while pos < len(data):
        item, pos = _decode_at(data, pos)
        items.append(item)
    return items


def decode_tree(data: bytes, max_depth: int = MAX_DEPTH) -> list[Tlv]:
    """Like `decode`, but also check every constructed-bit value down to `max_depth` levels.

    For true BER objects such as the 7C dynamic authentication template, so a malformed
    nested value is refused here rather than when a caller descends.
    """
    items = decode(data)
    for item in items:
        _check_depth(item, 1, max_depth)
    return items


def decode_one(data: bytes) -> Tlv:
    """Decode exactly one element; anything after it is an error."""
    item, end = _decode_at(data, 0)
    if end != len(data):
        raise TlvError(f"{len(data) - end} trailing bytes at offset {end} after tag {item.tag:X}")
    return item


def find(items: Iterable[Tlv], tag: int) -> Tlv | None:
    """The first element with `tag` among `items` (not searching inside them)."""
    for item in items:
        if item.tag == tag:
            return item
    return None


def find_path(items: Iterable[Tlv], *path: int) -> Tlv | None:
    """Descend through constructed elements by tag, e.g. `find_path(items, 0x7C, 0x82)`."""
    current: Iterable[Tlv] = items
    found: Tlv | None = None
    for tag in path:
        if found is not None:
            current = found.children()
        found = find(current, tag)
        if found is None:
            return None
    return found
