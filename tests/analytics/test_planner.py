"""The query planner as a pure function: validation, source choice, windows, SQL safety, shaping."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from multidict import MultiDict

from emban.analytics.planner import (
    Plan,
    bucket_range,
    bucket_start,
    choose_source,
    plan_query,
    window,
)
from emban.analytics.query_spec import QuerySpec, Scope, build_spec, default_granularity
from emban.analytics.shaping import Point, shape_rows
from emban.errors import BadRequest
from emban.rest_compat.query_params import spec_from_params

BASE = {"event_name": "api.call", "tenant_id": "acme", "metric": "count", "period": "24h"}
SCOPE = Scope("org_1", "env_1")
NOW = datetime(2024, 3, 10, 14, 37, 12, 345000, tzinfo=UTC)  # a Sunday


def params(**changes: str | None) -> dict[str, str]:
    out = dict(BASE)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def bad_field(query: dict[str, str]) -> str:
    with pytest.raises(BadRequest) as info:
        spec_from_params(query)
    assert info.value.status == 400
    assert info.value.code == "invalid_field"
    field: str = info.value.extra["field"]
    return field


def spec(**changes: str | None) -> QuerySpec:
    return spec_from_params(params(**changes))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- parameter validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"event_name": None}, "event_name"),
        ({"event_name": ""}, "event_name"),
        ({"event_name": "e" * 201}, "event_name"),
        ({"tenant_id": None}, "tenant_id"),
        ({"tenant_id": ""}, "tenant_id"),
        ({"tenant_id": "t" * 201}, "tenant_id"),
        ({"metric": None}, "metric"),
        ({"metric": ""}, "metric"),
        ({"metric": "median"}, "metric"),
        ({"metric": "COUNT"}, "metric"),
        ({"period": None}, "period"),
        ({"period": ""}, "period"),
        ({"period": "2d"}, "period"),
        ({"period": "1y"}, "period"),
        ({"granularity": "minute"}, "granularity"),
        ({"granularity": "Day"}, "granularity"),
        ({"metric": "sum"}, "numeric_prop"),
        ({"metric": "avg"}, "numeric_prop"),
        ({"metric": "p95"}, "numeric_prop"),
        ({"metric": "p99"}, "numeric_prop"),
        ({"metric": "p99", "numeric_prop": ""}, "numeric_prop"),
        ({"metric": "sum", "numeric_prop": "bad prop"}, "numeric_prop"),
        ({"metric": "avg", "numeric_prop": "x" * 65}, "numeric_prop"),
        ({"group_by": "bad key"}, "group_by"),
        ({"group_by": "model'"}, "group_by"),
        ({"group_by": "g" * 65}, "group_by"),
        ({"f_bad key": "x"}, "f_bad key"),
        ({"f_model'--": "x"}, "f_model'--"),
        ({"f_" + "k" * 65: "x"}, "f_" + "k" * 65),
        ({"f_model": "v" * 201}, "f_model"),
        ({"f_": "x"}, "f_"),
        ({"foo": "1"}, "foo"),
        ({"filter_model": "gpt-4"}, "filter_model"),
        ({"limit": "10"}, "limit"),
    ],
)
def test_each_invalid_parameter_is_a_400_naming_it(
    changes: dict[str, str | None], field: str
) -> None:
    assert bad_field(params(**changes)) == field


def test_numeric_prop_is_accepted_for_numeric_metrics_and_dropped_for_counts() -> None:
    for metric in ("sum", "avg", "p95", "p99"):
        assert spec(metric=metric, numeric_prop="tokens").numeric_prop == "tokens"
    for metric in ("count", "count_unique", "count_unique_approx"):
        assert spec(metric=metric, numeric_prop="tokens").numeric_prop is None


def test_valid_parameters_build_the_whole_spec() -> None:
    built = spec(
        granularity="week",
        period="90d",
        group_by="model",
        f_status="success",
        f_endpoint="/chat",
        metric="p95",
        numeric_prop="latency_ms",
    )
    assert built == QuerySpec(
        event_name="api.call",
        metric="p95",
        period="90d",
        granularity="week",
        tenant_id="acme",
        group_by="model",
        # filters are sorted by key so equal queries plan the same SQL
        filters=(("endpoint", "/chat"), ("status", "success")),
        numeric_prop="latency_ms",
    )
    assert built.dimensions == frozenset({"model", "endpoint", "status"})


def test_names_at_the_length_limit_are_accepted() -> None:
    built = spec(event_name="e" * 200, tenant_id="t" * 200, f_model="v" * 200)
    assert built.event_name == "e" * 200
    assert built.tenant_id == "t" * 200
    assert built.filters == (("model", "v" * 200),)


def test_build_spec_prefixes_field_names_for_widget_configs() -> None:
    with pytest.raises(BadRequest) as info:
        build_spec(
            event_name="e",
            tenant_id="acme",
            metric="count",
            period="7d",
            filters={"model": 3},
            field_prefix="query.",
        )
    assert info.value.extra["field"] == "query.filters.model"
    with pytest.raises(BadRequest) as info:
        build_spec(
            event_name="e", tenant_id="acme", metric="nope", period="7d", field_prefix="query."
        )
    assert info.value.extra["field"] == "query.metric"
    with pytest.raises(BadRequest) as info:
        build_spec(event_name=5, metric="count", period="7d")
    assert info.value.extra["field"] == "event_name"


def test_build_spec_tenant_may_be_optional() -> None:
    built = build_spec(event_name="e", metric="count", period="7d", tenant_required=False)
    assert built.tenant_id is None
    with pytest.raises(BadRequest) as info:
        build_spec(event_name="e", metric="count", period="7d")
    assert info.value.extra["field"] == "tenant_id"


@pytest.mark.parametrize(
    ("period", "granularity"),
    [("1h", "hour"), ("24h", "hour"), ("7d", "day"), ("30d", "day"), ("90d", "day")],
)
def test_default_granularity(period: str, granularity: str) -> None:
    assert default_granularity(period) == granularity
    assert spec(period=period).granularity == granularity
    assert spec(period=period, granularity="").granularity == granularity


# --- choose_source ---------------------------------------------------------------------------

HOURLY = ("hourly_rollup", "events_hourly_rollup", "hour")
DAILY = ("daily_rollup", "events_daily_rollup", "day")
HOURLY_DIM = ("hourly_rollup", "events_hourly_dim_rollup", "hour")
DAILY_DIM = ("daily_rollup", "events_daily_dim_rollup", "day")
RAW = ("raw", "events", None)


@pytest.mark.parametrize(
    ("metric", "granularity", "filters", "group_by", "expected"),
    [
        # count: hourly for hour buckets, daily for day/week/month
        ("count", "hour", {}, None, HOURLY),
        ("count", "day", {}, None, DAILY),
        ("count", "week", {}, None, DAILY),
        ("count", "month", {}, None, DAILY),
        # count_unique_approx: HLL states merge across buckets
        ("count_unique_approx", "hour", {}, None, HOURLY),
        ("count_unique_approx", "day", {}, None, DAILY),
        ("count_unique_approx", "week", {}, None, DAILY),
        ("count_unique_approx", "month", {}, None, DAILY),
        # count_unique exact: only when the bucket matches the rollup
        ("count_unique", "hour", {}, None, HOURLY),
        ("count_unique", "day", {}, None, DAILY),
        ("count_unique", "week", {}, None, RAW),
        ("count_unique", "month", {}, None, RAW),
        # one common dimension: the dimension rollups (HLL and counts only, no exact states)
        ("count", "hour", {"model": "gpt-4"}, None, HOURLY_DIM),
        ("count", "day", {"endpoint": "/chat"}, None, DAILY_DIM),
        ("count", "week", {}, "status", DAILY_DIM),
        ("count", "month", {"plan": "pro"}, "plan", DAILY_DIM),
        ("count", "hour", {"source": "api"}, "source", HOURLY_DIM),
        ("count_unique_approx", "hour", {}, "model", HOURLY_DIM),
        ("count_unique_approx", "week", {"model": "gpt-4"}, None, DAILY_DIM),
        ("count_unique_approx", "month", {"status": "ok"}, "status", DAILY_DIM),
        ("count_unique", "hour", {"model": "gpt-4"}, None, RAW),
        ("count_unique", "day", {}, "endpoint", RAW),
        ("count_unique", "week", {"model": "gpt-4"}, None, RAW),
        ("count_unique", "hour", {"source": "api"}, "source", RAW),
        ("count_unique", "month", {}, "plan", RAW),
        # a dimension outside the rollups
        ("count", "hour", {"region": "eu"}, None, RAW),
        ("count", "day", {}, "region", RAW),
        ("count_unique_approx", "week", {"region": "eu"}, "region", RAW),
        ("count_unique", "day", {"region": "eu"}, None, RAW),
        # two different dimensions
        ("count", "day", {"model": "gpt-4", "status": "ok"}, None, RAW),
        ("count", "hour", {"model": "gpt-4"}, "status", RAW),
        ("count_unique_approx", "day", {"model": "gpt-4"}, "endpoint", RAW),
        ("count_unique", "hour", {"plan": "pro", "source": "api"}, None, RAW),
        ("count", "day", {"model": "gpt-4"}, "region", RAW),
        # numeric metrics: always raw
        ("sum", "hour", {}, None, RAW),
        ("avg", "day", {}, None, RAW),
        ("p95", "week", {"model": "gpt-4"}, None, RAW),
        ("p99", "month", {}, "model", RAW),
    ],
)
def test_choose_source_rules(
    metric: str,
    granularity: str,
    filters: dict[str, str],
    group_by: str | None,
    expected: tuple[str, str, str | None],
) -> None:
    built = build_spec(
        event_name="api.call",
        tenant_id="acme",
        metric=metric,
        period="30d",
        granularity=granularity,
        group_by=group_by,
        filters=filters,
        numeric_prop="tokens",
    )
    assert choose_source(built) == expected
    plan = plan_query(built, SCOPE, NOW)
    assert (plan.planned_by, plan.source_table, plan.rollup_granularity) == expected
    assert f" FROM {expected[1]} WHERE " in plan.sql


def test_force_raw_plans_raw_whatever_the_rules_say() -> None:
    built = spec(metric="count_unique_approx", period="30d", granularity="week", group_by="model")
    rollup = plan_query(built, SCOPE, NOW)
    raw = plan_query(built, SCOPE, NOW, force_raw=True)
    assert (rollup.planned_by, rollup.source_table) == ("daily_rollup", "events_daily_dim_rollup")
    assert (raw.planned_by, raw.source_table, raw.rollup_granularity) == RAW
    assert raw.sql == (
        "SELECT toUnixTimestamp(toDateTime(toMonday(timestamp), 'UTC')) AS b, "
        "string_props[{gk:String}] AS g, uniqCombined64If(user_id, user_id != '') AS v "
        "FROM events WHERE org_id = {org:String} AND environment_id = {env:String} "
        "AND event_name = {event:String} AND tenant_id = {tenant:String} "
        "AND timestamp >= {start:DateTime64(3, 'UTC')} AND timestamp < {end:DateTime64(3, 'UTC')} "
        "GROUP BY b, g ORDER BY b, g LIMIT {max_rows:UInt32}"
    )
    assert raw.params == {
        "org": "org_1",
        "env": "env_1",
        "event": "api.call",
        "tenant": "acme",
        "start": "2024-02-09 00:00:00",
        "end": "2024-03-11 00:00:00",
        "gk": "model",
        "max_rows": 100_001,
    }
    assert (raw.start, raw.end, raw.buckets) == (rollup.start, rollup.end, rollup.buckets)
    assert raw.grouped and rollup.grouped


# --- windows and buckets ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "granularity", "start", "end", "count"),
    [
        ("1h", "hour", utc(2024, 3, 10, 13), utc(2024, 3, 10, 15), 2),
        ("24h", "hour", utc(2024, 3, 9, 14), utc(2024, 3, 10, 15), 25),
        ("7d", "hour", utc(2024, 3, 3, 14), utc(2024, 3, 10, 15), 7 * 24 + 1),
        ("1h", "day", utc(2024, 3, 10), utc(2024, 3, 11), 1),
        ("24h", "day", utc(2024, 3, 9), utc(2024, 3, 11), 2),
        ("7d", "day", utc(2024, 3, 3), utc(2024, 3, 11), 8),
        ("30d", "day", utc(2024, 2, 9), utc(2024, 3, 11), 31),  # 2024 is a leap year
        ("90d", "day", utc(2023, 12, 11), utc(2024, 3, 11), 91),
    ],
)
def test_window_is_aligned_and_ends_one_unit_after_now(
    period: str, granularity: str, start: datetime, end: datetime, count: int
) -> None:
    built = spec(period=period, granularity=granularity)
    assert window(built, NOW) == (start, end)
    plan = plan_query(built, SCOPE, NOW)
    assert (plan.start, plan.end) == (start, end)
    assert len(plan.buckets) == count
    assert plan.buckets[0] == start
    step = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    assert plan.buckets[-1] == end - step
    assert all(b - a == step for a, b in zip(plan.buckets, plan.buckets[1:], strict=False))


def test_window_converts_a_non_utc_now() -> None:
    # 01:30 at +03:00 is 22:30 UTC the previous day
    local = datetime(2024, 3, 10, 1, 30, tzinfo=timezone(timedelta(hours=3)))
    assert window(spec(period="24h", granularity="hour"), local) == (
        utc(2024, 3, 8, 22),
        utc(2024, 3, 9, 23),
    )
    assert window(spec(period="24h", granularity="day"), local) == (
        utc(2024, 3, 8),
        utc(2024, 3, 10),
    )


def test_window_on_an_exact_boundary_still_includes_now_s_bucket() -> None:
    on_the_hour = utc(2024, 3, 10, 14)
    assert window(spec(period="1h", granularity="hour"), on_the_hour) == (
        utc(2024, 3, 10, 13),
        utc(2024, 3, 10, 15),
    )
    midnight = utc(2024, 3, 10)
    assert window(spec(period="7d", granularity="day"), midnight) == (
        utc(2024, 3, 3),
        utc(2024, 3, 11),
    )


def test_week_buckets_are_mondays() -> None:
    plan = plan_query(spec(period="30d", granularity="week"), SCOPE, NOW)
    # the window starts Friday 2024-02-09; its week began Monday 2024-02-05
    assert plan.start == utc(2024, 2, 9)
    assert plan.buckets == [
        utc(2024, 2, 5),
        utc(2024, 2, 12),
        utc(2024, 2, 19),
        utc(2024, 2, 26),
        utc(2024, 3, 4),
    ]
    assert all(b.weekday() == 0 for b in plan.buckets)
    # across a year end and a leap day
    assert bucket_range(utc(2023, 12, 28), utc(2024, 1, 9), "week") == [
        utc(2023, 12, 25),
        utc(2024, 1, 1),
        utc(2024, 1, 8),
    ]
    assert bucket_start(utc(2024, 2, 29, 23, 59), "week") == utc(2024, 2, 26)
    assert bucket_start(utc(2024, 3, 4, 0, 0), "week") == utc(2024, 3, 4)


def test_month_buckets_are_month_starts_across_december() -> None:
    now = utc(2024, 1, 15, 9, 30)
    plan = plan_query(spec(period="90d", granularity="month"), SCOPE, now)
    assert plan.start == utc(2023, 10, 17)
    assert plan.end == utc(2024, 1, 16)
    assert plan.buckets == [utc(2023, 10, 1), utc(2023, 11, 1), utc(2023, 12, 1), utc(2024, 1, 1)]
    assert bucket_range(utc(2023, 11, 20), utc(2024, 2, 1), "month") == [
        utc(2023, 11, 1),
        utc(2023, 12, 1),
        utc(2024, 1, 1),
    ]
    assert bucket_range(utc(2023, 12, 31, 23), utc(2024, 1, 1), "month") == [utc(2023, 12, 1)]
    assert bucket_start(utc(2024, 2, 29, 12), "month") == utc(2024, 2, 1)


def test_bucket_range_hour_and_day() -> None:
    assert bucket_range(utc(2024, 3, 10, 22, 15), utc(2024, 3, 11, 1), "hour") == [
        utc(2024, 3, 10, 22),
        utc(2024, 3, 10, 23),
        utc(2024, 3, 11, 0),
    ]
    assert bucket_range(utc(2024, 2, 28, 5), utc(2024, 3, 2), "day") == [
        utc(2024, 2, 28),
        utc(2024, 2, 29),
        utc(2024, 3, 1),
    ]
    assert bucket_range(utc(2024, 3, 1), utc(2024, 3, 1), "day") == []


def test_time_bound_parameters_match_the_source() -> None:
    hourly = plan_query(spec(period="24h"), SCOPE, NOW)
    assert (hourly.params["start"], hourly.params["end"]) == (
        "2024-03-09 14:00:00",
        "2024-03-10 15:00:00",
    )
    assert "bucket >= {start:DateTime('UTC')} AND bucket < {end:DateTime('UTC')}" in hourly.sql
    daily = plan_query(spec(period="7d"), SCOPE, NOW)
    assert (daily.params["start"], daily.params["end"]) == ("2024-03-03", "2024-03-11")
    assert "bucket >= {start:Date} AND bucket < {end:Date}" in daily.sql
    raw = plan_query(spec(period="7d", metric="sum", numeric_prop="tokens"), SCOPE, NOW)
    assert (raw.params["start"], raw.params["end"]) == (
        "2024-03-03 00:00:00",
        "2024-03-11 00:00:00",
    )
    assert raw.params["prop"] == "tokens"


# --- SQL safety ------------------------------------------------------------------------------

HOSTILE = [
    "o'brien",
    "x' OR '1'='1",
    "a\\' OR 1=1 --",
    "'); DROP TABLE events; --",
    "}{org:String}",
    'double"quote',
]


def _all_plans(tenant: str, event: str, value: str, scope: Scope) -> list[tuple[QuerySpec, Plan]]:
    plans = []
    for metric in ("count", "count_unique", "count_unique_approx", "sum", "avg", "p95", "p99"):
        for granularity in ("hour", "day", "week", "month"):
            for filters, group_by in (
                ({}, None),
                ({"model": value}, None),
                ({"model": value}, "model"),
                ({"region": value}, None),
                ({"model": value, "status": value}, "region"),
            ):
                built = build_spec(
                    event_name=event,
                    tenant_id=tenant,
                    metric=metric,
                    period="30d",
                    granularity=granularity,
                    filters=filters,
                    group_by=group_by,
                    numeric_prop="tokens",
                )
                plans.append((built, plan_query(built, scope, NOW)))
                plans.append((built, plan_query(built, scope, NOW, force_raw=True)))
    return plans


@pytest.mark.parametrize("hostile", HOSTILE)
def test_values_never_enter_the_sql_text(hostile: str) -> None:
    scope = Scope(f"org{hostile}", f"env{hostile}")
    plans = _all_plans(f"tenant{hostile}", f"event{hostile}", f"value{hostile}", scope)
    assert len(plans) == 7 * 4 * 5 * 2
    for built, plan in plans:
        assert hostile not in plan.sql
        for text in ("org", "env", "tenant", "event", "value", "region", "tokens"):
            assert f"{text}{hostile}" not in plan.sql
        # the guard is always there, as parameters
        assert "WHERE org_id = {org:String} AND environment_id = {env:String} " in plan.sql
        assert plan.params["org"] == f"org{hostile}"
        assert plan.params["env"] == f"env{hostile}"
        assert plan.params["event"] == f"event{hostile}"
        assert plan.params["tenant"] == f"tenant{hostile}"
        filter_values = [v for k, v in plan.params.items() if k.startswith("fv")]
        assert filter_values == [v for _, v in built.filters]
        # property keys are parameters too (raw) or the dimension parameter (rollups)
        assert "'model'" not in plan.sql
        assert "'region'" not in plan.sql
        assert "'tokens'" not in plan.sql


def test_no_tenant_means_no_tenant_clause_but_the_guard_stays() -> None:
    built = build_spec(event_name="e", metric="count", period="7d", tenant_required=False)
    plan = plan_query(built, SCOPE, NOW)
    assert "tenant" not in plan.sql
    assert "tenant" not in plan.params
    assert plan.sql.startswith(
        "SELECT toUnixTimestamp(toDateTime(bucket, 'UTC')) AS b, sum(events) AS v "
        "FROM events_daily_rollup WHERE org_id = {org:String} AND environment_id = {env:String} "
        "AND event_name = {event:String} AND bucket >= {start:Date} AND bucket < {end:Date} "
    )


def test_raw_filters_and_rollup_dimension_parameters() -> None:
    raw = plan_query(spec(f_model="gpt-4", f_region="eu", group_by="status"), SCOPE, NOW)
    assert raw.planned_by == "raw"
    assert "string_props[{fk0:String}] = {fv0:String}" in raw.sql
    assert "string_props[{fk1:String}] = {fv1:String}" in raw.sql
    assert {k: raw.params[k] for k in ("fk0", "fv0", "fk1", "fv1", "gk")} == {
        "fk0": "model",
        "fv0": "gpt-4",
        "fk1": "region",
        "fv1": "eu",
        "gk": "status",
    }
    rollup = plan_query(spec(f_model="gpt-4", group_by="model"), SCOPE, NOW)
    assert rollup.source_table == "events_hourly_dim_rollup"
    assert "dimension = {dim:String} AND value = {fv0:String}" in rollup.sql
    assert "value AS g" in rollup.sql
    assert (rollup.params["dim"], rollup.params["fv0"]) == ("model", "gpt-4")


def test_a_repeated_filter_parameter_is_one_any_of_filter() -> None:
    query = MultiDict(params())
    query.extend([("f_model", "gpt-4"), ("f_model", "claude"), ("f_region", "eu")])
    built = spec_from_params(query)
    assert built.filters == (("region", "eu"),)
    assert built.any_of == (("model", ("claude", "gpt-4")),)
    assert built.dimensions == frozenset({"model", "region"})
    # the same value twice is one ordinary filter
    once = MultiDict(params())
    once.extend([("f_model", "gpt-4"), ("f_model", "gpt-4")])
    assert spec_from_params(once) == spec(f_model="gpt-4")
    raw = plan_query(built, SCOPE, NOW)
    assert raw.planned_by == "raw"
    assert "string_props[{ak0:String}] IN ({av0_0:String}, {av0_1:String})" in raw.sql
    assert {k: raw.params[k] for k in ("ak0", "av0_0", "av0_1", "fk0", "fv0")} == {
        "ak0": "model",
        "av0_0": "claude",
        "av0_1": "gpt-4",
        "fk0": "region",
        "fv0": "eu",
    }
    alone = MultiDict(params())
    alone.extend([("f_model", "gpt-4"), ("f_model", "claude")])
    rollup = plan_query(spec_from_params(alone), SCOPE, NOW)
    assert rollup.source_table == "events_hourly_dim_rollup"
    assert "dimension = {dim:String} AND value IN ({av0_0:String}, {av0_1:String})" in rollup.sql
    assert (rollup.params["dim"], rollup.params["av0_0"], rollup.params["av0_1"]) == (
        "model",
        "claude",
        "gpt-4",
    )


@pytest.mark.parametrize("name", ["metric", "period", "tenant_id", "group_by", "granularity"])
def test_another_repeated_parameter_is_a_400_naming_it(name: str) -> None:
    query = MultiDict(params(group_by="model", granularity="hour"))
    query.add(name, query[name])
    assert bad_field(query) == name  # type: ignore[arg-type]


# --- shape_rows ------------------------------------------------------------------------------


def _stamp(moment: datetime) -> int:
    return int(moment.timestamp())


def test_shape_rows_zero_fills_count_metrics() -> None:
    for metric in ("count", "count_unique", "count_unique_approx"):
        plan = plan_query(spec(metric=metric, period="24h"), SCOPE, NOW)
        third, last = plan.buckets[2], plan.buckets[-1]
        points = shape_rows(plan, [[_stamp(third), "7"], [_stamp(last), 2]], metric).points
        assert len(points) == 25
        assert [p.bucket for p in points] == plan.buckets
        values = [p.value for p in points]
        assert values == [0, 0, 7, *([0] * 21), 2]
        assert all(type(v) is int for v in values)
        assert all(p.group is None for p in points)


def test_shape_rows_empty_result_is_all_zero_buckets() -> None:
    plan = plan_query(spec(period="7d"), SCOPE, NOW)
    assert shape_rows(plan, [], "count").points == [Point(b, 0, None) for b in plan.buckets]


def test_shape_rows_grouped_fills_each_seen_group() -> None:
    plan = plan_query(spec(period="24h", granularity="day", group_by="model"), SCOPE, NOW)
    day1, day2 = plan.buckets
    rows = [[_stamp(day1), "gpt-4", 3], [_stamp(day2), "claude", 1], [_stamp(day2), "", 4]]
    assert shape_rows(plan, rows, "count").points == [
        Point(day1, 0, ""),
        Point(day1, 0, "claude"),
        Point(day1, 3, "gpt-4"),
        Point(day2, 4, ""),
        Point(day2, 1, "claude"),
        Point(day2, 0, "gpt-4"),
    ]
    assert shape_rows(plan, [], "count").points == []


def test_shape_rows_does_not_fill_numeric_metrics() -> None:
    plan = plan_query(spec(metric="avg", numeric_prop="tokens", period="24h"), SCOPE, NOW)
    assert plan.fill_zero is False
    b1, b2, b3 = plan.buckets[1], plan.buckets[5], plan.buckets[9]
    rows = [[_stamp(b1), 2.5], [_stamp(b2), math.nan], [_stamp(b3), None]]
    points = shape_rows(plan, rows, "avg").points
    assert points == [Point(b1, 2.5, None)]
    assert type(points[0].value) is float
    assert shape_rows(plan, [], "avg").points == []


def test_shape_rows_grouped_numeric_has_only_found_points() -> None:
    plan = plan_query(
        spec(metric="p95", numeric_prop="ms", period="24h", granularity="day", group_by="model"),
        SCOPE,
        NOW,
    )
    day1, day2 = plan.buckets
    rows = [[_stamp(day1), "b", 10], [_stamp(day2), "a", 20.5]]
    assert shape_rows(plan, rows, "p95").points == [Point(day1, 10.0, "b"), Point(day2, 20.5, "a")]


@pytest.mark.parametrize("metric", ["sum", "avg", "p95", "p99"])
def test_numeric_metrics_read_only_events_carrying_the_property(metric: str) -> None:
    plan = plan_query(spec(metric=metric, numeric_prop="tokens"), SCOPE, NOW)
    assert " AND mapContains(numeric_props, {prop:String}) GROUP BY b " in plan.sql
    assert plan.params["prop"] == "tokens"
    assert plan.fill_zero is False
    counted = plan_query(spec(metric="count", numeric_prop="tokens"), SCOPE, NOW, force_raw=True)
    assert "mapContains" not in counted.sql
    assert "prop" not in counted.params
