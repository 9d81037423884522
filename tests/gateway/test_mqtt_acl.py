"""Broker logins: Mosquitto's $7$ hashes both ways, the ACL text, and `accessd mqtt acl` on a
test database whose files a real Mosquitto then serves."""

from __future__ import annotations

import asyncio
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
    hash_password,
    mosquitto_acl,
    parse_password_file,
    verify_password,
)
from drivers.mqtt.client import IncomingMessage, MqttClient, MqttConfig
from drivers.mqtt.topics import PanelTopics
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
    assert hashed.startswith("$7$")
    assert verify_password("s3cret", hashed)
    assert not verify_password("s3creT", hashed)


def test_hashes_are_salted_and_verify() -> None:
    one, two = hash_password("pw"), hash_password("pw")
    assert one != two and one.startswith("$7$1000$")
    assert verify_password("pw", one) and verify_password("pw", two)
    assert not verify_password("pw", "$6$abc$def") and not verify_password("pw", "junk")


def test_acl_confines_each_panel_to_its_own_prefix() -> None:
    text = mosquitto_acl([("hq", "p2"), ("hq", "p1")], "svc")
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in text.split("\n\n")[1:]}
    assert blocks["user svc"] == [
        "topic readwrite ac/v1/#",
        "topic read $share/accessd/ac/v1/+/+/req/#",
    ]
    p1 = blocks["user hq.p1"]
    assert all(line.split()[2].startswith("ac/v1/hq/p1/") for line in p1)
    assert "topic write ac/v1/hq/p1/req/#" in p1 and "topic read ac/v1/hq/p1/cmd/#" in p1
    assert not any("readwrite" in line for line in p1)


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
    creds = json.loads((out / "credentials.json").read_text())
    passwords = {p["username"]: p["password"] for p in creds["panels"]}
    assert sorted(passwords) == ["field-1.lobby", "hq.lobby", "hq.scif"]  # no OSDP panel
    for secret in [*passwords.values(), creds["service"]["password"]]:
        assert secret not in proc.stdout + proc.stderr
        assert secret not in (out / "passwd").read_text()
    assert {_mode(out / n) for n in ("passwd", "acl", "credentials.json")} == {0o600}

    lobby, scif = PanelTopics("hq", "lobby"), PanelTopics("hq", "scif")
    with MosquittoBroker.from_files(out / "passwd", out / "acl") as broker:

        def config(user: str, password: str, protocol: int = 5) -> MqttConfig:
            return MqttConfig(
                host="127.0.0.1",
                port=broker.port,
                client_id=user,
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
    hashes = parse_password_file((out / "passwd").read_text())
    assert not verify_password(passwords["hq.lobby"], hashes["hq.lobby"])
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
    assert not (tmp_path / "out" / "passwd").exists()


async def test_cli_group_lets_the_broker_group_read_the_files(
    db_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await _add_panels(sessions)
    group = grp.getgrgid(os.getgid()).gr_name
    out = tmp_path / "out"
    proc = run_acl("--out", str(out), "--group", group, db=db_url)
    assert proc.returncode == 0, proc.stderr
    for name in ("passwd", "acl"):
        assert _mode(out / name) == 0o640 and (out / name).stat().st_gid == os.getgid()
    assert _mode(out / "credentials.json") == 0o600
    assert run_acl("--out", str(out), "--group", "no-such-group-x", db=db_url).returncode == 2
