"""/readyz says when a writer cannot store what it holds for another reason than the
database being away (issue 15: a refused batch retried forever while /healthz said ok)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from policies.decision import AccessRequest, Decision, Reason


async def test_a_writer_whose_batch_is_refused_makes_readyz_say_failing(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = client._transport.app.state.accessd  # type: ignore[attr-defined]
    store = state.decisions.store
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["parts"]["decision_writer"]["state"] == "ok"

    async def refused(items: list[Any]) -> int:
        raise ValueError("a value the database refuses")

    monkeypatch.setattr(store, "_write_batch", refused)
    request = AccessRequest(reader_id=1, at=datetime.now(UTC), id_kind="card_uuid", id_value="x")
    store.add(Decision(granted=False, reason=Reason.UNKNOWN_CREDENTIAL), request, "test")
    await store.flush()
    failing = await client.get("/readyz")
    assert failing.status_code == 503
    part = failing.json()["parts"]["decision_writer"]
    assert (part["state"], part["queued"], part["failures"]) == ("failing", 1, 1)

    monkeypatch.undo()
    await store.flush()
    again = await client.get("/readyz")
    assert again.status_code == 200 and again.json()["parts"]["decision_writer"]["state"] == "ok"
