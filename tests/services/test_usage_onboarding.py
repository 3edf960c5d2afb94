"""GET /v1/usage and GET /v1/onboarding/status over HTTP: every day listed, exact event and query
counts (resends and demo sample events excluded), the plan's limit, periods, and permissions."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

from emban.models import UsageDaily
from emban.runtime import Runtime
from emban.sample_data import load_sample_events
from tests.conftest import Client, ClientFactory, bearer, create_key, join_as
from tests.scenario import owner, send_events


async def stable_today() -> date:
    """Today (UTC), at least 20 s before midnight so a test's days stay put."""
    now = datetime.now(UTC)
    left = 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
    if left < 20:
        await asyncio.sleep(left + 1)
    return datetime.now(UTC).date()


def event(i: int, **fields: Any) -> dict[str, Any]:
    return {"tenant_id": "acme", "event_name": "api.call", "event_id": f"ev-{i}", **fields}


async def usage(client: Client, headers: dict[str, str] | None = None, **params: str) -> Any:
    response = await client.get("/v1/usage", params=params, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def onboarding(client: Client, headers: dict[str, str] | None = None) -> Any:
    response = await client.get("/v1/onboarding/status", headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


def days(today: date, back: int, counts: dict[date, int] | None = None) -> list[dict[str, Any]]:
    counts = counts or {}
    out = []
    for offset in range(back, -1, -1):
        day = today - timedelta(days=offset)
        out.append({"date": day.isoformat(), "count": counts.get(day, 0)})
    return out


async def run_query(client: Client, expect: int = 200, **params: str) -> None:
    full = {"event_name": "api.call", "tenant_id": "acme", "metric": "count", "period": "24h"}
    full.update(params)
    response = await client.get("/v1/query", params=full)
    assert response.status == expect, await response.text()


# --- usage -----------------------------------------------------------------------------------


async def test_usage_fresh_org_lists_31_zero_days(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    today = await stable_today()
    body = await usage(client)
    assert body == {
        "period": "30d",
        "plan": "free",
        "events": {"total": 0, "this_month": 0, "limit": 100000, "by_day": days(today, 30)},
        "queries": {"total": 0, "by_day": days(today, 30)},
    }
    assert len(body["events"]["by_day"]) == 31
    assert body["events"]["by_day"][0]["date"] == (today - timedelta(days=30)).isoformat()
    assert body["events"]["by_day"][-1]["date"] == today.isoformat()
    # An empty period parameter means the default.
    assert await usage(client, period="") == body


async def test_usage_counts_stored_events_of_today(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    client, reg = await owner(make_client)
    other, other_reg = await owner(make_client, "owner@globex.test", "Globex")
    key = reg["api_key"]["key"]
    today = await stable_today()
    await send_events(client, key, [event(1), event(2), event(3)])
    # A retry of ev-3 with one new event: the answer counts both (the request's valid events)…
    await send_events(client, key, [event(3), event(4)])
    # …and a request that only repeats itself (ids inside one request) stores one event.
    await send_events(client, key, [event(5), event(5)])
    # Another org, and demo sample events loaded into this org, count nowhere here.
    await send_events(other, other_reg["api_key"]["key"], [event(i) for i in range(10)])
    production = reg["environments"][0]["id"]
    loaded = await load_sample_events(runtime.events, reg["org"]["id"], production, days=1)
    assert loaded > 0

    # Usage counts events stored once each (what the monthly limit reads): 1..5.
    body = await usage(client)
    assert body["events"] == {
        "total": 5,
        "this_month": 5,
        "limit": 100000,
        "by_day": days(today, 30, {today: 5}),
    }
    assert body["queries"]["total"] == 0
    rows = await UsageDaily.filter(org_id=reg["org"]["id"]).values_list("day", "events")
    assert rows == [(today, 5)]
    assert (await usage(other))["events"]["total"] == 10

    # Events of the development environment count for the org too (usage is per org).
    created = await client.post(
        "/v1/api-keys", json={"label": "dev", "scope": "ingest", "environment": "development"}
    )
    assert created.status == 201
    await send_events(client, (await created.json())["key"], [event(1), event(2)])
    body = await usage(client)
    assert body["events"]["total"] == 7
    assert body["events"]["this_month"] == 7


async def test_usage_counts_queries_and_adhoc_calls_flushed_on_read(
    make_client: ClientFactory,
) -> None:
    client, reg = await owner(make_client)
    other, _ = await owner(make_client, "owner@globex.test", "Globex")
    today = await stable_today()
    await send_events(client, reg["api_key"]["key"], [event(1)])
    await run_query(client)
    await run_query(client, period="7d")
    await run_query(client, expect=400, metric="nope")  # refused: not a query run
    response = await client.post("/v1/query/adhoc", json={"sql": "SELECT count() FROM events"})
    assert response.status == 200
    response = await client.post("/v1/query/adhoc", json={"sql": "DROP TABLE events"})
    assert response.status == 400  # refused before running: not counted
    response = await client.post("/v1/query/adhoc", json={"sql": "SELECT nope FROM events"})
    assert response.status == 400  # the engine failed: not counted
    # An admin API key's queries count for the org as well.
    key_client = await make_client()
    response = await key_client.get(
        "/v1/query",
        params={"event_name": "x", "tenant_id": "acme", "metric": "count", "period": "1h"},
        headers=bearer(reg["api_key"]["key"]),
    )
    assert response.status == 200
    await run_query(other)

    # Read at once: the buffered counts are flushed by the read itself.
    body = await usage(client)
    assert body["queries"] == {"total": 4, "by_day": days(today, 30, {today: 4})}
    assert body["events"]["total"] == 1
    # Reading again does not count again, and reads are not queries.
    assert (await usage(client))["queries"]["total"] == 4
    assert (await usage(other))["queries"]["total"] == 1
    rows = await UsageDaily.filter(org_id=reg["org"]["id"]).values_list("events", "queries")
    assert rows == [(1, 4)]


async def test_usage_periods(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    today = await stable_today()
    week = await usage(client, period="7d")
    assert week["period"] == "7d"
    assert week["events"]["by_day"] == days(today, 7)
    assert week["queries"]["by_day"] == days(today, 7)
    assert len(week["events"]["by_day"]) == 8
    assert week["events"]["by_day"][0]["date"] == (today - timedelta(days=7)).isoformat()
    assert week["events"]["by_day"][-1]["date"] == today.isoformat()
    assert len((await usage(client, period="90d"))["events"]["by_day"]) == 91
    assert (await usage(client, period="24h"))["events"]["by_day"] == days(today, 1)
    # 1h: today, plus yesterday during the first hour of the day.
    first = (datetime.now(UTC) - timedelta(hours=1)).date()
    hour = (await usage(client, period="1h"))["events"]["by_day"]
    last = (datetime.now(UTC) - timedelta(hours=1)).date()
    assert hour in (days(today, (today - first).days), days(today, (today - last).days))

    for bad in ("bad", "30", "7D", "365d"):
        response = await client.get("/v1/usage", params={"period": bad})
        assert response.status == 400
        assert await response.json() == {
            "error": "period must be one of 1h, 24h, 7d, 30d, 90d",
            "code": "invalid_field",
            "field": "period",
        }


async def test_usage_and_onboarding_permissions(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    ingest = await create_key(client, "ingest")
    viewer, _ = await join_as(client, make_client, "viewer")
    anonymous = await make_client()
    for path in ("/v1/usage", "/v1/onboarding/status"):
        response = await anonymous.get(path)
        assert response.status == 401
        assert await response.json() == {
            "error": "authentication required",
            "code": "unauthenticated",
        }
        response = await anonymous.get(path, headers=bearer(ingest))
        assert response.status == 403
        assert await response.json() == {
            "error": "ingest keys can only send events",
            "code": "insufficient_scope",
        }
        assert (await viewer.get(path)).status == 200
        assert (await anonymous.get(path, headers=bearer(reg["api_key"]["key"]))).status == 200
    # Every role sees the same org-wide numbers.
    assert await usage(viewer) == await usage(client)
    assert await onboarding(viewer) == await onboarding(client)


# --- onboarding ------------------------------------------------------------------------------


async def test_onboarding_fresh_org_is_sample_only(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    assert await onboarding(client) == {
        "sample_only": True,
        "real_events": 0,
        "sample_events": 0,
        "has_ingest_key": False,
        "steps": {"create_ingest_key": False, "send_first_event": False},
    }


async def test_onboarding_sample_events_keep_sample_only_until_a_real_event(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    client, reg = await owner(make_client)
    other, other_reg = await owner(make_client, "owner@globex.test", "Globex")
    org_id = reg["org"]["id"]
    production = reg["environments"][0]["id"]
    loaded = await load_sample_events(runtime.events, org_id, production, days=1)
    assert loaded > 100
    assert await onboarding(client) == {
        "sample_only": True,
        "real_events": 0,
        "sample_events": loaded,
        "has_ingest_key": False,
        "steps": {"create_ingest_key": False, "send_first_event": False},
    }
    # Another org's real events do not end this org's sample phase.
    await send_events(other, other_reg["api_key"]["key"], [event(i) for i in range(4)])
    assert (await onboarding(client))["sample_only"] is True
    assert (await onboarding(other))["real_events"] == 4

    await send_events(client, reg["api_key"]["key"], [event(1), event(2), event(3)])
    await send_events(client, reg["api_key"]["key"], [event(3)])  # a resend is stored once
    assert await onboarding(client) == {
        "sample_only": False,
        "real_events": 3,
        "sample_events": loaded,
        "has_ingest_key": False,
        "steps": {"create_ingest_key": False, "send_first_event": True},
    }


async def test_onboarding_real_events_and_ingest_key(make_client: ClientFactory) -> None:
    client, reg = await owner(make_client)
    await send_events(client, reg["api_key"]["key"], [event(1), event(2), event(3)])
    assert await onboarding(client) == {
        "sample_only": False,
        "real_events": 3,
        "sample_events": 0,
        "has_ingest_key": False,
        "steps": {"create_ingest_key": False, "send_first_event": True},
    }
    # An admin key is not an ingest key; an ingest key (any environment) flips the step.
    await create_key(client, "admin", "second admin")
    assert (await onboarding(client))["has_ingest_key"] is False
    created = await client.post(
        "/v1/api-keys", json={"label": "dev", "scope": "ingest", "environment": "development"}
    )
    assert created.status == 201
    dev_key = (await created.json())["key"]
    # Events of every environment count.
    await send_events(client, dev_key, [event(10), event(11)])
    assert await onboarding(client) == {
        "sample_only": False,
        "real_events": 5,
        "sample_events": 0,
        "has_ingest_key": True,
        "steps": {"create_ingest_key": True, "send_first_event": True},
    }
    # Revoking the only ingest key flips it back.
    keys = (await (await client.get("/v1/api-keys")).json())["api_keys"]
    (ingest_key,) = [k for k in keys if k["scope"] == "ingest"]
    assert (await client.delete(f"/v1/api-keys/{ingest_key['id']}")).status == 204
    assert (await onboarding(client))["has_ingest_key"] is False
