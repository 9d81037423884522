"""Helpers shared by the use cases: loading by id, optimistic versions, field updates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from accessd.db.base import Base
from accessd.errors import InvalidInput, NotFound, PreconditionFailed, PreconditionRequired

M = TypeVar("M", bound=Base)


async def get_or_404(
    session: AsyncSession, model: type[M], key: object, *, lock: bool = False
) -> M:
    obj = await session.get(model, key, with_for_update=lock or None)
    if obj is None:
        raise NotFound(f"{model.__name__.lower()} {key} does not exist")
    return obj


async def referenced(session: AsyncSession, model: type[M], key: int, field: str) -> M:
    """The record `field` names; InvalidInput `bad_reference` when there is none."""
    row = await session.get(model, key)
    if row is None:
        raise InvalidInput(
            f"{field}: {model.__name__.lower()} {key} does not exist", code="bad_reference"
        )
    return row


def check_version(obj: Any, expected: int | None, *, required: bool = True) -> None:
    """Refuses a write based on a stale read (lost update) or made without a version."""
    if expected is None:
        if required:
            raise PreconditionRequired(
                "send If-Match with the ETag of the version you read, so no update is lost"
            )
        return
    if obj.version != expected:
        raise PreconditionFailed(
            f"version {expected} is stale: the record is at version {obj.version}",
            current_version=obj.version,
        )


def apply_changes(obj: Any, changes: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Sets the changed fields and returns {field: [old, new]} for the audit log."""
    diff: dict[str, list[Any]] = {}
    for name, value in changes.items():
        old = getattr(obj, name)
        if old != value:
            setattr(obj, name, value)
            diff[name] = [old, value]
    return diff
