"""Constrained value types shared by the API bodies and the CSV importer, so both refuse
the same input with the same words."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, StringConstraints


def _lower(value: object) -> object:
    # pydantic checks a pattern before it applies to_lower: lower first, so "AB…" is taken.
    return value.strip().lower() if isinstance(value, str) else value


_Lowered = BeforeValidator(_lower)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
LongName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Organization = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
#: A pragmatic address check (one @, a dot in the domain, no spaces): the registrar's data,
#: not a mail system; email-validator cost 90 µs a row in bulk imports.
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
#: FASC-N as the 50 hex digits of its 25 bytes (SP 800-73-4 CHUID tag 30).
FascN = Annotated[str, _Lowered, StringConstraints(pattern=r"^[0-9a-f]{50}$")]
CardUUID = Annotated[
    str,
    _Lowered,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
BadgeNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
]
Sha256 = Annotated[str, _Lowered, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
