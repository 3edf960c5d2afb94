"""Query latency: GET /v1/query (rollup vs raw plans) next to the same SQL on the engine, and
the same spec over POST /graphql (``analytics`` with the fields the embed runtime asks for).

    .venv/bin/python -m bench.query [--events 1000000 10000000] [--runs 40]

For each size: register an org through a real `emban serve` (embedded, temp dir), stop it, load
N synthetic events over the last 30 days straight into chDB with `INSERT … SELECT FROM numbers()`
(the materialized views fill the rollups), time each spec's planned SQL directly on chDB, then
start the server again on the same data and time the API: each run sends the REST request and
the GraphQL request back to back (side by side, so both see the same machine), specs in turn;
then time the engine again (half the engine runs before the API, half after). Medians of --runs
runs after 3 warm-up rounds; the server's peak RSS (VmHWM) after all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench.common import free_port, peak_rss_mb, serve

SPECS: dict[str, dict[str, str]] = {
    "rollup: count 30d by day": {
        "event_name": "api.call",
        "tenant_id": "tenant-3",
        "metric": "count",
        "period": "30d",
    },
    "rollup: count 24h by hour, f_model": {
        "event_name": "api.call",
        "tenant_id": "tenant-3",
        "metric": "count",
        "period": "24h",
        "f_model": "gpt-4o",
    },
    "raw: count 30d by day, group_by region": {
        "event_name": "api.call",
        "tenant_id": "tenant-3",
        "metric": "count",
        "period": "30d",
        "group_by": "region",
    },
    "raw: p95 latency 30d by day": {
        "event_name": "api.call",
        "tenant_id": "tenant-3",
        "metric": "p95",
        "period": "30d",
        "numeric_prop": "latency_ms",
    },
}

LOAD_SQL = """
INSERT INTO events (org_id, environment_id, tenant_id, event_name, timestamp, event_id, user_id,
                    string_props, numeric_props, is_sample)
SELECT {org:String}, {env:String},
       concat('tenant-', toString(number % 20)),
       if(number % 5 = 0, 'page.view', 'api.call'),
       now64(3) - toIntervalMillisecond(cityHash64(number) % (30 * 86400000)),
       concat({prefix:String}, toString(number)),
       concat('user-', toString(cityHash64(number, 1) % 50000)),
       map('model', ['gpt-4o', 'claude-sonnet', 'llama-3'][number % 3 + 1],
           'status', if(number % 33 = 0, 'error', 'success'),
           'endpoint', ['/chat', '/embeddings'][number % 2 + 1],
           'plan', 'pro', 'source', 'api',
           'region', ['us-east', 'eu-west', 'ap-south'][cityHash64(number, 3) % 3 + 1]),
       map('tokens', toFloat64(number % 997),
           'latency_ms', toFloat64(cityHash64(number, 2) % 2000)),
       0
FROM numbers({n:UInt64})
"""


async def register(port: int) -> tuple[str, str, str]:
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
        async with session.post(
            "/v1/auth/register",
            json={
                "email": "bench@emban.test",
                "password": "bench-password",
                "name": "Bench",
                "org_name": "Bench",
            },
        ) as resp:
            body = await resp.json()
        key = body["api_key"]["key"]
        return key, body["org"]["id"], body["environments"][0]["id"]


async def load(data_dir: Path, org: str, env: str, events: int) -> float:
    """Load the synthetic events straight into chDB (the server is stopped); seconds taken."""
    from emban.analytics.chdb_store import ChdbStore

    store = ChdbStore(data_dir / "clickhouse")
    started = time.perf_counter()
    chunk = 1_000_000
    for offset in range(0, events, chunk):
        n = min(chunk, events - offset)
        await store.execute(LOAD_SQL, {"org": org, "env": env, "n": n, "prefix": f"{offset}-"})
    load_s = time.perf_counter() - started
    await store.close()
    return load_s


async def time_engine(
    data_dir: Path, org: str, env: str, runs: int
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Seconds per run of each spec's planned SQL on chDB directly, specs taken in turn."""
    from emban.analytics.chdb_store import ChdbStore
    from emban.analytics.planner import plan_query
    from emban.analytics.query_spec import Scope
    from emban.rest_compat.query_params import spec_from_params

    store = ChdbStore(data_dir / "clickhouse")
    plans = {
        name: plan_query(spec_from_params(params), Scope(org, env), datetime.now(UTC))
        for name, params in SPECS.items()
    }
    samples: dict[str, list[float]] = {name: [] for name in SPECS}
    for run in range(3 + runs):
        for name, plan in plans.items():
            t = time.perf_counter()
            await store.query(plan.sql, plan.params)
            if run >= 3:  # warm-up
                samples[name].append(time.perf_counter() - t)
    await store.close()
    return samples, {name: plan.planned_by for name, plan in plans.items()}


GRAPHQL_QUERY = """
query Bench($q: AnalyticsQueryInput!) {
  analytics(query: $q) {
    data { bucket value group }
    meta { period granularity groupBy sourceTable plannedBy queryTimeMs }
  }
}
"""


def graphql_input(params: dict[str, str]) -> dict[str, object]:
    """The GraphQL input of a /v1/query parameter set (``f_<dim>`` become filters)."""
    names = {"event_name": "eventName", "tenant_id": "tenantId", "group_by": "groupBy"}
    names["numeric_prop"] = "numericProp"
    out: dict[str, object] = {}
    filters = []
    for name, value in params.items():
        if name.startswith("f_"):
            filters.append({"dimension": name[2:], "value": value})
        else:
            out[names.get(name, name)] = value
    if filters:
        out["filters"] = filters
    return out


async def time_api(port: int, key: str, runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median ms per spec over /v1/query and over /graphql, interleaved run by run."""
    rest: dict[str, float] = {}
    graphql: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:

        async def over_rest(params: dict[str, str]) -> float:
            t = time.perf_counter()
            async with session.get("/v1/query", params=params, headers=headers) as resp:
                body = await resp.read()
            elapsed = time.perf_counter() - t
            assert resp.status == 200, body
            return elapsed

        async def over_graphql(params: dict[str, str]) -> float:
            payload = {"query": GRAPHQL_QUERY, "variables": {"q": graphql_input(params)}}
            t = time.perf_counter()
            async with session.post("/graphql", json=payload, headers=headers) as resp:
                body = await resp.read()
            elapsed = time.perf_counter() - t
            assert resp.status == 200 and b'"errors"' not in body, body
            return elapsed

        rest_samples: dict[str, list[float]] = {name: [] for name in SPECS}
        graphql_samples: dict[str, list[float]] = {name: [] for name in SPECS}
        for run in range(3 + runs):
            for name, params in SPECS.items():
                rest_seconds = await over_rest(params)
                graphql_seconds = await over_graphql(params)
                if run >= 3:  # warm-up
                    rest_samples[name].append(rest_seconds)
                    graphql_samples[name].append(graphql_seconds)
        for name in SPECS:
            rest[name] = statistics.median(rest_samples[name]) * 1000
            graphql[name] = statistics.median(graphql_samples[name]) * 1000
    return rest, graphql


def loop_cpu_seconds(pid: int) -> float:
    """CPU time of the server's main thread (the event loop; chDB queries run in other threads)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def loop_cpu_per_request(port: int, key: str, pid: int, requests: int) -> dict[str, float]:
    """Event-loop CPU ms per request of the first spec over each edge: what the server's Python
    costs, which a busy machine disturbs far less than wall time."""
    params = next(iter(SPECS.values()))
    headers = {"Authorization": f"Bearer {key}"}
    payload = {"query": GRAPHQL_QUERY, "variables": {"q": graphql_input(params)}}
    out: dict[str, float] = {}
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
        for edge in ("REST", "GraphQL"):
            started = loop_cpu_seconds(pid)
            for _ in range(requests):
                if edge == "REST":
                    async with session.get("/v1/query", params=params, headers=headers) as r:
                        await r.read()
                else:
                    async with session.post("/graphql", json=payload, headers=headers) as r:
                        await r.read()
            out[edge] = (loop_cpu_seconds(pid) - started) * 1000 / requests
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--cpu-requests", type=int, default=500)
    args = parser.parse_args()
    for events in args.events:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            port = free_port()
            with serve(data_dir, port):
                key, org, env = asyncio.run(register(port))
            load_s = asyncio.run(load(data_dir, org, env, events))
            # The engine is timed before and after the API (the server owns the data directory
            # meanwhile), so a slow spell of the machine weighs on both sides alike.
            before, plans = asyncio.run(time_engine(data_dir, org, env, args.runs // 2))
            with serve(data_dir, port) as proc:
                api, gql = asyncio.run(time_api(port, key, args.runs))
                cpu = asyncio.run(loop_cpu_per_request(port, key, proc.pid, args.cpu_requests))
                rss = peak_rss_mb(proc.pid)
            after, _ = asyncio.run(time_engine(data_dir, org, env, args.runs - args.runs // 2))
        engine = {name: statistics.median(before[name] + after[name]) * 1000 for name in SPECS}
        print(
            f"\n{events:,} events over 30 days (loaded in {load_s:.1f} s); "
            f"server peak RSS {rss:,.0f} MiB; medians of {args.runs} runs"
        )
        print(
            f"{'spec':42} {'plan':14} {'engine ms':>10} {'REST ms':>8} {'GraphQL ms':>10} "
            f"{'REST/engine':>11} {'GraphQL/REST':>12}"
        )
        for name in SPECS:
            ratio = api[name] / engine[name] if engine[name] else float("nan")
            print(
                f"{name:42} {plans[name]:14} {engine[name]:>10.2f} {api[name]:>8.2f} "
                f"{gql[name]:>10.2f} {ratio:>11.2f} {gql[name] / api[name]:>12.2f}"
            )
        first = next(iter(SPECS))
        print(
            f"server event-loop CPU per request ({first}, {args.cpu_requests} requests each): "
            f"REST {cpu['REST']:.2f} ms, GraphQL {cpu['GraphQL']:.2f} ms"
        )


if __name__ == "__main__":
    main()
