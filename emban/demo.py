"""``emban demo``: seed (or refresh) the demo org and hand back a working login.

The demo org is created once, on the pro plan (the demo embed uses advanced embed permissions,
and the free plan publishes one dashboard), with a published demo dashboard over the sample
events (``Dashboard.is_demo``). Later runs keep both, reset the owner's password, mint a fresh
admin key and reload the sample events.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emban.analytics.catalog import sample_counts
from emban.analytics.ddl import delete_org_events
from emban.analytics.guarded import guarded
from emban.analytics.ingest import IngestWriter
from emban.analytics.store import EventStore, open_store
from emban.auth import credentials
from emban.auth.principal import Principal
from emban.auth.rate_limit import MemoryLimiter
from emban.jobs.inprocess import InProcessJobs
from emban.live.bus import InProcessBus
from emban.live.hub import LiveHub
from emban.metadata import close_metadata, open_metadata
from emban.models import ApiKey, Dashboard, Environment, Membership, Org, User
from emban.runtime import Runtime
from emban.sample_data import estimated_total, load_sample_events
from emban.services import accounts, audit, billing, dashboards, embeds
from emban.services.boundary import transaction
from emban.settings import Settings
from emban.usage import UsageRecorder

DEMO_EMAIL = "demo@emban.dev"
DEMO_ORG = "Demo Workspace"
DEMO_KEY_LABEL = "Demo admin key"
DEMO_PLAN = "pro"
DEMO_DASHBOARD = "Demo: AI API usage"
DEMO_WIDGETS: list[dict[str, Any]] = [
    {
        "id": "about",
        "kind": "text",
        "title": "About this demo",
        "text": "Sample traffic of an AI API product: 30 days of `api.call` events for five "
        "tenants. An embed shows one tenant's numbers only.",
        "layout": {"x": 0, "y": 0, "w": 12, "h": 2},
    },
    {
        "id": "unique_users",
        "kind": "metric",
        "title": "Unique users (7 days)",
        "query": {"event_name": "api.call", "metric": "count_unique", "period": "7d"},
        "viz": {"type": "number"},
        "layout": {"x": 0, "y": 2, "w": 6, "h": 2},
    },
    {
        "id": "errors",
        "kind": "metric",
        "title": "Errors (7 days)",
        "query": {
            "event_name": "api.call",
            "metric": "count",
            "period": "7d",
            "filters": {"status": "error"},
        },
        "viz": {"type": "number"},
        "layout": {"x": 6, "y": 2, "w": 6, "h": 2},
    },
    {
        "id": "calls",
        "kind": "timeseries",
        "title": "API calls per day",
        "query": {"event_name": "api.call", "metric": "count", "period": "30d"},
        "viz": {"type": "area"},
        "layout": {"x": 0, "y": 4, "w": 8, "h": 4},
    },
    {
        "id": "calls_by_model",
        "kind": "breakdown",
        "title": "Calls by model",
        "query": {
            "event_name": "api.call",
            "metric": "count",
            "period": "30d",
            "group_by": "model",
        },
        "viz": {"type": "donut"},
        "layout": {"x": 8, "y": 4, "w": 4, "h": 4},
    },
    {
        "id": "latency_p95",
        "kind": "timeseries",
        "title": "p95 latency (ms)",
        "query": {
            "event_name": "api.call",
            "metric": "p95",
            "period": "30d",
            "numeric_prop": "latency_ms",
        },
        "viz": {"type": "line", "unit": "ms"},
        "layout": {"x": 0, "y": 8, "w": 12, "h": 4},
    },
]


@dataclass(frozen=True)
class DemoSeed:
    org_id: str
    org_name: str
    email: str
    password: str
    api_key: str
    sample_events: int
    dashboard_id: str
    embed_url: str  # a one-hour demo session (GET /v1/demo/embed-url mints the same)


def _progress_bar(total: int) -> Callable[[int], None]:
    def show(done: int) -> None:
        share = min(1.0, done / total) if total else 1.0
        filled = int(share * 30)
        sys.stderr.write(f"\rloading sample events [{'#' * filled}{'.' * (30 - filled)}] {done:,}")
        sys.stderr.flush()

    return show


async def _refresh_sample_events(events: EventStore, org_id: str, environment_id: str) -> int:
    """Reload 30 fresh days of sample events unless the org already has real events."""
    real, sample = await sample_counts(events, org_id)
    if real:
        return sample  # never touch an org that holds real data
    if sample:
        await delete_org_events(events, org_id)
    loaded = await load_sample_events(
        events, org_id, environment_id, progress=_progress_bar(estimated_total())
    )
    sys.stderr.write("\n")
    return loaded


async def _demo_dashboard(org_id: str, environment_id: str) -> Dashboard:
    """The demo dashboard: created and published once (published again if someone unpublished
    it); a dashboard edited in the console is kept as it is."""
    operator = Principal.operator(org_id, environment_id)
    found = await Dashboard.filter(org_id=org_id, is_demo=True).order_by("created_at").first()
    if found is None:
        found = await dashboards.create_dashboard(
            actor=operator,
            name=DEMO_DASHBOARD,
            widgets=DEMO_WIDGETS,
            description="Sample events of an AI API product.",
        )
        found.is_demo = True
        await found.save(update_fields=["is_demo"])
    if not found.is_published:
        found = await dashboards.publish_dashboard(actor=operator, dashboard_id=found.id)
    return found


async def seed_demo(settings: Settings) -> DemoSeed:
    """Create the demo org once; on every run reset the owner password and mint a fresh key."""
    metadata = await open_metadata(settings)
    events = guarded(open_store(settings))
    runtime = Runtime(
        settings=settings,
        events=events,
        limiter=MemoryLimiter(),
        ingest=IngestWriter(events),
        usage=UsageRecorder(),
        live=LiveHub(InProcessBus()),
        jobs=InProcessJobs({"settings": settings, "events": events}),
    )
    password = secrets.token_urlsafe(9)
    password_hash = await credentials.hash_password(password)
    try:
        async with transaction():
            org = await Org.filter(is_demo=True).first()
            if org is None:
                reg = await accounts.create_org_with_owner(
                    runtime,
                    email=DEMO_EMAIL,
                    password_hash=password_hash,
                    name="Demo Owner",
                    org_name=DEMO_ORG,
                    ip=None,
                    is_demo=True,
                )
                org = await billing.set_plan(reg.org.id, DEMO_PLAN)
            else:
                owner = await Membership.filter(org_id=org.id, role="owner").first()
                assert owner is not None
                await User.filter(id=owner.user_id).update(password_hash=password_hash)
            production = await Environment.get(org_id=org.id, name="production")
            await ApiKey.filter(org_id=org.id, label=DEMO_KEY_LABEL).delete()
            clear = credentials.new_api_key()
            key = await ApiKey.create(
                org_id=org.id,
                environment_id=production.id,
                label=DEMO_KEY_LABEL,
                scope="admin",
                prefix=credentials.key_prefix(clear),
                key_hash=credentials.token_digest(clear),
            )
            await audit.record(
                Principal.operator(org.id, production.id),
                "api_key.create",
                "api_key",
                key.id,
                {"label": DEMO_KEY_LABEL, "scope": "admin"},
            )
            dashboard = await _demo_dashboard(org.id, production.id)
        sample = await _refresh_sample_events(events, org.id, production.id)
        session = await embeds.demo_embed_url(runtime)
        owner_user = await User.get(
            id=(await Membership.filter(org_id=org.id, role="owner").first()).user_id  # type: ignore[union-attr]
        )
        return DemoSeed(
            org.id,
            org.name,
            owner_user.email,
            password,
            clear,
            sample,
            dashboard.id,
            session.embed_url,
        )
    finally:
        await events.close()
        await close_metadata(metadata)
