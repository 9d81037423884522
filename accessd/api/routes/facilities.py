"""Facilities, areas, panels, doors and readers: one CRUD router each, built alike."""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel

from accessd.api.deps import AfterQuery, IdPath, IdQuery, IfMatchDep, SessionDep, etag, require
from accessd.api.schemas import facilities as s
from accessd.api.schemas.common import Page, Update
from accessd.auth.permissions import Permission
from accessd.models import Area, Door, Facility, Panel, Reader
from accessd.services import facilities
from accessd.services.actors import Actor
from accessd.services.facilities import R
from accessd.services.records import get_or_404

Reading = Annotated[Actor, Depends(require(Permission.FACILITIES_READ))]
Writing = Annotated[Actor, Depends(require(Permission.FACILITIES_WRITE))]
Handler = Callable[..., Coroutine[Any, Any, Any]]


def crud_router(
    path: str,
    model: type[R],
    create_schema: type[BaseModel],
    update_schema: type[Update],
    public_schema: type[BaseModel],
    filters: tuple[str, ...] = (),
) -> APIRouter:
    """List, create, read, update (If-Match) and delete (If-Match) for one record type."""
    router = APIRouter(prefix=f"/v1/{path}", tags=[path])
    noun = model.__name__.lower()

    async def list_items(
        session: SessionDep,
        _: Reading,
        after: AfterQuery = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        facility_id: IdQuery = None,
        area_id: IdQuery = None,
        door_id: IdQuery = None,
    ) -> Any:
        given = {"facility_id": facility_id, "area_id": area_id, "door_id": door_id}
        rows = await facilities.list_records(
            session,
            model,
            after=after,
            limit=limit,
            filters={k: v for k, v in given.items() if k in filters},
        )
        return {"items": rows, "next_after": rows[-1].id if len(rows) == limit else None}

    async def create_item(
        body: create_schema,  # type: ignore[valid-type]
        session: SessionDep,
        response: Response,
        actor: Writing,
    ) -> Any:
        data = cast(BaseModel, body).model_dump()
        obj = await facilities.create(session, actor, model, data)
        await session.commit()
        response.headers["ETag"] = etag(obj.version)
        response.headers["Location"] = f"/v1/{path}/{obj.id}"
        return obj

    async def get_item(item_id: IdPath, session: SessionDep, response: Response, _: Reading) -> Any:
        obj = await get_or_404(session, model, item_id)
        response.headers["ETag"] = etag(obj.version)
        return obj

    async def update_item(
        item_id: IdPath,
        body: update_schema,  # type: ignore[valid-type]
        session: SessionDep,
        response: Response,
        version: IfMatchDep,
        actor: Writing,
    ) -> Any:
        changes = cast(Update, body).changes()
        obj = await facilities.update(session, actor, model, item_id, changes, version)
        await session.commit()
        response.headers["ETag"] = etag(obj.version)
        return obj

    async def delete_item(
        item_id: IdPath, session: SessionDep, version: IfMatchDep, actor: Writing
    ) -> None:
        await facilities.delete(session, actor, model, item_id, version)
        await session.commit()

    for fn, verb in (
        (list_items, "list"),
        (create_item, "create"),
        (get_item, "get"),
        (update_item, "update"),
        (delete_item, "delete"),
    ):
        fn.__name__ = f"{verb}_{noun}"
    router.add_api_route("", list_items, methods=["GET"], response_model=Page[public_schema])  # type: ignore[valid-type]
    router.add_api_route(
        "",
        create_item,
        methods=["POST"],
        response_model=public_schema,
        status_code=status.HTTP_201_CREATED,
    )
    router.add_api_route("/{item_id}", get_item, methods=["GET"], response_model=public_schema)
    router.add_api_route("/{item_id}", update_item, methods=["PATCH"], response_model=public_schema)
    router.add_api_route(
        "/{item_id}", delete_item, methods=["DELETE"], status_code=status.HTTP_204_NO_CONTENT
    )
    return router


facilities_router = crud_router(
    "facilities", Facility, s.FacilityCreate, s.FacilityUpdate, s.FacilityPublic
)
areas_router = crud_router(
    "areas", Area, s.AreaCreate, s.AreaUpdate, s.AreaPublic, ("facility_id",)
)
panels_router = crud_router(
    "panels", Panel, s.PanelCreate, s.PanelUpdate, s.PanelPublic, ("facility_id",)
)
doors_router = crud_router("doors", Door, s.DoorCreate, s.DoorUpdate, s.DoorPublic, ("area_id",))
readers_router = crud_router(
    "readers", Reader, s.ReaderCreate, s.ReaderUpdate, s.ReaderPublic, ("door_id",)
)
routers = [facilities_router, areas_router, panels_router, doors_router, readers_router]
