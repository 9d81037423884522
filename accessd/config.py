"""Service configuration: `ACCESSD_*` environment variables over an optional TOML file.

The file is named by `ACCESSD_CONFIG` (or `accessd --config`); environment variables win over
it, and built-in defaults give a quick start on a local SQLite file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from drivers.piv import oids

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./accessd.db"
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


def production_policies() -> dict[str, list[str]]:
    """The Federal PKI Common Policy OIDs each PIV certificate purpose accepts by default."""
    return {
        "piv_auth": [oids.POLICY_PIV_AUTH],
        "card_auth": [oids.POLICY_CARD_AUTH],
        "content_signing": [oids.POLICY_PIV_CONTENT_SIGNING],
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ACCESSD_", extra="forbid")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
    )
    #: How long a new database connection may take, and a request may wait for a pooled
    #: one: past it the request is answered 503 with Retry-After, never left hanging.
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    #: Longest statement (PostgreSQL: statement_timeout on the server, and the same limit
    #: on the client for a server that stopped answering altogether).
    database_statement_timeout_seconds: float = Field(default=15.0, gt=0, le=3600)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    #: Run the MQTT panel gateway in this process (door panels' requests and events).
    mqtt_gateway: bool = False
    mqtt_username: str = "accessd"
    #: The gateway's MQTT client id. The broker keeps this session (and queues panel
    #: events for it) while the service restarts, so it must be stable and, with several
    #: instances, different for each. Unset: "accessd-<host name>".
    mqtt_client_id: str | None = None
    #: The service's broker password (put it in the env file: ACCESSD_MQTT_PASSWORD).
    mqtt_password: SecretStr | None = None
    #: 5 (MQTT 5) or 3 (MQTT 3.1.1).
    mqtt_protocol: Literal[3, 5] = 5
    #: Take panel requests through the shared subscription ``$share/accessd/...`` so
    #: several instances split them. Off only for a broker without shared subscriptions
    #: (the demo's embedded amqtt), and then with a single instance: each would answer
    #: every request.
    mqtt_shared_requests: bool = True
    #: The longest wait between two attempts to reach a broker that is away (the first
    #: wait is a second, doubled after each failure up to this).
    mqtt_reconnect_max_seconds: float = Field(default=30.0, ge=1, le=3600)
    #: How long a panel trusts its offline cache without hearing from accessd: past it a
    #: revocation may be missing, so the panel refuses cards it would have let in offline
    #: (the door's rule for an unknown card) and raises a cache_stale alarm. The default
    #: is the revocation promise, FIPS 201-3's 18 hours.
    offline_cache_max_age_seconds: int = Field(default=18 * 3600, ge=60, le=7 * 24 * 3600)
    trust_anchors: list[Path] = Field(default_factory=list)
    revocation_fetch_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    #: never: CRLs only; fallback: OCSP when no usable CRL; always: OCSP for every card.
    revocation_ocsp: Literal["never", "fallback", "always"] = "fallback"
    #: Longest a validated certificate is reused before its path is built again.
    validation_cache_seconds: int = Field(default=4 * 3600, ge=1, le=24 * 3600)
    #: Issuing-CA certificates (PEM or DER files) offered to path building.
    intermediates: list[Path] = Field(default_factory=list)
    #: How often CRLs and OCSP answers are fetched again (FIPS 201-3: at least daily).
    revocation_refresh_seconds: int = Field(default=900, ge=10, le=24 * 3600)
    #: How long past its nextUpdate a CRL or OCSP answer stays usable when no newer one can
    #: be fetched (offline operation); past that, certificates are refused as unknown.
    revocation_grace_seconds: int = Field(default=24 * 3600, ge=0, le=7 * 24 * 3600)
    #: The certificate policy OIDs accepted for each purpose (piv_auth, card_auth,
    #: content_signing, …), as RFC 5280's user-initial-policy-set: in the trust anchor's
    #: policy domain, so a CA that maps policies is matched by the OIDs it maps from.
    #: Default: the Federal PKI Common Policy. A purpose left out keeps its built-in OIDs.
    certificate_policies: dict[str, list[str]] = Field(default_factory=production_policies)
    #: URL prefix → mirror prefix, for CRL, OCSP and caIssuers fetches: a site that cannot
    #: reach the CAs serves copies of their repositories, e.g.
    #: {"http://crl.example.gov/" = "http://10.0.0.5/crl-mirror/"}.
    revocation_mirrors: dict[str, str] = Field(default_factory=dict)
    #: A directory of CRL files (DER or PEM; `accessd crl import` writes there), read at
    #: start and again every crl_refresh_seconds: CRLs for sites with no path to the CAs.
    crl_directory: Path | None = None
    crl_refresh_seconds: int = Field(default=300, ge=5, le=24 * 3600)
    #: Fetch CRLs and OCSP answers from the certificates' own URLs (through
    #: revocation_mirrors). Off for a site with no path to any repository: only the CRLs in
    #: crl_directory count, and nothing is tried on the network (no DNS lookups, no waits).
    revocation_fetching: bool = True
    #: Fetch issuing CAs missing from `intermediates` from the certificates' caIssuers
    #: URLs (AIA), keeping them this long.
    aia_fetching: bool = True
    aia_cache_seconds: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)
    #: HMAC key (hex, at least 32 digits) for card challenges; instances that share
    #: readers must share it. Unset: a random key per process.
    challenge_key: SecretStr | None = None
    challenge_ttl_seconds: float = Field(default=30.0, gt=0, le=300)
    #: pki_cak, pki_auth and bio count only when a proof establishes them, and a pin only
    #: when proven by pki_auth or signed by the reader's attestation key, never on a
    #: reader's word (nor sm_auth, which this service cannot check). Off only for a site
    #: whose readers cannot answer challenges yet: their claims then open doors.
    require_card_proofs: bool = True
    #: Enrollment refuses a card without a Security Object (FIPS 201-3 makes it mandatory);
    #: off only for a site that must enroll legacy cards, whose other objects then go
    #: without their data-group hashes checked.
    require_security_object: bool = True
    token_ttl_seconds: int = Field(default=8 * 3600, ge=60, le=30 * 24 * 3600)
    #: A door reader's token, once verified, is checked in the database again after this
    #: many seconds: a revocation made on another instance takes effect here within it at
    #: the latest (through the audit feed, usually within its 1 s poll; in this instance
    #: at once). While the database is away the last verified answer stands,
    #: so HTTP doors keep deciding from the snapshot (accessd/auth/token_cache.py). 0: no
    #: cache, every request checks the database and gets 503 in an outage.
    reader_token_recheck_seconds: float = Field(default=10.0, ge=0, le=300)
    #: Signed checkpoints of the audit chain's head, appended to a file outside the database
    #: every audit_checkpoint_seconds (accessd/services/audit_checkpoints.py); with the key
    #: (hex, at least 32 digits), which must not live in the database either. Both or none.
    audit_checkpoint_file: Path | None = None
    audit_checkpoint_key: SecretStr | None = None
    audit_checkpoint_seconds: int = Field(default=60, ge=1, le=24 * 3600)
    log_level: str = "info"
    #: Once the decision snapshot and the panels' caches are built, keep them out of the
    #: garbage collector's full passes (accessd.heap). Process-wide: `accessd serve` turns
    #: it on unless it is set; an app embedded in another process leaves it off.
    gc_freeze: bool = False
    #: /metrics without a token. Off: a scraper logs in as an operator with audit:read
    #: (the counters tell an outsider what is refused and failing).
    metrics_public: bool = False
    #: Largest request body the API reads; bigger bodies are refused with 413.
    max_body_bytes: int = Field(default=1 << 20, ge=1024)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Accept the plain scheme people paste from psql and pick the async driver for them.
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.split(":///", 1)[1]
        if not (value.startswith("postgresql+asyncpg://") or value.startswith("sqlite+aiosqlite")):
            raise ValueError("database_url must be a sqlite or postgresql URL")
        return value

    @field_validator("challenge_key", "audit_checkpoint_key")
    @classmethod
    def _hex_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None:
            try:
                raw = bytes.fromhex(value.get_secret_value())
            except ValueError:
                raise ValueError(f"{info.field_name} must be hex digits") from None
            if len(raw) < 16:
                raise ValueError(f"{info.field_name} must be at least 16 bytes (32 hex digits)")
        return value

    @model_validator(mode="after")
    def _checkpoints_need_both(self) -> Settings:
        if (self.audit_checkpoint_file is None) != (self.audit_checkpoint_key is None):
            raise ValueError("audit_checkpoint_file and audit_checkpoint_key go together")
        return self

    def checkpoint_key(self) -> bytes | None:
        key = self.audit_checkpoint_key
        return bytes.fromhex(key.get_secret_value()) if key is not None else None

    @field_validator("certificate_policies")
    @classmethod
    def _policy_oids(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for purpose, listed in value.items():
            if not listed:
                raise ValueError(f"certificate_policies.{purpose} names no policy OID")
            bad = [oid for oid in listed if not _OID.match(oid)]
            if bad:
                raise ValueError(f"certificate_policies.{purpose}: not an OID: {bad[0]!r}")
        return value

    @field_validator("revocation_mirrors")
    @classmethod
    def _mirror_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for prefix, mirror in value.items():
            for url in (prefix, mirror):
                if not url.lower().startswith(("http://", "https://")):
                    raise ValueError(f"revocation_mirrors: {url!r} is not an http(s) URL")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.lower()
        if value not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("log_level must be debug, info, warning, error or critical")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = settings_cls.model_config.get("toml_file") or os.environ.get("ACCESSD_CONFIG")
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(str(path))))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Builds settings; a config file given here takes the place of ACCESSD_CONFIG."""
    if config_file is None:
        return Settings(**overrides)
    if not config_file.is_file():
        raise FileNotFoundError(f"configuration file not found: {config_file}")

    class FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=config_file)

    return FileSettings(**overrides)
