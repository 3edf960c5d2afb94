"""POST /v1/query/adhoc through HTTP: the exact answer, refusals, permissions, malformed bodies,
and org / environment isolation enforced on every dataset even when the SQL asks for others."""

# ruff: noqa: S608  (the SQL text is what is under test; it is sent to the guarded route)

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Client, ClientFactory, bearer, create_key, join_as
from tests.scenario import owner, send_events, stamp

DATASETS = (
    "events",
    "events_hourly_rollup",
    "events_daily_rollup",
    "events_hourly_dim_rollup",
    "events_daily_dim_rollup",
)


async def adhoc(
    client: Client, sql: str, headers: dict[str, str] | None = None, expect: int = 200
) -> Any:
    response = await client.post("/v1/query/adhoc", json={"sql": sql}, headers=headers)
    assert response.status == expect, await response.text()
    return await response.json()


def known_events() -> list[dict[str, Any]]:
    at = datetime.now(UTC) - timedelta(minutes=30)
    return [
        {
            "tenant_id": "acme",
            "event_name": "api.call",
            "timestamp": stamp(at),
            "user_id": "u1",
            "string_props": {"model": "gpt-4"},
            "numeric_props": {"tokens": 10},
        },
        {
            "tenant_id": "acme",
            "event_name": "api.call",
            "timestamp": stamp(at),
            "user_id": "u2",
            "string_props": {"model": "claude"},
            "numeric_props": {"tokens": 32.5},
        },
        {
            "tenant_id": "globex",
            "event_name": "api.call",
            "timestamp": stamp(at),
            "user_id": "u1",
            "string_props": {"model": "gpt-4"},
        },
        {"tenant_id": "acme", "event_name": "user.signup", "timestamp": stamp(at)},
    ]


def check_stats(body: dict[str, Any], rows: int, truncated: bool = False) -> None:
    stats = body["stats"]
    assert set(stats) == {"wall_ms", "rows_returned", "truncated"}
    assert type(stats["wall_ms"]) is int and 0 <= stats["wall_ms"] < 10_000
    assert stats["rows_returned"] == rows
    assert stats["truncated"] is truncated


# --- answers ---------------------------------------------------------------------------------


async def test_admin_gets_exact_columns_rows_and_stats(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    await send_events(client, reg["api_key"]["key"], known_events())
    body = await adhoc(
        client,
        "SELECT event_name, count() AS n FROM events GROUP BY event_name ORDER BY event_name",
    )
    assert list(body) == ["columns", "rows", "stats"]
    assert body["columns"] == [
        {"name": "event_name", "type": "LowCardinality(String)"},
        {"name": "n", "type": "UInt64"},
    ]
    assert body["rows"] == [["api.call", 3], ["user.signup", 1]]
    check_stats(body, 2)

    body = await adhoc(
        client,
        "SELECT tenant_id, string_props['model'] AS model, sum(numeric_props['tokens']) AS t, "
        "uniqExact(user_id) AS users FROM events WHERE event_name = 'api.call' "
        "GROUP BY tenant_id, model ORDER BY tenant_id, model",
    )
    assert body["columns"] == [
        {"name": "tenant_id", "type": "String"},
        {"name": "model", "type": "String"},
        {"name": "t", "type": "Float64"},
        {"name": "users", "type": "UInt64"},
    ]
    assert body["rows"] == [
        ["acme", "claude", 32.5, 1],
        ["acme", "gpt-4", 10.0, 1],
        ["globex", "gpt-4", 0.0, 1],
    ]
    check_stats(body, 3)

    # The rollups: per tenant and event, one insert → one row per group.
    body = await adhoc(
        client,
        "SELECT tenant_id, event_name, sum(events) AS n, uniqExactMerge(users) AS u "
        "FROM events_daily_rollup GROUP BY tenant_id, event_name ORDER BY tenant_id, event_name",
    )
    assert body["columns"] == [
        {"name": "tenant_id", "type": "String"},
        {"name": "event_name", "type": "LowCardinality(String)"},
        {"name": "n", "type": "UInt64"},
        {"name": "u", "type": "UInt64"},
    ]
    assert body["rows"] == [
        ["acme", "api.call", 2, 2],
        ["acme", "user.signup", 1, 0],
        ["globex", "api.call", 1, 1],
    ]
    body = await adhoc(
        client,
        "WITH m AS (SELECT value, sum(events) AS n FROM events_hourly_dim_rollup "
        "WHERE dimension = 'model' AND value != '' GROUP BY value) SELECT * FROM m ORDER BY value",
    )
    assert body["rows"] == [["claude", 1], ["gpt-4", 2]]

    # An empty answer still lists its columns.
    body = await adhoc(client, "SELECT event_id FROM events WHERE tenant_id = 'nobody'")
    assert body == {
        "columns": [{"name": "event_id", "type": "String"}],
        "rows": [],
        "stats": body["stats"],
    }
    check_stats(body, 0)

    # An admin API key and an admin member get the same answer as the owner.
    sql = "SELECT tenant_id, count() FROM events GROUP BY tenant_id ORDER BY tenant_id"
    expected = (await adhoc(client, sql))["rows"]
    assert expected == [["acme", 3], ["globex", 1]]
    anonymous = await make_client()
    assert (await adhoc(anonymous, sql, bearer(reg["api_key"]["key"])))["rows"] == expected
    admin, _ = await join_as(client, make_client, "admin")
    assert (await adhoc(admin, sql))["rows"] == expected


async def test_refused_statements_are_400_adhoc_rejected(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    await send_events(client, reg["api_key"]["key"], known_events())
    datasets = ", ".join(DATASETS)
    for sql, reason in (
        ("DROP TABLE events", "Only SELECT and WITH … SELECT queries are allowed, not DROP."),
        (
            "INSERT INTO events (tenant_id) VALUES ('x')",
            "Only SELECT and WITH … SELECT queries are allowed, not INSERT.",
        ),
        (
            "SELECT * FROM system.tables",
            f"Table system.tables is not available; use the unqualified dataset names: {datasets}.",
        ),
        (
            "SELECT * FROM event_ids",
            f"Table event_ids is not available; the datasets are: {datasets}.",
        ),
        ("SELECT * FROM numbers(10)", "Table functions are not allowed: numbers()."),
        (
            "SELECT 1; SELECT 2",
            "Only one statement is allowed; remove the ';' and what follows it.",
        ),
        (
            "SELECT count() FROM events SETTINGS additional_table_filters = {}",
            "SETTINGS clauses are not allowed (at any level of the query).",
        ),
        ("", "The query is empty."),
        ("   ", "The query is empty."),
    ):
        body = await adhoc(client, sql, expect=400)
        assert body == {"error": reason, "code": "adhoc_rejected"}, sql
    # The events are all still there.
    assert (await adhoc(client, "SELECT count() FROM events"))["rows"] == [[4]]


async def test_engine_errors_are_400_adhoc_failed(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    body = await adhoc(client, "SELECT no_such_column FROM events", expect=400)
    assert body["code"] == "adhoc_failed"
    assert "no_such_column" in body["error"]
    assert "\n" not in body["error"]


async def test_only_admins_run_adhoc_sql(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    await send_events(client, reg["api_key"]["key"], known_events())
    ingest = await create_key(client, "ingest")
    sql = "SELECT count() FROM events"
    for role in ("viewer", "editor"):
        member, _ = await join_as(client, make_client, role)
        assert await adhoc(member, sql, expect=403) == {
            "error": "this action requires the admin role",
            "code": "insufficient_role",
        }
    anonymous = await make_client()
    assert await adhoc(anonymous, sql, bearer(ingest), expect=403) == {
        "error": "ingest keys can only send events",
        "code": "insufficient_scope",
    }
    assert await adhoc(anonymous, sql, expect=401) == {
        "error": "authentication required",
        "code": "unauthenticated",
    }
    body = await adhoc(anonymous, sql, bearer("emb_" + "0" * 40), expect=401)
    assert body["code"] == "invalid_api_key"
    # A refused caller learns nothing about the statement: the role check comes first.
    viewer, _ = await join_as(client, make_client, "viewer")
    assert (await adhoc(viewer, "DROP TABLE events", expect=403))["code"] == "insufficient_role"


async def test_malformed_bodies_are_400(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    for data, code, field in (
        (b"{not json", "invalid_json", None),
        (b"", "invalid_json", None),
        (b"{}", "invalid_field", "sql"),
        (b'{"sql": 1}', "invalid_field", "sql"),
        (b'{"sql": null}', "invalid_field", "sql"),
        (b'{"query": "SELECT 1"}', "invalid_field", "query"),  # unknown fields are refused
        (b'["SELECT 1"]', "invalid_body", None),
        (b'"SELECT 1"', "invalid_body", None),
    ):
        response = await client.post(
            "/v1/query/adhoc", data=data, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400, data
        body = await response.json()
        assert body["code"] == code, (data, body)
        assert body.get("field") == field, (data, body)
    big = "SELECT 1 -- " + "x" * (1024 * 1024)
    response = await client.post("/v1/query/adhoc", json={"sql": big})
    assert response.status == 413
    assert (await response.json())["code"] == "payload_too_large"


# --- isolation -------------------------------------------------------------------------------


async def test_other_orgs_rows_never_appear(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    other, other_reg = await owner(make_client, "owner@globex.test", "Globex")
    mine = reg["org"]["id"]
    theirs = other_reg["org"]["id"]
    await send_events(client, reg["api_key"]["key"], known_events())
    await send_events(other, other_reg["api_key"]["key"], known_events() + known_events())

    for table in DATASETS:
        body = await adhoc(client, f"SELECT DISTINCT org_id FROM {table}")
        assert body["rows"] == [[mine]], table
        body = await adhoc(client, f"SELECT count() FROM {table} WHERE org_id = '{theirs}'")
        assert body["rows"] == [[0]], table
        body = await adhoc(other, f"SELECT DISTINCT org_id FROM {table}")
        assert body["rows"] == [[theirs]], table
    for sql in (
        f"SELECT count() FROM events WHERE org_id = '{theirs}' OR 1 = 1",
        f"SELECT count() FROM (SELECT * FROM events WHERE org_id IN ('{theirs}', '{mine}'))",
        "WITH e AS (SELECT * FROM events) SELECT count() FROM e",
        "SELECT count() FROM events AS a INNER JOIN events AS b ON a.event_id = b.event_id",
        "SELECT count() FROM (SELECT org_id FROM events UNION ALL SELECT org_id FROM events "
        f"WHERE org_id = '{theirs}')",
        "SELECT (SELECT count() FROM events) ",
        "SELECT sum(events) FROM events_daily_rollup FINAL "
        f"WHERE org_id != '{mine}' OR org_id = '{mine}'",
    ):
        rows = (await adhoc(client, sql))["rows"]
        assert rows == [[4]], (sql, rows)
    assert (await adhoc(other, "SELECT count() FROM events"))["rows"] == [[8]]


async def test_environment_isolation(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    production, development = (e["id"] for e in reg["environments"])
    assert [e["name"] for e in reg["environments"]] == ["production", "development"]
    response = await client.post(
        "/v1/api-keys", json={"label": "dev", "scope": "admin", "environment": "development"}
    )
    assert response.status == 201, await response.text()
    dev_key = (await response.json())["key"]
    anonymous = await make_client()
    await send_events(client, reg["api_key"]["key"], known_events())
    await send_events(anonymous, dev_key, known_events()[:2])

    dev = bearer(dev_key)
    for table in DATASETS:
        body = await adhoc(anonymous, f"SELECT DISTINCT environment_id FROM {table}", dev)
        assert body["rows"] == [[development]], table
        body = await adhoc(
            anonymous, f"SELECT count() FROM {table} WHERE environment_id = '{production}'", dev
        )
        assert body["rows"] == [[0]], table
        body = await adhoc(client, f"SELECT DISTINCT environment_id FROM {table}")
        assert body["rows"] == [[production]], table
    body = await adhoc(anonymous, "SELECT tenant_id, count() FROM events GROUP BY tenant_id", dev)
    assert body["rows"] == [["acme", 2]]
    assert (await adhoc(client, "SELECT count() FROM events"))["rows"] == [[4]]
    # The production admin key sees what the owner's (production) session sees.
    assert (await adhoc(anonymous, "SELECT count() FROM events", bearer(reg["api_key"]["key"])))[
        "rows"
    ] == [[4]]
