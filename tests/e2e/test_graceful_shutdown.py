"""Graceful shutdown (issue 12 item 4): SIGTERM to `emban serve` while a slow request and a stream
of ingest batches are in flight. The slow request completes with its answer, new connections are
refused at once, the process exits within ``EMBAN_SHUTDOWN_TIMEOUT``, and after a restart on the
same data directory every acknowledged batch is stored (whole). Nothing is logged at ERROR.

(Live sockets closing with 1001 on SIGTERM: tests/e2e/test_shutdown.py.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp

from tests.conftest import EMBAN, free_port
from tests.e2e.served import register_org
from tests.e2e.test_durability import tagged_batch

BATCH = 200
SENDERS = 4
SHUTDOWN_TIMEOUT = 15  # seconds: EMBAN_SHUTDOWN_TIMEOUT for this server (12 s to drain)
# 9 s (ClickHouse sleeps at most 3 s per call): still running after the refusal is seen, even on a
# loaded machine. The calls differ: ClickHouse computes an expression repeated verbatim once, so
# `sleep(3) + sleep(3)` sleeps only 3 s.
SLOW_SQL = "SELECT sleep(3) + sleep(2.99) + sleep(2.98) AS slept"


async def _start(env: dict[str, str], port: int, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            str(EMBAN),
            "serve",
            "--port",
            str(port),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=sink,
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


async def _refuses_connections(url: str) -> bool:
    """True once a new TCP connection to the server is refused (polled for up to 3 s; each try
    gives up after 0.5 s, so a request the closing server accepted and never answers does not
    hold the poll past its deadline)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            async with (
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(force_close=True),
                    timeout=aiohttp.ClientTimeout(total=0.5),
                ) as fresh,
                fresh.get(f"{url}/healthz") as response,
            ):
                await response.read()
        except aiohttp.ClientConnectorError:
            return True
        except (aiohttp.ClientError, TimeoutError):
            pass  # accepted, then dropped or left unanswered: the listener was still up
        await asyncio.sleep(0.02)
    return False


async def _sender(
    url: str,
    key: str,
    sender: int,
    acked: set[str],
    statuses: list[int],
    stop: asyncio.Event,
    running: asyncio.Event,
) -> None:
    async with aiohttp.ClientSession() as http:
        n = 0
        while not stop.is_set():
            batch = f"s{sender}-b{n}"
            n += 1
            events = tagged_batch(batch, "drain", BATCH)
            try:
                async with http.post(
                    f"{url}/v1/events",
                    json={"events": events},
                    headers={"Authorization": f"Bearer {key}"},
                ) as response:
                    statuses.append(response.status)
                    if len(statuses) >= SENDERS:
                        running.set()
                    if 200 <= response.status < 300:
                        acked.add(batch)
            except aiohttp.ClientError:
                return  # the listener is closed: the server is going down


async def test_sigterm_drains_in_flight_requests_and_the_ingest_queue(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "EMBAN_DATA_DIR": str(tmp_path / "data"),
        "EMBAN_DEFAULT_PLAN": "enterprise",
        "EMBAN_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
    }
    log = tmp_path / "serve.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = await _start(env, port, log)
    acked: set[str] = set()
    statuses: list[int] = []
    try:
        async with aiohttp.ClientSession() as http:
            _, key = await register_org(http, url, "Drain")
        auth = {"Authorization": f"Bearer {key}"}

        async def slow_query() -> tuple[int, object]:
            async with (
                aiohttp.ClientSession() as own,
                own.post(f"{url}/v1/query/adhoc", json={"sql": SLOW_SQL}, headers=auth) as response,
            ):
                return response.status, await response.json()

        stop, running = asyncio.Event(), asyncio.Event()
        senders = [
            asyncio.create_task(_sender(url, key, s, acked, statuses, stop, running))
            for s in range(SENDERS)
        ]
        # The senders get going first (on a busy machine that can take seconds, longer than the
        # slow query runs), then the slow query is sent and given time to reach the engine.
        await asyncio.wait_for(running.wait(), timeout=30)
        slow = asyncio.create_task(slow_query())
        await asyncio.sleep(0.5)
        assert not slow.done()
        process.send_signal(signal.SIGTERM)

        # (c) The listener closes at once: a new connection is refused while the slow request
        # is still being answered.
        assert await _refuses_connections(url)
        assert not slow.done()
        # (a) The in-flight request completes with its answer.
        status, answer = await slow
        assert status == 200, answer
        assert isinstance(answer, dict) and answer["rows"] == [[0]], answer
        # (d) The process exits by itself within the setting's time.
        await asyncio.wait_for(process.wait(), timeout=SHUTDOWN_TIMEOUT)
        assert process.returncode == 0
        stop.set()
        await asyncio.gather(*senders)
        assert len(acked) >= SENDERS, "the ingest load did not run"
        assert [s for s in statuses if s >= 300] == []

        # (b) Restarted on the same data directory: every acknowledged batch is stored, whole.
        process = await _start(env, port, log)
        async with aiohttp.ClientSession() as http:
            response = await http.post(
                f"{url}/v1/query/adhoc",
                json={
                    "sql": "SELECT string_props['batch'] AS b, count() AS n FROM events "
                    "WHERE tenant_id = 'drain' GROUP BY b ORDER BY b"
                },
                headers=auth,
            )
            assert response.status == 200, await response.text()
            stored = {row[0]: int(row[1]) for row in (await response.json())["rows"]}
        assert {batch: stored.get(batch) for batch in acked} == dict.fromkeys(acked, BATCH)
        assert set(stored.values()) <= {BATCH}  # nothing half-stored
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), timeout=20)
    errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
    assert errors == []


async def test_a_request_outlasting_the_timeout_does_not_hold_the_exit(tmp_path: Path) -> None:
    """A chDB query cannot be cancelled: the process exits when EMBAN_SHUTDOWN_TIMEOUT runs out
    (status 1, a WARNING saying so) instead of waiting for it; the client sees the connection
    close, never a 5xx."""
    timeout = 2
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "EMBAN_DATA_DIR": str(tmp_path / "data"),
        "EMBAN_SHUTDOWN_TIMEOUT": str(timeout),
    }
    log = tmp_path / "serve.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = await _start(env, port, log)
    try:
        async with aiohttp.ClientSession() as http:
            _, key = await register_org(http, url, "Slow")

            async def slow_query() -> int:
                async with http.post(
                    f"{url}/v1/query/adhoc",
                    json={"sql": SLOW_SQL},
                    headers={"Authorization": f"Bearer {key}"},
                ) as response:
                    return response.status

            slow = asyncio.create_task(slow_query())
            await asyncio.sleep(0.5)
            assert not slow.done()
            process.send_signal(signal.SIGTERM)
            # Within the setting (and a second for the signal and the timer thread), long
            # before the 6 s query would have ended.
            await asyncio.wait_for(process.wait(), timeout=timeout + 1)
            assert process.returncode == 1
            try:
                status: int | str = await slow
            except aiohttp.ServerDisconnectedError:
                status = "disconnected"
            assert status == "disconnected"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = log.read_text().splitlines()
    assert [line for line in lines if " ERROR " in line] == []
    assert [line.split(" WARNING ")[1] for line in lines if " WARNING " in line] == [
        "emban.cli shutdown still running 2.0 s after SIGTERM (EMBAN_SHUTDOWN_TIMEOUT): exiting "
        "now; acknowledged events are already durable"
    ]
