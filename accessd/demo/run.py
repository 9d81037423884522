"""`accessd demo`: a local database with the example sites, people and credentials, a
broker, simulated panels and virtual PIV cards, and the API serving them.

Every sample record goes through the same use cases as the API and the CLI (so the audit
chain and the lifecycle rules hold for the demo data too): the people and credentials are
policies/examples/people.csv, imported as `accessd import` does (accessd.demo.people), and
the door policy is the two example policy files, applied as version 1.

With a broker the demo also runs, each as a child process stopped by its pid:

* ``python -m simulators.panel.demo`` (accessd does not import the simulators): a test PKI
  and a virtual card for every badge-holding demo person, bound to that person's credential
  before it is issued; the PKI's CRL/OCSP repository, which card validation fetches from;
  and the site's MQTT panels (hq-panel-1 of policies/examples/hq.yaml) with their real
  doors and readers, presenting the cards at random readers round after round;
* Mosquitto from deploy/mosquitto/accessd.conf on a free loopback port, with the logins and
  ACL of `accessd mqtt acl` (accessd.demo.mosquitto); or, where Mosquitto is not installed and
  the ``embedded-broker`` extra is, amqtt with the same logins and ACL, which speaks MQTT
  3.1.1 only and has no shared subscriptions (accessd.demo.embedded_broker): the service
  and the panels then use 3.1.1 and the gateway a plain request subscription;

and serves the API with the MQTT gateway on, printing a line per stored decision and panel
event. The cards, the PKI and the broker logins are kept in ``--state-dir`` so a second run
on the same database works with the same cards.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accessd.auth.tokens import issue_token
from accessd.config import Settings
from accessd.db.engine import make_engine, make_sessionmaker
from accessd.db.migrate import upgrade
from accessd.demo.options import DemoOptions
from accessd.demo.people import EXAMPLES, card_uuid_of, example_people, holders, seed_people
from accessd.gateway.acl import SECURITY
from accessd.models import Door, Facility, Operator, Panel, PanelEvent, Person, Reader
from accessd.models.enums import Role
from accessd.models.policy import DecisionEvent
from accessd.policyfile import combine, versions
from accessd.services import operators
from accessd.services.actors import Actor
from policies.reasons import in_words

DEMO_ROLES = [
    Role.ADMIN,
    Role.SPONSOR,
    Role.REGISTRAR,
    Role.ADJUDICATOR,
    Role.ISSUER,
    Role.SECURITY_OFFICER,
    Role.FACILITY_MANAGER,
    Role.AUDITOR,
    Role.DOOR_READER,
]

POLICY_FILES = [EXAMPLES / "hq.yaml", EXAMPLES / "field-office.yaml"]


async def _policy(session: AsyncSession, actor: Actor) -> None:
    policy = combine.read_all(POLICY_FILES)
    if policy.errors:
        raise RuntimeError(
            "the example policy files do not check: " + "; ".join(str(f) for f in policy.errors)
        )
    await versions.apply(session, actor.label, policy, comment="demo: the example sites")


async def seed(
    settings: Settings, cards: dict[str, dict[str, Any]] | None = None
) -> dict[str, tuple[str, str | None]]:
    """Migrates, adds the sample data once (binding ``cards``, external id → the card's
    identifiers, to those people's credentials), and returns {role: (username, password or
    None when it was set on an earlier run)}."""
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    accounts: dict[str, tuple[str, str | None]] = {}
    try:
        await upgrade(engine)
        async with sessions() as session:
            fresh = not await session.scalar(select(func.count()).select_from(Operator))
            system = Actor(None, "demo-seed", frozenset())
            actors: dict[Role, Actor] = {}
            for role in DEMO_ROLES:
                username = f"demo-{role.value.replace('_', '-')}"
                op = await session.scalar(select(Operator).where(Operator.username == username))
                password = None
                if op is None:
                    password = secrets.token_urlsafe(12)
                    op = await operators.create_operator(
                        session,
                        system,
                        username=username,
                        password=password,
                        roles=[role],
                        display_name=f"Demo {role.value.replace('_', ' ')}",
                    )
                accounts[role.value] = (username, password)
                actors[role] = operators.actor_of(op)
            if fresh:
                await seed_people(session, actors, cards or {}, date.today())
                await _policy(session, actors[Role.FACILITY_MANAGER])
            await _bind_door_reader(session, accounts[Role.DOOR_READER.value][0], system)
            await session.commit()
    finally:
        await engine.dispose()
    return accounts


async def _bind_door_reader(session: AsyncSession, username: str, actor: Actor) -> None:
    """The demo's HTTP door account serves the example sites' readers (a database seeded
    before accounts were bound serves none until this runs)."""
    op = await session.scalar(select(Operator).where(Operator.username == username))
    if op is None or op.readers:
        return
    readers = list(await session.scalars(select(Reader.id).order_by(Reader.id)))
    await operators.update_operator(session, actor, op.id, {"readers": readers}, op.version)


async def _tokens(settings: Settings, usernames: list[str]) -> tuple[dict[str, str], int]:
    """Fresh tokens for the demo operators, and the id of the HQ main entrance reader."""
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            out = {}
            for name in usernames:
                op = await session.scalar(select(Operator).where(Operator.username == name))
                assert op is not None
                out[name], _ = await issue_token(session, op, 8 * 3600)
            reader = await session.scalar(select(Reader.id).where(Reader.name == "Corridor in"))
            await session.commit()
            return out, int(reader or 0)
    finally:
        await engine.dispose()


#: The MQTT site whose panels the demo simulates (hq.yaml: hq-panel-1).
SITE = "HQ"
#: Modes a simulated door knows; any other (first person in, unlocked by schedule) starts
#: as card only and the service decides the rest.
PANEL_MODES = frozenset({"locked", "card_only", "card_and_pin", "unlocked", "lockdown"})


async def _site_time(settings: Settings, site: str, when: datetime) -> datetime:
    """``when`` in the site's timezone: as given when it has an offset, else read there."""
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            zone = await session.scalar(select(Facility.timezone).where(Facility.code == site))
    finally:
        await engine.dispose()
    tz = ZoneInfo(zone or "UTC")
    return when.astimezone(tz) if when.tzinfo is not None else when.replace(tzinfo=tz)


async def _broker_logins(settings: Settings, out: Path) -> dict[str, Any]:
    """Writes the broker's dynamic-security.json and credentials.json for the database's
    MQTT panels."""
    from accessd.gateway.acl import CREDENTIALS, mqtt_panels, write_broker_files

    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            panels = await mqtt_panels(session)
    finally:
        await engine.dispose()
    write_broker_files(out, panels)
    doc: dict[str, Any] = json.loads((out / CREDENTIALS).read_text())
    return doc


async def _layout(settings: Settings, site: str) -> dict[str, Any]:
    """The site's MQTT panels with their doors and readers, for ``simulators.panel``."""
    from accessd.models.enums import PanelTransport

    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            panels = (
                await session.scalars(
                    select(Panel)
                    .join(Facility, Facility.id == Panel.facility_id)
                    .where(Facility.code == site, Panel.transport == PanelTransport.MQTT)
                    .order_by(Panel.name)
                )
            ).all()
            out = []
            for panel in panels:
                doors = []
                for door in await session.scalars(
                    select(Door).where(Door.panel_id == panel.id).order_by(Door.id)
                ):
                    readers = (
                        await session.scalars(select(Reader).where(Reader.door_id == door.id))
                    ).all()
                    mode = str(door.mode) if door.mode in PANEL_MODES else "card_only"
                    if mode == "card_only" and any(r.pin_pad for r in readers):
                        mode = "card_and_pin"  # the reader asks for the PIN on its pad
                    doors.append(
                        {"door": door.id, "readers": [r.id for r in readers], "mode": mode}
                    )
                out.append({"name": panel.name, "doors": doors})
    finally:
        await engine.dispose()
    return {"v": 1, "panels": out}


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(text)


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; only this child, by its pid."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _read_ready(proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The simulator's first stdout line, or RuntimeError when it exits first."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError(f"the panel simulator exited with status {proc.returncode}")
    ready: dict[str, Any] = json.loads(line)
    return ready


class _Watcher:
    """Prints every decision and panel event stored since the last look."""

    def __init__(self, settings: Settings, out: IO[str]) -> None:
        self._settings = settings
        self._out = out
        self.decisions = 0
        self.events = 0
        self._last_decision = 0
        self._last_event = 0

    async def run(self, every: float = 1.0) -> None:
        engine = make_engine(self._settings.database_url)
        try:
            sessions = make_sessionmaker(engine)
            async with sessions() as session:
                self._last_decision = int(
                    await session.scalar(select(func.max(DecisionEvent.id))) or 0
                )
                self._last_event = int(await session.scalar(select(func.max(PanelEvent.id))) or 0)
            while True:
                await asyncio.sleep(every)
                async with sessions() as session:
                    await self._look(session)
        finally:
            await engine.dispose()

    async def look_once(self) -> None:
        engine = make_engine(self._settings.database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                await self._look(session)
        finally:
            await engine.dispose()

    async def _look(self, session: AsyncSession) -> None:
        readers = {r.id: r.name for r in await session.scalars(select(Reader))}
        names = {
            p.id: f"{p.given_name} {p.family_name}" for p in await session.scalars(select(Person))
        }
        for d in await session.scalars(
            select(DecisionEvent)
            .where(DecisionEvent.id > self._last_decision)
            .order_by(DecisionEvent.id)
        ):
            self._last_decision = d.id
            self.decisions += 1
            who = names.get(d.person_id or 0, "unknown card")
            verdict = f"GRANTED [{d.source}]"
            if not d.granted:
                why = in_words(d.reason, d.trail, d.required)
                verdict = f"denied ({d.reason}) [{d.source}]: {why}"
            where = readers.get(d.reader_id or 0, f"reader {d.reader_id}")
            print(
                f"  {d.at:%H:%M:%S} decision  {where:<14} {who:<18} {verdict}",
                file=self._out,
                flush=True,
            )
        for e in await session.scalars(
            select(PanelEvent).where(PanelEvent.id > self._last_event).order_by(PanelEvent.id)
        ):
            self._last_event = e.id
            self.events += 1
            if e.type == "access":
                continue  # the decision line above says it
            detail = " ".join(f"{k}={v}" for k, v in sorted(e.data.items()))[:60]
            alarm = " ALARM" if e.alarm else ""
            print(
                f"  {e.at:%H:%M:%S} event     door {e.door_id or '-':<9} {e.type:<18}"
                f"{alarm} {detail}",
                file=self._out,
                flush=True,
            )


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM ends the demo like Ctrl-C does: through the finally blocks that stop children.
    raise SystemExit(128 + signum)


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


async def _serve(
    settings: Settings,
    host: str,
    port: int,
    sim: subprocess.Popen[bytes] | None,
    exit_after: float | None,
    start: datetime | None = None,
) -> _Watcher:
    import uvicorn

    from accessd.api.app import create_app

    config = uvicorn.Config(
        create_app(settings), host=host, port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    watcher = _Watcher(settings, sys.stdout)

    async def start_panels() -> None:
        while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
            await asyncio.sleep(0.05)
        if sim is not None and sim.stdin is not None:
            # simulators.panel.demo: "go", or "go WHEN" for cards presented as if at WHEN.
            go = f"go {start.isoformat()}" if start is not None else "go"
            sim.stdin.write(f"{go}\n".encode())
            sim.stdin.flush()
            print("  panels started; decisions and events as they are stored:\n", flush=True)

    async def stop_later(seconds: float) -> None:
        await asyncio.sleep(seconds)
        server.should_exit = True

    tasks = [asyncio.create_task(start_panels()), asyncio.create_task(watcher.run())]
    if exit_after is not None:
        tasks.append(asyncio.create_task(stop_later(exit_after)))
    try:
        await server.serve()
        await watcher.look_once()  # what the last second stored, before the summary
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return watcher


def pick_broker(choice: str) -> tuple[str | None, str]:
    """("mosquitto", "embedded" or None, and a note for the user: why there is no broker,
    or why auto took amqtt) for a ``--broker`` choice."""
    from accessd.demo.embedded_broker import embedded_broker_available
    from accessd.demo.mosquitto import mosquitto_binary

    mosquitto = mosquitto_binary() is not None and choice in ("auto", "mosquitto")
    embedded = embedded_broker_available() and choice in ("auto", "embedded")
    if mosquitto:
        return "mosquitto", ""
    no_mosquitto = "mosquitto is not installed (Debian: apt-get install mosquitto)"
    no_embedded = "the embedded broker is not installed (pip install -e '.[embedded-broker]')"
    if embedded:
        return "embedded", f"{no_mosquitto}: amqtt instead, MQTT 3.1.1" if choice == "auto" else ""
    why = {"mosquitto": no_mosquitto, "embedded": no_embedded}.get(
        choice, f"{no_mosquitto} and {no_embedded}"
    )
    return None, why


def run_demo(
    settings: Settings, *, host: str, port: int, options: DemoOptions | None = None
) -> int:
    """Seeds, starts the broker and the simulated panels (when there is a broker), serves
    until Ctrl-C/SIGTERM or ``options.exit_after``; every child is stopped on the way out."""
    from pydantic import SecretStr

    from accessd.demo.embedded_broker import EmbeddedBroker
    from accessd.demo.mosquitto import DemoBroker, mosquitto_binary

    options = options or DemoOptions()
    kind, why = pick_broker(options.broker) if options.panels else (None, "")
    if kind is None and options.panels:
        print(
            f"accessd demo: {why}, so no broker and no simulated panels: serving the API alone",
            file=sys.stderr,
        )
    elif why:
        print(f"accessd demo: {why}", file=sys.stderr)
    # amqtt has neither MQTT 5 nor shared subscriptions (accessd.demo.embedded_broker).
    protocol = 3 if kind == "embedded" else 5
    state = options.state_dir.resolve()
    sim: subprocess.Popen[bytes] | None = None
    broker: DemoBroker | EmbeddedBroker | None = None
    previous_term = signal.signal(signal.SIGTERM, _raise_exit)
    # Ctrl-C raises KeyboardInterrupt where it lands, as Python's own handler does, but
    # installed here so that asyncio.run leaves it alone: its handler cancels the running
    # task instead, and a cancellation swallowed on the way out (seen once under load)
    # ended the demo with status 0 instead of 130. uvicorn, which takes both signals while
    # it serves, hands them back to these handlers when it has shut down.
    previous_int = signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        cards: dict[str, dict[str, Any]] = {}
        ready: dict[str, Any] = {}
        if kind is not None:
            state.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_private(state / "holders.json", json.dumps(holders(example_people()), indent=1))
            binary = mosquitto_binary()
            broker = DemoBroker(binary) if kind == "mosquitto" and binary else EmbeddedBroker()
            sim = subprocess.Popen(  # noqa: S603 - our own module and arguments, no shell
                [
                    sys.executable,
                    "-m",
                    "simulators.panel.demo",
                    "--dir",
                    str(state / "simulator"),
                    "--holders",
                    str(state / "holders.json"),
                    "--pki-port",
                    str(options.pki_port),
                    "--broker",
                    f"127.0.0.1:{broker.port}",
                    "--site",
                    SITE,
                    "--layout",
                    str(state / "layout.json"),
                    "--passwords",
                    str(state / "panel-passwords.json"),
                    "--round-seconds",
                    str(options.round_seconds),
                    "--protocol",
                    str(protocol),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                process_group=0,  # Ctrl-C is ours to pass on, in order
            )
            ready = _read_ready(sim)
            cards = {c["holder"]: c for c in json.loads(Path(ready["cards"]).read_text())}
        accounts = asyncio.run(seed(settings, cards))
        tokens, reader = asyncio.run(_tokens(settings, [u for u, _ in accounts.values()]))
        if broker is not None:
            logins = asyncio.run(_broker_logins(settings, state / "broker"))
            passwords = {p["username"]: p["password"] for p in logins["panels"]}
            _write_private(state / "panel-passwords.json", json.dumps(passwords))
            _write_private(state / "layout.json", json.dumps(asyncio.run(_layout(settings, SITE))))
            if isinstance(broker, DemoBroker):
                broker.start(state / "broker" / SECURITY)
            else:
                broker.start(logins)
            settings = settings.model_copy(
                update={
                    "mqtt_gateway": True,
                    "mqtt_protocol": protocol,
                    "mqtt_shared_requests": kind != "embedded",
                    "mqtt_url": broker.url,
                    "mqtt_username": logins["service"]["username"],
                    "mqtt_password": SecretStr(logins["service"]["password"]),
                    "trust_anchors": [Path(p) for p in ready["anchors"]],
                    "intermediates": [Path(p) for p in ready["intermediates"]],
                }
            )
        start = None
        if options.at is not None and sim is not None:
            start = asyncio.run(_site_time(settings, SITE, options.at))
        elif options.at is not None:
            print(
                "accessd demo: --at moves the simulated panels' time; there are none",
                file=sys.stderr,
            )
        _print_intro(settings, host, port, accounts, tokens, reader, broker, ready, start)
        watcher = asyncio.run(_serve(settings, host, port, sim, options.exit_after, start))
        print(f"\n  {watcher.decisions} decisions and {watcher.events} panel events stored")
        return 0
    finally:
        _stop(sim)
        if broker is not None:
            broker.stop()
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def _print_intro(
    settings: Settings,
    host: str,
    port: int,
    accounts: dict[str, tuple[str, str | None]],
    tokens: dict[str, str],
    reader: int,
    broker: Any,
    ready: dict[str, Any],
    start: datetime | None = None,
) -> None:
    base = f"http://{host}:{port}"
    print(f"\naccessd demo on {settings.database_url}\n")
    print(f"  API docs     {base}/docs")
    print(f"  health       {base}/healthz")
    print(f"  OpenAPI      {base}/openapi.json")
    print(f"  policy       {', '.join(p.name for p in POLICY_FILES)} (version 1)")
    if broker is not None:
        from accessd.demo.mosquitto import DemoBroker

        what = (
            "Mosquitto, deploy/mosquitto/accessd.conf"
            if isinstance(broker, DemoBroker)
            else "embedded amqtt, MQTT 3.1.1"
        )
        print(f"  broker       {broker.url} ({what})")
        cards = len(holders(example_people()))
        print(f"  test PKI     {ready['pki']} (CRLs, OCSP); cards of {cards} people")
        print(f"  panels       site {SITE}: python -m simulators.panel.demo")
        if start is not None:
            print(
                f"  clock        cards presented as if at {start:%a %Y-%m-%d %H:%M %Z}, running on"
            )
    print("\n  operator                   password          bearer token (8 h)")
    for username, password in accounts.values():
        print(f"  {username:<26} {password or '(set earlier)':<17} {tokens[username]}")
    admin = tokens[accounts[Role.ADMIN.value][0]]
    door = tokens[accounts[Role.DOOR_READER.value][0]]
    auth = f"-H 'Authorization: Bearer {admin}'"
    # A reader's bare claim: denied, and the reply says what the card must still prove
    # (settings.require_card_proofs); the simulated panels answer accessd's challenges.
    ask = json.dumps(
        {
            "reader_id": reader,
            "evidence": ["pki_cak"],
            "credential": {"kind": "card_uuid", "value": card_uuid_of(example_people(), "E2001")},
        }
    )
    print("\n  try:")
    print(f"    curl -s {auth} {base}/v1/people")
    print(f"    curl -s {auth} '{base}/v1/credentials?state=suspended'")
    print(f"    curl -s {auth} {base}/v1/audit/verify")
    print(
        f"    curl -s -H 'Authorization: Bearer {door}' -H 'content-type: application/json' "
        f"{base}/v1/decisions -d '{ask}'"
    )
    print(f"    curl -s {auth} {base}/v1/decisions\n", flush=True)
