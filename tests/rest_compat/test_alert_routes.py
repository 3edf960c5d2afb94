"""/v1/alerts, /v1/reports and /v1/webhooks over HTTP: exact answers, field-named refusals,
evaluation and manual runs, the webhook figures an admin sees."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from emban.jobs.inprocess import InProcessJobs
from emban.notify import signing
from emban.runtime import Runtime
from tests.conftest import Client, ClientFactory, bearer, jobs_done, register

NOW = datetime.now(UTC)
WIDGET = {
    "id": "calls",
    "kind": "metric",
    "title": "Calls",
    "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
    "viz": {"type": "number"},
    "layout": {"x": 0, "y": 0, "w": 6, "h": 2},
}


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[list[tuple[dict[str, str], bytes]], str]]:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response(status=204 if len(seen) > 1 else 500, text="nope" * 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield seen, str(server.make_url("/hook"))
    await server.close()


async def _org(make_client: ClientFactory) -> tuple[Client, str, str]:
    client = await make_client()
    reg = await register(client)
    key = reg["api_key"]["key"]
    made = await client.post("/v1/dashboards", json={"name": "Ops", "widgets": [WIDGET]})
    dashboard = (await made.json())["id"]
    assert (await client.post(f"/v1/dashboards/{dashboard}/publish")).status == 204
    events = [
        {
            "event_name": "api.call",
            "tenant_id": "acme",
            "timestamp": (NOW - timedelta(minutes=m)).isoformat(),
        }
        for m in (1, 2, 3)
    ]
    sent = await client.post("/v1/events", json={"events": events}, headers=bearer(key))
    assert sent.status in (200, 202)
    return client, key, dashboard


async def test_alert_lifecycle_over_rest(
    runtime: Runtime,
    make_client: ClientFactory,
    receiver: tuple[list[tuple[dict[str, str], bytes]], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen, url = receiver
    settings = dataclasses.replace(
        runtime.settings, webhook_allow_hosts=("127.0.0.1",), webhook_retry_base_seconds=0.01
    )
    monkeypatch.setattr(runtime, "settings", settings)
    assert isinstance(runtime.jobs, InProcessJobs)
    monkeypatch.setitem(runtime.jobs.ctx, "settings", settings)
    client, _, dashboard = await _org(make_client)
    body = {
        "dashboard_id": dashboard,
        "widget_id": "calls",
        "name": "Latency p95 over threshold",
        "condition_type": "threshold",
        "operator": "gt",
        "threshold_value": 2,
        "email_to": ["ops@example.com"],
        "webhook_url": url,
    }
    created = await client.post("/v1/alerts", json=body)
    assert created.status == 201, await created.text()
    alert = await created.json()
    assert {k: v for k, v in alert.items() if k not in ("id", "created_at", "updated_at")} == {
        **body,
        "lookback_minutes": 60,
        "enabled": True,
        "tenant_id": None,
        "per_tenant": False,
        "state": "ok",
        "threshold_value": 2.0,
    }
    assert isinstance(alert["id"], int)
    evaluated = await client.post(f"/v1/alerts/{alert['id']}/evaluate")
    assert await evaluated.json() == {"state": "firing", "value": 3.0, "events_created": 1}
    await jobs_done(runtime)
    listed = await (await client.get(f"/v1/alerts/{alert['id']}/events")).json()
    [event] = listed["events"]
    assert (event["kind"], event["value"], event["threshold_value"], event["tenant_id"]) == (
        "fired",
        3.0,
        2.0,
        None,
    )
    deliveries = sorted(event["deliveries"], key=lambda d: d["channel"])
    assert [(d["channel"], d["target"], d["status"], d["error"]) for d in deliveries] == [
        ("email", "ops@example.com", "failed", "smtp_not_configured"),
        ("webhook", url, "succeeded", None),
    ]
    assert deliveries[1]["attempts"] == 2 and deliveries[1]["status_code"] == 204
    assert [h["Emban-Delivery"] for h, _ in seen] == [deliveries[1]["id"]] * 2
    hooks = await (await client.get("/v1/webhooks")).json()
    secret = hooks["signing_secret"]
    assert signing.verify(secret, seen[0][0]["Emban-Signature"], seen[0][1])
    [endpoint] = hooks["endpoints"]
    assert endpoint["url"] == url
    assert endpoint["rules"] == [
        {"type": "alert", "id": alert["id"], "name": "Latency p95 over threshold"}
    ]
    # One delivery, retried once: it counts once, as a success.
    assert (endpoint["success_24h"], endpoint["failure_24h"], endpoint["last_status_code"]) == (
        1,
        0,
        204,
    )
    assert endpoint["last_response_excerpt"] == ""
    rotated = await (await client.post("/v1/webhooks/rotate-secret")).json()
    assert rotated["signing_secret"] != secret and rotated["signing_secret"].startswith("whsec_")
    again = await (await client.get("/v1/webhooks")).json()
    assert again["signing_secret"] == rotated["signing_secret"]
    patched = await client.patch(f"/v1/alerts/{alert['id']}", json={"enabled": False})
    assert (await patched.json())["enabled"] is False
    listed_alerts = await (await client.get("/v1/alerts")).json()
    assert [(a["id"], a["state"]) for a in listed_alerts["alerts"]] == [(alert["id"], "firing")]
    assert (await client.delete(f"/v1/alerts/{alert['id']}")).status == 204
    assert (await client.get(f"/v1/alerts/{alert['id']}")).status == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"condition_type": "above"}, "condition_type"),
        ({"operator": "bigger"}, "operator"),
        ({"email_to": ["nope"]}, "email_to[0]"),
        ({"webhook_url": "http://127.0.0.1:9/x"}, "webhook_url"),
        ({"widget_id": "missing"}, "widget_id"),
        ({"dashboard_id": "dash_missing"}, "dashboard_id"),
        ({"threshold_value": "high"}, "threshold_value"),
        ({"lookback": 5}, "lookback"),
    ],
)
async def test_alert_refusals_name_the_field(
    make_client: ClientFactory, change: dict[str, Any], field: str
) -> None:
    client, _, dashboard = await _org(make_client)
    body = {
        "dashboard_id": dashboard,
        "widget_id": "calls",
        "name": "x",
        "condition_type": "threshold",
        "operator": "gt",
        "threshold_value": 2,
        **change,
    }
    refused = await client.post("/v1/alerts", json=body)
    assert refused.status == 400
    assert (await refused.json())["field"] == field
    assert await (await client.get("/v1/alerts")).json() == {"alerts": []}


async def test_report_over_rest(runtime: Runtime, make_client: ClientFactory) -> None:
    client, _, dashboard = await _org(make_client)
    created = await client.post(
        "/v1/reports",
        json={
            "name": "Weekly",
            "dashboard_id": dashboard,
            "schedule": "0 9 * * 1",
            "timezone": "Europe/Paris",
            "recipients": ["team@example.com"],
        },
    )
    assert created.status == 201, await created.text()
    report = await created.json()
    next_run = datetime.fromisoformat(report["next_run_at"].replace("Z", "+00:00"))
    assert next_run.weekday() == 0 and next_run.hour in (7, 8) and next_run > NOW
    assert {k: report[k] for k in ("format", "timezone", "enabled", "last_run_at")} == {
        "format": "csv",
        "timezone": "Europe/Paris",
        "enabled": True,
        "last_run_at": None,
    }
    bad = await client.patch(f"/v1/reports/{report['id']}", json={"schedule": "every monday"})
    assert bad.status == 400 and (await bad.json())["field"] == "schedule"
    bad_zone = await client.patch(f"/v1/reports/{report['id']}", json={"timezone": "Moon/Base"})
    assert (await bad_zone.json())["field"] == "timezone"
    daily = await (
        await client.patch(f"/v1/reports/{report['id']}", json={"schedule": "30 6 * * *"})
    ).json()
    moved = datetime.fromisoformat(daily["next_run_at"].replace("Z", "+00:00"))
    assert (moved.minute, moved > NOW, moved - NOW <= timedelta(days=1)) == (30, True, True)
    paused = await (
        await client.patch(f"/v1/reports/{report['id']}", json={"enabled": False})
    ).json()
    assert (paused["enabled"], paused["next_run_at"]) == (False, None)
    started = await client.post(f"/v1/reports/{report['id']}/run")
    assert started.status == 202
    run_id = (await started.json())["run_id"]
    await jobs_done(runtime)
    runs = (await (await client.get(f"/v1/reports/{report['id']}/runs")).json())["runs"]
    assert [(r["id"], r["trigger"], r["status"], r["error"], r["format"]) for r in runs] == [
        (run_id, "manual", "failed", "e-mail: smtp_not_configured", "csv")
    ]
    assert runs[0]["bytes"] == len(b"period,value\ncurrent,3\nprevious,0\n")
    assert [(d["channel"], d["target"], d["status"]) for d in runs[0]["deliveries"]] == [
        ("email", "team@example.com", "failed")
    ]
    fetched = await (await client.get(f"/v1/reports/{report['id']}")).json()
    assert fetched["last_run_at"] is not None
    assert (await client.delete(f"/v1/reports/{report['id']}")).status == 204
    assert (await client.get(f"/v1/reports/{report['id']}/runs")).status == 404
