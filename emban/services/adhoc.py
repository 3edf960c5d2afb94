"""Ad-hoc SQL from the Query Builder: admins only, the org/environment pinned by the engine,
at most ``EMBAN_ADHOC_MAX_CONCURRENT_PER_ORG`` running per org and answers within
``EMBAN_ADHOC_MAX_RESULT_BYTES``."""

from __future__ import annotations

from emban.analytics.adhoc import DEFAULT_TIMEOUT_S, AdhocResult, run_adhoc, validate_adhoc
from emban.auth.principal import Principal
from emban.runtime import Runtime
from emban.services.access import requires


@requires("admin")
async def run_adhoc_query(rt: Runtime, *, actor: Principal, sql: str) -> AdhocResult:
    validated = validate_adhoc(sql)  # a refused statement is a 400 even when the org is busy
    async with rt.adhoc_slots.hold(
        actor.org_id,
        limit=rt.settings.adhoc_max_concurrent_per_org,
        busy_for_s=DEFAULT_TIMEOUT_S,
    ):
        result = await run_adhoc(
            rt.events,
            org_id=actor.org_id,
            environment_id=actor.environment_id,
            sql=validated,
            timeout_s=DEFAULT_TIMEOUT_S,
            max_result_bytes=rt.settings.adhoc_max_result_bytes,
        )
    rt.usage.count_query(actor.org_id)
    return result
