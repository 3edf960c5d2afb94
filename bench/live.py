"""Live embeds: N `embedLive` viewers of one dashboard over 10 tenants, from separate processes.

    .venv/bin/python -m bench.live [--viewers 1 1000 10000] [--rounds 20] [--clients 4]

For each N: a fresh `emban serve` (embedded defaults, temp data dir, its own process), a
published 3-widget dashboard, and N websockets speaking graphql-transport-ws from ``--clients``
client processes (plain aiohttp websockets, no GraphQL client library; viewer i watches tenant
i % 10). A live socket per embed token is capped (``EMBAN_LIVE_MAX_SOCKETS_PER_TOKEN``, 5 by
default): the bench mints one embed session per 5 viewers of a tenant rather than raising the cap,
so N = 10,000 holds 2,000 sessions (and 10 cohorts, one per tenant: sessions with the same
permissions and filters share one).

Each round arms the viewers of one tenant, sends one event for that tenant through
``POST /v1/events`` and waits until every one of them has received the pushes of all 3 widgets.
Rounds go round the tenants that have viewers, and two rounds of one tenant are at least 1.5 s
apart (a cohort refreshes at most once per ``EMBAN_LIVE_MIN_REFRESH_INTERVAL_MS``, 1 s).
Latency is per viewer: the round's send time to its last push received (the client processes
read ``time.monotonic()``, the same clock as the parent's on one machine). Reported:

- connect time (all N sockets acknowledged, subscribed and their snapshot read);
- ingest-to-push p50 / p95 over every viewer of every round;
- server CPU per refresh: utime+stime of the server (``/proc/<pid>/stat``) over the rounds,
  divided by the rounds (each round = one ingest + one cohort refreshed and pushed);
- the engine time of the cohort's 3 queries (``meta.queryTimeMs`` of one viewer's pushes), for
  comparison with the CPU per refresh;
- ``/healthz`` latency p95 / max while the rounds run, polled every 50 ms from the parent (what an
  event-loop stall costs any other request of the process);
- the server's peak RSS (``VmHWM``) over the whole run, and its RSS with every socket open.

The file-descriptor limit is raised to its hard limit here, and the server inherits it. There is
no per-process cap on live sockets besides that limit (the caps are per token, per socket and
per dashboard and tenant).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import free_port, peak_rss_mb, serve

TENANTS = [f"tenant-{i}" for i in range(10)]
SOCKETS_PER_TOKEN = 5  # EMBAN_LIVE_MAX_SOCKETS_PER_TOKEN's default
MIN_ROUND_GAP_S = 1.5  # between two rounds of one tenant (the refresh interval is 1 s)
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
SUBSCRIPTION = (
    "subscription { embedLive { type widgetId "
    "data { data { value group } meta { queryTimeMs } } } }"
)


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the server's side: an org, a dashboard, embed sessions ------------------------------------


async def _post(http: aiohttp.ClientSession, path: str, body: Any, headers: Any) -> Any:
    """POST, waiting out 429s (the admin key's request budget) instead of failing."""
    while True:
        async with http.post(path, json=body, headers=headers) as resp:
            if resp.status == 429:
                await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                continue
            assert resp.status < 300, (path, resp.status, await resp.text())
            return await resp.json() if resp.status != 204 else None


async def prepare(base: str, viewers: int) -> tuple[str, dict[str, list[str]]]:
    """The ingest key and, per tenant, enough embed tokens for its viewers (5 sockets each)."""
    async with aiohttp.ClientSession(base) as http:
        registered = await _post(
            http,
            "/v1/auth/register",
            {
                "email": "live@emban.test",
                "password": "bench-password",
                "name": "Bench",
                "org_name": "Bench",
            },
            None,
        )
        headers = {"Authorization": f"Bearer {registered['api_key']['key']}"}
        ingest = (await _post(http, "/v1/api-keys", {"label": "i", "scope": "ingest"}, headers))[
            "key"
        ]
        dashboard = (
            await _post(http, "/v1/dashboards", {"name": "Live", "widgets": WIDGETS}, headers)
        )["id"]
        await _post(http, f"/v1/dashboards/{dashboard}/publish", None, headers)
        tokens: dict[str, list[str]] = {}
        gate = asyncio.Semaphore(8)

        async def mint(tenant: str) -> str:
            async with gate:
                body = {"tenant_id": tenant, "dashboard_id": dashboard, "expires_in": 3600}
                return str((await _post(http, "/v1/embed-sessions", body, headers))["token"])

        for n, tenant in enumerate(TENANTS):
            watching = len(range(n, viewers, len(TENANTS)))
            needed = math.ceil(watching / SOCKETS_PER_TOKEN)
            tokens[tenant] = list(await asyncio.gather(*(mint(tenant) for _ in range(needed))))
    return ingest, tokens


# --- a client process: a share of the viewers --------------------------------------------------


class Viewer:
    __slots__ = ("count", "done", "query_ms", "sample", "tenant", "token")

    def __init__(self, tenant: str, token: str, sample: bool) -> None:
        self.tenant = tenant
        self.token = token
        self.sample = sample  # parse its pushes for meta.queryTimeMs
        self.count = -1  # pushes this round (-1: not armed)
        self.done: float | None = None
        self.query_ms: list[float] = []


async def _viewer(
    session: aiohttp.ClientSession,
    url: str,
    viewer: Viewer,
    gate: asyncio.Semaphore,
    ready: list[int],
    all_ready: asyncio.Event,
    total: int,
    changed: asyncio.Event,
) -> None:
    init = json.dumps({"type": "connection_init", "payload": {"token": viewer.token}})
    subscribe = json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
    async with gate:
        for attempt in range(20):
            try:
                ws = await session.ws_connect(
                    url, protocols=["graphql-transport-ws"], max_msg_size=0, compress=0
                )
                break
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.2 * (attempt + 1))
        else:
            raise RuntimeError("could not connect")
        await ws.send_str(init)
        ack = await ws.receive(timeout=60)
        assert ack.type == aiohttp.WSMsgType.TEXT and "connection_ack" in ack.data, ack
        await ws.send_str(subscribe)
        for _ in range(1 + len(WIDGETS)):
            message = await ws.receive(timeout=60)
            assert message.type == aiohttp.WSMsgType.TEXT and '"next"' in message.data, message
    ready[0] += 1
    if ready[0] == total:
        all_ready.set()
    async for message in ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            break
        if viewer.count < 0:
            continue
        viewer.count += 1
        if viewer.sample:
            data = json.loads(message.data)["payload"]["data"]["embedLive"]["data"]
            if data is not None:
                viewer.query_ms.append(float(data["meta"]["queryTimeMs"]))
        if viewer.count == len(WIDGETS):
            viewer.done = time.monotonic()
            changed.set()


async def _client(conn: Connection, url: str, assigned: list[tuple[str, str, bool]]) -> None:
    loop = asyncio.get_running_loop()
    viewers = [Viewer(tenant, token, sample) for tenant, token, sample in assigned]
    ready = [0]
    all_ready = asyncio.Event()
    changed = asyncio.Event()
    gate = asyncio.Semaphore(32)  # connecting at once (the server's accept backlog)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [
            asyncio.create_task(
                _viewer(session, url, v, gate, ready, all_ready, len(viewers), changed)
            )
            for v in viewers
        ]
        waiting = asyncio.create_task(all_ready.wait())
        await asyncio.wait([waiting, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            conn.send(("error", repr(failed[0].exception())))
            return
        await waiting
        conn.send(("ready", time.monotonic()))
        while True:
            command, arg = await loop.run_in_executor(None, conn.recv)
            if command == "arm":
                for v in viewers:
                    if v.tenant == arg:
                        v.count, v.done, v.query_ms = 0, None, []
                conn.send(("armed", None))
            elif command == "collect":
                tenant, deadline = arg
                mine = [v for v in viewers if v.tenant == tenant]
                while any(v.done is None for v in mine) and time.monotonic() < deadline:
                    changed.clear()
                    with contextlib.suppress(TimeoutError):
                        left = max(0.0, deadline - time.monotonic())
                        await asyncio.wait_for(changed.wait(), left)
                query_ms = next((v.query_ms for v in mine if v.sample), [])
                conn.send(("collected", ([v.done for v in mine], query_ms)))
                for v in mine:
                    v.count = -1
            elif command == "stop":
                break
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def client_process(conn: Connection, url: str, assigned: list[tuple[str, str, bool]]) -> None:
    raise_nofile()
    asyncio.run(_client(conn, url, assigned))


# --- the run -----------------------------------------------------------------------------------


async def _recv(conn: Connection) -> tuple[str, Any]:
    message: tuple[str, Any] = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    if message[0] == "error":
        raise RuntimeError(f"client process failed: {message[1]}")
    return message


async def _health_probe(base: str, samples: list[float], stop: asyncio.Event) -> None:
    async with aiohttp.ClientSession(base) as http:
        while not stop.is_set():
            started = time.monotonic()
            async with http.get("/healthz") as resp:
                await resp.read()
            samples.append(time.monotonic() - started)
            await asyncio.sleep(0.05)


def _p(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def run(port: int, pid: int, viewers: int, rounds: int, clients: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    ingest, tokens = await prepare(base, viewers)
    # viewer i watches tenant i % 10, with token (i // 10) // 5 of that tenant
    assignment = [
        (TENANTS[i % 10], tokens[TENANTS[i % 10]][(i // 10) // SOCKETS_PER_TOKEN], False)
        for i in range(viewers)
    ]
    processes = min(clients, viewers)
    shares: list[list[tuple[str, str, bool]]] = [[] for _ in range(processes)]
    for i, viewer in enumerate(assignment):
        shares[i % processes].append(viewer)
    sampled: set[str] = set()
    for share in shares[:1]:  # one sampled viewer per tenant, in the first process
        for n, (tenant, token, _) in enumerate(share):
            if tenant not in sampled:
                sampled.add(tenant)
                share[n] = (tenant, token, True)
    spawn = multiprocessing.get_context("spawn")
    pipes = []
    procs = []
    started = time.monotonic()
    for share in shares:
        parent, child = spawn.Pipe()
        proc = spawn.Process(target=client_process, args=(child, f"{base}/graphql", share))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    try:
        ready_at = [(await _recv(p))[1] for p in pipes]
        connect_s = max(ready_at) - started
        rss_open = rss_mb(pid)
        latencies: list[float] = []
        query_ms: list[float] = []
        missing = 0
        health: list[float] = []
        stop = asyncio.Event()
        probe = asyncio.create_task(_health_probe(base, health, stop))
        cpu_before = cpu_seconds(pid)
        async with aiohttp.ClientSession(base) as http:
            watched = TENANTS[: min(len(TENANTS), viewers)]
            last_sent: dict[str, float] = {}
            for index in range(rounds):
                tenant = watched[index % len(watched)]
                # A cohort refreshes at most once per EMBAN_LIVE_MIN_REFRESH_INTERVAL_MS (1 s):
                # with fewer than 10 tenants watched, space a tenant's rounds by more than that,
                # or the latency measured is the interval's coalescing, not the push.
                since = time.monotonic() - last_sent.get(tenant, float("-inf"))
                if since < MIN_ROUND_GAP_S:
                    await asyncio.sleep(MIN_ROUND_GAP_S - since)
                for p in pipes:
                    p.send(("arm", tenant))
                for p in pipes:
                    await _recv(p)
                sent = last_sent[tenant] = time.monotonic()
                event = {
                    "tenant_id": tenant,
                    "event_name": "api.call",
                    "string_props": {"model": "m"},
                }
                await _post(
                    http, "/v1/events", {"events": [event]}, {"Authorization": f"Bearer {ingest}"}
                )
                for p in pipes:
                    p.send(("collect", (tenant, sent + 30.0)))
                for p in pipes:
                    done, sample = (await _recv(p))[1]
                    for at in done:
                        if at is None:
                            missing += 1
                        else:
                            latencies.append(at - sent)
                    if sample:
                        query_ms.append(sum(sample))
                await asyncio.sleep(0.3)
        cpu = cpu_seconds(pid) - cpu_before
        stop.set()
        await probe
        for p in pipes:
            p.send(("stop", None))
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    ordered = sorted(latencies)
    health.sort()
    return {
        "viewers": viewers,
        "clients": processes,
        "sessions": sum(len(t) for t in tokens.values()),
        "connect_s": connect_s,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else float("nan"),
        "p95_ms": _p(ordered, 0.95) * 1000 if ordered else float("nan"),
        "missing": missing,
        "cpu_ms_per_refresh": cpu / rounds * 1000,
        "engine_ms_per_refresh": statistics.median(query_ms) if query_ms else float("nan"),
        "healthz_p95_ms": _p(health, 0.95) * 1000 if health else float("nan"),
        "healthz_max_ms": health[-1] * 1000 if health else float("nan"),
        "rss_open_mb": rss_open,
        "rss_peak_mb": peak_rss_mb(pid),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 1000, 10000])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    args = parser.parse_args()
    nofile = raise_nofile()  # the server inherits it
    rows = []
    for viewers in args.viewers:
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            with serve(Path(tmp), port) as proc:
                rows.append(asyncio.run(run(port, proc.pid, viewers, args.rounds, args.clients)))
        print(rows[-1], flush=True)
    print(f"open files limit: {nofile}")
    print(
        f"{'viewers':>8} {'procs':>5} {'sessions':>8} {'connect s':>9} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'missed':>6} {'CPU ms/refresh':>14} {'engine ms':>9} "
        f"{'healthz p95/max ms':>18} {'RSS open':>8} {'RSS peak':>8}"
    )
    for r in rows:
        print(
            f"{r['viewers']:>8} {r['clients']:>5} {r['sessions']:>8} {r['connect_s']:>9.1f} "
            f"{r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f} {r['missing']:>6} "
            f"{r['cpu_ms_per_refresh']:>14.1f} {r['engine_ms_per_refresh']:>9.1f} "
            f"{r['healthz_p95_ms']:>8.0f}/{r['healthz_max_ms']:<9.0f} "
            f"{r['rss_open_mb']:>8.0f} {r['rss_peak_mb']:>8.0f}"
        )
    print(
        "latency: event sent → all 3 widget pushes received by a viewer of that tenant; "
        "engine ms: the 3 widget queries' meta.queryTimeMs, summed"
    )


if __name__ == "__main__":
    main()
