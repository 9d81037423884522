"""The PIV Security Object: its signature, and the hash of every data group it lists.

`verify_security_object` parses the container, verifies its CMS (content attached: the
LDS security object) and returns the signer for the caller to validate as a content
signer. `check_data_group_hashes` then compares each listed group's hash with the object
the station read. A group whose object the card was asked for and does not have is a
refusal: an issuer signed a hash of it, so it was removed. Groups whose object was not
read (behind the PIN, none given) or whose container ID is unknown are left unchecked
and returned as such.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509

from accessd.validation.cms import verify_signed_data
from accessd.validation.errors import ValidationError
from drivers.errors import MalformedData
from drivers.piv import objects, oids
from drivers.piv.security_object import LdsHashes, SecurityObject

_HASHES = frozenset({"sha256", "sha384", "sha512"})
OBJECT_NAMES: dict[bytes, str] = {
    objects.CHUID: "CHUID",
    objects.CCC: "CCC",
    objects.DISCOVERY: "discovery object",
    objects.FACIAL_IMAGE: "facial image",
    objects.FINGERPRINTS: "fingerprints",
    objects.PRINTED_INFO: "printed information",
    objects.KEY_HISTORY: "key history",
    **{slot.object_id: f"{slot.name.upper()} certificate" for slot in objects.SLOTS.values()},
}


@dataclass(frozen=True, slots=True)
class VerifiedSecurityObject:
    """A security object whose signature verified; `signer` still needs validating."""

    mapping: SecurityObject
    lds: LdsHashes
    signer: x509.Certificate


@dataclass(frozen=True, slots=True)
class HashCheck:
    """Which data groups matched the objects read, and which could not be checked."""

    matched: tuple[int, ...]
    unchecked: tuple[int, ...]


def verify_security_object(
    content: bytes | None,
    *,
    required: bool,
    known_signers: Sequence[x509.Certificate] = (),
) -> VerifiedSecurityObject | None:
    """The verified security object from its container content (inside 53), or None when
    the card has none (absent or empty) and ``required`` is false.

    ``known_signers`` are certificates the CMS may name without carrying (the CHUID's
    signer). Refusals: ``security_object_missing``, ``security_object_malformed``,
    ``security_object_signature``.
    """
    if not content:
        if required:
            raise ValidationError(
                "security_object_missing", "the card has no security object (5FC106)"
            )
        return None
    try:
        mapping = SecurityObject.decode_content(content)
    except MalformedData as exc:
        raise ValidationError("security_object_malformed", f"security object: {exc}") from exc
    signed = verify_signed_data(
        mapping.signature,
        content_types={oids.CONTENT_LDS_SECURITY_OBJECT, oids.CONTENT_LDS_SECURITY_OBJECT_ISO},
        detached=None,
        known_signers=known_signers,
        code="security_object_signature",
        what="security object signature",
    )
    try:
        lds = LdsHashes.decode(signed.content)
    except MalformedData as exc:
        raise ValidationError("security_object_malformed", f"security object: {exc}") from exc
    if lds.algorithm not in _HASHES:
        raise ValidationError(
            "security_object_malformed",
            f"security object: hash algorithm {lds.algorithm} is not allowed",
        )
    return VerifiedSecurityObject(mapping, lds, signed.signer)


def check_data_group_hashes(
    verified: VerifiedSecurityObject,
    read: Mapping[bytes, bytes],
    absent: Collection[bytes] = (),
) -> HashCheck:
    """Each listed data group's hash against ``read`` (object id → its content as GET DATA
    returned it inside 53 or 7E); ``security_object_hash`` names the first that differs,
    ``security_object_group_missing`` the first listed one among ``absent`` (object ids
    the card was asked for and has not)."""
    matched: list[int] = []
    unchecked: list[int] = []
    for group, expected in sorted(verified.lds.hashes.items()):
        object_id = verified.mapping.object_id(group)
        content = read.get(object_id) if object_id is not None else None
        if object_id is not None and content is None and object_id in absent:
            name = OBJECT_NAMES.get(object_id, object_id.hex().upper())
            raise ValidationError(
                "security_object_group_missing",
                f"security object: data group {group} ({name}) is listed, but the card "
                "has no such object",
            )
        if object_id is None or content is None:
            unchecked.append(group)
            continue
        actual = hashlib.new(verified.lds.algorithm, content).digest()
        if not hmac.compare_digest(actual, expected):
            name = OBJECT_NAMES.get(object_id, object_id.hex().upper())
            raise ValidationError(
                "security_object_hash",
                f"security object: the hash of data group {group} does not match the "
                f"{name} read from the card",
            )
        matched.append(group)
    return HashCheck(tuple(matched), tuple(unchecked))
