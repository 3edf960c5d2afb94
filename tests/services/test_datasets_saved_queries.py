"""GET /v1/datasets, GET /v1/datasets/:name/ddl and the /v1/saved-queries routes over HTTP:
exact shapes, org-scoped row counts, permissions, validation, ordering, isolation and audit rows.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emban.analytics.tables import ROLLUP_DIMENSIONS
from emban.models import AuditLog, SavedQuery
from tests.conftest import Client, ClientFactory, bearer, create_key, join_as
from tests.scenario import owner, send_events, stamp

NAMES = [
    "events",
    "events_hourly_rollup",
    "events_daily_rollup",
    "events_hourly_dim_rollup",
    "events_daily_dim_rollup",
]
ENGINES = {
    "events": "MergeTree",
    "events_hourly_rollup": "AggregatingMergeTree",
    "events_daily_rollup": "AggregatingMergeTree",
    "events_hourly_dim_rollup": "AggregatingMergeTree",
    "events_daily_dim_rollup": "AggregatingMergeTree",
}
# The events table exactly as emban/analytics/ddl.py creates it, in column order.
EVENTS_COLUMNS = [
    {"name": "org_id", "type": "LowCardinality(String)"},
    {"name": "environment_id", "type": "LowCardinality(String)"},
    {"name": "tenant_id", "type": "String"},
    {"name": "event_name", "type": "LowCardinality(String)"},
    {"name": "timestamp", "type": "DateTime64(3, 'UTC')"},
    {"name": "event_id", "type": "String"},
    {"name": "user_id", "type": "String"},
    {"name": "string_props", "type": "Map(String, String)"},
    {"name": "numeric_props", "type": "Map(String, Float64)"},
    {"name": "is_sample", "type": "UInt8"},
    {"name": "inserted_at", "type": "DateTime64(3, 'UTC')"},
]
_KEY = [
    {"name": "org_id", "type": "LowCardinality(String)"},
    {"name": "environment_id", "type": "LowCardinality(String)"},
    {"name": "tenant_id", "type": "String"},
    {"name": "event_name", "type": "LowCardinality(String)"},
]
_DIM = [
    {"name": "dimension", "type": "LowCardinality(String)"},
    {"name": "value", "type": "String"},
]
_EVENTS = {"name": "events", "type": "SimpleAggregateFunction(sum, UInt64)"}
_USERS = {"name": "users", "type": "AggregateFunction(uniqExact, String)"}
_HLL = {"name": "users_hll", "type": "AggregateFunction(uniqCombined64, String)"}
HOUR_BUCKET = {"name": "bucket", "type": "DateTime('UTC')"}
DAY_BUCKET = {"name": "bucket", "type": "Date"}
COLUMNS = {
    "events": EVENTS_COLUMNS,
    "events_hourly_rollup": [*_KEY, HOUR_BUCKET, _EVENTS, _USERS, _HLL],
    "events_daily_rollup": [*_KEY, DAY_BUCKET, _EVENTS, _USERS, _HLL],
    "events_hourly_dim_rollup": [*_KEY, *_DIM, HOUR_BUCKET, _EVENTS, _HLL],
    "events_daily_dim_rollup": [*_KEY, *_DIM, DAY_BUCKET, _EVENTS, _HLL],
}
DESCRIPTIONS = {
    "events": "Raw events, one row per ingested event.",
    "events_hourly_rollup": "Hourly counts and unique-user states per tenant and event.",
    "events_daily_rollup": "Daily counts and unique-user states per tenant and event.",
    "events_hourly_dim_rollup": "Hourly rollup per common dimension (model, endpoint, status, "
    "plan, source).",
    "events_daily_dim_rollup": "Daily rollup per common dimension (model, endpoint, status, "
    "plan, source).",
}
# The materialized views that fill the rollups (analytics/ddl.py), listed after the tables.
VIEWS = {
    "events_hourly_rollup_mv": "events_hourly_rollup",
    "events_daily_rollup_mv": "events_daily_rollup",
    "events_hourly_dim_rollup_mv": "events_hourly_dim_rollup",
    "events_daily_dim_rollup_mv": "events_daily_dim_rollup",
}
_VIEW_EVENTS = {"name": "events", "type": "UInt64"}
VIEW_COLUMNS = {
    "events_hourly_rollup_mv": [*_KEY, HOUR_BUCKET, _VIEW_EVENTS, _USERS, _HLL],
    "events_daily_rollup_mv": [*_KEY, DAY_BUCKET, _VIEW_EVENTS, _USERS, _HLL],
    "events_hourly_dim_rollup_mv": [
        *_KEY,
        {"name": "dimension", "type": "String"},  # ARRAY JOIN of a constant array
        {"name": "value", "type": "String"},
        HOUR_BUCKET,
        _VIEW_EVENTS,
        _HLL,
    ],
    "events_daily_dim_rollup_mv": [*_KEY, *_DIM, DAY_BUCKET, _VIEW_EVENTS, _HLL],
}
VIEW_SOURCES = {
    "events_hourly_rollup_mv": "FROM default.events\n",
    "events_daily_rollup_mv": "FROM default.events_hourly_rollup\n",
    "events_hourly_dim_rollup_mv": "FROM default.events\nARRAY JOIN",
    "events_daily_dim_rollup_mv": "FROM default.events_hourly_dim_rollup\n",
}
ISO_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
ISO_MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
COUNT_SQL = "SELECT count() FROM events"


# --- helpers ---------------------------------------------------------------------------------


async def datasets(client: Client, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The listed tables by name (the views are checked by their own tests)."""
    response = await client.get("/v1/datasets", headers=headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    assert list(body) == ["datasets"]
    return {d["name"]: d for d in body["datasets"] if d["kind"] == "table"}


async def views(client: Client, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await client.get("/v1/datasets", headers=headers)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return {d["name"]: d for d in body["datasets"] if d["kind"] != "table"}


def expected_rows(events: list[dict[str, Any]]) -> dict[str, int]:
    """Rows each table holds for these events when they arrive in one insert (one row per group
    per rollup; the dimension rollups carry every common dimension, '' when missing)."""
    hourly: set[tuple[str, ...]] = set()
    daily: set[tuple[str, ...]] = set()
    hourly_dim: set[tuple[str, ...]] = set()
    daily_dim: set[tuple[str, ...]] = set()
    for e in events:
        moment = datetime.fromisoformat(e["timestamp"]).astimezone(UTC)
        hour = moment.strftime("%Y-%m-%d %H")
        day = moment.strftime("%Y-%m-%d")
        key = (e["tenant_id"], e["event_name"])
        hourly.add((*key, hour))
        daily.add((*key, day))
        for dim in ROLLUP_DIMENSIONS:
            value = e.get("string_props", {}).get(dim, "")
            hourly_dim.add((*key, dim, value, hour))
            daily_dim.add((*key, dim, value, day))
    return {
        "events": len(events),
        "events_hourly_rollup": len(hourly),
        "events_daily_rollup": len(daily),
        "events_hourly_dim_rollup": len(hourly_dim),
        "events_daily_dim_rollup": len(daily_dim),
    }


def org_events(now: datetime) -> list[dict[str, Any]]:
    base = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    return [
        {
            "tenant_id": "acme",
            "event_name": "api.call",
            "timestamp": stamp(base + timedelta(minutes=5)),
            "string_props": {"model": "gpt-4"},
        },
        {
            "tenant_id": "acme",
            "event_name": "api.call",
            "timestamp": stamp(base + timedelta(minutes=6)),
            "string_props": {"model": "gpt-4", "status": "ok"},
        },
        {
            "tenant_id": "acme",
            "event_name": "api.call",
            "timestamp": stamp(base + timedelta(hours=1, minutes=1)),
            "string_props": {"model": "claude"},
        },
        {
            "tenant_id": "globex",
            "event_name": "user.signup",
            "timestamp": stamp(base + timedelta(minutes=7)),
            "string_props": {"plan": "pro"},
        },
    ]


def other_events(now: datetime) -> list[dict[str, Any]]:
    base = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    return [
        {
            "tenant_id": f"t{i}",
            "event_name": "page.view",
            "timestamp": stamp(base + timedelta(minutes=i)),
            "string_props": {"source": f"s{i}", "endpoint": "/x"},
        }
        for i in range(7)
    ]


# --- GET /v1/datasets ------------------------------------------------------------------------


async def test_datasets_list_exact_names_engines_and_columns(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    response = await client.get("/v1/datasets")
    assert response.status == 200
    body = await response.json()
    assert [d["name"] for d in body["datasets"]] == [*NAMES, *VIEWS]
    for d in body["datasets"][: len(NAMES)]:
        # No data yet: nothing counted, no write time.
        ddl = (await (await client.get(f"/v1/datasets/{d['name']}/ddl")).json())["ddl"]
        assert ddl.startswith(f"CREATE TABLE default.{d['name']}\n(\n")
        assert d == {
            "name": d["name"],
            "kind": "table",
            "engine": ENGINES[d["name"]],
            "description": DESCRIPTIONS[d["name"]],
            "approx_rows": 0,
            "approx_bytes": 0,
            "updated_at": None,
            "columns": COLUMNS[d["name"]],
            "ddl": ddl,
        }
    for d in body["datasets"][len(NAMES) :]:
        name, target = d["name"], VIEWS[d["name"]]
        ddl = d["ddl"]
        assert ddl.startswith(
            f"CREATE MATERIALIZED VIEW default.{name} TO default.{target}\n(\n"
        ), ddl
        assert VIEW_SOURCES[name] in ddl
        assert ddl == (await (await client.get(f"/v1/datasets/{name}/ddl")).json())["ddl"]
        assert d == {
            "name": name,
            "kind": "materialized_view",
            "engine": "MaterializedView",
            "description": f"Materialized view: fills {target} as events are inserted (it "
            "stores nothing itself; its rows are counted there).",
            "approx_rows": 0,
            "approx_bytes": 0,
            "updated_at": None,
            "columns": VIEW_COLUMNS[name],
            "ddl": ddl,
        }


async def test_datasets_rows_are_the_callers_org_and_environment_only(
    make_client: ClientFactory,
) -> None:
    client, reg = await owner(make_client)
    other, other_reg = await owner(make_client, "owner@globex.test", "Globex")
    now = datetime.now(UTC)
    mine = org_events(now)
    theirs = other_events(now)
    await send_events(client, reg["api_key"]["key"], mine)
    expected = expected_rows(mine)
    assert expected == {
        "events": 4,
        "events_hourly_rollup": 3,
        "events_daily_rollup": expected["events_daily_rollup"],  # 2 or 3: midnight may split
        "events_hourly_dim_rollup": expected["events_hourly_dim_rollup"],
        "events_daily_dim_rollup": expected["events_daily_dim_rollup"],
    }

    before = await datasets(client)
    assert {name: d["approx_rows"] for name, d in before.items()} == expected
    written = datetime.now(UTC)
    for name, d in before.items():
        assert d["approx_bytes"] > 0, name
        assert ISO_SECONDS.match(d["updated_at"]), d["updated_at"]
        moment = datetime.fromisoformat(d["updated_at"].replace("Z", "+00:00"))
        assert now - timedelta(seconds=2) <= moment <= written + timedelta(seconds=1)

    # Another org's (larger) ingest, a second later, changes none of this org's figures: not
    # the counts, not the sizes, not the write time (issue 8, defect 11).
    await asyncio.sleep(1.1)  # so a write time taken from shared table metadata would move
    await send_events(other, other_reg["api_key"]["key"], theirs)
    after = await datasets(client)
    assert after == before
    assert {name: d["approx_rows"] for name, d in after.items()} == expected
    assert {name: d["columns"] for name, d in after.items()} == COLUMNS
    their_view = await datasets(other)
    assert {name: d["approx_rows"] for name, d in their_view.items()} == expected_rows(theirs)
    # The views store nothing; their update time is the org's own latest write through them.
    for listed in (await views(client), await views(other)):
        assert set(listed) == set(VIEWS)
        for d in listed.values():
            assert (d["approx_rows"], d["approx_bytes"]) == (0, 0)
    assert {d["updated_at"] for d in (await views(client)).values()} == {
        before["events"]["updated_at"]
    }
    assert {d["updated_at"] for d in (await views(other)).values()} == {
        their_view["events"]["updated_at"]
    }

    # Events of this org's development environment are not counted for the production session,
    # and a development admin key counts only them.
    created = await client.post(
        "/v1/api-keys", json={"label": "dev", "scope": "admin", "environment": "development"}
    )
    assert created.status == 201, await created.text()
    dev_key = (await created.json())["key"]
    dev_events = mine[:2]
    await send_events(
        client, dev_key, [dict(e, event_id=f"dev-{i}") for i, e in enumerate(dev_events)]
    )
    assert {name: d["approx_rows"] for name, d in (await datasets(client)).items()} == expected
    dev_view = await datasets(client, bearer(dev_key))
    assert {name: d["approx_rows"] for name, d in dev_view.items()} == expected_rows(dev_events)


async def test_datasets_org_without_rows_counts_zero_while_others_have_data(
    make_client: ClientFactory,
) -> None:
    client, _ = await owner(make_client)
    other, other_reg = await owner(make_client, "owner@globex.test", "Globex")
    await send_events(other, other_reg["api_key"]["key"], other_events(datetime.now(UTC)))
    view = {**await datasets(client), **await views(client)}
    assert list(view) == [*NAMES, *VIEWS]
    for name in view:
        assert view[name]["approx_rows"] == 0
        assert view[name]["approx_bytes"] == 0
        # This org has never written: another org's ingest is not its update time.
        assert view[name]["updated_at"] is None


async def test_dataset_ddl_for_every_visible_dataset(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    for name in NAMES:
        response = await client.get(f"/v1/datasets/{name}/ddl")
        assert response.status == 200, await response.text()
        body = await response.json()
        assert list(body) == ["name", "ddl"]
        assert body["name"] == name
        assert body["ddl"].startswith(f"CREATE TABLE default.{name}\n(\n")
        assert f"ENGINE = {ENGINES[name]}\n" in body["ddl"]
        for column in COLUMNS[name]:
            assert f"`{column['name']}` {column['type']}" in body["ddl"]
    ddl = (await (await client.get("/v1/datasets/events/ddl")).json())["ddl"]
    assert "ORDER BY (org_id, environment_id, tenant_id, event_name, timestamp)" in ddl
    assert "PARTITION BY toYYYYMM(timestamp)" in ddl


async def test_dataset_ddl_of_an_invisible_name_is_404(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    for name in (
        "nope",
        "event_ids",
        "emban_schema_versions",
        "events_mv",  # no such view: the raw table is not filled by one
        "events_hourly_rollup_MV",
        "system.tables",
        "EVENTS",
        "%00",
    ):
        response = await client.get(f"/v1/datasets/{name}/ddl")
        assert response.status == 404, name
        body = await response.json()
        assert body["code"] == "dataset_not_found"
        assert body["error"].startswith("no dataset named "), body


async def test_datasets_need_admin(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    ingest = await create_key(client, "ingest")
    viewer, _ = await join_as(client, make_client, "viewer")
    editor, _ = await join_as(client, make_client, "editor")
    admin, _ = await join_as(client, make_client, "admin")
    anonymous = await make_client()
    for path in ("/v1/datasets", "/v1/datasets/events/ddl"):
        for member in (viewer, editor):
            response = await member.get(path)
            assert response.status == 403
            assert await response.json() == {
                "error": "this action requires the admin role",
                "code": "insufficient_role",
            }
        response = await anonymous.get(path, headers=bearer(ingest))
        assert response.status == 403
        assert (await response.json())["code"] == "insufficient_scope"
        response = await anonymous.get(path)
        assert response.status == 401
        assert (await response.json())["code"] == "unauthenticated"
        response = await anonymous.get(path, headers=bearer("emb_" + "x" * 40))
        assert response.status == 401
        assert (await admin.get(path)).status == 200
        assert (await anonymous.get(path, headers=bearer(reg["api_key"]["key"]))).status == 200


# --- saved queries ---------------------------------------------------------------------------


async def create_saved(client: Client, **body: Any) -> dict[str, Any]:
    payload = {"name": "Count", "sql": COUNT_SQL, **body}
    response = await client.post("/v1/saved-queries", json=payload)
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def saved_list(client: Client) -> list[dict[str, Any]]:
    response = await client.get("/v1/saved-queries")
    assert response.status == 200, await response.text()
    body = await response.json()
    assert list(body) == ["saved_queries"]
    found: list[dict[str, Any]] = body["saved_queries"]
    return found


async def test_saved_query_create_exact_shape(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    before = datetime.now(UTC)
    created = await create_saved(client, name="  Calls by day  ")
    assert set(created) == {
        "id",
        "name",
        "sql",
        "dataset",
        "starred",
        "created_by",
        "created_at",
        "updated_at",
    }
    assert created["id"].startswith("sq_")
    assert created["name"] == "Calls by day"  # trimmed
    assert created["sql"] == COUNT_SQL  # stored as written
    assert created["dataset"] == "events"
    assert created["starred"] is False
    assert created["created_by"] == reg["user"]["id"]
    assert ISO_MILLIS.match(created["created_at"])
    assert ISO_MILLIS.match(created["updated_at"])
    moment = datetime.fromisoformat(created["created_at"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= moment <= datetime.now(UTC)
    assert await saved_list(client) == [created]
    row = await SavedQuery.get(id=created["id"])
    assert row.org_id == reg["org"]["id"]

    # With an admin API key: created_by is the key's id; dataset and starred may be given.
    key_client = await make_client()
    response = await key_client.post(
        "/v1/saved-queries",
        json={
            "name": "Daily",
            "sql": "SELECT sum(events) FROM events_daily_rollup",
            "dataset": "events_daily_rollup",
            "starred": True,
        },
        headers=bearer(reg["api_key"]["key"]),
    )
    assert response.status == 201, await response.text()
    by_key = await response.json()
    assert by_key["created_by"] == reg["api_key"]["id"]
    assert by_key["dataset"] == "events_daily_rollup"
    assert by_key["starred"] is True
    assert [q["id"] for q in await saved_list(client)] == [by_key["id"], created["id"]]


async def test_saved_queries_viewer_and_editor_read_only(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    created = await create_saved(client)
    ingest = await create_key(client, "ingest")
    forbidden = {"error": "this action requires the admin role", "code": "insufficient_role"}
    for role in ("viewer", "editor"):
        member, _ = await join_as(client, make_client, role)
        assert await saved_list(member) == [created]
        response = await member.post("/v1/saved-queries", json={"name": "x", "sql": COUNT_SQL})
        assert response.status == 403
        assert await response.json() == forbidden
        response = await member.patch(
            f"/v1/saved-queries/{created['id']}", json={"name": "renamed", "starred": True}
        )
        assert response.status == 403
        assert await response.json() == forbidden
        response = await member.delete(f"/v1/saved-queries/{created['id']}")
        assert response.status == 403
        assert await response.json() == forbidden
    anonymous = await make_client()
    response = await anonymous.get("/v1/saved-queries", headers=bearer(ingest))
    assert response.status == 403
    assert (await response.json())["code"] == "insufficient_scope"
    response = await anonymous.post(
        "/v1/saved-queries", json={"name": "x", "sql": COUNT_SQL}, headers=bearer(ingest)
    )
    assert response.status == 403
    assert (await response.json())["code"] == "insufficient_scope"
    for method in ("get", "post", "patch", "delete"):
        path = (
            "/v1/saved-queries"
            if method in ("get", "post")
            else f"/v1/saved-queries/{created['id']}"
        )
        response = await getattr(anonymous, method)(path, json={"name": "x", "sql": COUNT_SQL})
        assert response.status == 401, method
    assert await saved_list(client) == [created]  # unchanged
    assert await SavedQuery.all().count() == 1


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DROP TABLE events", "Only SELECT and WITH … SELECT queries are allowed, not DROP."),
        (
            "SELECT * FROM system.tables",
            "Table system.tables is not available; use the unqualified dataset names: events, "
            "events_hourly_rollup, events_daily_rollup, events_hourly_dim_rollup, "
            "events_daily_dim_rollup.",
        ),
        (
            "SELECT * FROM event_ids",
            "Table event_ids is not available; the datasets are: events, events_hourly_rollup, "
            "events_daily_rollup, events_hourly_dim_rollup, events_daily_dim_rollup.",
        ),
        (
            "SELECT 1; SELECT 2",
            "Only one statement is allowed; remove the ';' and what follows it.",
        ),
        (
            "SELECT count() FROM events SETTINGS readonly = 0",
            "SETTINGS clauses are not allowed (at any level of the query).",
        ),
    ],
)
async def test_saved_query_with_refused_sql_is_400_and_not_saved(
    make_client: ClientFactory, sql: str, reason: str
) -> None:
    client, _ = await owner(make_client)
    response = await client.post("/v1/saved-queries", json={"name": "Bad", "sql": sql})
    assert response.status == 400
    assert await response.json() == {"error": reason, "code": "adhoc_rejected"}
    assert await SavedQuery.all().count() == 0
    assert await AuditLog.filter(action__startswith="saved_query").count() == 0


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"name": "x", "sql": COUNT_SQL, "dataset": "event_ids"},
            "dataset",
            "dataset must be one of events, events_hourly_rollup, events_daily_rollup, "
            "events_hourly_dim_rollup, events_daily_dim_rollup",
        ),
        (
            {"name": "x", "sql": COUNT_SQL, "dataset": "nope"},
            "dataset",
            "dataset must be one of events, events_hourly_rollup, events_daily_rollup, "
            "events_hourly_dim_rollup, events_daily_dim_rollup",
        ),
        ({"name": "", "sql": COUNT_SQL}, "name", "name must not be empty"),
        ({"name": "   ", "sql": COUNT_SQL}, "name", "name must not be empty"),
        ({"name": "x" * 201, "sql": COUNT_SQL}, "name", "name must be at most 200 characters"),
        ({"name": "a\nb", "sql": COUNT_SQL}, "name", "name must not contain control characters"),
        ({"name": "x", "sql": "  "}, "sql", "sql must not be empty"),
        ({"name": "x", "sql": "SELECT 'a\x00b'"}, "sql", "sql must not contain NUL characters"),
    ],
)
async def test_saved_query_field_errors_name_the_field(
    make_client: ClientFactory, body: dict[str, Any], field: str, message: str
) -> None:
    client, _ = await owner(make_client)
    response = await client.post("/v1/saved-queries", json=body)
    assert response.status == 400, await response.text()
    assert await response.json() == {"error": message, "code": "invalid_field", "field": field}
    assert await SavedQuery.all().count() == 0


async def test_saved_query_malformed_bodies(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    for body, field in (
        ({"sql": COUNT_SQL}, "name"),
        ({"name": "x"}, "sql"),
        ({"name": "x", "sql": 5}, "sql"),
        ({"name": "x", "sql": COUNT_SQL, "starred": "yes"}, "starred"),
    ):
        response = await client.post("/v1/saved-queries", json=body)
        assert response.status == 400, body
        answer = await response.json()
        assert answer["code"] == "invalid_field"
        assert answer["field"] == field
    response = await client.post("/v1/saved-queries", data=b"{not json")
    assert response.status == 400
    assert (await response.json())["code"] == "invalid_json"
    assert await SavedQuery.all().count() == 0


async def test_saved_query_patch_and_starred_first_ordering(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    b = await create_saved(client, name="b")
    a = await create_saved(client, name="a")
    c = await create_saved(client, name="c")
    assert [q["name"] for q in await saved_list(client)] == ["a", "b", "c"]

    await asyncio.sleep(0.01)
    response = await client.patch(f"/v1/saved-queries/{c['id']}", json={"starred": True})
    assert response.status == 200, await response.text()
    starred = await response.json()
    assert starred == {**c, "starred": True, "updated_at": starred["updated_at"]}
    assert starred["updated_at"] > c["updated_at"]
    assert [q["name"] for q in await saved_list(client)] == ["c", "a", "b"]

    new_sql = "SELECT tenant_id, count() FROM events GROUP BY tenant_id"
    response = await client.patch(
        f"/v1/saved-queries/{b['id']}", json={"name": " aa ", "sql": new_sql}
    )
    assert response.status == 200
    renamed = await response.json()
    assert renamed["name"] == "aa"
    assert renamed["sql"] == new_sql
    assert renamed["starred"] is False
    assert renamed["created_at"] == b["created_at"]
    assert [q["name"] for q in await saved_list(client)] == ["c", "a", "aa"]

    response = await client.patch(
        f"/v1/saved-queries/{a['id']}", json={"dataset": "events_hourly_rollup", "starred": True}
    )
    assert response.status == 200
    assert (await response.json())["dataset"] == "events_hourly_rollup"
    assert [q["name"] for q in await saved_list(client)] == ["a", "c", "aa"]

    # Bad values change nothing.
    for body, code in (
        ({"sql": "DROP TABLE events"}, "adhoc_rejected"),
        ({"name": ""}, "invalid_field"),
        ({"dataset": "event_ids"}, "invalid_field"),
        ({"name": "zz", "sql": "SELECT * FROM system.one"}, "adhoc_rejected"),
    ):
        response = await client.patch(f"/v1/saved-queries/{c['id']}", json=body)
        assert response.status == 400, body
        assert (await response.json())["code"] == code
    assert [q for q in await saved_list(client) if q["id"] == c["id"]] == [starred]

    # An empty patch is a no-op answered with the current row.
    response = await client.patch(f"/v1/saved-queries/{c['id']}", json={})
    assert response.status == 200
    assert await response.json() == starred

    updates = await AuditLog.filter(action="saved_query.update").order_by("id")
    assert [(u.resource_id, u.metadata) for u in updates] == [
        (c["id"], {"fields": ["starred"]}),
        (b["id"], {"fields": ["name", "sql"]}),
        (a["id"], {"fields": ["dataset", "starred"]}),
    ]


async def test_saved_query_unknown_ids_and_other_orgs_are_404(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    other, _ = await owner(make_client, "owner@globex.test", "Globex")
    created = await create_saved(client)
    not_found = {"error": "saved query not found", "code": "saved_query_not_found"}
    for query_id in ("sq_doesnotexist", created["id"] + "x", "x" * 300, "%00"):
        response = await client.patch(f"/v1/saved-queries/{query_id}", json={"starred": True})
        assert response.status == 404, query_id
        assert await response.json() == not_found
        response = await client.delete(f"/v1/saved-queries/{query_id}")
        assert response.status == 404, query_id
        assert await response.json() == not_found

    assert await saved_list(other) == []
    response = await other.patch(f"/v1/saved-queries/{created['id']}", json={"name": "mine"})
    assert response.status == 404
    assert await response.json() == not_found
    response = await other.delete(f"/v1/saved-queries/{created['id']}")
    assert response.status == 404
    assert await response.json() == not_found
    assert await saved_list(client) == [created]


async def test_saved_query_delete_then_404_and_audit_trail(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    created = await create_saved(client, name="Count")
    response = await client.patch(f"/v1/saved-queries/{created['id']}", json={"name": "Total"})
    assert response.status == 200
    response = await client.delete(f"/v1/saved-queries/{created['id']}")
    assert response.status == 204
    assert await response.read() == b""
    assert await saved_list(client) == []
    response = await client.delete(f"/v1/saved-queries/{created['id']}")
    assert response.status == 404
    response = await client.patch(f"/v1/saved-queries/{created['id']}", json={"name": "x"})
    assert response.status == 404

    rows = await AuditLog.filter(resource_type="saved_query").order_by("id")
    assert [
        (r.action, r.resource_id, r.metadata, r.actor_type, r.actor_id, r.org_id) for r in rows
    ] == [
        (
            "saved_query.create",
            created["id"],
            {"name": "Count"},
            "session",
            reg["user"]["id"],
            reg["org"]["id"],
        ),
        (
            "saved_query.update",
            created["id"],
            {"fields": ["name"]},
            "session",
            reg["user"]["id"],
            reg["org"]["id"],
        ),
        (
            "saved_query.delete",
            created["id"],
            {"name": "Total"},
            "session",
            reg["user"]["id"],
            reg["org"]["id"],
        ),
    ]
    # The audit route shows them, newest first.
    response = await client.get("/v1/audit")
    assert response.status == 200
    actions = [e["action"] for e in (await response.json())["entries"]]
    assert actions[:3] == ["saved_query.delete", "saved_query.update", "saved_query.create"]
