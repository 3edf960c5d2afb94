"""Analytics queries: the planner's plan, run on the org's store, shaped with the plan's proof."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emban.analytics.planner import plan_query
from emban.analytics.query_spec import QuerySpec, Scope
from emban.analytics.shaping import Point, Series, shape_rows
from emban.analytics.store import ClickHouseError
from emban.auth.principal import Principal
from emban.error_codes import QueryErrorCode
from emban.errors import BadRequest
from emban.runtime import Runtime
from emban.services.access import requires

# Shaping larger than this (bucket x possible-group slots) runs in a worker thread, so the event
# loop keeps serving other requests while up to EMBAN_QUERY_MAX_POINTS points are built.
SHAPE_INLINE_SLOTS = 5_000


@dataclass(frozen=True)
class AnalyticsResult:
    series: Series  # the points, in columns
    meta: dict[str, Any]

    @property
    def points(self) -> list[Point]:
        return self.series.points


async def run_spec(rt: Runtime, scope: Scope, spec: QuerySpec) -> AnalyticsResult:
    """Plan and run one spec for one org/environment (callers have checked permissions)."""
    started = time.perf_counter()
    plan = plan_query(spec, scope, datetime.now(UTC), max_points=rt.settings.query_max_points)
    try:
        result = await rt.events.query(plan.sql, plan.params)
    except ClickHouseError as exc:
        raise BadRequest(
            f"query failed: {str(exc).splitlines()[0][:300]}", code=QueryErrorCode.query_failed
        ) from exc
    slots = len(plan.buckets) * (max(1, len(result.rows)) if plan.grouped else 1)
    if slots + len(result.rows) > SHAPE_INLINE_SLOTS:
        series = await asyncio.to_thread(shape_rows, plan, result.rows, spec.metric)
    else:
        series = shape_rows(plan, result.rows, spec.metric)
    rt.usage.count_query(scope.org_id)
    meta: dict[str, Any] = {
        "query_time_ms": round((time.perf_counter() - started) * 1000.0, 3),
        "rows_scanned": result.rows_read,
        "event_name": spec.event_name,
        "metric": spec.metric,
        "period": spec.period,
        "granularity": spec.granularity,
        "group_by": spec.group_by,
        "source_table": plan.source_table,
        "planned_by": plan.planned_by,
        "rollup_granularity": plan.rollup_granularity,
    }
    return AnalyticsResult(series, meta)


@requires("viewer")
async def run_query(rt: Runtime, *, actor: Principal, spec: QuerySpec) -> AnalyticsResult:
    """``GET /v1/query``: any console role or admin key; scoped to the caller's environment."""
    return await run_spec(rt, Scope(actor.org_id, actor.environment_id), spec)
