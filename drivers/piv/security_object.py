"""The PIV Security Object (SP 800-73-4 Part 1, container 5FC106) and its ICAO LDS content.

GET DATA answers `53 L { BA mapping, BB LDS security object, FE }`. The mapping BA lists
three bytes a data group: its number, then the 2-byte container ID of the object it stands
for (CHUID 3000, fingerprints 6010, facial image 6030, …). BB is a CMS SignedData (kept as
bytes here: accessd verifies it) whose eContent is an ICAO 9303 LDSSecurityObject: a hash
algorithm and one (dataGroupNumber, dataGroupHashValue) pair a data group.

What each hash covers, found on GSA's ICAM test cards: the object's content inside its
outer tag (53 for containers, 7E for the discovery object), exactly as GET DATA returns it
inside that tag. Hashing the content with the 53 wrapper matches none of them, and for the
discovery object only the value inside 7E matches. `container_content` gives those bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import algos, core

from drivers.errors import MalformedData, PivObjectError
from drivers.piv import objects, tlv

MAPPING, LDS, EDC = 0xBA, 0xBB, 0xFE

#: SP 800-73-4 Part 1, Table 2: container ID → the object's GET DATA identifier.
CONTAINERS: dict[int, bytes] = {
    0xDB00: objects.CCC,
    0x3000: objects.CHUID,
    0x0101: objects.SLOTS["9a"].object_id,
    0x6010: objects.FINGERPRINTS,
    0x9000: objects.SECURITY_OBJECT,
    0x6030: objects.FACIAL_IMAGE,
    0x3001: objects.PRINTED_INFO,
    0x0500: objects.SLOTS["9e"].object_id,
    0x0100: objects.SLOTS["9c"].object_id,
    0x0102: objects.SLOTS["9d"].object_id,
    0x6050: objects.DISCOVERY,
    0x6060: objects.KEY_HISTORY,
}


class _DataGroupHash(core.Sequence):  # type: ignore[misc]
    _fields = [("data_group_number", core.Integer), ("data_group_hash_value", core.OctetString)]


class _DataGroupHashValues(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _DataGroupHash


class _LdsSecurityObject(core.Sequence):  # type: ignore[misc]
    _fields = [
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", _DataGroupHashValues),
    ]


@dataclass(frozen=True, slots=True)
class SecurityObject:
    """The mapping BA (data group → container ID) and the signed LDS object BB, unverified."""

    mapping: dict[int, int]
    signature: bytes

    def object_id(self, group: int) -> bytes | None:
        """The GET DATA identifier of data group ``group``; None when unmapped or unknown."""
        container = self.mapping.get(group)
        return None if container is None else CONTAINERS.get(container)

    def encode(self) -> bytes:
        """The 53-wrapped object as GET DATA returns it."""
        mapping = b"".join(bytes((g,)) + c.to_bytes(2, "big") for g, c in self.mapping.items())
        content = tlv.encode(MAPPING, mapping) + tlv.encode(LDS, self.signature)
        return tlv.encode(objects.CONTAINER, content + tlv.encode(EDC, b""))

    @classmethod
    def decode_content(cls, content: bytes) -> SecurityObject:
        """Parse the elements inside 53; raises `PivObjectError` when malformed."""
        try:
            items = tlv.decode(content)
        except MalformedData as exc:
            raise PivObjectError(f"security object: {exc}") from exc
        mapping, lds = tlv.find(items, MAPPING), tlv.find(items, LDS)
        if mapping is None or lds is None:
            raise PivObjectError("security object lacks the mapping BA or the LDS object BB")
        raw = mapping.value
        if len(raw) % 3:
            raise PivObjectError(f"security object mapping BA is {len(raw)} bytes, not 3 each")
        groups: dict[int, int] = {}
        for i in range(0, len(raw), 3):
            group = raw[i]
            if group in groups:
                raise PivObjectError(f"security object maps data group {group} twice")
            groups[group] = int.from_bytes(raw[i + 1 : i + 3], "big")
        return cls(groups, lds.value)


@dataclass(frozen=True, slots=True)
class LdsHashes:
    """The LDSSecurityObject: hash algorithm (hashlib name) and the hash of each data group."""

    algorithm: str
    hashes: dict[int, bytes]

    def encode(self) -> bytes:
        """The DER LDSSecurityObject (version 0)."""
        value = _LdsSecurityObject(
            {
                "version": 0,
                "hash_algorithm": {"algorithm": self.algorithm},
                "data_group_hash_values": [
                    {"data_group_number": n, "data_group_hash_value": h}
                    for n, h in self.hashes.items()
                ],
            }
        )
        return bytes(value.dump())

    @classmethod
    def decode(cls, data: bytes) -> LdsHashes:
        """Parse the DER LDSSecurityObject; raises `PivObjectError` when malformed."""
        try:
            value = _LdsSecurityObject.load(data, strict=True)
            algorithm = str(value["hash_algorithm"]["algorithm"].native)
            hashes: dict[int, bytes] = {}
            for entry in value["data_group_hash_values"]:
                number = int(entry["data_group_number"].native)
                if number in hashes:
                    raise PivObjectError(f"LDS security object hashes data group {number} twice")
                hashes[number] = bytes(entry["data_group_hash_value"].native)
        except (ValueError, TypeError, KeyError) as exc:
            raise PivObjectError(f"LDS security object does not parse: {exc}") from exc
        return cls(algorithm, hashes)


def container_content(data: bytes) -> bytes:
    """The bytes a data group hash covers, from an object as GET DATA returns it whole.

    Raises `PivObjectError` when ``data`` is not one 53 or 7E element.
    """
    try:
        outer = tlv.decode_one(data)
    except MalformedData as exc:
        raise PivObjectError(f"object does not parse: {exc}") from exc
    if outer.tag not in (objects.CONTAINER, objects.DISCOVERY_TAG):
        raise PivObjectError(f"object came in tag {outer.tag:X}, not 53 or 7E")
    return outer.value
