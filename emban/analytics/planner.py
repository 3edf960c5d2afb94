"""The query planner: a pure function from a query spec to SQL, parameters and plan facts.

No I/O happens here. Identifiers come only from allowlists; every value (org, environment,
tenant, event name, property keys and values, time bounds) is a server-side ``{name:Type}``
parameter. The org/environment guard is written by :func:`plan_query` itself from a required
:class:`Scope`, so a query without it cannot be built.

Rules (the spec's "planner path is intentionally conservative"):

- ``count`` and ``count_unique_approx`` read the hourly rollup for hour buckets and the daily
  rollup for day/week/month buckets (HLL states merge across buckets); filtered or grouped by one
  of the common dimensions they read the dimension rollups.
- ``count_unique`` (exact) reads a rollup only when the bucket matches: hourly for hour, daily for
  day; weeks and months read raw events. The dimension rollups keep no exact states (HLL only),
  so exact counts filtered or grouped by a dimension read raw events too.
- ``sum``, ``avg``, ``p95`` and ``p99`` read raw events, as does anything touching two different
  dimensions or a dimension outside the rollups.

Time windows are aligned to whole hours (hour buckets) or whole days (other buckets) on both
ends, so a rollup answer covers exactly the raw rows the raw plan reads.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from emban.analytics.query_spec import (
    COUNT_METRICS,
    NUMERIC_METRICS,
    PERIOD_LENGTH,
    QuerySpec,
    Scope,
)
from emban.analytics.tables import (
    DAILY,
    DAILY_DIM,
    EVENTS,
    HOURLY,
    HOURLY_DIM,
    ROLLUP_DIMENSIONS,
)
from emban.errors import AnswerTooLarge

PlannedBy = Literal["raw", "hourly_rollup", "daily_rollup"]

# Points one answer may hold (buckets x groups, zero-filled ones included); the app passes
# ``Settings.query_max_points`` (EMBAN_QUERY_MAX_POINTS).
DEFAULT_MAX_POINTS = 100_000


@dataclass(frozen=True)
class Plan:
    sql: str
    params: dict[str, Any]
    source_table: str
    planned_by: PlannedBy
    rollup_granularity: str | None
    start: datetime
    end: datetime
    buckets: list[datetime] = field(default_factory=list)
    grouped: bool = False
    fill_zero: bool = True
    max_points: int = DEFAULT_MAX_POINTS
    # plan_cohorts: how many specs the rows answer (each row starts with its spec's index)
    cohorts: int = 0


def choose_source(spec: QuerySpec) -> tuple[PlannedBy, str, str | None]:
    """(planned_by, source table, rollup granularity) by the conservative rules above."""
    dims = spec.dimensions
    if spec.metric in NUMERIC_METRICS or spec.numeric_ranges or spec.date_range is not None:
        return "raw", EVENTS, None
    if spec.total and spec.metric == "count_unique":
        return "raw", EVENTS, None
    if len(dims) > 1 or (dims and next(iter(dims)) not in ROLLUP_DIMENSIONS):
        return "raw", EVENTS, None
    hourly = spec.granularity == "hour"
    if spec.metric == "count_unique" and (dims or spec.granularity not in ("hour", "day")):
        return "raw", EVENTS, None
    if hourly:
        return "hourly_rollup", HOURLY_DIM if dims else HOURLY, "hour"
    return "daily_rollup", DAILY_DIM if dims else DAILY, "day"


def window(spec: QuerySpec, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) aligned to whole hours (hour buckets) or days, covering the period; an
    explicit ``date_range`` is used as given. ``periods_back`` shifts the window back by its own
    length, so the previous window ends where the current one starts (no shared bucket)."""
    if spec.date_range is not None:
        start, end = spec.date_range
    else:
        unit = timedelta(hours=1) if spec.granularity == "hour" else timedelta(days=1)
        start = _floor(now - PERIOD_LENGTH[spec.period], spec.granularity == "hour")
        end = _floor(now, spec.granularity == "hour") + unit
    shift = (end - start) * spec.periods_back
    return start - shift, end - shift


def _floor(moment: datetime, to_hour: bool) -> datetime:
    moment = moment.astimezone(UTC)
    if to_hour:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def bucket_start(moment: datetime, granularity: str) -> datetime:
    if granularity == "hour":
        return _floor(moment, True)
    day = _floor(moment, False)
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def bucket_range(start: datetime, end: datetime, granularity: str) -> list[datetime]:
    """Every bucket start from the bucket holding ``start`` up to before ``end``."""
    out: list[datetime] = []
    current = bucket_start(start, granularity)
    while current < end:
        out.append(current)
        if granularity == "hour":
            current += timedelta(hours=1)
        elif granularity == "day":
            current += timedelta(days=1)
        elif granularity == "week":
            current += timedelta(days=7)
        else:
            year, month = (
                (current.year + 1, 1) if current.month == 12 else (current.year, current.month + 1)
            )
            current = current.replace(year=year, month=month)
    return out


def bucket_count(start: datetime, end: datetime, granularity: str) -> int:
    """``len(bucket_range(start, end, granularity))`` without building the list."""
    first = bucket_start(start, granularity)
    if end <= first:
        return 0
    if granularity == "month":
        last = bucket_start(end - timedelta(microseconds=1), "month")
        return (last.year - first.year) * 12 + last.month - first.month + 1
    step = {
        "hour": timedelta(hours=1),
        "day": timedelta(days=1),
        "week": timedelta(days=7),
    }[granularity]
    return -(-(end - first) // step)  # ceiling division


def too_many_points(limit: int, *, grouped: bool) -> AnswerTooLarge:
    """The 400 for an answer over the cap; names the cap and the parameter to change."""
    what = "buckets x groups" if grouped else "buckets"
    advice = (
        "filter to fewer groups, narrow the period or use a coarser granularity"
        if grouped
        else "narrow the period or use a coarser granularity"
    )
    return AnswerTooLarge(
        f"this query would answer more than {limit} points ({what}; EMBAN_QUERY_MAX_POINTS): "
        f"{advice}",
        field="group_by" if grouped else "granularity",
        limit=limit,
    )


_RAW_BUCKET = {
    "hour": "toStartOfHour(timestamp)",
    "day": "toStartOfDay(timestamp)",
    "week": "toDateTime(toMonday(timestamp), 'UTC')",
    "month": "toDateTime(toStartOfMonth(timestamp), 'UTC')",
}
_DAILY_BUCKET = {
    "day": "toDateTime(bucket, 'UTC')",
    "week": "toDateTime(toMonday(bucket), 'UTC')",
    "month": "toDateTime(toStartOfMonth(bucket), 'UTC')",
}
_RAW_METRIC = {
    "count": "count()",
    "count_unique": "uniqExactIf(user_id, user_id != '')",
    "count_unique_approx": "uniqCombined64If(user_id, user_id != '')",
    "sum": "sumIf(numeric_props[{prop:String}], mapContains(numeric_props, {prop:String}))",
    "avg": "avgIf(numeric_props[{prop:String}], mapContains(numeric_props, {prop:String}))",
    "p95": "quantileExactIf(0.95)(numeric_props[{prop:String}], "
    "mapContains(numeric_props, {prop:String}))",
    "p99": "quantileExactIf(0.99)(numeric_props[{prop:String}], "
    "mapContains(numeric_props, {prop:String}))",
}
_ROLLUP_METRIC = {
    "count": "sum(events)",
    "count_unique": "uniqExactMerge(users)",
    "count_unique_approx": "uniqCombined64Merge(users_hll)",
}


def _dt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _any_of(params: dict[str, Any], prefix: str, values: tuple[str, ...]) -> str:
    """The placeholders of one "any of" filter's values (one String parameter each, so every
    value is bound and escaped like any other), their parameters added to ``params``."""
    names = [f"{prefix}_{position}" for position in range(len(values))]
    params.update(zip(names, values, strict=True))
    return ", ".join(f"{{{name}:String}}" for name in names)


def _narrowing(
    spec: QuerySpec, planned_by: PlannedBy, prefix: str
) -> tuple[list[str], dict[str, Any]]:
    """The clauses a spec's filters add to the common ones (string filters, "any of" filters and
    numeric ranges), with their parameters; every parameter name starts with ``prefix``, so the
    filters of several cohorts can be bound in one query."""
    where: list[str] = []
    params: dict[str, Any] = {}
    p = prefix
    if planned_by == "raw":
        for index, (key, value) in enumerate(spec.filters):
            where.append(f"string_props[{{{p}fk{index}:String}}] = {{{p}fv{index}:String}}")
            params[f"{p}fk{index}"] = key
            params[f"{p}fv{index}"] = value
        for index, (key, values) in enumerate(spec.any_of):
            params[f"{p}ak{index}"] = key
            where.append(
                f"string_props[{{{p}ak{index}:String}}] IN "
                f"({_any_of(params, f'{p}av{index}', values)})"
            )
        for index, (key, low, high) in enumerate(spec.numeric_ranges):
            params[f"{p}nk{index}"] = key
            where.append(f"mapContains(numeric_props, {{{p}nk{index}:String}})")
            if low is not None:
                where.append(f"numeric_props[{{{p}nk{index}:String}}] >= {{{p}nlo{index}:Float64}}")
                params[f"{p}nlo{index}"] = low
            if high is not None:
                where.append(f"numeric_props[{{{p}nk{index}:String}}] <= {{{p}nhi{index}:Float64}}")
                params[f"{p}nhi{index}"] = high
    else:
        # a dimension rollup: the filters are on its one dimension's ``value``
        for index, (_, value) in enumerate(spec.filters):
            where.append(f"value = {{{p}fv{index}:String}}")
            params[f"{p}fv{index}"] = value
        for index, (_, values) in enumerate(spec.any_of):
            where.append(f"value IN ({_any_of(params, f'{p}av{index}', values)})")
    return where, params


def cohort_group(spec: QuerySpec) -> Hashable:
    """Specs with the same group can be planned together by :func:`plan_cohorts`: they read the
    same source, window and buckets and differ only in their narrowing filters."""
    planned = choose_source(spec)
    return (
        planned,
        spec.dimensions if planned[0] != "raw" else None,
        replace(spec, filters=(), any_of=(), numeric_ranges=()),
    )


def plan_query(
    spec: QuerySpec,
    scope: Scope,
    now: datetime,
    *,
    force_raw: bool = False,
    max_points: int = DEFAULT_MAX_POINTS,
) -> Plan:
    """Spec → SQL + params + plan facts. The org/environment guard is always the first clause.

    ``force_raw=True`` skips :func:`choose_source` and plans the query on raw events whatever the
    rules say; the rollup-equals-raw tests compare the two plans of one spec with it.

    The answer is bounded by ``max_points``: a bucket count over it is refused here, before any
    work; a grouped query reads at most ``max_points + 1`` rows (``LIMIT``), and
    :func:`shape_rows` refuses more groups than the buckets leave room for.
    """
    return _plan([spec], scope, now, force_raw=force_raw, max_points=max_points, cohorts=False)


def plan_cohorts(
    specs: Sequence[QuerySpec],
    scope: Scope,
    now: datetime,
    *,
    max_points: int = DEFAULT_MAX_POINTS,
) -> Plan:
    """One query answering several specs of one :func:`cohort_group` (the live cohorts of one
    dashboard and tenant, each with its own filters): each row starts with the index of the spec
    it answers (``c``; a row matching several specs' filters is counted for each), and
    ``plan.cohorts`` is the number of specs. Split by :func:`emban.analytics.shaping.split_rows`,
    each spec's rows are exactly what :func:`plan_query` would have read for it.

    The common clauses (org, environment, event, tenant, window, property, dimension) come from
    the first spec; each spec's filters become one condition of the array the rows are joined
    with, so the engine reads the tenant's rows once for all of them."""
    if len(specs) < 2:
        raise ValueError("plan_cohorts needs at least two specs")
    group = cohort_group(specs[0])
    if any(cohort_group(spec) != group for spec in specs[1:]):
        raise ValueError("plan_cohorts: the specs are not of one cohort group")
    return _plan(specs, scope, now, force_raw=False, max_points=max_points, cohorts=True)


def _plan(
    specs: Sequence[QuerySpec],
    scope: Scope,
    now: datetime,
    *,
    force_raw: bool,
    max_points: int,
    cohorts: bool,
) -> Plan:
    spec = specs[0]
    if force_raw:
        planned_by: PlannedBy = "raw"
        table: str = EVENTS
        rollup_granularity: str | None = None
    else:
        planned_by, table, rollup_granularity = choose_source(spec)
    start, end = window(spec, now)
    buckets = 1 if spec.total else bucket_count(start, end, spec.granularity)
    if buckets > max_points:
        raise too_many_points(max_points, grouped=False)
    params: dict[str, Any] = {
        "org": scope.org_id,
        "env": scope.environment_id,
        "event": spec.event_name,
    }
    where = [
        "org_id = {org:String}",
        "environment_id = {env:String}",
        "event_name = {event:String}",
    ]
    if spec.tenant_id is not None:
        where.append("tenant_id = {tenant:String}")
        params["tenant"] = spec.tenant_id
    grouped = spec.group_by is not None
    if planned_by == "raw":
        bucket = _RAW_BUCKET[spec.granularity]
        metric = _RAW_METRIC[spec.metric]
        where.append("timestamp >= {start:DateTime64(3, 'UTC')}")
        where.append("timestamp < {end:DateTime64(3, 'UTC')}")
        params["start"] = _dt(start)
        params["end"] = _dt(end)
        if spec.numeric_prop is not None:
            # events without the property are ignored: a bucket with none of them has no point
            # (not a sum of 0 while avg/p95 omit it)
            where.append("mapContains(numeric_props, {prop:String})")
            params["prop"] = spec.numeric_prop
        group_expr = "string_props[{gk:String}]"
        if grouped:
            params["gk"] = spec.group_by
    else:
        metric = _ROLLUP_METRIC[spec.metric]
        if rollup_granularity == "hour":
            bucket = "bucket"
            where.append("bucket >= {start:DateTime('UTC')}")
            where.append("bucket < {end:DateTime('UTC')}")
            params["start"] = _dt(start)
            params["end"] = _dt(end)
        else:
            bucket = _DAILY_BUCKET[spec.granularity]
            where.append("bucket >= {start:Date}")
            where.append("bucket < {end:Date}")
            params["start"] = start.date().isoformat()
            params["end"] = end.date().isoformat()
        dims = spec.dimensions
        if dims:
            where.append("dimension = {dim:String}")
            params["dim"] = next(iter(dims))
        group_expr = "value"
    select: list[str] = []
    group: list[str] = []
    source = table
    if cohorts:
        conditions: list[str] = []
        for index, member in enumerate(specs):
            clauses, bound = _narrowing(member, planned_by, f"c{index}_")
            params.update(bound)
            conditions.append(f"if({' AND '.join(clauses) or '1'}, {index}, -1)")
        source = f"{table} ARRAY JOIN arrayFilter(x -> x >= 0, [{', '.join(conditions)}]) AS c"
        select.append("c")
        group.append("c")
    else:
        clauses, bound = _narrowing(spec, planned_by, "")
        where += clauses
        params.update(bound)
    if spec.total:
        select.append("{total_bucket:UInt32} AS b")
        params["total_bucket"] = int(start.timestamp())
    else:
        select.append(f"toUnixTimestamp({bucket}) AS b")
    group.append("b")
    if grouped:
        select.append(f"{group_expr} AS g")
        group.append("g")
    select.append(f"{metric} AS v")
    sql = (
        f"SELECT {', '.join(select)} FROM {source} WHERE {' AND '.join(where)} "
        f"GROUP BY {', '.join(group)} ORDER BY {', '.join(group)}"
    )
    if grouped:
        # One row per (bucket, group): more than max_points rows is over the cap whatever the
        # zero-filling, so the engine never sends more than one row past it (per cohort).
        sql += " LIMIT {max_rows:UInt32}" + (" BY c" if cohorts else "")
        params["max_rows"] = max_points + 1
    return Plan(
        sql=sql,
        params=params,
        source_table=table,
        planned_by=planned_by,
        rollup_granularity=rollup_granularity,
        start=start,
        end=end,
        buckets=[start] if spec.total else bucket_range(start, end, spec.granularity),
        grouped=grouped,
        fill_zero=spec.metric in COUNT_METRICS,
        max_points=max_points,
        cohorts=len(specs) if cohorts else 0,
    )
