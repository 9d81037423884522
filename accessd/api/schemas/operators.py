from __future__ import annotations

from datetime import datetime
from typing import Annotated

from annotated_types import MaxLen
from pydantic import Field, StringConstraints

from accessd.api.schemas.common import Id, Input, Public, Update, VersionedPublic
from accessd.models.enums import Role

Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")]
Password = Annotated[str, StringConstraints(min_length=12, max_length=1024)]


class LoginRequest(Input):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class TokenPublic(Public):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


#: The readers a door_reader account serves, by id; it may ask for decisions at no others.
Readers = Annotated[list[Id], MaxLen(1000)]
_READERS = "Readers a door_reader account serves, by id (it may ask at no others)"


class OperatorCreate(Input):
    username: Username
    password: Password
    roles: list[Role]
    display_name: Annotated[str, StringConstraints(max_length=200)] = ""
    person_id: Id | None = None
    readers: Readers = Field(default_factory=list, description=_READERS)


class OperatorUpdate(Update):
    nullable = frozenset({"person_id"})

    roles: list[Role] | None = None
    display_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    person_id: Id | None = None
    disabled: bool | None = None
    password: Password | None = None
    readers: Readers | None = Field(default=None, description=_READERS)


class OperatorPublic(VersionedPublic):
    username: str
    display_name: str
    roles: list[str]
    person_id: int | None
    disabled: bool
    readers: list[int]


class Me(Public):
    id: int
    username: str
    roles: list[str]
    permissions: list[str]
    #: The readers a door_reader account serves; null for other accounts.
    readers: list[int] | None = None
