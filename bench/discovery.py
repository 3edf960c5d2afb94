"""Discovery: GET /v1/discover (the bounded scan) next to the engine's raw scan of the same window.

    .venv/bin/python -m bench.discovery [--events 10000000] [--runs 5] [--days 90]

For each size: register an org through a real `emban serve` (embedded, temp dir), stop it, load
N synthetic events spread over the last --days days (90: two thirds are older than the 30-day
window) straight into chDB with `INSERT … SELECT FROM numbers()` (the views fill the rollups),
then time on chDB directly:

- `bounded`: the discovery statements as the service runs them (30-day window, property
  statistics over about EMBAN_DISCOVERY_SAMPLE_ROWS = 100,000 most recent events);
- `unbounded`: the same statements over all history and every row (what discovery did before);
- `raw window scan`: one statement reading the columns discovery needs for every event of the
  window (`count`, `uniqExact(user_id)`, both Map columns' keys): the floor for an exact scan;

then start the server again on the same data and time `GET /v1/discover`. Medians of --runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from bench.common import free_port, peak_rss_mb, serve
from bench.query import register

LOAD_SQL = """
INSERT INTO events (org_id, environment_id, tenant_id, event_name, timestamp, event_id, user_id,
                    string_props, numeric_props, is_sample)
SELECT {org:String}, {env:String},
       concat('tenant-', toString(number % 20)),
       ['api.call', 'api.call', 'page.view', 'user.signup', 'job.run'][number % 5 + 1],
       now64(3) - toIntervalMillisecond(cityHash64(number) % ({days:UInt32} * 86400000)),
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

RAW_WINDOW_SQL = """
SELECT event_name, count(), uniqExactIf(user_id, user_id != ''),
       sum(length(mapKeys(string_props))), sum(length(mapKeys(numeric_props)))
FROM events
WHERE org_id = {org:String} AND environment_id = {env:String}
  AND timestamp >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
GROUP BY event_name
"""

WINDOW_DAYS = 30
SAMPLE_ROWS = 100_000


async def _median_ms(runs: int, work: Callable[[], Awaitable[object]]) -> float:
    await work()  # warm-up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def load_and_time_engine(
    data_dir: Path, org: str, env: str, events: int, days: int, runs: int
) -> tuple[float, dict[str, float], int]:
    from emban.analytics import discovery
    from emban.analytics.chdb_store import ChdbStore
    from emban.analytics.query_spec import Scope

    store = ChdbStore(data_dir / "clickhouse")
    started = time.perf_counter()
    chunk = 1_000_000
    for offset in range(0, events, chunk):
        n = min(chunk, events - offset)
        await store.execute(
            LOAD_SQL, {"org": org, "env": env, "n": n, "prefix": f"{offset}-", "days": days}
        )
    load_s = time.perf_counter() - started
    scope = Scope(org, env)
    since = datetime.now(UTC) - timedelta(days=WINDOW_DAYS)
    epoch = datetime(1970, 1, 2, tzinfo=UTC)

    async def scan(since: datetime, sample_rows: int) -> None:
        stats = await discovery.event_stats(store, scope, since)
        names = [s.event_name for s in stats]
        start = await discovery.sample_start(store, scope, since, sample_rows)
        await discovery.string_key_stats(store, scope, names, start)
        await discovery.numeric_key_stats(store, scope, names, start)

    async def raw() -> None:
        await store.query(
            RAW_WINDOW_SQL, {"org": org, "env": env, "since": int(since.timestamp() * 1000)}
        )

    in_window = await store.query(
        "SELECT count() FROM events WHERE timestamp >= fromUnixTimestamp64Milli({s:Int64}, 'UTC')",
        {"s": int(since.timestamp() * 1000)},
    )
    timings = {
        "bounded (service statements)": await _median_ms(runs, lambda: scan(since, SAMPLE_ROWS)),
        "unbounded (all history, all rows)": await _median_ms(runs, lambda: scan(epoch, 1 << 62)),
        "raw window scan (engine floor)": await _median_ms(runs, raw),
    }
    await store.close()
    return load_s, timings, int(in_window.rows[0][0])


async def time_api(port: int, key: str, runs: int) -> float:
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:

        async def discover() -> None:
            async with session.get("/v1/discover", headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                await resp.read()

        return await _median_ms(runs, discover)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    for events in args.events:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            port = free_port()
            with serve(data_dir, port):
                key, org, env = asyncio.run(register(port))
            load_s, engine, in_window = asyncio.run(
                load_and_time_engine(data_dir, org, env, events, args.days, args.runs)
            )
            with serve(data_dir, port) as proc:
                api = asyncio.run(time_api(port, key, args.runs))
                rss = peak_rss_mb(proc.pid)
        print(
            f"\n{events:,} events over {args.days} days, {in_window:,} in the {WINDOW_DAYS}-day "
            f"window (loaded in {load_s:.1f} s); server peak RSS {rss:,.0f} MiB; "
            f"medians of {args.runs} runs"
        )
        for name, ms in engine.items():
            print(f"  engine  {name:38} {ms:>9.1f} ms")
        print(f"  API     {'GET /v1/discover (bounded)':38} {api:>9.1f} ms")


if __name__ == "__main__":
    main()
