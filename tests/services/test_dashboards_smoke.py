from __future__ import annotations

from typing import Any

from tests.conftest import ClientFactory, bearer, create_key, register

WIDGETS: list[dict[str, Any]] = [
    {
        "id": "calls",
        "kind": "timeseries",
        "title": "Calls",
        "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
        "viz": {"type": "line"},
        "layout": {"x": 0, "y": 0, "w": 6, "h": 4},
    },
    {
        "id": "total",
        "kind": "metric",
        "title": "Total calls",
        "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
        "viz": {"type": "number"},
        "layout": {"x": 6, "y": 0, "w": 6, "h": 2},
    },
]


async def test_create_publish_and_preview(make_client: ClientFactory) -> None:
    owner = await make_client()
    await register(owner)
    ingest = await create_key(owner, "ingest")
    sent = await owner.post(
        "/v1/events",
        json={"events": [{"tenant_id": "acme", "event_name": "api.call"} for _ in range(4)]},
        headers=bearer(ingest),
    )
    assert sent.status == 200
    created = await owner.post("/v1/dashboards", json={"name": "Usage", "widgets": WIDGETS})
    assert created.status == 201, await created.text()
    dashboard = await created.json()
    assert dashboard["id"].startswith("dash_")
    assert dashboard["is_published"] is False
    published = await owner.post(f"/v1/dashboards/{dashboard['id']}/publish")
    assert published.status == 204
    second = await owner.post("/v1/dashboards", json={"name": "Second", "widgets": []})
    limit = await owner.post(f"/v1/dashboards/{(await second.json())['id']}/publish")
    assert limit.status == 402
    assert await limit.json() == {
        "error": "published dashboard limit reached for this plan",
        "code": "published_dashboards_limit",
        "plan": "free",
        "upgrade_to": "starter",
        "limit": 1,
        "used": 1,
    }
    preview = await owner.post(
        "/v1/widgets/preview/data", json={"widget": WIDGETS[1], "tenant_id": "acme"}
    )
    assert preview.status == 200, await preview.text()
    body = await preview.json()
    assert [(p["group"], p["value"]) for p in body["data"]] == [("current", 4), ("previous", 0)]
    bad = await owner.post(
        "/v1/dashboards",
        json={"name": "Bad", "widgets": [{**WIDGETS[0], "query": {"event_name": "x"}}]},
    )
    assert bad.status == 400
    assert (await bad.json())["field"] == "widgets[0].query.metric"
