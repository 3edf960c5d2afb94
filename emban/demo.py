"""``emban demo``: seed (or refresh) the demo org and hand back a working login."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass

from emban.analytics.catalog import sample_counts
from emban.analytics.ddl import delete_org_events
from emban.analytics.ingest import IngestWriter
from emban.analytics.store import EventStore, open_store
from emban.auth import credentials
from emban.auth.principal import Principal
from emban.auth.rate_limit import MemoryLimiter
from emban.live.bus import InProcessBus
from emban.live.hub import LiveHub
from emban.metadata import close_metadata, open_metadata
from emban.models import ApiKey, Environment, Membership, Org, User
from emban.runtime import Runtime
from emban.sample_data import estimated_total, load_sample_events
from emban.services import accounts, audit
from emban.services.boundary import transaction
from emban.settings import Settings
from emban.usage import UsageRecorder

DEMO_EMAIL = "demo@emban.dev"
DEMO_ORG = "Demo Workspace"
DEMO_KEY_LABEL = "Demo admin key"


@dataclass(frozen=True)
class DemoSeed:
    org_id: str
    org_name: str
    email: str
    password: str
    api_key: str
    sample_events: int


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


async def seed_demo(settings: Settings) -> DemoSeed:
    """Create the demo org once; on every run reset the owner password and mint a fresh key."""
    metadata = await open_metadata(settings)
    events = open_store(settings)
    runtime = Runtime(
        settings=settings,
        events=events,
        limiter=MemoryLimiter(),
        ingest=IngestWriter(events),
        usage=UsageRecorder(),
        live=LiveHub(InProcessBus()),
    )
    password = secrets.token_urlsafe(9)
    try:
        async with transaction():
            org = await Org.filter(is_demo=True).first()
            if org is None:
                reg = await accounts.create_org_with_owner(
                    runtime,
                    email=DEMO_EMAIL,
                    password=password,
                    name="Demo Owner",
                    org_name=DEMO_ORG,
                    ip=None,
                    is_demo=True,
                )
                org = reg.org
            else:
                owner = await Membership.filter(org_id=org.id, role="owner").first()
                assert owner is not None
                await User.filter(id=owner.user_id).update(
                    password_hash=credentials.hash_password(password)
                )
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
        sample = await _refresh_sample_events(events, org.id, production.id)
        owner_user = await User.get(
            id=(await Membership.filter(org_id=org.id, role="owner").first()).user_id  # type: ignore[union-attr]
        )
        return DemoSeed(org.id, org.name, owner_user.email, password, clear, sample)
    finally:
        await events.close()
        await close_metadata(metadata)
