"""The process-wide resources services need, opened once by the app or a worker and closed there."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from redis.asyncio import Redis

from emban.analytics.decode_pool import DecodePool
from emban.analytics.ingest import IngestWriter
from emban.analytics.store import EventStore
from emban.auth.rate_limit import AttemptLimiter, MemoryRequestBudgets, RequestBudgets
from emban.auth.tarpit import RefusalTarpit
from emban.jobs.queue import JobQueue
from emban.live.hub import LiveHub
from emban.services.adhoc_slots import OrgSlots
from emban.services.api_key_cache import ApiKeyCache
from emban.services.discovery_cache import DiscoveryCache
from emban.settings import Settings
from emban.usage import UsageRecorder


@dataclass
class Runtime:
    settings: Settings
    events: EventStore
    limiter: AttemptLimiter
    ingest: IngestWriter
    usage: UsageRecorder
    live: LiveHub
    jobs: JobQueue
    redis: Redis | None = None
    # Per-caller request budgets (services/budgets.py): in Redis when it is configured.
    budgets: RequestBudgets = field(default_factory=MemoryRequestBudgets)
    adhoc_slots: OrgSlots = field(default_factory=OrgSlots)
    # Verified API keys (services/api_key_cache.py), invalidated through the live bus.
    api_keys: ApiKeyCache = field(default_factory=ApiKeyCache)
    # Worker processes decoding big ingest bodies (analytics/decode_pool.py); None: threads.
    decode_pool: DecodePool | None = None
    # Recent discovery scans per environment (services/discovery_cache.py); off unless set.
    discovery: DiscoveryCache = field(default_factory=DiscoveryCache)
    # Refusals of the attempt limits waiting before they are sent (auth/tarpit.py).
    tarpit: RefusalTarpit = field(default_factory=RefusalTarpit)


RUNTIME_KEY = web.AppKey("runtime", Runtime)
