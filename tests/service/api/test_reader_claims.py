"""Out of the box a reader's word proves nothing a card or a signed claim can prove: a bare
"pki_cak", "pin" or "sm_auth" claim opens no controlled area (require_card_proofs is on by
default; sites whose readers cannot answer challenges yet turn it off explicitly)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.config import Settings
from tests.conftest import Operators
from tests.helpers import ok
from tests.service.api.test_decisions_api import MONDAY_10AM, ask, setup_site


def test_card_proofs_are_required_by_default() -> None:
    assert Settings().require_card_proofs is True


@pytest.mark.parametrize(
    "claims", [["pki_cak"], ["pki_cak", "pin"], ["sm_auth"], ["pki_auth", "pin", "bio"]]
)
async def test_the_built_in_default_refuses_bare_claims_for_a_controlled_area(
    client: httpx.AsyncClient,
    ops: Operators,
    sessions: async_sessionmaker[AsyncSession],
    claims: list[str],
) -> None:
    site = await setup_site(client, ops, sessions)
    door = await ops.headers("door_reader", readers=[site["main"]])
    answer = ok(
        await client.post(
            "/v1/decisions", json=ask(site["main"], MONDAY_10AM, *claims), headers=door
        )
    )
    assert (answer["granted"], answer["reason"], answer["required"]) == (
        False,
        "factors_missing",
        ["card_authentication"],
    ), answer
