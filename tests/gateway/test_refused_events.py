"""What panels send that the database would refuse, through a real Mosquitto (issue 15):
an unstorable event is dead-lettered and confirmed while the events around it, from every
panel, are stored and confirmed; a row refused for a reason nobody foresaw is isolated
from its batch; a flood of malformed messages from one panel stores at most its budget;
a decision request whose ``at`` cannot be taken to UTC gets an error reply naming it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from accessd import budget as budget_module
from accessd.gateway import events as events_module
from accessd.models import PanelEvent
from drivers.mqtt.access import panel_client_id
from drivers.mqtt.client import MqttClient, MqttConfig
from drivers.mqtt.messages import ErrorReply, EventAck, decode
from drivers.mqtt.topics import PanelTopics
from tests.gateway.test_gateway import Site, site
from tests.mqtt_broker import mosquitto, mqtt_users
from tests.waiting import until

__all__ = ["mosquitto", "mqtt_users", "site"]  # fixtures these tests use

NOW = "2026-06-01T12:00:00+00:00"
OVERFLOWING = "0001-01-01T00:00:00+14:00"


class RawPanel:
    """A panel's own login publishing payloads as written, and hearing its acks and replies."""

    def __init__(self, site: Site, name: str, door: str) -> None:
        self.name = name
        self.topics = PanelTopics("hq", name)
        self.door = site.doors[door]
        self.client = MqttClient(
            MqttConfig(
                host="127.0.0.1",
                port=site.broker.port,
                # The broker binds each panel login to its own client id.
                client_id=panel_client_id("hq", name),
                username=f"hq.{name}",
                password=site.users[f"hq.{name}"],
            )
        )
        self.acked: set[int] = set()
        self.replies: list[ErrorReply] = []
        self.client.on_message(self._heard)
        self.sent: dict[int, str] = {}  # seq -> event id

    def _heard(self, msg: Any) -> None:
        if msg.topic == self.topics.ack:
            self.acked.update(decode(EventAck, msg.payload).seqs)
        elif msg.topic == self.topics.rsp:
            self.replies.append(decode(ErrorReply, msg.payload))

    async def event(
        self,
        seq: int,
        type: str = "door_pos",
        *,
        at: str = NOW,
        data: dict[str, Any] | None = None,
    ) -> str:
        event_id = str(uuid.uuid4())
        body = {
            "v": 1,
            "event_id": event_id,
            "seq": seq,
            "at": at,
            "type": type,
            "door": self.door,
            "data": {"open": True} if data is None else data,
        }
        # json.dumps writes NaN and escapes NUL as \\u0000, as a careless firmware might.
        await self.client.publish(self.topics.event(self.door, type), json.dumps(body).encode())
        self.sent[seq] = event_id
        return event_id


@asynccontextmanager
async def raw_panels(site: Site) -> AsyncIterator[tuple[RawPanel, RawPanel]]:
    p1, p2 = RawPanel(site, "p1", "Main entrance"), RawPanel(site, "p2", "Dock door")
    for p in (p1, p2):
        await p.client.connect()
        await p.client.subscribe([(p.topics.ack, 1), (p.topics.rsp, 1)])
    try:
        yield p1, p2
    finally:
        for p in (p1, p2):
            await p.client.disconnect()


async def rows(site: Site, panel: RawPanel) -> dict[str, PanelEvent]:
    """The panel's stored events by event id."""
    panel_id = site.gateway.directory.get("hq", panel.name)
    assert panel_id is not None
    async with site.sessions() as s:
        found = await s.scalars(select(PanelEvent).where(PanelEvent.panel_id == panel_id.id))
        return {r.event_id: r for r in found}


def all_confirmed(*panels: RawPanel) -> bool:
    return all(set(p.sent) <= p.acked for p in panels)


async def metrics_text(site: Site) -> str:
    headers = await site.ops.headers("auditor")
    response = await site.svc.client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return response.text


async def test_an_unstorable_event_is_dead_lettered_and_confirmed_and_every_other_stored(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=events_module.__name__)
    bad = {
        4: {"data": {"reading": float("nan")}},
        6: {"at": OVERFLOWING},
        8: {"data": {"door\x00": 1}},
    }
    async with raw_panels(site) as (p1, p2):
        for seq in range(1, 11):
            await p1.event(seq, "forced" if seq == 5 else "door_pos", **bad.get(seq, {}))
            await p2.event(seq)
        await until(lambda: all_confirmed(p1, p2), what="every event confirmed")
        # Events after the bad ones keep being stored.
        for seq in (11, 12):
            await p1.event(seq)
            await p2.event(seq)
        await until(lambda: all_confirmed(p1, p2), what="the later events confirmed")
        stored1, stored2 = await rows(site, p1), await rows(site, p2)

    assert {r.event_id for r in stored2.values() if r.source == "panel"} == set(p2.sent.values())
    for seq, event_id in p1.sent.items():
        row = stored1[event_id]
        if seq not in bad:
            assert (row.source, row.seq) == ("panel", seq)
            continue
        assert (row.source, row.type, row.alarm, row.seq) == ("accessd", "error", True, seq)
        assert row.data["what"] == "dead_letter" and row.data["type"] == "door_pos"
    assert "data.reading" in stored1[p1.sent[4]].data["reason"]
    # When the door was forced matters: the panel's time is kept where it was not the fault.
    assert stored1[p1.sent[4]].at == datetime.fromisoformat(NOW)
    assert stored1[p1.sent[6]].at.year == datetime.now(UTC).year
    assert stored1[p1.sent[6]].data["reason"].startswith("at:")
    assert stored1[p1.sent[6]].data["at"] == "0001-01-01T00:00:00+14:00"
    assert "NUL" in stored1[p1.sent[8]].data["reason"]
    assert stored1[p1.sent[8]].data["data"] == '{"door\\u0000": 1}'  # kept, printable
    assert stored1[p1.sent[5]].type == "forced" and stored1[p1.sent[5]].alarm
    assert site.gateway.events.dead_lettered == 3
    # Said once for the panel, not once an event.
    said = [r for r in caplog.records if r.name == events_module.__name__ and "dead" in r.msg]
    assert len(said) == 1, [r.getMessage() for r in said]
    assert 'accessd_panel_events_total{outcome="dead_lettered"} 3.0' in await metrics_text(site)


async def test_a_dead_lettered_event_sent_again_is_confirmed_again_and_stored_once(
    site: Site,
) -> None:
    async with raw_panels(site) as (p1, _p2):
        event_id = await p1.event(1, data={"reading": float("inf")})
        await until(lambda: 1 in p1.acked, what="the dead letter confirmed")
        p1.acked.clear()
        body = {"v": 1, "event_id": event_id, "seq": 1, "at": NOW, "type": "door_pos"}
        body |= {"door": p1.door, "data": {"reading": float("inf")}}
        await p1.client.publish(p1.topics.event(p1.door, "door_pos"), json.dumps(body).encode())
        await until(lambda: 1 in p1.acked, what="the copy confirmed")
        stored = await rows(site, p1)
    assert [r.event_id for r in stored.values() if r.type == "error"] == [event_id]


@pytest.fixture
def validator_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The store's check of moments turned off: an overflowing ``at`` then reaches the
    database layer, as a value nobody foresaw would."""
    monkeypatch.setattr(events_module, "moment_problem", lambda value, where: None, raising=False)
    yield


async def test_a_row_the_database_refuses_unforeseen_is_isolated_from_its_batch(
    site: Site, validator_off: None
) -> None:
    store = site.gateway.events
    async with raw_panels(site) as (p1, p2):
        received = site.gateway.counters["events"]
        # Held: everything below goes into one batch, the refused row among the others.
        async with store._flushing:
            for seq in range(1, 21):
                await p1.event(seq, at=OVERFLOWING if seq == 7 else NOW)
                await p2.event(seq)
            await until(lambda: site.gateway.counters["events"] >= received + 40)
        await until(lambda: all_confirmed(p1, p2), what="every event confirmed")
        stored1, stored2 = await rows(site, p1), await rows(site, p2)
    assert store.rejected == 1 and store.dead_lettered == 1 and store.lost == 0
    letter = stored1[p1.sent[7]]
    assert (letter.type, letter.source) == ("error", "accessd")
    assert letter.data["reason"] == "refused by the database (OverflowError)"
    assert all(stored1[p1.sent[seq]].source == "panel" for seq in range(1, 21) if seq != 7)
    assert len([r for r in stored2.values() if r.source == "panel"]) == 20
    assert 'accessd_panel_events_total{outcome="rejected"} 1.0' in await metrics_text(site)


async def test_a_nan_postgresql_refuses_unforeseen_is_isolated_not_taken_for_an_outage(
    site: Site, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite stores NaN in JSON text; only PostgreSQL refuses it")
    monkeypatch.setattr(events_module, "json_problem", lambda value, where: None, raising=False)
    store = site.gateway.events
    async with raw_panels(site) as (p1, _p2):
        received = site.gateway.counters["events"]
        async with store._flushing:
            for seq in range(1, 11):
                await p1.event(seq, data={"reading": float("nan") if seq == 3 else 1.5})
            await until(lambda: site.gateway.counters["events"] >= received + 10)
        await until(lambda: all_confirmed(p1), what="every event confirmed")
        stored = await rows(site, p1)
    assert store.rejected == 1 and store.lost == 0
    assert site.gateway.events.health.available  # a refusal, not an outage
    letter = stored[p1.sent[3]]
    assert letter.type == "error" and letter.data["reason"].startswith("refused by the database")
    assert letter.data["data"] == '{"reading": NaN}'
    assert sum(r.source == "panel" for r in stored.values()) == 9


async def test_a_flood_of_malformed_messages_stores_at_most_the_panels_budget(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=budget_module.__name__)
    flood, few = 300, 3
    async with raw_panels(site) as (p1, p2):
        before = site.gateway.counters["malformed_invalid"]
        started = time.monotonic()
        sends = [
            p1.client.publish(p1.topics.event(p1.door, "tamper"), b'{"v":1}') for _ in range(flood)
        ]
        await asyncio.gather(*sends)
        for _ in range(few):
            await p2.client.publish(p2.topics.event(p2.door, "tamper"), b'{"v":1}')
        await until(
            lambda: site.gateway.counters["malformed_invalid"] >= before + flood + few,
            what="every malformed message counted",
        )
        elapsed = time.monotonic() - started
        await site.gateway.events.flush()
        errors1 = [r for r in (await rows(site, p1)).values() if r.type == "error"]
        errors2 = [r for r in (await rows(site, p2)).values() if r.type == "error"]
    allowed = budget_module.BURST + budget_module.RATE * elapsed + 1
    assert budget_module.BURST <= len(errors1) <= allowed, (len(errors1), elapsed)
    assert len(errors2) == few  # the other panel's budget is its own
    assert site.gateway.counters["malformed_dropped"] == flood - len(errors1)
    lines = [r.getMessage() for r in caplog.records if r.name == budget_module.__name__]
    assert len(lines) == 1 and "hq/p1" in lines[0], lines
    text = await metrics_text(site)
    assert f'accessd_mqtt_gateway_total{{what="malformed_dropped"}} {flood - len(errors1)}.0' in (
        text
    )


async def test_a_flood_of_spoofed_events_stores_at_most_the_panels_budget(site: Site) -> None:
    """Events p1 sends in p2's name (p2's door) are refused as spoofed: a flood of them
    becomes at most the panel's budget of rows, the rest counted; p2 is untouched."""
    flood = 300
    async with raw_panels(site) as (p1, p2):
        started = time.monotonic()
        for seq in range(1, flood + 1):
            body = {
                "v": 1,
                "event_id": str(uuid.uuid4()),
                "seq": seq,
                "at": NOW,
                "type": "tamper",
                "door": p2.door,
                "data": {},
            }
            await p1.client.publish(p1.topics.event(p2.door, "tamper"), json.dumps(body).encode())
        await until(
            lambda: site.gateway.counters["spoofed"] >= flood, what="every spoofed event counted"
        )
        elapsed = time.monotonic() - started
        await site.gateway.events.flush()
        spoofed1 = [r for r in (await rows(site, p1)).values() if r.type == "spoofed"]
        of_p2 = await rows(site, p2)
    allowed = budget_module.BURST + budget_module.RATE * elapsed + 1
    assert budget_module.BURST <= len(spoofed1) <= allowed, (len(spoofed1), elapsed)
    assert site.gateway.counters["spoofed_dropped"] == flood - len(spoofed1)
    assert of_p2 == {}


@pytest.mark.parametrize("at", [OVERFLOWING, "9999-12-31T23:00:00-05:00", "1969-12-31T23:59:59Z"])
async def test_a_decide_request_whose_at_is_out_of_range_gets_an_error_reply_naming_it(
    site: Site, at: str
) -> None:
    async with raw_panels(site) as (p1, _p2):
        request = {
            "v": 1,
            "id": "out-of-range",
            "reader": site.readers["Main in"],
            "at": at,
            "reply_to": p1.topics.rsp,
        }
        await p1.client.publish(p1.topics.leaf("req/decide"), json.dumps(request).encode())
        await until(lambda: p1.replies, what="the error reply")
    reply = p1.replies[0]
    assert (reply.id, reply.error) == ("out-of-range", "invalid")
    assert reply.detail.startswith("at:") and "1970" in reply.detail


def test_mqtt_requests_take_the_same_years_as_the_http_api() -> None:
    from accessd.api.schemas.common import MOMENT_YEARS as HTTP_YEARS
    from drivers.mqtt.messages import MOMENT_YEARS as MQTT_YEARS

    assert MQTT_YEARS == HTTP_YEARS
