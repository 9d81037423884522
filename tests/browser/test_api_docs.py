"""/docs and /redoc in a real browser with no internet (issue 15): the pages render the API
from what accessd serves itself, and nothing they load leaves the machine.

tests/service/api/test_docs_offline.py reads the HTML; these run it in Chromium, which
also follows what the scripts load at run time (a logo, a font, a worker).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Tab
from tests.browser.served import Served

pytestmark = pytest.mark.asyncio(loop_scope="session")

LOGIN = ("post", "/v1/auth/token")


def _operation(accessd: Served, method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = accessd.openapi["paths"][path][method]
    return op


def _swagger_id(tag: str, op: dict[str, Any]) -> str:
    # Swagger UI's DOM id of an operation listed under a tag (its deep-link anchor).
    return f"operations-{tag}-{op['operationId']}"


async def test_swagger_ui_lists_every_operation_of_the_openapi_document(
    tab: Tab, accessd: Served
) -> None:
    page = tab.page
    await page.goto(f"{accessd.url}/docs")
    # Swagger UI lists an operation under each of its tags.
    expected = sorted(
        _swagger_id(tag, op) for _, _, op in accessd.operations() for tag in op["tags"]
    )
    blocks = page.locator(".opblock")
    await expect(blocks).to_have_count(len(expected))
    assert sorted(await blocks.evaluate_all("els => els.map(e => e.id)")) == expected
    await expect(page.locator(".info .title")).to_contain_text(accessd.openapi["info"]["title"])
    method, path = LOGIN
    login = page.locator(f'.opblock-{method} .opblock-summary-path[data-path="{path}"]')
    await expect(login).to_be_visible()
    # Whatever the scripts fetch once the page is up (icons, fonts) counts too.
    await page.wait_for_load_state("networkidle")
    tab.watch.assert_clean()


async def test_swagger_ui_expands_an_operation_and_logs_in_through_the_api(
    tab: Tab, accessd: Served
) -> None:
    page = tab.page
    await page.goto(f"{accessd.url}/docs")
    method, path = LOGIN
    op = _operation(accessd, method, path)
    block = page.locator(f"#{_swagger_id(op['tags'][0], op)}")
    body = block.locator(".opblock-body")
    await expect(body).to_have_count(0)
    await block.locator(".opblock-summary").click()
    await expect(body).to_be_visible()
    await expect(body).to_contain_text(op["description"].split("\n")[0])

    await block.get_by_role("button", name="Try it out").click()
    credentials = {"username": accessd.operators["admin"], "password": accessd.password}
    await block.locator("textarea.body-param__text").fill(json.dumps(credentials))
    async with page.expect_response(f"{accessd.url}{path}") as answer:
        await block.get_by_role("button", name="Execute").click()
    assert (await answer.value).status == 200
    live = block.locator(".live-responses-table")
    await expect(live.locator("tbody .response-col_status")).to_have_text("200")
    await expect(live).to_contain_text('"token_type": "bearer"')
    tab.watch.assert_clean()


async def test_swagger_ui_authorized_with_a_token_sends_it_and_shows_who_is_logged_in(
    tab: Tab, accessd: Served
) -> None:
    """The operator's way through /docs: paste a token into Authorize, call an operation
    that needs one. The page must send it as the bearer scheme accessd publishes."""
    page = tab.page
    token = accessd.token("auditor")
    await page.goto(f"{accessd.url}/docs")
    await page.locator(".auth-wrapper .authorize").click()
    dialog = page.locator(".modal-ux")
    await dialog.locator(".auth-container input").fill(token)
    await dialog.get_by_role("button", name="Apply credentials").click()
    await dialog.get_by_role("button", name="Close").click()

    path = "/v1/auth/me"
    op = _operation(accessd, "get", path)
    block = page.locator(f"#{_swagger_id(op['tags'][0], op)}")
    await block.locator(".opblock-summary").click()
    await block.get_by_role("button", name="Try it out").click()
    async with page.expect_request(f"{accessd.url}{path}") as sent:
        await block.get_by_role("button", name="Execute").click()
    request = await sent.value
    assert (await request.all_headers())["authorization"] == f"Bearer {token}"
    response = await request.response()
    assert response is not None and response.status == 200
    assert (await response.json())["roles"] == ["auditor"]
    live = block.locator(".live-responses-table")
    await expect(live.locator("tbody .response-col_status")).to_have_text("200")
    await expect(live).to_contain_text(accessd.operators["auditor"])
    tab.watch.assert_clean()


async def test_redoc_shows_the_api_title_and_every_operation(tab: Tab, accessd: Served) -> None:
    page = tab.page
    await page.goto(f"{accessd.url}/redoc")
    info = accessd.openapi["info"]
    await expect(page.locator("h1")).to_have_text(f"{info['title']} ({info['version']})")
    # ReDoc gives each operation a section in the middle column, under its first tag.
    expected = sorted(
        f"tag/{op['tags'][0]}/operation/{op['operationId']}" for _, _, op in accessd.operations()
    )
    sections = page.locator("div[id^='tag/'][id*='/operation/']")
    await expect(sections).to_have_count(len(expected))
    assert sorted(await sections.evaluate_all("els => els.map(e => e.id)")) == expected
    login = _operation(accessd, *LOGIN)
    section = page.locator(f"[id='tag/{login['tags'][0]}/operation/{login['operationId']}']")
    await expect(section.locator("h2")).to_have_text(login["summary"])
    # What ReDoc fetches is the next test's; this one is about what it renders.
    assert tab.watch.seen().page_errors == []


async def test_redoc_loads_nothing_from_outside(tab: Tab, accessd: Served) -> None:
    """ReDoc 2.x's bundle loads its sidebar logo from https://cdn.redoc.ly/ with no option
    to turn it off (Redocly/redoc#2108); accessd serves the bundle with that address
    replaced (accessd.api.docs_pages)."""
    page = tab.page
    await page.goto(f"{accessd.url}/redoc")
    await expect(page.locator("h1")).to_be_visible()
    # The logo is requested once the side menu is mounted, after the title.
    await expect(page.get_by_role("menuitem").first).to_be_visible()
    await page.wait_for_load_state("networkidle")
    tab.watch.assert_clean()
