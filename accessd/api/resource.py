"""The routes of a resource edited through `services.crud`, built alike for every kind:

    GET    /v1/<path>            a page, optionally filtered by parent ids
    POST   /v1/<path>            create (201, ETag, Location)
    GET    /v1/<path>/{item_id}  read (ETag)
    PATCH  /v1/<path>/{item_id}  update, If-Match required (only when there is an update schema)
    DELETE /v1/<path>/{item_id}  delete, If-Match required (204)

A resource whose rows need more than the kind's own fields (a level's doors, a calendar's
days) overrides `create`, `update` or `present` in a subclass and adds its own routes to
the router `router()` returns.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at run
# time, and `Depends(filtered)` names a local of `router()` that a string could not.
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.api.deps import AfterQuery, IdPath, IdQuery, IfMatchDep, SessionDep, etag, require
from accessd.api.paging import LimitQuery, rows_after
from accessd.api.schemas.common import Input, Page, Update
from accessd.auth.permissions import Permission
from accessd.services import crud
from accessd.services.actors import Actor
from accessd.services.crud import Kind, M
from accessd.services.records import get_or_404

C = TypeVar("C", bound=Input)
U = TypeVar("U", bound=Update)
P = TypeVar("P", bound=BaseModel)

Reading = Annotated[Actor, Depends(require(Permission.FACILITIES_READ))]
Writing = Annotated[Actor, Depends(require(Permission.FACILITIES_WRITE))]

#: A list's filter: a dependency that reads its query parameters and returns
#: {column: value}, None for "any".
Filter = Callable[..., dict[str, int | None]]


def unfiltered() -> dict[str, int | None]:
    return {}


def by_facility(facility_id: IdQuery = None) -> dict[str, int | None]:
    return {"facility_id": facility_id}


def by_area(area_id: IdQuery = None) -> dict[str, int | None]:
    return {"area_id": area_id}


def by_door(door_id: IdQuery = None) -> dict[str, int | None]:
    return {"door_id": door_id}


def public_of(schema: type[P], row: object, **extra: Any) -> P:
    """`schema` filled from the row's attributes, and from `extra` for those it lacks."""
    names = schema.model_fields
    return schema.model_validate({n: extra[n] if n in extra else getattr(row, n) for n in names})


def _body(handler: Callable[..., Any], schema: type[BaseModel]) -> None:
    """Tells FastAPI the request body's model. The handler is written once for every
    resource, so its `body` annotation is a type variable that FastAPI cannot read."""
    handler.__annotations__["body"] = schema


class Resource(Generic[M, C, U, P]):
    """A kind of policy record on the API: its path, schemas and list filter."""

    def __init__(
        self,
        path: str,
        kind: Kind[M],
        create_schema: type[C],
        update_schema: type[U] | None,
        public_schema: type[P],
        *,
        filtered: Filter = unfiltered,
        tags: tuple[str, ...] = (),
    ) -> None:
        self.path = path
        self.kind: Kind[M] = kind
        self.create_schema = create_schema
        self.update_schema = update_schema
        self.public_schema = public_schema
        self.filtered = filtered
        self.tags = tags or (path,)

    async def create(self, session: AsyncSession, actor: Actor, body: C) -> M:
        return await crud.create(session, actor, self.kind, body.model_dump())

    async def update(
        self, session: AsyncSession, actor: Actor, key: int, body: U, version: int | None
    ) -> M:
        return await crud.update(session, actor, self.kind, key, body.changes(), version)

    async def present(self, session: AsyncSession, row: M) -> P:
        """The row as the API shows it."""
        del session  # for presenters that read related rows
        return self.public_schema.model_validate(row)

    def router(self) -> APIRouter:
        router = APIRouter(prefix=f"/v1/{self.path}", tags=list(self.tags))
        model, noun = self.kind.model, self.kind.entity.value
        filtered = self.filtered

        async def list_items(
            session: SessionDep,
            _: Reading,
            where: Annotated[dict[str, int | None], Depends(filtered)],
            after: AfterQuery = 0,
            limit: LimitQuery = 100,
        ) -> Page[P]:
            stmt = select(model)
            for column, value in where.items():
                if value is not None:
                    stmt = stmt.where(getattr(model, column) == value)
            page = await rows_after(session, stmt, model.id, after=after, limit=limit)
            items = [await self.present(session, row) for row in page.items]
            return Page(items=items, next_after=page.next_after)

        async def create_item(
            body: C, session: SessionDep, response: Response, actor: Writing
        ) -> P:
            row = await self.create(session, actor, body)
            await session.commit()
            response.headers["ETag"] = etag(row.version)
            response.headers["Location"] = f"/v1/{self.path}/{row.id}"
            return await self.present(session, row)

        async def get_item(
            item_id: IdPath, session: SessionDep, response: Response, _: Reading
        ) -> P:
            row = await get_or_404(session, model, item_id)
            response.headers["ETag"] = etag(row.version)
            return await self.present(session, row)

        async def update_item(
            item_id: IdPath,
            body: U,
            session: SessionDep,
            response: Response,
            version: IfMatchDep,
            actor: Writing,
        ) -> P:
            row = await self.update(session, actor, item_id, body, version)
            await session.commit()
            response.headers["ETag"] = etag(row.version)
            return await self.present(session, row)

        async def delete_item(
            item_id: IdPath, session: SessionDep, version: IfMatchDep, actor: Writing
        ) -> None:
            await crud.delete(session, actor, self.kind, item_id, version)
            await session.commit()

        # Named for the OpenAPI operation ids: list_areas, create_area, …
        handlers: list[tuple[str, Callable[..., Coroutine[Any, Any, Any]]]] = [
            (f"list_{self.path.replace('-', '_')}", list_items),
            (f"create_{noun}", create_item),
            (f"get_{noun}", get_item),
            (f"update_{noun}", update_item),
            (f"delete_{noun}", delete_item),
        ]
        for name, handler in handlers:
            handler.__name__ = name
        _body(create_item, self.create_schema)
        # Page[schema] for a schema known only now: subscripting with a variable is what
        # Page[...] does, but a type checker takes that for a type expression.
        public, page = self.public_schema, Page.__class_getitem__(self.public_schema)
        router.add_api_route("", list_items, methods=["GET"], response_model=page)
        router.add_api_route(
            "",
            create_item,
            methods=["POST"],
            response_model=public,
            status_code=status.HTTP_201_CREATED,
        )
        router.add_api_route("/{item_id}", get_item, methods=["GET"], response_model=public)
        if self.update_schema is not None:
            _body(update_item, self.update_schema)
            router.add_api_route(
                "/{item_id}", update_item, methods=["PATCH"], response_model=public
            )
        router.add_api_route(
            "/{item_id}", delete_item, methods=["DELETE"], status_code=status.HTTP_204_NO_CONTENT
        )
        return router
