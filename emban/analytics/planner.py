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

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args

from emban.analytics.tables import (
    DAILY,
    DAILY_DIM,
    EVENTS,
    HOURLY,
    HOURLY_DIM,
    ROLLUP_DIMENSIONS,
)
from emban.errors import AnswerTooLarge, BadRequest

Metric = Literal["count", "count_unique", "count_unique_approx", "sum", "avg", "p95", "p99"]
Period = Literal["1h", "24h", "7d", "30d", "90d"]
Granularity = Literal["hour", "day", "week", "month"]
PlannedBy = Literal["raw", "hourly_rollup", "daily_rollup"]

METRICS: tuple[str, ...] = get_args(Metric)
PERIODS: tuple[str, ...] = get_args(Period)
GRANULARITIES: tuple[str, ...] = get_args(Granularity)
NUMERIC_METRICS = frozenset({"sum", "avg", "p95", "p99"})
COUNT_METRICS = frozenset({"count", "count_unique", "count_unique_approx"})

PERIOD_LENGTH: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
MAX_NAME = 200
# Points one answer may hold (buckets x groups, zero-filled ones included); the app passes
# ``Settings.query_max_points`` (EMBAN_QUERY_MAX_POINTS).
DEFAULT_MAX_POINTS = 100_000
_KEY = re.compile(r"^[A-Za-z0-9_.:\-/]{1,64}$")


@dataclass(frozen=True)
class Scope:
    """Whose rows a query may read: always one org and one environment."""

    org_id: str
    environment_id: str


@dataclass(frozen=True)
class QuerySpec:
    event_name: str
    metric: Metric
    period: Period
    granularity: Granularity
    tenant_id: str | None = None
    group_by: str | None = None
    filters: tuple[tuple[str, str], ...] = ()
    numeric_prop: str | None = None
    # Embed filters: numeric property ranges (key, min, max; inclusive, None = open), an explicit
    # [from, to) window instead of the period, and one total for the whole window (metric
    # widgets). Each of the first two sends the query to raw events.
    numeric_ranges: tuple[tuple[str, float | None, float | None], ...] = ()
    date_range: tuple[datetime, datetime] | None = None
    total: bool = False
    # 1 = the period before the current one (metric widgets' "change vs previous period").
    periods_back: int = 0

    @property
    def dimensions(self) -> frozenset[str]:
        dims = {key for key, _ in self.filters}
        if self.group_by is not None:
            dims.add(self.group_by)
        return frozenset(dims)


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


def default_granularity(period: str) -> Granularity:
    return "hour" if period in ("1h", "24h") else "day"


def _name(value: object, param: str, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise BadRequest(f"{param} is required", field=param)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{param} must be a string", field=param)
    if len(value) > MAX_NAME:
        raise BadRequest(f"{param} must be at most {MAX_NAME} characters", field=param)
    return value


def _key(value: str, param: str) -> str:
    if not _KEY.match(value):
        raise BadRequest(
            f"{param} must be a property key of letters, digits and _ . : - / (max 64)",
            field=param,
        )
    return value


def property_key(value: str, param: str) -> str:
    """A string or numeric property key (letters, digits and _ . : - /, at most 64), else 400."""
    return _key(value, param)


def build_spec(
    *,
    event_name: object,
    metric: object,
    period: object,
    granularity: object = None,
    tenant_id: object = None,
    tenant_required: bool = True,
    group_by: object = None,
    filters: Mapping[str, object] | None = None,
    numeric_prop: object = None,
    field_prefix: str = "",
) -> QuerySpec:
    """Validate query fields into a spec; every error is a 400 naming the field.

    The same function validates ``GET /v1/query`` parameters and widget query configs.
    """
    p = field_prefix
    event = _name(event_name, f"{p}event_name", required=True)
    tenant = _name(tenant_id, f"{p}tenant_id", required=tenant_required)
    if metric is None or metric == "":
        raise BadRequest(f"{p}metric is required", field=f"{p}metric")
    if metric not in METRICS:
        raise BadRequest(f"{p}metric must be one of {', '.join(METRICS)}", field=f"{p}metric")
    if period is None or period == "":
        raise BadRequest(f"{p}period is required", field=f"{p}period")
    if period not in PERIODS:
        raise BadRequest(f"{p}period must be one of {', '.join(PERIODS)}", field=f"{p}period")
    if granularity is None or granularity == "":
        gran: str = default_granularity(str(period))
    elif granularity not in GRANULARITIES:
        raise BadRequest(
            f"{p}granularity must be one of {', '.join(GRANULARITIES)}", field=f"{p}granularity"
        )
    else:
        gran = str(granularity)
    group = _name(group_by, f"{p}group_by", required=False)
    if group is not None:
        _key(group, f"{p}group_by")
    prop = _name(numeric_prop, f"{p}numeric_prop", required=metric in NUMERIC_METRICS)
    if prop is not None:
        _key(prop, f"{p}numeric_prop")
    pairs: list[tuple[str, str]] = []
    for key, value in sorted((filters or {}).items()):
        name = f"{p}f_{key}" if not p else f"{p}filters.{key}"
        _key(key, name)
        if not isinstance(value, str):
            raise BadRequest(f"{name} must be a string", field=name)
        if len(value) > MAX_NAME:
            raise BadRequest(f"{name} must be at most {MAX_NAME} characters", field=name)
        pairs.append((key, value))
    return QuerySpec(
        event_name=str(event),
        metric=metric,  # type: ignore[arg-type]
        period=period,  # type: ignore[arg-type]
        granularity=gran,  # type: ignore[arg-type]
        tenant_id=tenant,
        group_by=group,
        filters=tuple(pairs),
        numeric_prop=prop if metric in NUMERIC_METRICS else None,
    )


def spec_from_params(params: Mapping[str, str]) -> QuerySpec:
    """``GET /v1/query`` parameters → spec (``f_<dim>=value`` filters, ANDed)."""
    known = {
        "event_name",
        "tenant_id",
        "metric",
        "period",
        "granularity",
        "group_by",
        "numeric_prop",
    }
    filters: dict[str, object] = {}
    for name, value in params.items():
        if name.startswith("f_") and len(name) > 2:
            filters[name[2:]] = value
        elif name not in known:
            raise BadRequest(f"unknown parameter {name}", field=name)
    return build_spec(
        event_name=params.get("event_name"),
        metric=params.get("metric"),
        period=params.get("period"),
        granularity=params.get("granularity"),
        tenant_id=params.get("tenant_id"),
        group_by=params.get("group_by"),
        filters=filters,
        numeric_prop=params.get("numeric_prop"),
    )


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
        for index, (key, value) in enumerate(spec.filters):
            where.append(f"string_props[{{fk{index}:String}}] = {{fv{index}:String}}")
            params[f"fk{index}"] = key
            params[f"fv{index}"] = value
        for index, (key, low, high) in enumerate(spec.numeric_ranges):
            params[f"nk{index}"] = key
            where.append(f"mapContains(numeric_props, {{nk{index}:String}})")
            if low is not None:
                where.append(f"numeric_props[{{nk{index}:String}}] >= {{nlo{index}:Float64}}")
                params[f"nlo{index}"] = low
            if high is not None:
                where.append(f"numeric_props[{{nk{index}:String}}] <= {{nhi{index}:Float64}}")
                params[f"nhi{index}"] = high
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
            for index, (_, value) in enumerate(spec.filters):
                where.append(f"value = {{fv{index}:String}}")
                params[f"fv{index}"] = value
        group_expr = "value"
    if spec.total:
        select = ["{total_bucket:UInt32} AS b"]
        params["total_bucket"] = int(start.timestamp())
    else:
        select = [f"toUnixTimestamp({bucket}) AS b"]
    group = ["b"]
    if grouped:
        select.append(f"{group_expr} AS g")
        group.append("g")
    select.append(f"{metric} AS v")
    sql = (
        f"SELECT {', '.join(select)} FROM {table} WHERE {' AND '.join(where)} "
        f"GROUP BY {', '.join(group)} ORDER BY {', '.join(group)}"
    )
    if grouped:
        # One row per (bucket, group): more than max_points rows is over the cap whatever the
        # zero-filling, so the engine never sends more than one row past it.
        sql += " LIMIT {max_rows:UInt32}"
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
    )


@dataclass(frozen=True)
class Point:
    bucket: datetime
    value: float | int
    group: str | None = None


def shape_rows(plan: Plan, rows: list[list[Any]], metric: str) -> list[Point]:
    """Engine rows → points in bucket order (groups sorted within a bucket); count metrics get 0
    for empty buckets. Refuses (400) an answer over ``plan.max_points`` before building it."""
    if len(rows) > plan.max_points:
        raise too_many_points(plan.max_points, grouped=plan.grouped)
    integral = metric in COUNT_METRICS
    found: dict[tuple[str | None, int], float | int] = {}
    seen: set[str | None] = set()
    for row in rows:
        stamp = int(row[0])
        group = str(row[1]) if plan.grouped else None
        raw = row[-1]
        if raw is None:
            continue  # JSON output renders NaN (avg/quantile without the property) as null
        value: float | int = int(raw) if integral else float(raw)
        if not math.isfinite(value):
            continue  # avg/quantile over a bucket without the property
        found[(group, stamp)] = value
        seen.add(group)
    groups: list[str | None] = sorted(seen, key=lambda g: g or "") if plan.grouped else [None]
    if plan.fill_zero and len(groups) * len(plan.buckets) > plan.max_points:
        raise too_many_points(plan.max_points, grouped=plan.grouped)
    points: list[Point] = []
    fill = plan.fill_zero
    for bucket in plan.buckets:
        stamp = int(bucket.timestamp())
        for group in groups:
            value_found = found.get((group, stamp))
            if value_found is not None:
                points.append(Point(bucket, value_found, group))
            elif fill:
                points.append(Point(bucket, 0, group))
    return points


def iso_bucket(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


def iso_seconds(unix_seconds: int) -> str:
    return iso_bucket(datetime.fromtimestamp(unix_seconds, UTC))
