"""Each panel's offline credential cache: a versioned snapshot, then deltas in order.

The contents come from `policies.offline` over the decision snapshot. A panel's first
version is the service's start time in milliseconds, so versions only grow across
restarts; every change bumps it by one and goes out as a delta from the version before. A
panel that holds another version asks for the snapshot (``req/snapshot``). Identifiers are
sent as HMAC-SHA256 under a random per-panel salt, never in the clear.

Revocations take the fast path: `credentials_changed` recomputes only those credentials'
entries and sends the deltas to every panel concerned at once.

Each entry is kept as its JSON text, not as a model: a site's caches hold millions of entries
(1.2 million for 564 panels in bench/decisions_mqtt.py), and as objects they were ~4.5
million containers that every full pass of the cyclic garbage collector walked, a pause of
about a second for the whole event loop, longer than a panel waits for a decision. Text is
not tracked by the collector, takes a third of the memory and is what the snapshot sends.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from accessd.gateway.directory import PanelDirectory, PanelInfo
from drivers.mqtt import messages as m
from drivers.mqtt.topics import CRED_DELTA, CRED_SNAPSHOT
from drivers.panel.cache import credential_hash
from policies.offline import (
    OfflineCache,
    OfflineGrant,
    OfflineWindows,
    grant_for,
    offline_cache,
    offline_caches,
)
from policies.snapshot import Snapshot

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bool], Awaitable[None]]


@dataclass
class PanelCache:
    """What one panel has been sent: the version, salt and entries by hash."""

    version: int
    salt: bytes
    timezone: str
    doors: dict[str, m.OfflineDoor]
    schedules: dict[str, m.OfflineSchedule]
    #: hash → the entry's compact JSON, as `m.encode` would write its `m.CacheEntry`
    entries: dict[str, bytes]
    #: credential id → the hashes of its identifiers, to find its entries again
    hashes_of: dict[int, tuple[str, ...]] = field(default_factory=dict)


def _schedule(win: OfflineWindows) -> m.OfflineSchedule:
    return m.OfflineSchedule(
        windows=[
            m.Window(day=d, start=a, end=b) for d, spans in enumerate(win.week) for a, b in spans
        ],
        holidays=sorted(win.holidays),
        holiday_windows=[m.Window(day=0, start=a, end=b) for a, b in win.holiday],
    )


def _entries(salt: bytes, grant: OfflineGrant) -> list[tuple[str, bytes]]:
    """(hash, JSON of its `m.CacheEntry`) for each identifier of ``grant``. The JSON is
    written here rather than by pydantic, 2 us an entry instead of 6, from values of our own
    making that the schema admits (hex hashes, door ids from ints, ISO dates); the tests
    hold it equal to `m.encode`'s."""
    doors = json.dumps(
        {str(d): key for d, key in grant.doors}, ensure_ascii=False, separators=(",", ":")
    )
    tail = f'","doors":{doors},"valid_until":"{grant.valid_until.isoformat()}"}}'.encode()
    out = []
    for kind, value in grant.identifiers:
        h = credential_hash(salt, kind, value)
        out.append((h, b'{"h":"' + h.encode() + tail))
    return out


def entry_model(entry: bytes) -> m.CacheEntry:
    """The `m.CacheEntry` a kept entry is (for a delta's upserts, which are few)."""
    return m.CacheEntry.model_validate_json(entry)


#: How long a panel trusts its cache without hearing from accessd, unless the site says
#: (offline_cache_max_age_seconds): FIPS 201-3's 18 hours for a revocation to take effect.
MAX_AGE = timedelta(hours=18)

#: How `m.encode` ends a snapshot whose entries are left empty: they are spliced in there.
_NO_ENTRIES = b'"entries":[]}'


class CachePublisher:
    """Keeps every MQTT panel's cache current; ``publish(topic, payload, retain)``."""

    def __init__(
        self,
        directory: PanelDirectory,
        snapshot: Callable[[], Snapshot],
        publish: Publish,
        *,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self._directory = directory
        self._snapshot = snapshot
        self._publish = publish
        self._today = today
        self.max_age: timedelta | None = MAX_AGE
        self._caches: dict[int, PanelCache] = {}
        self._base_version = int(time.time() * 1000)
        self.snapshots_sent = 0
        self.deltas_sent = 0
        self.failures = 0
        self._stale: set[int] = set()
        self._stale_wake = asyncio.Event()

    def cache_of(self, panel_id: int) -> PanelCache | None:
        return self._caches.get(panel_id)

    # -- building ---------------------------------------------------------------------------

    def _build(
        self, panel: PanelInfo, version: int, salt: bytes, content: OfflineCache | None = None
    ) -> PanelCache:
        if content is None:
            content = offline_cache(self._snapshot(), panel.doors, today=self._today())
        cache = PanelCache(
            version=version,
            salt=salt,
            timezone=content.timezone,
            doors={
                str(r.door_id): m.OfflineDoor(factors=r.factors, offline_allowed=r.offline_allowed)
                for r in content.doors
            },
            schedules={w.key: _schedule(w) for w in content.schedules},
            entries={},
        )
        for grant in content.grants:
            entries = _entries(salt, grant)
            cache.hashes_of[grant.credential_id] = tuple(h for h, _ in entries)
            cache.entries.update(entries)
        return cache

    def snapshot_payload(self, cache: PanelCache) -> bytes:
        """The encoded `m.CredSnapshot` of ``cache``: the rest by `m.encode`, the kept
        entries' JSON joined into its ``entries`` list as they are."""
        head = m.encode(
            m.CredSnapshot(
                version=cache.version,
                salt=base64.b64encode(cache.salt).decode(),
                timezone=cache.timezone,
                generated_at=datetime.now(UTC),
                max_age_seconds=int(self.max_age.total_seconds()) if self.max_age else None,
                doors=cache.doors,
                schedules=cache.schedules,
                entries=[],
            )
        )
        if not head.endswith(_NO_ENTRIES):  # entries is the model's last field
            raise AssertionError("CredSnapshot no longer encodes its entries last")
        return b"".join((head[:-2], b",".join(cache.entries.values()), b"]}"))

    # -- sending ----------------------------------------------------------------------------

    async def _send(self, panel: PanelInfo, leaf: str, payload: bytes, retain: bool) -> None:
        try:
            await self._publish(panel.topics.leaf(leaf), payload, retain)
        except Exception:
            # The panel asks for a snapshot when it finds itself behind; nothing else to do.
            self.failures += 1
            log.exception("sending %s to panel %d failed", leaf, panel.id)

    def _contents(self) -> dict[int, OfflineCache]:
        """Every panel's cache contents, in one pass over the credentials."""
        panels = {p.id: p.doors for p in self._directory.panels()}
        return offline_caches(self._snapshot(), panels, today=self._today())

    async def publish_all(self) -> None:
        """A fresh snapshot for every panel (at start, and after a directory change)."""
        contents = self._contents()
        sends = []
        for panel in self._directory.panels():
            old = self._caches.get(panel.id)
            version = self._base_version if old is None else old.version + 1
            salt = secrets.token_bytes(16) if old is None else old.salt
            self._caches[panel.id] = self._build(panel, version, salt, contents[panel.id])
            sends.append(self.send_snapshot(panel.id))
            await asyncio.sleep(0)  # hundreds of panels: let requests through meanwhile
        await asyncio.gather(*sends)

    async def send_snapshot(self, panel_id: int) -> None:
        """The panel's whole cache, retained (so a panel that reconnects finds it); built
        first for a panel that has none yet."""
        panel = self._directory.by_id(panel_id)
        if panel is None:
            return
        cache = self._caches.get(panel_id)
        if cache is None:
            cache = self._build(panel, self._base_version, secrets.token_bytes(16))
            self._caches[panel_id] = cache
        await self._send(panel, CRED_SNAPSHOT, self.snapshot_payload(cache), True)
        self.snapshots_sent += 1

    async def refresh(self) -> None:
        """Recompute every panel's cache and send what changed as deltas (after policy or
        people changes, which can touch anyone)."""
        known = {p.id for p in self._directory.panels()}
        for gone in set(self._caches) - known:
            del self._caches[gone]
        contents = self._contents()
        sends = []
        for panel in self._directory.panels():
            old = self._caches.get(panel.id)
            if old is None:
                self._caches[panel.id] = self._build(
                    panel, self._base_version, secrets.token_bytes(16), contents[panel.id]
                )
                sends.append(self.send_snapshot(panel.id))
                continue
            new = self._build(panel, old.version + 1, old.salt, contents[panel.id])
            await asyncio.sleep(0)
            delta = self._diff(old, new)
            if delta is None:
                continue
            self._caches[panel.id] = new
            sends.append(self._send_delta(panel, delta))
        await asyncio.gather(*sends)

    @staticmethod
    def _diff(old: PanelCache, new: PanelCache) -> m.CredDelta | None:
        upsert = [entry_model(e) for h, e in new.entries.items() if old.entries.get(h) != e]
        remove = sorted(set(old.entries) - set(new.entries))
        doors_changed = old.doors != new.doors
        schedules_changed = old.schedules != new.schedules
        if not (upsert or remove or doors_changed or schedules_changed):
            return None
        return m.CredDelta(
            from_version=old.version,
            version=new.version,
            upsert=upsert,
            remove=remove,
            doors=new.doors if doors_changed else None,
            schedules=new.schedules if schedules_changed or doors_changed else None,
        )

    async def _send_delta(self, panel: PanelInfo, delta: m.CredDelta) -> None:
        await self._send(panel, CRED_DELTA, m.encode(delta), False)
        self.deltas_sent += 1
        # The retained snapshot must not go stale behind the deltas (a panel that connects
        # later starts from it), but re-encoding whole caches on the revocation path slows
        # the deltas down: it is refreshed a little later, once per burst of changes.
        self._stale.add(panel.id)
        self._stale_wake.set()

    async def retain_loop(self, quiet: float = 1.0) -> None:
        """Re-publishes the retained snapshot of panels whose cache moved on by deltas."""
        while True:
            await self._stale_wake.wait()
            await asyncio.sleep(quiet)
            self._stale_wake.clear()
            stale, self._stale = self._stale, set()
            for panel_id in stale:
                panel = self._directory.by_id(panel_id)
                cache = self._caches.get(panel_id)
                if panel is not None and cache is not None:
                    await self._send(panel, CRED_SNAPSHOT, self.snapshot_payload(cache), True)
                    await asyncio.sleep(0)

    async def credentials_changed(self, credential_ids: Iterable[int]) -> None:
        """Recompute only these credentials at every panel and send the deltas at once (a
        revocation reaches every cache within one round trip to the broker)."""
        ids = set(credential_ids)
        snap = self._snapshot()
        today = self._today()
        sends = []
        for panel in self._directory.panels():
            cache = self._caches.get(panel.id)
            if cache is None:
                continue
            wanted = {int(d) for d, rule in cache.doors.items() if rule.offline_allowed}
            upsert: list[m.CacheEntry] = []
            remove: list[str] = []
            windows: dict[str, OfflineWindows] = {}
            for cid in ids:
                before = set(cache.hashes_of.get(cid, ()))
                grant = grant_for(snap, cid, wanted, windows, today=today)
                entries = _entries(cache.salt, grant) if grant is not None else []
                after = {h for h, _ in entries}
                remove.extend(sorted(before - after))
                upsert.extend(entry_model(e) for h, e in entries if cache.entries.get(h) != e)
                for h in before - after:
                    cache.entries.pop(h, None)
                cache.entries.update(entries)
                if after:
                    cache.hashes_of[cid] = tuple(sorted(after))
                else:
                    cache.hashes_of.pop(cid, None)
            new_schedules = {
                k: _schedule(w) for k, w in windows.items() if k not in cache.schedules
            }
            if not (upsert or remove):
                continue
            cache.schedules.update(new_schedules)
            delta = m.CredDelta(
                from_version=cache.version,
                version=cache.version + 1,
                upsert=upsert,
                remove=remove,
                schedules=dict(cache.schedules) if new_schedules else None,
            )
            cache.version += 1
            sends.append(self._send_delta(panel, delta))
        await asyncio.gather(*sends)
