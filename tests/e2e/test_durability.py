"""No acknowledged event is lost (issue 12, deliverable 2): `emban serve` is killed with SIGKILL
while several clients ingest, restarted on the same data directory, and every batch answered
2xx is stored exactly once; no batch is half-stored. Embedded defaults and PostgreSQL metadata."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import EMBAN, free_port
from tests.e2e.served import register_org

BATCH = 100


def tagged_batch(batch: str, tenant: str, size: int) -> list[dict[str, object]]:
    """``size`` events of one batch: ids ``<batch>-<i>`` and the batch name as a property, so a
    count per batch shows whether a batch was stored whole, twice or in part."""
    return [
        {
            "tenant_id": tenant,
            "event_name": "e",
            "event_id": f"{batch}-{i}",
            "string_props": {"batch": batch},
        }
        for i in range(size)
    ]


CLIENTS = 4


async def _start(env: dict[str, str], port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        str(EMBAN),
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return process
            except aiohttp.ClientConnectionError:
                pass
            assert process.returncode is None, "emban serve exited"
            assert time.monotonic() < deadline, "emban serve did not start"
            await asyncio.sleep(0.1)


async def _sender(
    http: aiohttp.ClientSession,
    url: str,
    key: str,
    client: int,
    acked: set[str],
    stop: asyncio.Event,
) -> None:
    n = 0
    while not stop.is_set():
        batch = f"c{client}-b{n}"
        n += 1
        events = tagged_batch(batch, "durable", BATCH)
        try:
            async with http.post(
                f"{url}/v1/events",
                json={"events": events},
                headers={"Authorization": f"Bearer {key}"},
            ) as response:
                if 200 <= response.status < 300:
                    acked.add(batch)
        except (TimeoutError, aiohttp.ClientError):
            return  # the server is gone


@pytest.mark.parametrize("metadata", ["sqlite", "postgres"])
async def test_sigkill_loses_no_acknowledged_event(
    tmp_path: Path, database_url: str, metadata: str
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "EMBAN_DATA_DIR": str(tmp_path / "data"),
        "EMBAN_DEFAULT_PLAN": "enterprise",
    }
    if metadata == "postgres":
        env["EMBAN_DATABASE_URL"] = database_url
        env["EMBAN_SECRET_KEY"] = secrets.token_urlsafe(40)
        migrate = await asyncio.create_subprocess_exec(
            str(EMBAN), "migrate", env=env, stdout=asyncio.subprocess.DEVNULL
        )
        assert await migrate.wait() == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = await _start(env, port)
    acked: set[str] = set()
    try:
        async with aiohttp.ClientSession() as http:
            _, key = await register_org(http, url, "Durable")
            stop = asyncio.Event()
            senders = [
                asyncio.create_task(_sender(http, url, key, c, acked, stop)) for c in range(CLIENTS)
            ]
            await asyncio.sleep(2.0)
            process.send_signal(signal.SIGKILL)
            await process.wait()
            stop.set()
            await asyncio.gather(*senders)
        assert len(acked) >= CLIENTS, "the load did not run"
        process = await _start(env, port)
        async with aiohttp.ClientSession() as http:
            answer = await http.post(
                f"{url}/v1/query/adhoc",
                json={
                    "sql": "SELECT string_props['batch'] AS b, count() AS n, "
                    "uniqExact(event_id) AS u FROM events GROUP BY b ORDER BY b"
                },
                headers={"Authorization": f"Bearer {key}"},
            )
            assert answer.status == 200, await answer.text()
            body = await answer.json()
        columns = [c["name"] for c in body["columns"]] if "columns" in body else None
        rows = body["rows"] if "rows" in body else body["data"]
        stored = {(row[0] if columns is None else row[columns.index("b")]): row for row in rows}
        print(f"{metadata}: {len(acked)} batches acknowledged, {len(stored)} stored")
        for batch in acked:
            assert batch in stored, f"acknowledged batch {batch} was lost"
        for batch, row in stored.items():
            n, u = (
                (row[1], row[2])
                if columns is None
                else (row[columns.index("n")], row[columns.index("u")])
            )
            # A batch is all or nothing, and stored once even when its client retried.
            assert (int(n), int(u)) == (BATCH, BATCH), (batch, n, u)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), timeout=20)
