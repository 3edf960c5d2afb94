"""``/v1/query`` answers are built in columns now (analytics/shaping.Series, issue 13); the JSON
must be byte-for-byte what the per-point implementation sent. The previous implementation is kept
here, verbatim, as the oracle, and both are run on random engine rows for a set of plans."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from emban.analytics.planner import Plan, plan_query, too_many_points
from emban.analytics.query_spec import COUNT_METRICS, Scope
from emban.analytics.shaping import Point, iso_bucket, shape_rows
from emban.rest_compat import responses as out
from emban.rest_compat import shapes
from emban.rest_compat.query_params import spec_from_params
from emban.services.analytics import AnalyticsResult

NOW = datetime(2026, 3, 10, 14, 37, 12, 345000, tzinfo=UTC)
SCOPE = Scope("org_1", "env_1")
BASE = {"event_name": "api.call", "tenant_id": "acme"}
SPECS = [
    {"metric": "count", "period": "30d"},
    {"metric": "count", "period": "24h", "f_model": "gpt-4o"},
    {"metric": "count_unique", "period": "7d", "granularity": "hour"},
    {"metric": "count", "period": "30d", "group_by": "region"},
    {"metric": "count", "period": "90d", "granularity": "week", "group_by": "model"},
    {"metric": "p95", "period": "30d", "numeric_prop": "latency_ms"},
    {"metric": "avg", "period": "24h", "numeric_prop": "tokens", "group_by": "model"},
    {"metric": "sum", "period": "90d", "granularity": "month", "numeric_prop": "tokens"},
]
META = {"source_table": "events", "planned_by": "raw"}


# --- the implementation before issue 13, verbatim ----------------------------------------------


def _iso_bucket_before(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


def _shape_rows_before(plan: Plan, rows: list[list[Any]], metric: str) -> list[Point]:
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
            continue
        value: float | int = int(raw) if integral else float(raw)
        if not math.isfinite(value):
            continue
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


def _encoded_before(points: list[Point], meta: dict[str, Any]) -> bytes:
    buckets: dict[datetime, str] = {}
    data: list[out.Point] = []
    for point in points:
        bucket = buckets.get(point.bucket)
        if bucket is None:
            bucket = buckets[point.bucket] = _iso_bucket_before(point.bucket)
        if point.group is None:
            data.append(out.Point(bucket=bucket, value=point.value))
        else:
            data.append(out.Point(bucket=bucket, value=point.value, group=point.group))
    return msgspec.json.encode(out.QueryResult(data=data, meta=meta))


# --- random engine rows ------------------------------------------------------------------------

VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(2**53), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=0, max_value=10**6).map(str),  # ClickHouse's UInt64 as JSON text
)
GROUPS = st.sampled_from(["", "gpt-4o", "claude", "llama", "us-east", "é", "0"])


@st.composite
def answers(draw: st.DrawFn) -> tuple[Plan, list[list[Any]], str]:
    params = draw(st.sampled_from(SPECS))
    spec = spec_from_params({**BASE, **params})
    plan = plan_query(spec, SCOPE, NOW)
    stamps = [int(b.timestamp()) for b in plan.buckets]
    # mostly real buckets, some stamps no bucket has (dropped by both)
    stamp = st.one_of(st.sampled_from(stamps), st.integers(0, 2**31))
    integral = spec.metric in COUNT_METRICS
    value = st.integers(0, 10**9) if integral else VALUES
    if integral:
        value = st.one_of(value, st.none(), value.map(str))
    if plan.grouped:
        row = st.tuples(stamp, GROUPS, value).map(list)
    else:
        row = st.tuples(stamp, value).map(list)
    rows = draw(st.lists(row, max_size=60))
    return plan, rows, spec.metric


@given(answers())
def test_the_columnar_answer_encodes_exactly_like_the_per_point_one(
    answer: tuple[Plan, list[list[Any]], str],
) -> None:
    plan, rows, metric = answer
    before = _shape_rows_before(plan, rows, metric)
    series = shape_rows(plan, rows, metric)
    assert series.points == before
    encoded = msgspec.json.encode(shapes.analytics(AnalyticsResult(series, META)))
    assert encoded == _encoded_before(before, META)


@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)))
def test_buckets_format_like_strftime(moment: datetime) -> None:
    assert iso_bucket(moment) == _iso_bucket_before(moment)
    naive = moment.replace(tzinfo=None)  # read as local time by both
    assert iso_bucket(naive) == _iso_bucket_before(naive)


def test_the_specs_cover_every_kind_of_plan() -> None:
    plans = [plan_query(spec_from_params({**BASE, **p}), SCOPE, NOW) for p in SPECS]
    assert {(p.grouped, p.fill_zero) for p in plans} == {
        (False, True),
        (True, True),
        (False, False),
        (True, False),
    }
    assert {p.planned_by for p in plans} >= {"raw", "daily_rollup", "hourly_rollup"}
