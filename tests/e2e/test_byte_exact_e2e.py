"""Arbitrary strings as tenant ids, event names, property keys and values, end to end (issue 8,
defect 1): ingested through ``POST /v1/events``, then counted through ``GET /v1/query`` (tenant +
filter), the embed GraphQL ``widgetData`` of a session minted for that tenant, and ad-hoc SQL with
the values written as literals. Each tenant counts exactly its own rows, and tenant ``victim`` is
never matched by an escaped spelling of its name (``\\x76ictim``, ``vic\\tim`` …), which before
this fix read its rows.

Property keys are drawn from what a query may filter on (letters, digits and ``_ . : - /``);
everything else is any text without surrogates (control characters and NUL included).
"""

# ruff: noqa: S608  (ad-hoc SQL with literals is what is under test)

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from emban.analytics.tables import EVENT_IDS, VISIBLE_DATASETS
from emban.runtime import Runtime
from tests.conftest import Client, ClientFactory, bearer, register
from tests.embed_scenario import mint
from tests.gql_client import data_of

VICTIM = "victim"
ESCAPED_VICTIMS = [
    "\\x76ictim",
    "vic\\tim",
    "victim\\",
    "\\victim",
    "\\x76\\x69\\x63\\x74\\x69\\x6d",
    "victim\\0",
    "v\\ictim",
    "\\N",
]
TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=24)
NAME = st.one_of(st.sampled_from(ESCAPED_VICTIMS), TEXT).filter(lambda s: bool(s.strip()))
KEY = st.from_regex(r"\A[A-Za-z0-9_.:\-/]{1,16}\Z")
VALUE = st.one_of(st.sampled_from(["\\x76", "\\", "\\N", "'", "\t"]), st.text(max_size=24))

WIDGET_DATA = """
query Data($widgetId: ID!) {
  embed { widgetData(widgetId: $widgetId) { data { value } } }
}
"""


@dataclass
class Org:
    client: Client
    key: str


@pytest.fixture
async def org(make_client: ClientFactory) -> Org:
    client = await make_client()
    reg = await register(client)
    return Org(client, reg["api_key"]["key"])


def literal(value: str) -> str:
    """A ClickHouse string literal (the guard re-renders it; the engine must read it back)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def query_count(org: Org, tenant: str, event: str, key: str, value: str | None) -> int:
    params = {"event_name": event, "metric": "count", "period": "24h", "tenant_id": tenant}
    if value is not None:
        params[f"f_{key}"] = value
    response = await org.client.get("/v1/query", params=params, headers=bearer(org.key))
    assert response.status == 200, await response.text()
    return sum(int(point["value"]) for point in (await response.json())["data"])


async def embed_count(org: Org, dashboard_id: str, tenant: str) -> int:
    token = await mint(org.client, dashboard_id, tenant)
    data = await data_of(org.client, WIDGET_DATA, {"widgetId": "n"}, headers=bearer(token))
    return sum(int(point["value"]) for point in data["embed"]["widgetData"]["data"])


async def adhoc_count(org: Org, tenant: str, event: str, key: str, value: str) -> int:
    sql = (
        f"SELECT count() FROM events WHERE tenant_id = {literal(tenant)} "
        f"AND event_name = {literal(event)} AND string_props[{literal(key)}] = {literal(value)}"
    )
    response = await org.client.post("/v1/query/adhoc", json={"sql": sql})
    assert response.status == 200, await response.text()
    rows: list[list[Any]] = (await response.json())["rows"]
    return int(rows[0][0])


@given(
    tenants=st.lists(NAME, min_size=1, max_size=3, unique=True),
    event=NAME,
    key=KEY,
    value=VALUE,
)
@example(  # the characters ClickHouse's escaped form gives a meaning to, always covered
    tenants=["t\x00\t\n\r\\", "\x1b[0m \u2028 é 𝄞", "'\\''"],
    event="\\x76ictim\\",
    key="a.b:c-d/e_1",
    value="\\N\x00\\t",
)
@example(tenants=["\\x76ictim"], event="\x00", key="0", value="\\x76")  # NUL in a config
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_each_tenant_counts_exactly_its_own_rows(
    runtime: Runtime, org: Org, tenants: list[str], event: str, key: str, value: str
) -> None:
    assume(VICTIM not in tenants)
    for table in (*VISIBLE_DATASETS, EVENT_IDS):
        await runtime.events.execute(f"TRUNCATE TABLE {table}")
    other_value = value + "\\x"  # a near miss: must not match the filter
    # tenant i: i + 1 rows with the value, one row with another value; victim: 2 rows.
    rows: list[dict[str, Any]] = []
    for index, tenant in enumerate(tenants):
        rows += [{"tenant_id": tenant, "event_name": event, "string_props": {key: value}}] * (
            index + 1
        )
        rows.append({"tenant_id": tenant, "event_name": event, "string_props": {key: other_value}})
    rows += [{"tenant_id": VICTIM, "event_name": event, "string_props": {key: value}}] * 2
    sent = await org.client.post("/v1/events", json={"events": rows}, headers=bearer(org.key))
    assert sent.status == 200, await sent.text()
    assert await sent.json() == {"accepted": len(rows), "status": "ok"}

    dashboard = {
        "name": "Counts",
        "widgets": [
            {
                "id": "n",
                "kind": "metric",
                "title": "N",
                "query": {"event_name": event, "metric": "count", "period": "24h"},
                "viz": {"type": "number"},
                "layout": {"x": 0, "y": 0, "w": 2, "h": 2},
            }
        ],
    }
    created = await org.client.post("/v1/dashboards", json=dashboard)
    dashboard_id: str | None = None
    if "\x00" in event:  # a config is metadata, which cannot hold NUL: refused, never a 500
        assert created.status == 400
        assert await created.json() == {
            "error": "widgets[0].query.event_name must not contain a NUL character",
            "code": "invalid_field",
            "field": "widgets[0].query.event_name",
        }
    else:
        assert created.status == 201, await created.text()
        dashboard_id = (await created.json())["id"]
        published = await org.client.post(f"/v1/dashboards/{dashboard_id}/publish")
        assert published.status == 204, await published.text()

    try:
        expected = {tenant: (index + 1, index + 2) for index, tenant in enumerate(tenants)}
        expected[VICTIM] = (2, 2)
        for attack in ESCAPED_VICTIMS:
            expected.setdefault(attack, (0, 0))  # an escaped spelling reads nothing of victim's
        for tenant, (with_value, everything) in expected.items():
            assert await query_count(org, tenant, event, key, value) == with_value, tenant
            assert await query_count(org, tenant, event, key, None) == everything, tenant
            assert await adhoc_count(org, tenant, event, key, value) == with_value, tenant
        for tenant in [*tenants, VICTIM, ESCAPED_VICTIMS[0]] if dashboard_id else []:
            if "\x00" in tenant:  # the metadata DB cannot audit it: refused, never a 500
                refused = await org.client.post(
                    "/v1/embed-sessions", json={"tenant_id": tenant, "dashboard_id": dashboard_id}
                )
                assert refused.status == 400
                assert await refused.json() == {
                    "error": "tenant_id must not contain a NUL character",
                    "code": "invalid_field",
                    "field": "tenant_id",
                }
                continue
            assert await embed_count(org, dashboard_id, tenant) == expected[tenant][1], tenant
    finally:  # the free plan publishes one dashboard: the next example makes its own
        if dashboard_id is not None:
            deleted = await org.client.delete(f"/v1/dashboards/{dashboard_id}")
            assert deleted.status == 204, await deleted.text()
