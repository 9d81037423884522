"""/metrics counts background tasks that failed, by owner (drivers/tasks.py)."""

from __future__ import annotations

import asyncio

import httpx

from drivers.tasks import FAILURES, TaskSet
from tests.conftest import Operators


async def broken() -> None:
    await asyncio.sleep(0)
    raise RuntimeError("background bug")


async def test_a_failed_background_task_shows_in_metrics(
    client: httpx.AsyncClient, ops: Operators
) -> None:
    tasks = TaskSet("metrics-test-owner")
    await asyncio.wait([tasks.spawn(broken())])
    await asyncio.sleep(0)
    text = (await client.get("/metrics", headers=await ops.headers("auditor"))).text
    expected = FAILURES["metrics-test-owner"]
    assert expected >= 1
    assert (
        f'accessd_background_task_failures_total{{owner="metrics-test-owner"}} {expected}.0' in text
    )
