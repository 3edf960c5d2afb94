"""The jobs on real arq workers (burst mode) over real Redis: a webhook delivery retried with the
same delivery id, and two workers running the alert cycle at once record each transition once."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker

from emban.jobs.queue import ArqJobs
from emban.jobs.worker import JOBS
from emban.models import AlertEvent, AlertRule, Delivery
from emban.runtime import Runtime
from emban.services import webhooks
from tests.conftest import ClientFactory, bearer, register

REDIS_DB = "redis://127.0.0.1:6379/14"


@pytest.fixture
async def pool() -> AsyncIterator[ArqRedis]:
    redis = ArqRedis.from_url(REDIS_DB)
    await redis.flushdb()
    yield redis
    await redis.flushdb()
    await redis.aclose()


def _worker(pool: ArqRedis, ctx: dict[str, Any]) -> Worker:
    return Worker(
        functions=list(JOBS.values()),
        redis_pool=pool,
        redis_settings=RedisSettings.from_dsn(REDIS_DB),
        burst=True,
        handle_signals=False,
        poll_delay=0.02,
        max_jobs=1,
        max_tries=5,
        ctx=ctx,
    )


async def test_webhook_retried_by_arq_with_the_same_delivery_id(
    runtime: Runtime, make_client: ClientFactory, pool: ArqRedis
) -> None:
    client = await make_client()
    org_id = (await register(client))["org"]["id"]
    answers = [503, 500, 200]
    seen: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(request.headers["Emban-Delivery"])
        return web.Response(status=answers[len(seen) - 1])

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        delivery = await webhooks.create_delivery(
            org_id=org_id,
            channel="webhook",
            event_type="alert.fired",
            target=str(server.make_url("/hook")),
            tenant_id=None,
            payload=b"{}",
        )
        settings = dataclasses.replace(
            runtime.settings, webhook_allow_hosts=("127.0.0.1",), webhook_retry_base_seconds=0.05
        )
        await ArqJobs(pool).enqueue("deliver_webhook", str(delivery.id))
        worker = _worker(pool, {"settings": settings, "jobs": ArqJobs(pool)})
        await asyncio.wait_for(worker.async_run(), timeout=30)
        await worker.close()
    finally:
        await server.close()
    done = await Delivery.get(id=delivery.id)
    assert (done.status, done.attempts, done.status_code) == ("succeeded", 3, 200)
    assert seen == [done.uid] * 3


async def test_two_workers_record_each_transition_once(
    runtime: Runtime, make_client: ClientFactory, pool: ArqRedis
) -> None:
    client = await make_client()
    reg = await register(client)
    now = datetime.now(UTC)
    events = [
        {
            "event_name": "api.call",
            "tenant_id": f"t{i % 3}",
            "timestamp": (now - timedelta(minutes=1 + i)).isoformat(),
        }
        for i in range(9)
    ]
    sent = await client.post(
        "/v1/events", json={"events": events}, headers=bearer(reg["api_key"]["key"])
    )
    assert sent.status in (200, 202)
    widget = {
        "id": "calls",
        "kind": "metric",
        "title": "Calls",
        "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
        "viz": {"type": "number"},
        "layout": {"x": 0, "y": 0, "w": 6, "h": 2},
    }
    made = await client.post("/v1/dashboards", json={"name": "D", "widgets": [widget]})
    dashboard = (await made.json())["id"]
    common = {
        "org_id": reg["org"]["id"],
        "environment_id": reg["environments"][0]["id"],
        "dashboard_id": dashboard,
        "widget_id": "calls",
        "condition_type": "threshold",
        "operator": "gte",
        "threshold_value": 3,
        "lookback_minutes": 60,
        "email_to": ["ops@example.com"],
    }
    await AlertRule.create(name="all", **common)
    await AlertRule.create(name="each", per_tenant=True, **common)
    for n in range(4):
        await pool.enqueue_job("evaluate_alerts", _job_id=f"cycle-{n}")
    ctx = {"settings": runtime.settings, "events": runtime.events, "jobs": ArqJobs(pool)}
    workers = [_worker(pool, dict(ctx)) for _ in range(2)]
    await asyncio.wait_for(asyncio.gather(*(w.async_run() for w in workers)), timeout=60)
    for worker in workers:
        await worker.close()
    fired = sorted(
        await AlertEvent.all().values_list("tenant_id", "kind", "value"),
        key=lambda row: row[0] or "",
    )
    # 9 events: 3 per tenant -> "all" fires (9 >= 3) and "each" fires for t0, t1 and t2.
    assert fired == [
        (None, "fired", 9.0),
        ("t0", "fired", 3.0),
        ("t1", "fired", 3.0),
        ("t2", "fired", 3.0),
    ]
    deliveries = await Delivery.all().values_list("channel", "status", "error")
    assert sorted(deliveries) == [("email", "failed", "smtp_not_configured")] * 4
