"""Analytics queries: the planner's plan, run on the org's store, shaped with the plan's proof."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emban.analytics.planner import Plan, cohort_group, plan_cohorts, plan_query
from emban.analytics.query_spec import QuerySpec, Scope
from emban.analytics.shaping import Point, Series, shape_rows, split_rows
from emban.analytics.store import ClickHouseError, QueryResult
from emban.auth.principal import Principal
from emban.error_codes import QueryErrorCode
from emban.errors import BadRequest, EmbanError
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
    result = await _engine(rt, plan)
    series = await _shape(plan, result.rows, spec.metric)
    rt.usage.count_query(scope.org_id)
    return AnalyticsResult(series, _meta(spec, plan, result.rows_read, started))


async def run_specs(
    rt: Runtime, scope: Scope, specs: Sequence[QuerySpec]
) -> list[AnalyticsResult | EmbanError]:
    """Each spec's answer (or its refusal), in as few engine queries as the specs allow: equal
    specs are run once, and specs of one :func:`cohort_group` (the live cohorts of a dashboard
    and tenant, differing in their filters) share one :func:`plan_cohorts` query. The queries run
    one after the other: a caller holding one engine slot (the live hub) uses one connection."""
    answers: dict[QuerySpec, AnalyticsResult | EmbanError] = {}
    groups: dict[Hashable, list[QuerySpec]] = {}
    for spec in dict.fromkeys(specs):
        groups.setdefault(cohort_group(spec), []).append(spec)
    for members in groups.values():
        if len(members) == 1:
            try:
                answers[members[0]] = await run_spec(rt, scope, members[0])
            except EmbanError as error:
                answers[members[0]] = error
            continue
        answers.update(zip(members, await _run_cohorts(rt, scope, members), strict=True))
    return [answers[spec] for spec in specs]


async def _run_cohorts(
    rt: Runtime, scope: Scope, specs: list[QuerySpec]
) -> list[AnalyticsResult | EmbanError]:
    started = time.perf_counter()
    max_points = rt.settings.query_max_points
    try:
        plan = plan_cohorts(specs, scope, datetime.now(UTC), max_points=max_points)
        result = await _engine(rt, plan)
    except EmbanError as error:
        return [error] * len(specs)
    rt.usage.count_query(scope.org_id)
    answers: list[AnalyticsResult | EmbanError] = []
    for spec, rows in zip(specs, split_rows(plan, result.rows), strict=True):
        try:
            series = await _shape(plan, rows, spec.metric)
        except EmbanError as error:
            answers.append(error)
            continue
        answers.append(AnalyticsResult(series, _meta(spec, plan, result.rows_read, started)))
    return answers


async def _engine(rt: Runtime, plan: Plan) -> QueryResult:
    try:
        return await rt.events.query(plan.sql, plan.params)
    except ClickHouseError as exc:
        raise BadRequest(
            f"query failed: {str(exc).splitlines()[0][:300]}", code=QueryErrorCode.query_failed
        ) from exc


async def _shape(plan: Plan, rows: list[list[Any]], metric: str) -> Series:
    slots = len(plan.buckets) * (max(1, len(rows)) if plan.grouped else 1)
    if slots + len(rows) > SHAPE_INLINE_SLOTS:
        return await asyncio.to_thread(shape_rows, plan, rows, metric)
    return shape_rows(plan, rows, metric)


def _meta(spec: QuerySpec, plan: Plan, rows_read: int, started: float) -> dict[str, Any]:
    return {
        "query_time_ms": round((time.perf_counter() - started) * 1000.0, 3),
        "rows_scanned": rows_read,
        "event_name": spec.event_name,
        "metric": spec.metric,
        "period": spec.period,
        "granularity": spec.granularity,
        "group_by": spec.group_by,
        "source_table": plan.source_table,
        "planned_by": plan.planned_by,
        "rollup_granularity": plan.rollup_granularity,
    }


@requires("viewer")
async def run_query(rt: Runtime, *, actor: Principal, spec: QuerySpec) -> AnalyticsResult:
    """``GET /v1/query``: any console role or admin key; scoped to the caller's environment."""
    return await run_spec(rt, Scope(actor.org_id, actor.environment_id), spec)
