"""What the metrics cost on the hot paths, per operation, next to a bare aiohttp request.

    .venv/bin/python -m bench.metrics [--n 200000] [--requests 3000]

1. In-process, per call: the HTTP middleware's accounting (one counter + one histogram with
   labels), an ingest flush's accounting (three counter adds + one histogram), a live push
   (one counter add), a ClickHouse call's timing (histogram with a label), and one scrape.
2. Over HTTP: requests/s to a trivial handler on a plain aiohttp app and on the same app with
   Emban's request-id and metrics middlewares (sequential requests, one client, loopback).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
from aiohttp import web

from bench.common import free_port
from emban.metrics import Metrics
from emban.metrics_http import metrics_middleware
from emban.request_ids import add_request_id_header, request_id_middleware


def per_call_us(label: str, n: int, call: object) -> None:
    assert callable(call)
    started = time.perf_counter()
    for _ in range(n):
        call()
    print(f"{label:<48} {(time.perf_counter() - started) / n * 1e6:8.2f} µs")


def in_process(n: int) -> None:
    metrics = Metrics()

    def http() -> None:
        metrics.http_requests.labels("GET", "/v1/dashboards/{id}", "200").inc()
        metrics.http_duration.labels("GET", "/v1/dashboards/{id}").observe(0.004)

    def flush() -> None:
        metrics.ingest_flush_ok.inc()
        metrics.ingest_stored.inc(100)
        metrics.ingest_duplicate.inc(0)
        metrics.ingest_flush_duration.observe(0.02)

    def push() -> None:
        metrics.live_pushed("data", 1)

    def clickhouse() -> None:
        metrics.clickhouse_duration.labels("query").observe(0.003)

    per_call_us("HTTP request accounting", n, http)
    per_call_us("ingest flush accounting", n, flush)
    per_call_us("live push accounting", n, push)
    per_call_us("ClickHouse call accounting", n, clickhouse)
    per_call_us("one scrape (exposition of this registry)", 200, metrics.exposition)


async def _rate(app: web.Application, requests: int) -> float:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/v1/things/{id}", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/v1/things/1"
            for _ in range(200):  # warm-up
                await (await http.get(url)).read()
            started = time.perf_counter()
            for _ in range(requests):
                await (await http.get(url)).read()
            return requests / (time.perf_counter() - started)
    finally:
        await runner.cleanup()


async def over_http(requests: int) -> None:
    plain = await _rate(web.Application(), requests)
    metrics = Metrics()
    observed = web.Application(middlewares=[request_id_middleware, metrics_middleware(metrics)])
    observed.on_response_prepare.append(add_request_id_header)
    with_metrics = await _rate(observed, requests)
    print(f"{'plain aiohttp app':<48} {plain:8.0f} req/s")
    print(f"{'with request ids + metrics middleware':<48} {with_metrics:8.0f} req/s")
    print(f"{'cost per request':<48} {(1 / with_metrics - 1 / plain) * 1e6:8.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    in_process(args.n)
    asyncio.run(over_http(args.requests))


if __name__ == "__main__":
    main()
