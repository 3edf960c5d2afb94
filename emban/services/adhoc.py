"""Ad-hoc SQL from the Query Builder: admins only, the org/environment pinned by the engine."""

from __future__ import annotations

from emban.analytics.adhoc import AdhocResult, run_adhoc
from emban.auth.principal import Principal
from emban.runtime import Runtime


async def run_adhoc_query(rt: Runtime, *, actor: Principal, sql: str) -> AdhocResult:
    actor.require_role("admin")
    result = await run_adhoc(
        rt.events, org_id=actor.org_id, environment_id=actor.environment_id, sql=sql
    )
    rt.usage.count_query(actor.org_id)
    return result
