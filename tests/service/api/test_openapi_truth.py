"""The OpenAPI document tells the truth (accessd/api/openapi.py): If-Match is required
where the API refuses an update without it, and every refusal it can give is documented as
problem+json. That the running API gives only documented answers is checked by the
schemathesis run in test_bad_input.py (status, content type, headers and body)."""

from __future__ import annotations

from typing import Any

import httpx


async def test_if_match_is_required_where_an_update_is_refused_without_it(
    client: httpx.AsyncClient,
) -> None:
    spec: dict[str, Any] = (await client.get("/openapi.json")).json()
    seen = 0
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for param in op.get("parameters", []):
                if param["name"].lower() != "if-match":
                    continue
                seen += 1
                responses = op["responses"]
                assert "412" in responses, (method, path)
                if method in {"patch", "delete", "put"}:
                    assert param["required"] is True, (method, path)
                    assert "428" in responses, (method, path)
                else:  # a lifecycle action takes the version when given
                    assert not param.get("required"), (method, path)
    assert seen > 20


async def test_refusals_are_documented_as_problem_details(client: httpx.AsyncClient) -> None:
    spec: dict[str, Any] = (await client.get("/openapi.json")).json()
    assert "Problem" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    person = spec["paths"]["/v1/people/{person_id}"]["patch"]["responses"]
    assert set(person) >= {"200", "401", "403", "404", "409", "412", "422", "428", "503"}
    for code, response in person.items():
        if code.startswith(("4", "5")):
            assert list(response["content"]) == ["application/problem+json"], code
    assert "Retry-After" in person["503"]["headers"]
    login = spec["paths"]["/v1/auth/token"]["post"]["responses"]
    assert {"401", "429"} <= set(login) and "Retry-After" in login["429"]["headers"]
    assert "503" in spec["paths"]["/readyz"]["get"]["responses"]
