from __future__ import annotations

from tests.conftest import ClientFactory, bearer, create_key, register


async def test_ingest_then_query_count(make_client: ClientFactory) -> None:
    owner = await make_client()
    reg = await register(owner)
    key = reg["api_key"]["key"]
    ingest = await create_key(owner, "ingest")
    body = {
        "events": [
            {
                "tenant_id": "acme",
                "event_name": "api.call",
                "user_id": f"u{i % 3}",
                "string_props": {"model": "gpt-4" if i % 2 else "claude"},
                "numeric_props": {"tokens": float(i)},
            }
            for i in range(10)
        ]
    }
    response = await owner.post("/v1/events", json=body, headers=bearer(ingest))
    assert response.status == 200, await response.text()
    assert await response.json() == {"accepted": 10, "status": "ok"}
    q = await owner.get(
        "/v1/query",
        params={"event_name": "api.call", "tenant_id": "acme", "metric": "count", "period": "24h"},
        headers=bearer(key),
    )
    assert q.status == 200, await q.text()
    data = await q.json()
    assert sum(p["value"] for p in data["data"]) == 10
    assert data["meta"]["planned_by"] == "hourly_rollup"
    assert len(data["data"]) == 25
