"""What the running app holds: typed, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accessd.api.metrics import ApiMetrics
from accessd.auth.throttle import LoginThrottle
from accessd.auth.token_cache import TokenCache
from accessd.authn.proofs import Authenticator
from accessd.budget import RecordBudget
from accessd.config import Settings
from accessd.db.outage import DatabaseHealth
from accessd.decisions.service import DecisionService
from accessd.events import EventBus
from accessd.gateway.service import MqttGateway


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: EventBus
    metrics: ApiMetrics
    decisions: DecisionService
    authn: Authenticator
    #: The MQTT panel gateway, when this process runs one (settings.mqtt_gateway).
    gateway: MqttGateway | None = None
    #: Whether the database is reachable, as the last operations found (logs an outage
    #: once; the 503 answers and /readyz read it).
    db_health: DatabaseHealth = field(default_factory=DatabaseHealth)
    #: Failed logins by account and client address (accessd/auth/throttle.py).
    logins: LoginThrottle = field(default_factory=LoginThrottle)
    #: Door-reader tokens verified lately (accessd/auth/token_cache.py); the app sets its
    #: recheck time from settings.reader_token_recheck_seconds.
    tokens: TokenCache = field(default_factory=lambda: TokenCache(0.0))
    #: How many refused requests at readers an account does not serve are audited: a
    #: misconfigured or hostile device asking thousands a second must not fill the audit
    #: log (the rest are counted and said in the log once a minute).
    reader_refusals: RecordBudget = field(
        default_factory=lambda: RecordBudget(
            subject="account", what="requests at readers it does not serve"
        )
    )
