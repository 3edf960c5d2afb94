"""The process-wide resources services need, opened once by the app or a worker and closed there."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from redis.asyncio import Redis

from emban.analytics.ingest import IngestWriter
from emban.analytics.store import EventStore
from emban.auth.rate_limit import AttemptLimiter
from emban.live.hub import LiveHub
from emban.services.adhoc_slots import OrgSlots
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
    redis: Redis | None = None
    adhoc_slots: OrgSlots = field(default_factory=OrgSlots)


RUNTIME_KEY = web.AppKey("runtime", Runtime)
