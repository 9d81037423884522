"""One page of a list, by keyset: the rows after the cursor the previous page returned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from accessd.api.schemas.common import Page

R = TypeVar("R")
T = TypeVar("T")

LimitQuery = Annotated[int, Query(ge=1, le=1000)]


async def rows_after(
    session: AsyncSession,
    stmt: Select[R],
    key: InstrumentedAttribute[int],
    *,
    after: int,
    limit: int,
) -> Page[R]:
    """Up to `limit` rows of `stmt` whose `key` is above `after`, in key order. The page
    ends the list when it is not full; a full one may be followed by an empty one."""
    found = await session.scalars(stmt.where(key > after).order_by(key).limit(limit))
    rows = list(found.all())
    last: Any = getattr(rows[-1], key.key) if len(rows) == limit else None
    return Page(items=rows, next_after=last)


def shown(page: Page[R], present: Callable[[R], T]) -> Page[T]:
    """The same page with each row as the API shows it."""
    return Page(items=[present(r) for r in page.items], next_after=page.next_after)
