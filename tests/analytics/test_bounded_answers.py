"""Defect 9: an analytics answer is bounded (EMBAN_QUERY_MAX_POINTS) and refused with a 400 that
names the cap before the work is done: buckets are counted from the spec, groups from a SQL
``LIMIT cap + 1``, zero-filling checked before it runs. Same path for ``GET /v1/query``, GraphQL
``analytics``, widget previews and embed ``widgetData``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emban.analytics.planner import bucket_count, bucket_range, plan_query
from emban.analytics.query_spec import GRANULARITIES, QuerySpec, Scope
from emban.errors import AnswerTooLarge
from emban.runtime import Runtime
from emban.settings import Settings, SettingsError
from tests.conftest import Client, ClientFactory, bearer, register
from tests.gql_client import data_of, error_of
from tests.scenario import send_events
from tests.services.test_embed_enforcement import World, token_for, world  # noqa: F401 - fixture

CAP = 100_000
HOURS_90D = 2161  # hourly buckets of the 90d window (both ends aligned to whole hours)


def cap_error(field: str, limit: int = CAP) -> dict[str, Any]:
    what = "buckets x groups" if field == "group_by" else "buckets"
    advice = (
        "filter to fewer groups, narrow the period or use a coarser granularity"
        if field == "group_by"
        else "narrow the period or use a coarser granularity"
    )
    return {
        "error": f"this query would answer more than {limit} points ({what}; "
        f"EMBAN_QUERY_MAX_POINTS): {advice}",
        "code": "too_many_points",
        "field": field,
        "limit": limit,
    }


@pytest.fixture
def small_cap(runtime: Runtime) -> Iterator[int]:
    """EMBAN_QUERY_MAX_POINTS=50 for one test."""
    saved = runtime.settings
    runtime.settings = replace(saved, query_max_points=50)
    yield 50
    runtime.settings = saved


def with_key(count: int, **extra: Any) -> list[dict[str, Any]]:
    """``count`` events of api.call, each with its own value of the string property ``k``."""
    return [
        {"tenant_id": "t", "event_name": "api.call", "string_props": {"k": f"v{n:04d}"}, **extra}
        for n in range(count)
    ]


async def query(client: Client, key: str, **params: str) -> tuple[int, Any]:
    full = {"event_name": "api.call", "tenant_id": "t", "metric": "count", **params}
    response = await client.get("/v1/query", params=full, headers=bearer(key))
    return response.status, await response.json()


# --- the planner ---------------------------------------------------------------------------------


@given(
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
    length=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)),
    granularity=st.sampled_from(GRANULARITIES),
)
def test_bucket_count_is_the_length_of_the_bucket_range(
    start: datetime, length: timedelta, granularity: str
) -> None:
    begin = start.replace(tzinfo=UTC)
    assert bucket_count(begin, begin + length, granularity) == len(
        bucket_range(begin, begin + length, granularity)
    )


def test_a_window_with_too_many_buckets_is_refused_before_any_list_is_built() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    twenty_years = (now - timedelta(days=7300), now)  # 175,200 hours
    spec = QuerySpec("e", "count", "24h", "hour", date_range=twenty_years)
    with pytest.raises(AnswerTooLarge) as refused:
        plan_query(spec, Scope("o", "e"), now)
    assert refused.value.body() == cap_error("granularity")
    # 1000 years of hours would be 8.8M buckets: refused just as fast (counted, not listed).
    ages = (now - timedelta(days=365_000), now)
    with pytest.raises(AnswerTooLarge):
        plan_query(replace(spec, date_range=ages), Scope("o", "e"), now)
    assert len(plan_query(replace(spec, granularity="day"), Scope("o", "e"), now).buckets) == 7300


def test_grouped_queries_read_at_most_one_row_past_the_cap() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    spec = QuerySpec("e", "count", "90d", "hour", group_by="k")
    plan = plan_query(spec, Scope("o", "e"), now, max_points=4321)
    assert plan.sql.endswith(" LIMIT {max_rows:UInt32}")
    assert plan.params["max_rows"] == 4322
    assert "LIMIT" not in plan_query(replace(spec, group_by=None), Scope("o", "e"), now).sql


# --- GET /v1/query -------------------------------------------------------------------------------


async def test_high_cardinality_group_by_with_hourly_buckets_is_a_400(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    key = (await register(client))["api_key"]["key"]
    # The defect's request: 2,000 values of k x 2,161 hourly buckets = 4.3M zero-filled points.
    await send_events(client, key, with_key(2000))
    status, body = await query(client, key, period="90d", granularity="hour", group_by="k")
    assert (status, body) == (400, cap_error("group_by"))
    # Daily buckets: 2,000 x 91 = 182,000, still over.
    status, body = await query(client, key, period="90d", granularity="day", group_by="k")
    assert (status, body) == (400, cap_error("group_by"))
    # Weekly: 2,000 x 14 = 28,000 points, within the cap: answered in full.
    status, body = await query(client, key, period="90d", granularity="week", group_by="k")
    assert status == 200
    weeks = len({p["bucket"] for p in body["data"]})
    assert len(body["data"]) == 2000 * weeks
    assert sum(p["value"] for p in body["data"]) == 2000


async def test_the_cap_is_exact_at_the_boundary(make_client: ClientFactory) -> None:
    client = await make_client()
    key = (await register(client))["api_key"]["key"]
    await send_events(client, key, with_key(46))  # 46 x 2,161 = 99,406 points: allowed
    status, body = await query(client, key, period="90d", granularity="hour", group_by="k")
    assert status == 200
    assert len(body["data"]) == 46 * HOURS_90D
    assert sum(p["value"] for p in body["data"]) == 46
    assert [p["group"] for p in body["data"][:46]] == [f"v{n:04d}" for n in range(46)]
    await send_events(client, key, with_key(47))  # one more group: 101,567 points
    status, body = await query(client, key, period="90d", granularity="hour", group_by="k")
    assert (status, body) == (400, cap_error("group_by"))
    # Ungrouped, the same window is 2,161 points.
    status, body = await query(client, key, period="90d", granularity="hour")
    assert status == 200
    assert (len(body["data"]), sum(p["value"] for p in body["data"])) == (HOURS_90D, 93)


async def test_a_smaller_cap_bounds_buckets_rows_and_zero_filling(
    make_client: ClientFactory, small_cap: int
) -> None:
    client = await make_client()
    key = (await register(client))["api_key"]["key"]
    # Buckets alone: 7d hourly is 169 buckets > 50, refused before any engine work.
    assert await query(client, key, period="7d", granularity="hour") == (
        400,
        cap_error("granularity", small_cap),
    )
    await send_events(client, key, with_key(60, numeric_props={"ms": 1.0}))
    # Rows: 60 groups in one window (SQL LIMIT 51 reads at most 51 rows).
    status, body = await query(client, key, period="1h", group_by="k")
    assert (status, body) == (400, cap_error("group_by", small_cap))
    # Filtered to one group the same window is 2 points.
    status, body = await query(client, key, period="1h", group_by="k", metric="count", f_k="v0001")
    assert status == 200  # one group: 2 points
    assert len(body["data"]) == 2
    # sum/avg/p95 are not zero-filled: 60 rows = 60 points > 50, refused; a filter fits.
    status, body = await query(
        client, key, period="1h", group_by="k", metric="sum", numeric_prop="ms"
    )
    assert (status, body) == (400, cap_error("group_by", small_cap))


async def test_zero_filling_is_checked_before_it_runs(
    make_client: ClientFactory, small_cap: int
) -> None:
    client = await make_client()
    key = (await register(client))["api_key"]["key"]
    await send_events(
        client, key, with_key(30)
    )  # 30 rows, 30 groups x 2 hourly buckets = 60 points
    status, body = await query(client, key, period="1h", group_by="k")
    assert (status, body) == (400, cap_error("group_by", small_cap))
    status, body = await query(
        client, key, period="1h", group_by="k", metric="sum", numeric_prop="x"
    )
    assert status == 200  # no property, no rows, no zero-filling
    assert body["data"] == []


# --- GraphQL analytics, widget preview, embed widgetData: the same cap --------------------------


async def test_graphql_and_widget_preview_share_the_cap(
    make_client: ClientFactory, small_cap: int
) -> None:
    client = await make_client()
    key = (await register(client))["api_key"]["key"]
    query_text = """query($q: AnalyticsQueryInput!) {
      analytics(query: $q) { data { bucket value group } }
    }"""
    variables = {
        "q": {
            "eventName": "api.call",
            "tenantId": "t",
            "metric": "count",
            "period": "7d",
            "granularity": "hour",
        }
    }
    error = await error_of(client, query_text, variables, headers=bearer(key))
    assert error["message"] == cap_error("granularity", small_cap)["error"]
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "too_many_points",
        "field": "granularity",
        "limit": small_cap,
    }
    widget = {
        "kind": "timeseries",
        "title": "Calls",
        "query": {
            "event_name": "api.call",
            "metric": "count",
            "period": "7d",
            "granularity": "hour",
        },
        "viz": {"type": "line"},
        "layout": {"x": 0, "y": 0, "w": 6, "h": 4},
    }
    response = await client.post("/v1/widgets/preview/data", json={"widget": widget})
    assert (response.status, await response.json()) == (400, cap_error("granularity", small_cap))
    variables["q"]["period"] = "24h"  # 25 buckets: fine
    data = await data_of(client, query_text, variables, headers=bearer(key))
    assert len(data["analytics"]["data"]) == 25


async def test_embed_widget_data_shares_the_cap(world: World, runtime: Runtime) -> None:  # noqa: F811
    from tests.services.test_embed_enforcement import WIDGET_DATA

    token = await token_for(world)
    saved = runtime.settings
    try:
        runtime.settings = replace(saved, query_max_points=20)  # "calls" is 25 hourly buckets
        error = await error_of(world.client, WIDGET_DATA, {"widgetId": "calls"}, bearer(token))
        assert error["extensions"] == {
            "code": "BAD_REQUEST",
            "reason": "too_many_points",
            "field": "granularity",
            "limit": 20,
        }
    finally:
        runtime.settings = saved
    data = await data_of(world.client, WIDGET_DATA, {"widgetId": "calls"}, bearer(token))
    assert len(data["embed"]["widgetData"]["data"]) == 25


def test_the_cap_is_a_setting(tmp_path: Path) -> None:
    env = {"EMBAN_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(env).query_max_points == 100_000
    assert Settings.from_env({**env, "EMBAN_QUERY_MAX_POINTS": "5000"}).query_max_points == 5000
    with pytest.raises(SettingsError, match="EMBAN_QUERY_MAX_POINTS must be a whole number"):
        Settings.from_env({**env, "EMBAN_QUERY_MAX_POINTS": "lots"})
