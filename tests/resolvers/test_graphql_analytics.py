"""The GraphQL analytics surface through ``POST /graphql``, checked against the REST routes:
analytics, ingestEvents, adhocQuery, datasets, datasetDdl, saved queries, usage and onboarding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from emban.models import AuditLog, SavedQuery
from tests.conftest import ClientFactory, bearer, create_key, join_as
from tests.gql_client import data_of, error_of
from tests.scenario import owner, send_events, stable_now, stamp

ANALYTICS = """
query Analytics($query: AnalyticsQueryInput!) {
  analytics(query: $query) {
    data { bucket value group }
    meta {
      queryTimeMs rowsScanned eventName metric period granularity groupBy
      sourceTable plannedBy rollupGranularity
    }
  }
}
"""
INGEST = """
mutation Ingest($events: [EventInput!]!) { ingestEvents(events: $events) { accepted status } }
"""
ADHOC = """
query Adhoc($sql: String!) {
  adhocQuery(sql: $sql) { columns { name type } rows stats { wallMs rowsReturned truncated } }
}
"""
DATASETS = """
{
  datasets {
    name kind engine description approxRows approxBytes updatedAt columns { name type } ddl
  }
}
"""
DDL = "query Ddl($name: String!) { datasetDdl(name: $name) }"
SAVED_FIELDS = "id name sql dataset starred createdBy createdAt updatedAt"
SAVED = f"{{ savedQueries {{ {SAVED_FIELDS} }} }}"
CREATE_SAVED = f"""
mutation Create($name: String!, $sql: String!, $dataset: String! = "events",
                $starred: Boolean! = false) {{
  createSavedQuery(name: $name, sql: $sql, dataset: $dataset, starred: $starred) {{
    {SAVED_FIELDS}
  }}
}}
"""
UPDATE_SAVED = f"""
mutation Update($id: ID!, $name: String, $sql: String, $dataset: String, $starred: Boolean) {{
  updateSavedQuery(id: $id, name: $name, sql: $sql, dataset: $dataset, starred: $starred) {{
    {SAVED_FIELDS}
  }}
}}
"""
DELETE_SAVED = "mutation Delete($id: ID!) { deleteSavedQuery(id: $id) }"
USAGE = """
query Usage($period: String) {
  usage(period: $period) {
    period plan eventsTotal eventsThisMonth eventsLimit queriesTotal
    days { date events queries }
  }
}
"""
ONBOARDING = "{ onboardingStatus { sampleOnly realEvents sampleEvents hasIngestKey } }"
COUNT_SQL = "SELECT count() FROM events"


# --- plumbing --------------------------------------------------------------------------------


def known_events(now: datetime) -> list[dict[str, Any]]:
    """Events in the last day and a few days back, with models, users and numbers."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    rows: list[dict[str, Any]] = []
    for i, (offset, model, user, tokens) in enumerate(
        [
            (timedelta(minutes=1), "gpt-4", "u1", 10.0),
            (timedelta(minutes=2), "gpt-4", "u2", 20.0),
            (-timedelta(hours=1, minutes=-5), "claude", "u1", 5.5),
            (-timedelta(hours=3), "gpt-4", "u3", 100.0),
            (-timedelta(days=2, hours=1), "claude", "u4", 7.0),
            (-timedelta(days=3), "llama", "", 1.0),
        ]
    ):
        rows.append(
            {
                "tenant_id": "acme",
                "event_name": "api.call",
                "event_id": f"e{i}",
                "timestamp": stamp(hour + offset),
                "user_id": user,
                "string_props": {"model": model, "status": "ok"},
                "numeric_props": {"tokens": tokens},
            }
        )
    rows.append(
        {
            "tenant_id": "acme",
            "event_name": "api.call",
            "event_id": "no-tokens",
            "timestamp": stamp(hour + timedelta(minutes=3)),
            "string_props": {"model": "gpt-4"},
        }
    )
    rows.append({"tenant_id": "globex", "event_name": "api.call", "timestamp": stamp(hour)})
    return rows


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def gql_point_to_rest(point: dict[str, Any]) -> dict[str, Any]:
    out = {"bucket": point["bucket"], "value": point["value"]}
    if point["group"] is not None:
        out["group"] = point["group"]
    return out


# --- analytics -------------------------------------------------------------------------------


SPECS: list[dict[str, Any]] = [
    {"metric": "count", "period": "7d"},
    {"metric": "count", "period": "24h"},
    {"metric": "count", "period": "24h", "group_by": "model"},
    {"metric": "count", "period": "30d", "granularity": "week"},
    {"metric": "count", "period": "7d", "f_model": "gpt-4"},
    {"metric": "count", "period": "24h", "f_model": "gpt-4", "f_status": "ok"},
    {"metric": "count_unique", "period": "7d"},
    {"metric": "count_unique_approx", "period": "24h", "group_by": "model"},
    {"metric": "sum", "period": "7d", "numeric_prop": "tokens"},
    {"metric": "avg", "period": "24h", "numeric_prop": "tokens", "group_by": "model"},
    {"metric": "p95", "period": "7d", "numeric_prop": "tokens"},
]


def gql_input(params: dict[str, Any]) -> dict[str, Any]:
    query: dict[str, Any] = {"eventName": "api.call", "tenantId": "acme"}
    filters = []
    for key, value in params.items():
        if key.startswith("f_"):
            filters.append({"dimension": key[2:], "value": value})
        else:
            query[camel(key)] = value
    if filters:
        query["filters"] = filters
    return query


async def test_analytics_equals_rest_query(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    now = await stable_now()
    await send_events(client, reg["api_key"]["key"], known_events(now))
    planners: set[str] = set()
    for params in SPECS:
        rest = await client.get(
            "/v1/query", params={"event_name": "api.call", "tenant_id": "acme", **params}
        )
        assert rest.status == 200, await rest.text()
        expected = await rest.json()
        result = (await data_of(client, ANALYTICS, {"query": gql_input(params)}))["analytics"]
        assert [gql_point_to_rest(p) for p in result["data"]] == expected["data"], params
        meta = dict(expected["meta"])
        assert type(result["meta"].pop("queryTimeMs")) is float
        meta.pop("query_time_ms")
        assert result["meta"] == {camel(k): v for k, v in meta.items()}, params
        planners.add(meta["planned_by"])
    assert planners == {"raw", "hourly_rollup", "daily_rollup"}

    # A few exact answers (the parity above is not vacuous).
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = day.strftime("%Y-%m-%dT%H:%M:%SZ")
    weekly = await data_of(
        client, ANALYTICS, {"query": gql_input({"metric": "count", "period": "7d"})}
    )
    points = weekly["analytics"]["data"]
    assert len(points) == 8
    assert sum(p["value"] for p in points) == 7
    assert weekly["analytics"]["meta"]["plannedBy"] == "daily_rollup"
    assert weekly["analytics"]["meta"]["sourceTable"] == "events_daily_rollup"
    summed = await data_of(
        client,
        ANALYTICS,
        {"query": gql_input({"metric": "sum", "period": "7d", "numeric_prop": "tokens"})},
    )
    assert sum(p["value"] for p in summed["analytics"]["data"]) == 143.5
    assert summed["analytics"]["meta"]["plannedBy"] == "raw"
    assert summed["analytics"]["meta"]["sourceTable"] == "events"
    assert points[-1]["bucket"] == today


async def test_analytics_validation_errors_match_rest(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    for params in (
        {"metric": "nope", "period": "24h"},
        {"metric": "count", "period": "1y"},
        {"metric": "count", "period": "24h", "granularity": "minute"},
        {"metric": "sum", "period": "24h"},
        {"metric": "count", "period": "24h", "group_by": "bad key!"},
        {"metric": "count", "period": "24h", "f_bad key": "x"},
        {"metric": "count", "period": "24h", "tenant_id": ""},
        {"metric": "count", "period": "24h", "event_name": ""},
    ):
        full = {"event_name": "api.call", "tenant_id": "acme", **params}
        rest = await client.get("/v1/query", params=full)
        assert rest.status == 400, params
        expected = await rest.json()
        error = await error_of(client, ANALYTICS, {"query": gql_input(full)})
        assert error["message"] == expected["error"], params
        assert error["extensions"] == {
            "code": "BAD_REQUEST",
            "reason": "invalid_field",
            "field": expected["field"],
        }, params
        assert error["path"] == ["analytics"]
    error = await error_of(
        client,
        ANALYTICS,
        {"query": gql_input({"metric": "count", "period": "7d", "tenant_id": None})},
    )
    assert error["message"] == "tenant_id is required"
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "invalid_field",
        "field": "tenant_id",
    }


async def test_analytics_permissions(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    ingest = await create_key(client, "ingest")
    anonymous = await make_client()
    variables = {"query": gql_input({"metric": "count", "period": "24h"})}
    error = await error_of(anonymous, ANALYTICS, variables)
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "unauthenticated"}
    error = await error_of(anonymous, ANALYTICS, variables, bearer(ingest))
    assert error["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_scope"}
    viewer, _ = await join_as(client, make_client, "viewer")
    result = await data_of(viewer, ANALYTICS, variables)
    assert sum(p["value"] for p in result["analytics"]["data"]) == 0


# --- ingestEvents ----------------------------------------------------------------------------


async def test_ingest_events_with_an_ingest_key_is_queryable(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    ingest = await create_key(client, "ingest")
    anonymous = await make_client()
    now = datetime.now(UTC) - timedelta(minutes=1)
    events = [
        {
            "tenantId": "acme",
            "eventName": "api.call",
            "timestamp": stamp(now),
            "eventId": "g1",
            "userId": "u1",
            "stringProps": {"model": "gpt-4"},
            "numericProps": {"tokens": 12.5},
        },
        {"tenantId": "acme", "eventName": "api.call", "eventId": "g2"},
        {"tenantId": "globex", "eventName": "user.signup"},
    ]
    data = await data_of(anonymous, INGEST, {"events": events}, bearer(ingest))
    assert data == {"ingestEvents": {"accepted": 3, "status": "ok"}}
    # A resend is accepted and stored once.
    data = await data_of(anonymous, INGEST, {"events": events[:1]}, bearer(ingest))
    assert data == {"ingestEvents": {"accepted": 1, "status": "ok"}}
    # An admin key ingests too.
    data = await data_of(
        anonymous,
        INGEST,
        {"events": [{"tenantId": "acme", "eventName": "api.call"}]},
        bearer(reg["api_key"]["key"]),
    )
    assert data == {"ingestEvents": {"accepted": 1, "status": "ok"}}

    body = (
        await data_of(
            client,
            ADHOC,
            {
                "sql": "SELECT tenant_id, event_name, event_id != '' AS has_id, user_id, "
                "string_props['model'], numeric_props['tokens'] FROM events "
                "ORDER BY tenant_id, event_id = 'g1' DESC, event_id"
            },
        )
    )["adhocQuery"]
    assert body["rows"][:2] == [
        ["acme", "api.call", 1, "u1", "gpt-4", 12.5],
        ["acme", "api.call", 1, "", "", 0.0],
    ]
    assert len(body["rows"]) == 4
    assert body["rows"][3] == ["globex", "user.signup", 1, "", "", 0.0]
    result = await data_of(
        client, ANALYTICS, {"query": gql_input({"metric": "count", "period": "24h"})}
    )
    assert sum(p["value"] for p in result["analytics"]["data"]) == 3


async def test_ingest_events_needs_a_key(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    events = [{"tenantId": "acme", "eventName": "api.call"}]
    error = await error_of(client, INGEST, {"events": events})
    assert error["message"] == "events are sent with an admin or ingest API key"
    assert error["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_scope"}
    assert error["path"] == ["ingestEvents"]
    anonymous = await make_client()
    error = await error_of(anonymous, INGEST, {"events": events})
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "unauthenticated"}
    rows = (await data_of(client, ADHOC, {"sql": COUNT_SQL}))["adhocQuery"]["rows"]
    assert rows == [[0]]


async def test_invalid_events_are_bad_request_listing_each(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    key = bearer(reg["api_key"]["key"])
    anonymous = await make_client()
    events = [
        {"tenantId": "acme", "eventName": "ok"},
        {"tenantId": "", "eventName": "api.call"},
        {
            "tenantId": "acme",
            "eventName": "api.call",
            "timestamp": "yesterday",
            "numericProps": {"tokens": "many"},
        },
        {"tenantId": "acme", "eventName": "api.call", "stringProps": {"model": 4}},
        {"tenantId": "acme", "eventName": "api.call", "stringProps": ["not", "an", "object"]},
    ]
    error = await error_of(anonymous, INGEST, {"events": events}, key)
    assert error["message"] == "5 invalid event field(s); nothing was stored"
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "invalid_events",
        "errors": [
            {"index": 1, "field": "tenant_id", "message": "required non-empty string"},
            {
                "index": 2,
                "field": "timestamp",
                "message": "must be ISO 8601 and at most 24 h in the future",
            },
            {
                "index": 2,
                "field": "numeric_props.tokens",
                "message": "value must be a finite number",
            },
            {"index": 3, "field": "string_props.model", "message": "value must be a string"},
            {
                "index": 4,
                "field": "string_props",
                "message": "must be an object of at most 200 strings",
            },
        ],
    }
    rows = (await data_of(client, ADHOC, {"sql": COUNT_SQL}))["adhocQuery"]["rows"]
    assert rows == [[0]]


# --- adhocQuery ------------------------------------------------------------------------------


async def test_adhoc_query_equals_rest(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    await send_events(client, reg["api_key"]["key"], known_events(datetime.now(UTC)))
    for sql in (
        "SELECT tenant_id, count() AS n FROM events GROUP BY tenant_id ORDER BY tenant_id",
        "SELECT string_props['model'] AS model, avg(numeric_props['tokens']) AS t FROM events "
        "WHERE has(mapKeys(numeric_props), 'tokens') GROUP BY model ORDER BY model",
        "SELECT value, sum(events) FROM events_daily_dim_rollup WHERE dimension = 'model' "
        "GROUP BY value ORDER BY value",
        "SELECT event_id FROM events WHERE 0",
    ):
        response = await client.post("/v1/query/adhoc", json={"sql": sql})
        assert response.status == 200, await response.text()
        rest = await response.json()
        result = (await data_of(client, ADHOC, {"sql": sql}))["adhocQuery"]
        assert result["columns"] == rest["columns"], sql
        assert result["rows"] == rest["rows"], sql
        assert result["stats"]["rowsReturned"] == rest["stats"]["rows_returned"]
        assert result["stats"]["truncated"] is rest["stats"]["truncated"] is False
        assert type(result["stats"]["wallMs"]) is float
    result = (
        await data_of(
            client, ADHOC, {"sql": "SELECT tenant_id, count() FROM events GROUP BY 1 ORDER BY 1"}
        )
    )["adhocQuery"]
    assert result["rows"] == [["acme", 7], ["globex", 1]]


async def test_adhoc_query_errors_match_rest(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    for sql in ("DROP TABLE events", "SELECT * FROM system.tables", "", "SELECT nope FROM events"):
        response = await client.post("/v1/query/adhoc", json={"sql": sql})
        assert response.status == 400
        rest = await response.json()
        error = await error_of(client, ADHOC, {"sql": sql})
        assert error["message"] == rest["error"], sql
        assert error["extensions"] == {"code": "BAD_REQUEST", "reason": rest["code"]}, sql
        assert rest["code"] in ("adhoc_rejected", "adhoc_failed")
    ingest = await create_key(client, "ingest")
    anonymous = await make_client()
    error = await error_of(anonymous, ADHOC, {"sql": COUNT_SQL}, bearer(ingest))
    assert error["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_scope"}
    error = await error_of(anonymous, ADHOC, {"sql": COUNT_SQL})
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "unauthenticated"}
    for role in ("viewer", "editor"):
        member, _ = await join_as(client, make_client, role)
        error = await error_of(member, ADHOC, {"sql": COUNT_SQL})
        assert error["message"] == "this action requires the admin role"
        assert error["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_role"}
    assert (await data_of(anonymous, ADHOC, {"sql": COUNT_SQL}, bearer(reg["api_key"]["key"])))[
        "adhocQuery"
    ]["rows"] == [[0]]


# --- datasets --------------------------------------------------------------------------------


async def test_datasets_and_ddl_equal_rest(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    await send_events(client, reg["api_key"]["key"], known_events(datetime.now(UTC)))
    rest = (await (await client.get("/v1/datasets")).json())["datasets"]
    found = (await data_of(client, DATASETS))["datasets"]
    assert found == [{camel(k): v for k, v in d.items()} for d in rest]
    assert [d["name"] for d in found] == [
        "events",
        "events_hourly_rollup",
        "events_daily_rollup",
        "events_hourly_dim_rollup",
        "events_daily_dim_rollup",
        "events_hourly_rollup_mv",
        "events_daily_rollup_mv",
        "events_hourly_dim_rollup_mv",
        "events_daily_dim_rollup_mv",
    ]
    assert found[0]["approxRows"] == 8
    for d in found:
        ddl = (await data_of(client, DDL, {"name": d["name"]}))["datasetDdl"]
        response = await client.get(f"/v1/datasets/{d['name']}/ddl")
        assert ddl == (await response.json())["ddl"] == d["ddl"]
        create = "MATERIALIZED VIEW" if d["kind"] == "materialized_view" else "TABLE"
        assert ddl.startswith(f"CREATE {create} default.{d['name']}")

    for name in ("event_ids", "nope"):
        error = await error_of(client, DDL, {"name": name})
        assert error["message"] == f"no dataset named {name!r}"
        assert error["extensions"] == {"code": "NOT_FOUND", "reason": "dataset_not_found"}
    viewer, _ = await join_as(client, make_client, "viewer")
    for query, variables in ((DATASETS, None), (DDL, {"name": "events"})):
        error = await error_of(viewer, query, variables)
        assert error["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_role"}


# --- saved queries ---------------------------------------------------------------------------


def ms(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def test_saved_query_mutations(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    created = (await data_of(client, CREATE_SAVED, {"name": " b ", "sql": COUNT_SQL}))[
        "createSavedQuery"
    ]
    assert created["id"].startswith("sq_")
    assert {k: created[k] for k in ("name", "sql", "dataset", "starred", "createdBy")} == {
        "name": "b",
        "sql": COUNT_SQL,
        "dataset": "events",
        "starred": False,
        "createdBy": reg["user"]["id"],
    }
    # Same row as REST shows (REST times are cut to milliseconds).
    (rest,) = (await (await client.get("/v1/saved-queries")).json())["saved_queries"]
    assert rest["id"] == created["id"]
    assert ms(created["createdAt"]) == ms(rest["created_at"])
    assert ms(created["updatedAt"]) == ms(rest["updated_at"])

    other = (
        await data_of(
            client,
            CREATE_SAVED,
            {
                "name": "a",
                "sql": "SELECT sum(events) FROM events_hourly_rollup",
                "dataset": "events_hourly_rollup",
            },
        )
    )["createSavedQuery"]
    listed = (await data_of(client, SAVED))["savedQueries"]
    assert [q["name"] for q in listed] == ["a", "b"]

    updated = (
        await data_of(client, UPDATE_SAVED, {"id": created["id"], "name": "bb", "starred": True})
    )["updateSavedQuery"]
    assert updated["name"] == "bb"
    assert updated["starred"] is True
    assert updated["sql"] == COUNT_SQL
    assert updated["createdAt"] == created["createdAt"]
    listed = (await data_of(client, SAVED))["savedQueries"]
    assert [q["id"] for q in listed] == [created["id"], other["id"]]

    viewer, _ = await join_as(client, make_client, "viewer")
    assert (await data_of(viewer, SAVED))["savedQueries"] == listed
    for query, variables in (
        (CREATE_SAVED, {"name": "x", "sql": COUNT_SQL}),
        (UPDATE_SAVED, {"id": created["id"], "name": "x"}),
        (DELETE_SAVED, {"id": created["id"]}),
    ):
        error = await error_of(viewer, query, variables)
        assert error["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_role"}

    assert (await data_of(client, DELETE_SAVED, {"id": created["id"]})) == {
        "deleteSavedQuery": True
    }
    for query, variables in (
        (UPDATE_SAVED, {"id": created["id"], "starred": False}),
        (DELETE_SAVED, {"id": created["id"]}),
        (DELETE_SAVED, {"id": "x" * 300}),
    ):
        error = await error_of(client, query, variables)
        assert error["message"] == "saved query not found"
        assert error["extensions"] == {"code": "NOT_FOUND", "reason": "saved_query_not_found"}
    assert [q["id"] for q in (await data_of(client, SAVED))["savedQueries"]] == [other["id"]]

    actions = await AuditLog.filter(resource_type="saved_query").order_by("id")
    assert [(a.action, a.resource_id, a.metadata) for a in actions] == [
        ("saved_query.create", created["id"], {"name": "b"}),
        ("saved_query.create", other["id"], {"name": "a"}),
        ("saved_query.update", created["id"], {"fields": ["name", "starred"]}),
        ("saved_query.delete", created["id"], {"name": "bb"}),
    ]


async def test_saved_query_mutation_errors_save_nothing(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    error = await error_of(client, CREATE_SAVED, {"name": "x", "sql": "DROP TABLE events"})
    assert error["message"] == "Only SELECT and WITH … SELECT queries are allowed, not DROP."
    assert error["extensions"] == {"code": "BAD_REQUEST", "reason": "adhoc_rejected"}
    error = await error_of(
        client, CREATE_SAVED, {"name": "x", "sql": COUNT_SQL, "dataset": "event_ids"}
    )
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "invalid_field",
        "field": "dataset",
    }
    error = await error_of(client, CREATE_SAVED, {"name": " ", "sql": COUNT_SQL})
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "invalid_field",
        "field": "name",
    }
    assert await SavedQuery.all().count() == 0
    assert await AuditLog.filter(resource_type="saved_query").count() == 0

    created = (await data_of(client, CREATE_SAVED, {"name": "x", "sql": COUNT_SQL}))[
        "createSavedQuery"
    ]
    error = await error_of(
        client, UPDATE_SAVED, {"id": created["id"], "name": "y", "sql": "SELECT * FROM event_ids"}
    )
    assert error["extensions"] == {"code": "BAD_REQUEST", "reason": "adhoc_rejected"}
    (row,) = (await data_of(client, SAVED))["savedQueries"]
    assert row == created
    other, _ = await owner(make_client, "owner@globex.test", "Globex")
    error = await error_of(other, DELETE_SAVED, {"id": created["id"]})
    assert error["extensions"] == {"code": "NOT_FOUND", "reason": "saved_query_not_found"}
    assert (await data_of(other, SAVED))["savedQueries"] == []


# --- usage and onboarding --------------------------------------------------------------------


async def test_usage_and_onboarding_equal_rest(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    await stable_now()  # not at midnight: both surfaces list the same days
    await send_events(client, reg["api_key"]["key"], known_events(datetime.now(UTC)))
    await data_of(client, ANALYTICS, {"query": gql_input({"metric": "count", "period": "24h"})})
    await data_of(client, ADHOC, {"sql": COUNT_SQL})
    response = await client.get(
        "/v1/query",
        params={"event_name": "api.call", "tenant_id": "acme", "metric": "count", "period": "7d"},
    )
    assert response.status == 200

    for period in (None, "7d", "90d"):
        params = {"period": period} if period else {}
        rest = await (await client.get("/v1/usage", params=params)).json()
        found = (await data_of(client, USAGE, {"period": period}))["usage"]
        assert found == {
            "period": rest["period"],
            "plan": rest["plan"],
            "eventsTotal": rest["events"]["total"],
            "eventsThisMonth": rest["events"]["this_month"],
            "eventsLimit": rest["events"]["limit"],
            "queriesTotal": rest["queries"]["total"],
            "days": [
                {"date": e["date"], "events": e["count"], "queries": q["count"]}
                for e, q in zip(rest["events"]["by_day"], rest["queries"]["by_day"], strict=True)
            ],
        }
        assert found["eventsTotal"] == 8
        assert found["queriesTotal"] == 3  # GraphQL analytics + adhocQuery + REST query
        assert found["eventsLimit"] == 100000
        assert found["plan"] == "free"
    error = await error_of(client, USAGE, {"period": "bad"})
    assert error["message"] == "period must be one of 1h, 24h, 7d, 30d, 90d"
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "invalid_field",
        "field": "period",
    }

    await create_key(client, "ingest")
    rest = await (await client.get("/v1/onboarding/status")).json()
    found = (await data_of(client, ONBOARDING))["onboardingStatus"]
    assert found == {
        "sampleOnly": rest["sample_only"],
        "realEvents": rest["real_events"],
        "sampleEvents": rest["sample_events"],
        "hasIngestKey": rest["has_ingest_key"],
    }
    assert found == {"sampleOnly": False, "realEvents": 8, "sampleEvents": 0, "hasIngestKey": True}

    ingest = await create_key(client, "ingest", "second")
    anonymous = await make_client()
    for query in (USAGE, ONBOARDING):
        error = await error_of(anonymous, query, {})
        assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "unauthenticated"}
        error = await error_of(anonymous, query, {}, bearer(ingest))
        assert error["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_scope"}
    viewer, _ = await join_as(client, make_client, "viewer")
    assert (await data_of(viewer, ONBOARDING))["onboardingStatus"] == found
