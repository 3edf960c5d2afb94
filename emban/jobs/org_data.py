"""Engine work that follows a metadata change, run after the change committed."""

from __future__ import annotations

import logging
from typing import Any

from emban.analytics.ddl import delete_org_events
from emban.analytics.store import EventStore
from emban.jobs.metering import metered_job
from emban.models import Org

log = logging.getLogger("emban.jobs")


@metered_job
async def purge_org_events(ctx: dict[str, Any], org_id: str) -> str:
    """Delete every events/rollup/de-duplication row of a deleted org (``DELETE /v1/settings/org``).

    Idempotent: deleting rows that are already gone is a no-op. It refuses to touch an org that
    still exists, so a stray enqueue can never delete live data.
    """
    if await Org.filter(id=org_id).exists():
        log.warning("purge_org_events: org %s still exists; nothing deleted", org_id)
        return "org exists"
    store: EventStore = ctx["events"]
    await delete_org_events(store, org_id)
    log.info("purge_org_events: events of org %s deleted", org_id)
    return "deleted"
