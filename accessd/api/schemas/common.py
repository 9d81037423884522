"""Shapes shared by every resource."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

T = TypeVar("T")

#: Ids are 32-bit INTEGER columns on PostgreSQL: a larger (or negative) number names no row,
#: and sent to the driver it fails as an overflow (a 500), so it is refused as input.
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

#: The years a moment given as input may fall in. Year 1 with a +14:00 offset, or 9999 with
#: a negative one, overflows Python's datetime the moment it is taken to UTC (a 500, and no
#: answer at all over MQTT); no door was ever opened outside these.
MOMENT_YEARS = (1970, 2999)


def _sane_moment(value: datetime) -> datetime:
    try:
        year = value.astimezone(UTC).year if value.tzinfo is not None else value.year
    except OverflowError:
        year = 0
    first, last = MOMENT_YEARS
    if not first <= year <= last:
        raise ValueError(f"must fall between the years {first} and {last}")
    return value


#: A point in time given as input (a query parameter or a body field).
Moment = Annotated[datetime, AfterValidator(_sane_moment)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class Input(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold NUL: refused here, not as a driver error (a 500). The
        # strings inside lists and maps too (a holiday's name in a calendar's days).
        if _holds_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_nul(item) for item in value)
    return False


class Update(Input):
    """PATCH bodies: absent fields stay as they are; only `nullable` fields may be set null."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Update:
        for name in self.model_fields_set:
            if getattr(self, name) is None and name not in self.nullable:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, object]:
        return self.model_dump(exclude_unset=True)


class Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class VersionedPublic(Public):
    id: int
    version: int
    created_at: datetime
    updated_at: datetime


class Page(BaseModel, Generic[T]):
    items: list[T]
    #: Pass as `after` to get the next page; None on the last page.
    next_after: int | None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str
