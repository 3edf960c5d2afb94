"""Ingest throughput: POST /v1/events (batches of 1,000, acked once durable) vs direct chDB.

    .venv/bin/python -m bench.ingest [--events 300000] [--concurrency 8]

The server runs as its own process (embedded defaults in a temp dir); the load comes from this
process. "acked" is the rate of acknowledgements (each after the WAL fsync that holds the batch);
"stored" runs until the last acknowledged event is in ClickHouse (the WAL directory holds no
segment), i.e. the drain's rate over the same run. The direct figures insert the same rows
(JSONCompactEachRow, as the drain writes them) into a fresh chDB directory with the same schema
(materialized views included): one INSERT per 1,000-event batch, one per 100,000 (the drain's
chunk) and one INSERT for all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

import aiohttp
import msgspec

from bench.common import free_port, peak_rss_mb, serve


def make_batches(total: int, size: int) -> list[list[dict[str, object]]]:
    models = ("gpt-4o", "claude-sonnet", "llama-3-70b")
    batches = []
    for start in range(0, total, size):
        batches.append(
            [
                {
                    "tenant_id": f"tenant-{i % 50}",
                    "event_name": "api.call" if i % 5 else "page.view",
                    "event_id": f"evt-{i}",
                    "user_id": f"user-{i % 5000}",
                    "string_props": {
                        "model": models[i % 3],
                        "status": "success",
                        "endpoint": "/chat",
                        "plan": "pro",
                        "source": "api",
                    },
                    "numeric_props": {"tokens": float(i % 997), "latency_ms": float(i % 1500)},
                }
                for i in range(start, min(total, start + size))
            ]
        )
    return batches


async def post_all(port: int, key: str, bodies: list[bytes], concurrency: int) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                async with session.post("/v1/events", data=body, headers=headers) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"ingest failed: {resp.status} {await resp.text()}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def setup_key(port: int) -> str:
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
            key = (await resp.json())["api_key"]["key"]
        async with session.post(
            "/v1/api-keys",
            json={"label": "ingest", "scope": "ingest"},
            headers={"Authorization": f"Bearer {key}"},
        ) as resp:
            return str((await resp.json())["key"])


async def direct(
    data_dir: Path, batches: list[list[dict[str, object]]]
) -> tuple[float, float, float]:
    from emban.analytics.chdb_store import ChdbStore
    from emban.analytics.ddl import migrate_clickhouse
    from emban.analytics.ingest import COMPACT, EVENT_COLUMNS
    from emban.analytics.tables import EVENTS

    def rows(batch: list[dict[str, object]]) -> bytes:
        fixed = {
            "org_id": "o",
            "environment_id": "e",
            "timestamp": "2026-11-26 10:00:00.000",
            "is_sample": 0,
        }
        return b"\n".join(
            msgspec.json.encode([{**fixed, **e}.get(c) for c in EVENT_COLUMNS]) for e in batch
        )

    payloads = [rows(b) for b in batches]
    store = ChdbStore(data_dir)
    await migrate_clickhouse(store)
    started = time.perf_counter()
    for payload in payloads:
        await store.insert_json(EVENTS, EVENT_COLUMNS, payload, COMPACT)
    per_batch = time.perf_counter() - started
    await store.execute("TRUNCATE TABLE events")
    started = time.perf_counter()
    for at in range(0, len(payloads), 100):
        chunk = b"\n".join(payloads[at : at + 100])
        await store.insert_json(EVENTS, EVENT_COLUMNS, chunk, COMPACT)
    per_chunk = time.perf_counter() - started
    await store.execute("TRUNCATE TABLE events")
    started = time.perf_counter()
    await store.insert_json(EVENTS, EVENT_COLUMNS, b"\n".join(payloads), COMPACT)
    one = time.perf_counter() - started
    await store.close()
    return per_batch, per_chunk, one


def _undrained_segments(wal: Path) -> bool:
    """Any segment holding rows not yet drained. The writer keeps the next segment's file made
    ahead (empty until it is written), so an empty segment is not waited for."""
    for path in wal.glob("**/*.wal"):
        with contextlib.suppress(FileNotFoundError):  # retired while we looked
            if path.stat().st_size > 0:
                return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    batches = make_batches(args.events, args.batch)
    bodies = [msgspec.json.encode({"events": b}) for b in batches]
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        with serve(Path(tmp) / "api", port) as proc:
            key = asyncio.run(setup_key(port))
            asyncio.run(post_all(port, key, bodies[:5], 2))  # warm up (5 batches)
            started = time.perf_counter()
            elapsed = asyncio.run(post_all(port, key, bodies[5:], args.concurrency))
            wal = Path(tmp) / "api" / "wal"
            while _undrained_segments(wal):
                time.sleep(0.01)
            stored = time.perf_counter() - started
            rss = peak_rss_mb(proc.pid)
        sent = sum(len(b) for b in batches[5:])
        per_batch, per_chunk, one = asyncio.run(direct(Path(tmp) / "direct", batches))
    print(f"events: {args.events:,} in batches of {args.batch:,}, {args.concurrency} concurrent")
    print(f"POST /v1/events, acked : {sent / elapsed:>10,.0f} events/s  ({elapsed:.2f} s)")
    print(f"POST /v1/events, stored: {sent / stored:>10,.0f} events/s  ({stored:.2f} s)")
    direct_rate = args.events / per_batch
    print(f"chDB direct, per batch : {direct_rate:>10,.0f} events/s  ({per_batch:.2f} s)")
    print(
        f"chDB direct, per 100k  : {args.events / per_chunk:>10,.0f} events/s  ({per_chunk:.2f} s)"
    )
    print(f"chDB direct, one insert: {args.events / one:>10,.0f} events/s  ({one:.2f} s)")
    print(f"server peak RSS        : {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
