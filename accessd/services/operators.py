"""Operator accounts: who may log in, with which roles. Their bearer tokens are
accessd.auth.tokens'."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.auth import tokens
from accessd.auth.passwords import hash_password
from accessd.errors import Conflict, InvalidInput, LifecycleRefused
from accessd.models import Operator, Reader
from accessd.models.enums import Entity, Role
from accessd.services import audit
from accessd.services.actors import Actor
from accessd.services.records import apply_changes, check_version, get_or_404

__all__ = [
    "actor_of",
    "create_operator",
    "get_operator",
    "update_operator",
    "validate_roles",
]


def actor_of(op: Operator) -> Actor:
    bound = Role.DOOR_READER.value in op.roles
    readers = frozenset(op.readers or ()) if bound else None
    return Actor(op.id, op.username, frozenset(op.roles), op.person_id, readers)


def validate_roles(roles: Iterable[str]) -> list[str]:
    out = []
    for r in roles:
        try:
            out.append(Role(r).value)
        except ValueError:
            valid = ", ".join(x.value for x in Role)
            raise InvalidInput(f"unknown role {r!r}; roles are {valid}") from None
    if not out:
        raise InvalidInput("an operator needs at least one role")
    return sorted(set(out))


async def validate_readers(
    session: AsyncSession, readers: Iterable[int], roles: Collection[str]
) -> list[int]:
    """The readers an account serves, sorted; only a door_reader serves any, and each must
    exist (a typo would otherwise bind a device to nothing, or to a reader added later)."""
    wanted = sorted(set(readers))
    if wanted and Role.DOOR_READER.value not in roles:
        raise InvalidInput(
            "only a door_reader account is bound to readers", code="readers_without_door_reader"
        )
    if wanted:
        found = set(await session.scalars(select(Reader.id).where(Reader.id.in_(wanted))))
        unknown = [r for r in wanted if r not in found]
        if unknown:
            raise InvalidInput(f"no reader {', '.join(map(str, unknown))}", code="unknown_reader")
    return wanted


async def create_operator(
    session: AsyncSession,
    actor: Actor,
    *,
    username: str,
    password: str,
    roles: Iterable[str],
    display_name: str = "",
    person_id: int | None = None,
    readers: Iterable[int] = (),
) -> Operator:
    if await session.scalar(select(Operator.id).where(Operator.username == username)):
        raise Conflict(f"operator {username!r} exists already", code="username_taken")
    try:
        pw_hash = hash_password(password)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="weak_password") from exc
    valid_roles = validate_roles(roles)
    op = Operator(
        username=username,
        display_name=display_name,
        password_hash=pw_hash,
        roles=valid_roles,
        person_id=person_id,
        readers=await validate_readers(session, readers, valid_roles),
    )
    session.add(op)
    await session.flush()
    await audit.record(
        session,
        actor=actor.label,
        action="operator.create",
        entity=Entity.OPERATOR,
        entity_id=op.id,
        data={
            "username": username,
            "roles": op.roles,
            "person_id": person_id,
            "readers": op.readers,
        },
    )
    return op


async def get_operator(session: AsyncSession, operator_id: int) -> Operator:
    return await get_or_404(session, Operator, operator_id)


async def update_operator(
    session: AsyncSession,
    actor: Actor,
    operator_id: int,
    changes: Mapping[str, Any],
    expected_version: int | None,
) -> Operator:
    op = await get_operator(session, operator_id)
    check_version(op, expected_version)
    changes = dict(changes)
    password = changes.pop("password", None)
    if "roles" in changes:
        changes["roles"] = validate_roles(str(r) for r in changes["roles"])
    if "roles" in changes or "readers" in changes:
        roles = changes.get("roles", op.roles)
        if "readers" in changes or Role.DOOR_READER.value not in roles:
            # A binding outlives no door_reader role: dropping the role drops it too.
            kept = changes.get("readers", op.readers if Role.DOOR_READER.value in roles else [])
            changes["readers"] = await validate_readers(session, kept, roles)
    demoted = "roles" in changes and Role.ADMIN.value not in changes["roles"]
    if op.id == actor.operator_id and (changes.get("disabled") or demoted):
        raise Conflict("an admin may not disable or demote their own account", code="self_lockout")
    if (
        op.id == actor.operator_id
        and "person_id" in changes
        and changes["person_id"] != op.person_id
    ):
        # Unlinked from their own person record, an operator could act on their own
        # credential; relinking is another admin's job too.
        raise LifecycleRefused(
            "an operator may not change which person record their own account is",
            code="self_dealing",
        )
    diff = apply_changes(op, changes)
    if isinstance(password, str):
        try:
            op.password_hash = hash_password(password)
        except ValueError as exc:
            raise InvalidInput(str(exc), code="weak_password") from exc
        diff["password"] = ["…", "…"]  # that it changed, never what it is
    if diff:
        await session.flush()
        await audit.record(
            session,
            actor=actor.label,
            action="operator.update",
            entity=Entity.OPERATOR,
            entity_id=op.id,
            data={"changes": diff},
        )
    # A token carries the terms it was issued under: a new password (a reset after a
    # suspected compromise, above all), other roles or a disabled account end them all,
    # the caller's own included when they changed their own.
    why = [k for k in ("password", "roles", "disabled") if k in diff]
    if why:
        await tokens.revoke_all(session, op.id, why=", ".join(why) + " changed", actor=actor.label)
    elif "readers" in diff:
        # Tokens stay (a device keeps its login) but carry no stale binding: the next
        # request reads it afresh here, other instances within their recheck time.
        tokens.forget_cached(session, op.id)
    return op
