"""Live embeds: N concurrent `embedLive` subscribers on one dashboard for 10 tenants.

    .venv/bin/python -m bench.live [--viewers 1 100 1000] [--rounds 20]

For each N: a fresh `emban serve` (embedded, temp dir), a published 3-widget dashboard, one
embed session per tenant, N websockets (viewer i watches tenant i % 10). Each round sends one
event for one tenant through POST /v1/events and measures, for every viewer of that tenant, the
time from sending the event to receiving the pushed result. CPU per refresh is the server's
CPU time over the rounds divided by the rounds (each round refreshes one tenant's cohort).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import free_port, peak_rss_mb, serve

TENANTS = [f"tenant-{i}" for i in range(10)]
WIDGETS = [
    {
        "id": "calls",
        "kind": "metric",
        "title": "Calls",
        "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
        "viz": {"type": "number"},
        "layout": {"x": 0, "y": 0, "w": 4, "h": 2},
    },
    {
        "id": "by_model",
        "kind": "breakdown",
        "title": "By model",
        "query": {
            "event_name": "api.call",
            "metric": "count",
            "period": "24h",
            "group_by": "model",
        },
        "viz": {"type": "bar"},
        "layout": {"x": 4, "y": 0, "w": 4, "h": 2},
    },
    {
        "id": "over_time",
        "kind": "timeseries",
        "title": "Over time",
        "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
        "viz": {"type": "line"},
        "layout": {"x": 8, "y": 0, "w": 4, "h": 2},
    },
]
SUBSCRIPTION = "subscription { embedLive { type widgetId data { data { value group } } } }"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def prepare(base: str) -> tuple[str, dict[str, str]]:
    async with aiohttp.ClientSession(base) as http:
        async with http.post(
            "/v1/auth/register",
            json={
                "email": "live@emban.test",
                "password": "bench-password",
                "name": "Bench",
                "org_name": "Bench",
            },
        ) as resp:
            admin = (await resp.json())["api_key"]["key"]
        headers = {"Authorization": f"Bearer {admin}"}
        async with http.post(
            "/v1/api-keys", json={"label": "i", "scope": "ingest"}, headers=headers
        ) as resp:
            ingest = (await resp.json())["key"]
        async with http.post(
            "/v1/dashboards", json={"name": "Live", "widgets": WIDGETS}, headers=headers
        ) as resp:
            dashboard = (await resp.json())["id"]
        async with http.post(f"/v1/dashboards/{dashboard}/publish", headers=headers) as resp:
            assert resp.status == 204
        tokens = {}
        for tenant in TENANTS:
            async with http.post(
                "/v1/embed-sessions",
                headers=headers,
                json={
                    "tenant_id": tenant,
                    "dashboard_id": dashboard,
                    "expires_in": 3600,
                },
            ) as resp:
                tokens[tenant] = (await resp.json())["token"]
    return ingest, tokens


class Viewer:
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.pushes: asyncio.Queue[float] = asyncio.Queue()

    async def run(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        ready: asyncio.Event,
        counter: list[int],
        total: int,
    ) -> None:
        async with session.ws_connect(
            url, protocols=["graphql-transport-ws"], max_msg_size=0
        ) as ws:
            await ws.send_json({"type": "connection_init", "payload": {"token": token}})
            await ws.receive_json()
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
            initial = 1 + len(WIDGETS)
            async for message in ws:
                body = message.json()
                if body.get("type") != "next":
                    continue
                if initial:
                    initial -= 1
                    if not initial:
                        counter[0] += 1
                        if counter[0] == total:
                            ready.set()
                    continue
                self.pushes.put_nowait(time.perf_counter())


async def run(port: int, pid: int, viewers: int, rounds: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    ingest, tokens = await prepare(base)
    ready = asyncio.Event()
    counter = [0]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        crowd = [Viewer(TENANTS[i % len(TENANTS)]) for i in range(viewers)]
        tasks = [
            asyncio.create_task(
                v.run(session, f"{base}/graphql", tokens[v.tenant], ready, counter, viewers)
            )
            for v in crowd
        ]
        started = time.perf_counter()
        await asyncio.wait_for(ready.wait(), timeout=300)
        connect_s = time.perf_counter() - started
        latencies: list[float] = []
        cpu_before = cpu_seconds(pid)
        async with aiohttp.ClientSession(base) as http:
            for index in range(rounds):
                tenant = TENANTS[index % len(TENANTS)]
                watchers = [v for v in crowd if v.tenant == tenant]
                sent = time.perf_counter()
                async with http.post(
                    "/v1/events",
                    headers={"Authorization": f"Bearer {ingest}"},
                    json={
                        "events": [
                            {
                                "tenant_id": tenant,
                                "event_name": "api.call",
                                "string_props": {"model": "m"},
                            }
                        ]
                    },
                ) as r:
                    assert r.status == 200
                for viewer in watchers:
                    # each of the 3 widgets changes: wait for all three pushes
                    arrivals = [await asyncio.wait_for(viewer.pushes.get(), 10) for _ in WIDGETS]
                    latencies.append(max(arrivals) - sent)
                await asyncio.sleep(0.3)
        cpu = cpu_seconds(pid) - cpu_before
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    ordered = sorted(latencies)
    return {
        "viewers": viewers,
        "connect_s": connect_s,
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000,
        "cpu_ms_per_refresh": cpu / rounds * 1000,
        "rss_mb": peak_rss_mb(pid),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    rows = []
    for viewers in args.viewers:
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            with serve(Path(tmp), port) as proc:
                rows.append(asyncio.run(run(port, proc.pid, viewers, args.rounds)))
    print(
        f"{'viewers':>8} {'connect s':>10} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'CPU ms/refresh':>15} {'RSS MiB':>8}"
    )
    for r in rows:
        print(
            f"{r['viewers']:>8} {r['connect_s']:>10.1f} {r['p50_ms']:>8.0f} {r['p95_ms']:>8.0f} "
            f"{r['cpu_ms_per_refresh']:>15.1f} {r['rss_mb']:>8.0f}"
        )
    print("latency: event sent → all 3 widget pushes received by a viewer of that tenant")


if __name__ == "__main__":
    main()
