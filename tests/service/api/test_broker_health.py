"""/healthz, /readyz and /metrics with the MQTT gateway on (issue 15): with the broker away
the service is up and serving but degraded, and /readyz says which link is down, since
when and why, without a secret; with the broker there, every part is ready."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from accessd.api.app import create_app
from accessd.config import Settings
from accessd.events import EventBus
from drivers.mqtt.access import SERVICE_USER
from tests.conftest import Operators
from tests.dead_ports import refusing_port
from tests.helpers import ok
from tests.mqtt_broker import MosquittoBroker, mosquitto, mqtt_users

__all__ = ["mosquitto", "mqtt_users"]  # fixtures these tests use

Serve = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def serve(settings: Settings, engine: AsyncEngine, bus: EventBus) -> Serve:
    @asynccontextmanager
    async def serving(**changes: object) -> AsyncIterator[httpx.AsyncClient]:
        changed = Settings.model_validate(settings.model_dump() | changes)
        app = create_app(changed, engine=engine, bus=bus)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://accessd.test"
            ) as client,
        ):
            yield client

    return serving


async def test_with_the_broker_away_the_api_serves_and_says_it_is_degraded(
    serve: Serve, ops: Operators
) -> None:
    port = refusing_port()
    password = "broker-password-never-shown"
    async with serve(
        mqtt_gateway=True,
        mqtt_url=f"mqtt://127.0.0.1:{port}",
        mqtt_password=password,
        mqtt_client_id="accessd-away",
    ) as client:
        health = ok(await client.get("/healthz"))  # 200: alive, a restart brings no broker
        assert (health["status"], health["database"], health["mqtt"]) == (
            "degraded",
            "ok",
            "down",
        )
        auditor = await ops.headers("auditor")
        assert ok(await client.get("/v1/people", headers=auditor)) is not None

        async def attempts() -> int:
            body = (await client.get("/readyz")).json()
            return min(int(body["parts"]["mqtt"][r]["attempts"]) for r in ("feeds", "requests"))

        count = 0
        for _ in range(200):
            count = await attempts()
            if count >= 2:
                break
            await asyncio.sleep(0.05)
        assert count >= 2, "the links stopped trying"
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "not_ready"
        mqtt = body["parts"]["mqtt"]
        assert mqtt["state"] == "down"
        for role in ("feeds", "requests"):
            link = mqtt[role]
            assert link["state"] == "down" and link["broker"] == f"127.0.0.1:{port}"
            assert link["since"] and link["seconds"] >= 0
            assert "MqttUnreachable" in link["last_error"]
        assert body["parts"]["database"]["state"] == "ok"
        assert password not in ready.text
        metrics = (await client.get("/metrics", headers=auditor)).text
        assert 'accessd_mqtt_connected{link="feeds"} 0.0' in metrics
        assert 'accessd_mqtt_connect_failures_total{link="requests"}' in metrics
        assert password not in metrics


async def test_with_the_broker_there_every_part_is_ready(
    serve: Serve,
    ops: Operators,
    mosquitto: MosquittoBroker,
    mqtt_users: dict[str, str],
) -> None:
    async with serve(
        mqtt_gateway=True,
        mqtt_url=f"mqtt://127.0.0.1:{mosquitto.port}",
        mqtt_username=SERVICE_USER,
        mqtt_password=mqtt_users[SERVICE_USER],
        mqtt_client_id="accessd-there",
    ) as client:
        health = ok(await client.get("/healthz"))
        assert (health["status"], health["mqtt"]) == ("ok", "connected")
        body = ok(await client.get("/readyz"))
        assert body["status"] == "ready"
        mqtt = body["parts"]["mqtt"]
        assert mqtt["state"] == "connected"
        assert mqtt["feeds"]["state"] == mqtt["requests"]["state"] == "connected"
        assert "attempts" not in mqtt["feeds"]
        metrics = (await client.get("/metrics", headers=await ops.headers("auditor"))).text
        assert 'accessd_mqtt_connected{link="requests"} 1.0' in metrics
        assert 'accessd_mqtt_connections_total{link="feeds"} 1.0' in metrics


async def test_without_a_gateway_the_checks_name_no_broker(serve: Serve) -> None:
    async with serve() as client:
        health = ok(await client.get("/healthz"))
        assert health["status"] == "ok" and "mqtt" not in health
        assert "mqtt" not in ok(await client.get("/readyz"))["parts"]
