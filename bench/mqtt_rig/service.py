"""The service side as `accessd serve` runs it, on the scratch database and the private
broker: the real DecisionService, card authentication and `MqttGateway` (shared
subscription), the heap frozen once they are built."""

from __future__ import annotations

import time

from drivers.mqtt.access import SERVICE_USER

from .report import say


class Service:
    """Built on the database at ``url`` and the broker on ``port``; started by `start`."""

    def __init__(self, url: str, port: int, passwords: dict[str, str]) -> None:
        from accessd.authn.factory import build_card_authentication
        from accessd.config import Settings
        from accessd.db.engine import make_engine, make_sessionmaker
        from accessd.decisions.service import DecisionService
        from accessd.events import EventBus, session_info
        from accessd.gateway.service import gateway_from_settings

        self.engine = make_engine(url)
        bus = EventBus()
        self.sessions = make_sessionmaker(self.engine)
        self.sessions.configure(info=session_info(bus))
        settings = Settings(
            database_url=url,
            mqtt_gateway=True,
            mqtt_url=f"mqtt://127.0.0.1:{port}",
            mqtt_username=SERVICE_USER,
            mqtt_password=passwords[SERVICE_USER],
            mqtt_client_id="accessd-bench",
            gc_freeze=True,  # as `accessd serve` runs (accessd.heap)
            # The load is readers' claims (no card answers challenges here): taken as given,
            # so the decisions are the engine's whole path, not a factors_missing shortcut.
            require_card_proofs=False,
        )
        self.decisions = DecisionService(self.sessions, bus)
        self.cards = build_card_authentication(settings, self.sessions)
        self.gateway = gateway_from_settings(
            settings, self.sessions, self.decisions, self.cards.authenticator, bus
        )

    async def start(self) -> float:
        """Returns the seconds the gateway took to start, freezing the heap included."""
        from accessd.heap import freeze_long_lived

        await self.decisions.start()
        snap = self.decisions.snapshot
        say(
            f"decision snapshot: {len(snap.people):,} people, {len(snap.credentials):,} "
            f"credentials in {self.decisions.build_seconds:.2f} s"
        )
        await self.cards.start()
        t1 = time.perf_counter()
        await self.gateway.start()
        freeze_long_lived("decision snapshot")  # as the app's lifespan does
        gw_start = time.perf_counter() - t1
        say(
            f"gateway start: {gw_start:.2f} s for {len(self.gateway.directory)} panels "
            f"({self.gateway.caches.snapshots_sent} cache snapshots built and sent, "
            "the heap frozen)"
        )
        return gw_start

    async def stop(self) -> None:
        await self.gateway.stop()
        await self.cards.stop()
        await self.decisions.stop()
        await self.engine.dispose()

    async def every_decision_stored(self, sent: int) -> bool:
        """Whether the rows in ``decision_events`` match the gateway's decisions and the
        ``sent`` requests."""
        from sqlalchemy import func, select

        from accessd.models import DecisionEvent

        await self.decisions.store.flush()
        async with self.sessions() as s:
            rows = await s.scalar(
                select(func.count())
                .select_from(DecisionEvent)
                .where(DecisionEvent.source == "mqtt")
            )
        answered = int(self.gateway.counters["decisions"])
        store = self.decisions.store
        say(
            f"stored: {rows:,} decision events for {answered:,} gateway decisions "
            f"({sent:,} requests sent incl. warm-up); store dropped "
            f"{store.dropped}, failures {store.failures}; "
            f"gateway counters {dict(self.gateway.counters)}"
        )
        return rows == answered == sent

    async def suspend(self, credential: int) -> None:
        """Through `accessd.services.credentials.transition`, committed: the bus event the
        gateway follows."""
        from accessd.services.actors import SYSTEM
        from accessd.services.credentials import transition
        from policies import lifecycle as lc

        async with self.sessions() as s:
            await transition(
                s, SYSTEM, credential, lc.Action.SUSPEND, reason="bench: card reported lost"
            )
            await s.commit()
