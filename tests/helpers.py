"""Small helpers the API tests share."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx

TODAY = date.today()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json() if response.content else None


def problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


async def make_person(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    affiliation: str = "employee",
    external_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {"given_name": "Pat", "family_name": "Doe", "affiliation": affiliation, **extra}
    if external_id:
        body["external_id"] = external_id
    result: dict[str, Any] = ok(await client.post("/v1/people", json=body, headers=headers), 201)
    return result


async def adjudicate(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    person_id: int,
    outcome: str = "favorable",
) -> dict[str, Any]:
    current = await client.get(f"/v1/people/{person_id}/security", headers=headers)
    version = ok(current)["version"]
    result: dict[str, Any] = ok(
        await client.patch(
            f"/v1/people/{person_id}/security",
            json={"adjudication": outcome},
            headers={**headers, "If-Match": f'"{version}"'},
        )
    )
    return result


async def sponsor(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    person_id: int,
    *,
    kind: str = "piv",
    days: int = 365 * 5,
    **extra: Any,
) -> dict[str, Any]:
    # From yesterday: validity is checked in the facility's own date, which west of UTC is
    # still yesterday for hours after UTC midnight.
    start = TODAY - timedelta(days=1)
    body = {
        "person_id": person_id,
        "kind": kind,
        "valid_from": start.isoformat(),
        "valid_until": (start + timedelta(days=days)).isoformat(),
        **extra,
    }
    result: dict[str, Any] = ok(
        await client.post("/v1/credentials", json=body, headers=headers), 201
    )
    return result


async def act(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    credential_id: int,
    action: str,
    reason: str = "",
) -> httpx.Response:
    return await client.post(
        f"/v1/credentials/{credential_id}/{action}", json={"reason": reason}, headers=headers
    )


def upcoming(weekday: int, hour_utc: int = 15) -> str:
    """The next ``weekday`` (0 Monday) after today at ``hour_utc``:00Z, ISO 8601: a moment
    inside every credential's validity, whatever day the tests run (dates must not rot)."""
    days = (weekday - TODAY.weekday()) % 7 or 7
    return f"{(TODAY + timedelta(days=days)).isoformat()}T{hour_utc:02d}:00:00Z"


def upcoming_christmas() -> date:
    """The next 25 December after today."""
    this_year = date(TODAY.year, 12, 25)
    return this_year if this_year > TODAY else date(TODAY.year + 1, 12, 25)
