"""Alerts, reports and webhooks over GraphQL (parity with REST), and Subscription.alertEvents
for console users: session cookie or an admin key in connection_init; embed tokens refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from emban.runtime import Runtime
from tests.conftest import Client, ClientFactory, bearer, create_key, jobs_done, join_as, register
from tests.gql_client import data_of, error_of
from tests.live_client import closed_with

WIDGET = {
    "id": "calls",
    "kind": "metric",
    "title": "Calls",
    "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
    "viz": {"type": "number"},
    "layout": {"x": 0, "y": 0, "w": 6, "h": 2},
}
RULE_FIELDS = (
    "id name conditionType operator thresholdValue lookbackMinutes emailTo enabled state "
    "perTenant tenantId"
)


async def _org(make_client: ClientFactory) -> tuple[Client, str, str]:
    client = await make_client()
    reg = await register(client)
    key = reg["api_key"]["key"]
    made = await client.post("/v1/dashboards", json={"name": "Ops", "widgets": [WIDGET]})
    dashboard = (await made.json())["id"]
    now = datetime.now(UTC)
    events = [
        {
            "event_name": "api.call",
            "tenant_id": "acme",
            "timestamp": (now - timedelta(minutes=m)).isoformat(),
        }
        for m in (1, 2)
    ]
    sent = await client.post("/v1/events", json={"events": events}, headers=bearer(key))
    assert sent.status in (200, 202)
    return client, key, dashboard


CREATE = (
    f"""mutation($input: AlertRuleInput!) {{ createAlert(input: $input) {{ {RULE_FIELDS} }} }}"""
)


async def test_alerts_parity_with_rest(make_client: ClientFactory) -> None:
    client, _, dashboard = await _org(make_client)
    created = (
        await data_of(
            client,
            CREATE,
            {
                "input": {
                    "dashboardId": dashboard,
                    "widgetId": "calls",
                    "name": "Calls",
                    "conditionType": "threshold",
                    "operator": "gte",
                    "thresholdValue": 2,
                    "emailTo": ["ops@example.com"],
                }
            },
        )
    )["createAlert"]
    assert {k: v for k, v in created.items() if k != "id"} == {
        "name": "Calls",
        "conditionType": "threshold",
        "operator": "gte",
        "thresholdValue": 2.0,
        "lookbackMinutes": 60,
        "emailTo": ["ops@example.com"],
        "enabled": True,
        "state": "ok",
        "perTenant": False,
        "tenantId": None,
    }
    rest = await (await client.get(f"/v1/alerts/{created['id']}")).json()
    assert rest["name"] == "Calls" and str(rest["id"]) == created["id"]
    evaluated = await data_of(
        client,
        "mutation($id: ID!) { evaluateAlert(id: $id) { state value eventsCreated } }",
        {"id": created["id"]},
    )
    assert evaluated == {"evaluateAlert": {"state": "firing", "value": 2.0, "eventsCreated": 1}}
    events = await data_of(
        client,
        "query($id: ID!) { alertEvents(alertId: $id) { kind value thresholdValue message "
        "deliveries { channel target status error } } }",
        {"id": created["id"]},
    )
    [event] = events["alertEvents"]
    assert (event["kind"], event["value"], event["thresholdValue"]) == ("fired", 2.0, 2.0)
    assert (
        event["message"] == "Calls: fired: value 2 over the last 60 minutes (condition value ≥ 2)"
    )
    updated = await data_of(
        client,
        "mutation($id: ID!) { updateAlert(id: $id, input: {enabled: false}) { "
        + RULE_FIELDS
        + " } }",
        {"id": created["id"]},
    )
    assert (updated["updateAlert"]["enabled"], updated["updateAlert"]["state"]) == (False, "firing")
    refused = await error_of(
        client,
        CREATE,
        {
            "input": {
                "dashboardId": dashboard,
                "widgetId": "calls",
                "name": "x",
                "conditionType": "soon",
            }
        },
    )
    assert refused["extensions"]["code"] == "BAD_REQUEST"
    assert refused["extensions"]["field"] == "condition_type"
    assert await data_of(
        client, "mutation($id: ID!) { deleteAlert(id: $id) }", {"id": created["id"]}
    ) == {"deleteAlert": True}
    gone = await error_of(
        client, "query($id: ID!) { alert(id: $id) { id } }", {"id": created["id"]}
    )
    assert (gone["extensions"]["code"], gone["extensions"]["reason"]) == (
        "NOT_FOUND",
        "alert_not_found",
    )


async def test_roles_over_graphql(make_client: ClientFactory) -> None:
    owner, _, dashboard = await _org(make_client)
    viewer, _ = await join_as(owner, make_client, "viewer")
    assert (await data_of(viewer, "{ alerts { id } reports { id } }")) == {
        "alerts": [],
        "reports": [],
    }
    denied = await error_of(
        viewer,
        CREATE,
        {
            "input": {
                "dashboardId": dashboard,
                "widgetId": "calls",
                "name": "x",
                "conditionType": "no_data",
            }
        },
    )
    assert (denied["extensions"]["code"], denied["extensions"]["reason"]) == (
        "FORBIDDEN",
        "insufficient_role",
    )
    hidden = await error_of(viewer, "{ webhooks { signingSecret } }")
    assert hidden["extensions"]["code"] == "FORBIDDEN"
    secret = (await data_of(owner, "{ webhooks { signingSecret endpoints { url } } }"))["webhooks"]
    assert secret["signingSecret"].startswith("whsec_") and secret["endpoints"] == []
    rotated = (await data_of(owner, "mutation { rotateWebhookSecret }"))["rotateWebhookSecret"]
    assert rotated != secret["signingSecret"]


async def test_reports_over_graphql(runtime: Runtime, make_client: ClientFactory) -> None:
    client, _, dashboard = await _org(make_client)
    assert (await client.post(f"/v1/dashboards/{dashboard}/publish")).status == 204
    report = (
        await data_of(
            client,
            "mutation($input: ReportInput!) { createReport(input: $input) "
            "{ id schedule timezone format nextRunAt } }",
            {
                "input": {
                    "name": "Weekly",
                    "dashboardId": dashboard,
                    "schedule": "0 9 * * 1",
                    "recipients": ["a@example.com"],
                }
            },
        )
    )["createReport"]
    assert (report["schedule"], report["timezone"], report["format"]) == ("0 9 * * 1", "UTC", "csv")
    assert report["nextRunAt"].endswith("T09:00:00.000Z")
    bad = await error_of(
        client,
        'mutation($id: ID!) { updateReport(id: $id, input: {timezone: "Nowhere/X"}) { id } }',
        {"id": report["id"]},
    )
    assert bad["extensions"]["field"] == "timezone"
    run_id = (
        await data_of(client, "mutation($id: ID!) { runReport(id: $id) }", {"id": report["id"]})
    )["runReport"]
    await jobs_done(runtime)
    runs = await data_of(
        client,
        "query($id: ID!) { reportRuns(reportId: $id) "
        "{ id trigger status error deliveries { target status } } }",
        {"id": report["id"]},
    )
    assert runs["reportRuns"] == [
        {
            "id": run_id,
            "trigger": "manual",
            "status": "failed",
            "error": "e-mail: smtp_not_configured",
            "deliveries": [{"target": "a@example.com", "status": "failed"}],
        }
    ]


SUBSCRIBE = "subscription { alertEvents { alertId alertName event { kind value message } } }"


async def _subscribe(
    server: TestServer, payload: dict[str, Any], cookies: Any = None
) -> tuple[aiohttp.ClientSession, Any]:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    if cookies is not None:
        session.cookie_jar.update_cookies(cookies, server.make_url("/"))
    ws = await session.ws_connect(server.make_url("/graphql"), protocols=["graphql-transport-ws"])
    await ws.send_json({"type": "connection_init", "payload": payload})
    return session, ws


async def test_alert_events_subscription(
    app_server: TestServer, make_client: ClientFactory
) -> None:
    client, _, dashboard = await _org(make_client)
    admin_key = await create_key(client, "admin")
    alert = (
        await data_of(
            client,
            CREATE,
            {
                "input": {
                    "dashboardId": dashboard,
                    "widgetId": "calls",
                    "name": "Busy",
                    "conditionType": "threshold",
                    "operator": "gt",
                    "thresholdValue": 1,
                }
            },
        )
    )["createAlert"]
    cookie = {c.key: c.value for c in client.cookie_jar}
    sockets = [
        await _subscribe(app_server, {}, cookies=cookie),
        await _subscribe(app_server, {"authorization": f"Bearer {admin_key}"}),
    ]
    for _, ws in sockets:
        assert (await ws.receive_json(timeout=3))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
    await asyncio.sleep(0.2)
    await data_of(
        client, "mutation($id: ID!) { evaluateAlert(id: $id) { state } }", {"id": alert["id"]}
    )
    for session, ws in sockets:
        message = await ws.receive_json(timeout=5)
        assert message["type"] == "next", message
        assert message["payload"]["data"]["alertEvents"] == {
            "alertId": alert["id"],
            "alertName": "Busy",
            "event": {
                "kind": "fired",
                "value": 2.0,
                "message": "Busy: fired: value 2 over the last 60 minutes (condition value > 1)",
            },
        }
        await ws.close()
        await session.close()
    # Another org's subscriber hears nothing of this org.
    other = await make_client()
    await register(other, email="other@else.test", org_name="Else")
    other_cookie = {c.key: c.value for c in other.cookie_jar}
    session, ws = await _subscribe(app_server, {}, cookies=other_cookie)
    assert (await ws.receive_json(timeout=3))["type"] == "connection_ack"
    await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
    await asyncio.sleep(0.2)
    await data_of(
        client,
        "mutation($id: ID!) { updateAlert(id: $id, input: {thresholdValue: 100}) { id } }",
        {"id": alert["id"]},
    )
    await data_of(
        client, "mutation($id: ID!) { evaluateAlert(id: $id) { state } }", {"id": alert["id"]}
    )
    try:
        await ws.receive_json(timeout=1)
        heard = True
    except TimeoutError:
        heard = False
    assert heard is False
    await ws.close()
    await session.close()


async def test_alert_events_refusals(app_server: TestServer, make_client: ClientFactory) -> None:
    client = await make_client()
    await register(client)
    ingest_key = await create_key(client, "ingest")
    session, ws = await _subscribe(app_server, {})
    assert await closed_with(ws) == (4403, "embed_token_required")
    await session.close()
    session, ws = await _subscribe(app_server, {"authorization": f"Bearer {ingest_key}"})
    assert await closed_with(ws) == (4403, "insufficient_scope")
    await session.close()
    session, ws = await _subscribe(app_server, {"authorization": "Bearer emk_nope"})
    code, reason = await closed_with(ws)
    assert (code, reason) == (4403, "invalid_api_key")
    await session.close()
