"""Broker logins: Mosquitto's password hashes both ways, the dynamic-security file, and
`accessd mqtt acl` on a test database whose file a real Mosquitto then serves."""

from __future__ import annotations

import asyncio
import base64
import grp
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accessd.models import Facility, Panel
from accessd.models.enums import PanelTransport
from drivers.errors import MqttConnectRefused, MqttPublishRefused
from drivers.mqtt.access import (
    broker_logins,
    hash_password,
    panel_client_id,
    parse_password_file,
)
from drivers.mqtt.client import IncomingMessage, MqttClient, MqttConfig
from drivers.mqtt.dynsec import dynsec_config, parse_dynsec_hashes
from drivers.mqtt.topics import SERVICE_REQUESTS, PanelTopics
from tests.mqtt_broker import MosquittoBroker


def run_acl(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ACCESSD_LOG_LEVEL="WARNING", ACCESSD_DATABASE_URL=db)
    return subprocess.run(
        [sys.executable, "-m", "accessd", "mqtt", "acl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_mosquitto_passwd_hashes_verify_here() -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"accessd-pw-{os.getpid()}"
    try:
        subprocess.run([tool, "-c", "-b", str(path), "ann", "s3cret"], check=True)
        hashed = parse_password_file(path.read_text())["ann"]
    finally:
        path.unlink(missing_ok=True)
    assert hashed.verify("s3cret")
    assert not hashed.verify("s3creT")


def test_hashes_are_salted_and_verify() -> None:
    one, two = hash_password("pw"), hash_password("pw")
    assert one.salt != two.salt and one.digest != two.digest and one.iterations == 1000
    assert one.verify("pw") and two.verify("pw") and not one.verify("pW")
    assert parse_password_file("ann:$6$abc$def\nbob:junk\n") == {}


def test_dynsec_file_confines_each_panel_and_binds_its_client_id() -> None:
    hashes = {u: hash_password(u) for u in ("svc", "hq.p1", "hq.p2")}
    doc = json.loads(dynsec_config(broker_logins([("hq", "p2"), ("hq", "p1")], "svc"), hashes))
    # Nothing a rule does not grant: no publishing, receiving or subscribing.
    assert doc["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    clients = {c["username"]: c for c in doc["clients"]}
    roles = {r["rolename"]: r["acls"] for r in doc["roles"]}
    assert clients["hq.p1"]["clientid"] == panel_client_id("hq", "p1") == "panel.hq.p1"
    assert "clientid" not in clients["svc"]  # several instances, two connections each
    svc = {(a["acltype"], a["topic"]) for a in roles["login:svc"]}
    assert ("subscribeLiteral", SERVICE_REQUESTS) in svc
    assert ("subscribePattern", "ac/v1/#") in svc and ("publishClientSend", "ac/v1/#") in svc
    p1 = roles[clients["hq.p1"]["roles"][0]["rolename"]]
    assert all(a["topic"].startswith("ac/v1/hq/p1/") and a["allow"] for a in p1)
    assert ("publishClientSend", "ac/v1/hq/p1/req/#") in {(a["acltype"], a["topic"]) for a in p1}
    assert ("subscribePattern", "ac/v1/hq/p1/cmd/#") in {(a["acltype"], a["topic"]) for a in p1}
    assert not any(a["acltype"] == "subscribeLiteral" for a in p1)
    got = parse_dynsec_hashes(json.dumps(doc))
    assert set(got) == {"svc", "hq.p1", "hq.p2"} and got["hq.p1"].verify("hq.p1")


async def _add_panels(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s:
        hq = Facility(code="hq", name="Headquarters", timezone="America/New_York", security_level=4)
        field = Facility(code="field-1", name="Field office", timezone="UTC", security_level=2)
        s.add_all([hq, field])
        await s.flush()
        s.add_all(
            [
                Panel(facility_id=hq.id, name="lobby", transport=PanelTransport.MQTT),
                Panel(facility_id=hq.id, name="scif", transport=PanelTransport.MQTT),
                Panel(facility_id=hq.id, name="bus0", transport=PanelTransport.OSDP),
                Panel(facility_id=field.id, name="lobby", transport=PanelTransport.MQTT),
            ]
        )
        await s.commit()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_cli_writes_files_the_broker_enforces(
    db_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await _add_panels(sessions)
    out = tmp_path / "broker"
    proc = run_acl("--out", str(out), db=db_url)
    assert proc.returncode == 0, proc.stderr
    assert "3 MQTT panels: 0 passwords kept, 4 new" in proc.stdout
    assert "restart the broker" in proc.stdout  # its plugin reads the file at start only
    creds = json.loads((out / "credentials.json").read_text())
    passwords = {p["username"]: p["password"] for p in creds["panels"]}
    assert sorted(passwords) == ["field-1.lobby", "hq.lobby", "hq.scif"]  # no OSDP panel
    for secret in [*passwords.values(), creds["service"]["password"]]:
        assert secret not in proc.stdout + proc.stderr
        assert secret not in (out / "dynamic-security.json").read_text()
    assert {_mode(out / n) for n in ("dynamic-security.json", "credentials.json")} == {0o600}

    lobby, scif = PanelTopics("hq", "lobby"), PanelTopics("hq", "scif")
    with MosquittoBroker.from_file(out / "dynamic-security.json") as broker:

        def config(user: str, password: str, protocol: int = 5) -> MqttConfig:
            site, _, name = user.partition(".")
            return MqttConfig(
                host="127.0.0.1",
                port=broker.port,
                client_id=panel_client_id(site, name) if name else f"{user}-test",
                username=user,
                password=password,
                protocol=5 if protocol == 5 else 3,
            )

        service = MqttClient(config("accessd", creds["service"]["password"]))
        panel = MqttClient(config("hq.lobby", passwords["hq.lobby"]))
        inbox: asyncio.Queue[IncomingMessage] = asyncio.Queue()
        service.on_message(inbox.put_nowait)
        await service.connect()
        await panel.connect()
        try:
            await service.subscribe([("ac/v1/#", 1)])
            with pytest.raises(MqttPublishRefused):
                await panel.publish(scif.event(1, "forced"), b"forged")
            await panel.publish(lobby.event(1, "card"), b"own")
            # The forgery went first on the same connection: it would arrive before this.
            first = await asyncio.wait_for(inbox.get(), 10)
            assert (first.topic, first.payload) == (lobby.event(1, "card"), b"own")
            with pytest.raises(MqttConnectRefused):
                await MqttClient(config("hq.scif", passwords["hq.lobby"], 3)).connect()
        finally:
            await panel.disconnect()
            await service.disconnect()

    # Again without --rotate: everyone keeps their password; with it, nobody does.
    again = run_acl("--out", str(out), db=db_url)
    assert again.returncode == 0, again.stderr
    assert "4 passwords kept, 0 new" in again.stdout
    assert json.loads((out / "credentials.json").read_text()) == creds
    rotated = run_acl("--out", str(out), "--rotate", db=db_url)
    assert "0 passwords kept, 4 new" in rotated.stdout
    fresh = json.loads((out / "credentials.json").read_text())
    assert fresh["service"]["password"] != creds["service"]["password"]
    hashes = parse_dynsec_hashes((out / "dynamic-security.json").read_text())
    assert not hashes["hq.lobby"].verify(passwords["hq.lobby"])
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


async def test_cli_refuses_names_that_cannot_be_topic_segments(
    db_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with sessions() as s:
        fac = Facility(code="hq", name="HQ", timezone="UTC", security_level=3)
        s.add(fac)
        await s.flush()
        s.add(Panel(facility_id=fac.id, name="front door", transport=PanelTransport.MQTT))
        await s.commit()
    proc = run_acl("--out", str(tmp_path / "out"), db=db_url)
    assert proc.returncode == 1
    assert "hq/front door" in proc.stderr
    assert not (tmp_path / "out" / "dynamic-security.json").exists()


async def test_cli_group_lets_the_broker_group_read_the_files(
    db_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await _add_panels(sessions)
    group = grp.getgrgid(os.getgid()).gr_name
    out = tmp_path / "out"
    proc = run_acl("--out", str(out), "--group", group, db=db_url)
    assert proc.returncode == 0, proc.stderr
    security = out / "dynamic-security.json"
    assert _mode(security) == 0o640 and security.stat().st_gid == os.getgid()
    assert _mode(out / "credentials.json") == 0o600
    assert run_acl("--out", str(out), "--group", "no-such-group-x", db=db_url).returncode == 2


async def test_cli_keeps_the_passwords_of_the_password_file_it_replaces(
    db_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    # The layout before the dynamic-security plugin: mosquitto_passwd's $7$ lines.
    await _add_panels(sessions)
    out = tmp_path / "out"
    out.mkdir()
    old = {"accessd": "service-secret", "hq.lobby": "lobby-secret"}

    def seven(password: str) -> str:
        h = hash_password(password)
        salt, digest = (base64.b64encode(b).decode() for b in (h.salt, h.digest))
        return f"$7${h.iterations}${salt}${digest}"

    (out / "passwd").write_text("".join(f"{u}:{seven(pw)}\n" for u, pw in old.items()))
    (out / "credentials.json").write_text(
        json.dumps(
            {
                "service": {"username": "accessd", "password": old["accessd"]},
                "panels": [{"username": "hq.lobby", "password": old["hq.lobby"]}],
            }
        )
    )
    proc = run_acl("--out", str(out), db=db_url)
    assert proc.returncode == 0, proc.stderr
    assert "2 passwords kept, 2 new" in proc.stdout
    hashes = parse_dynsec_hashes((out / "dynamic-security.json").read_text())
    assert hashes["accessd"].verify(old["accessd"]) and hashes["hq.lobby"].verify(old["hq.lobby"])
