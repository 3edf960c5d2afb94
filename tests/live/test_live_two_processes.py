"""Two `emban serve` processes sharing PostgreSQL and Redis: a publish on one reaches a live
embed open on the other (the Redis live bus). Each process has its own chDB directory — chDB is
single-process — so this proves the bus, not shared event storage."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from tests.conftest import EMBAN, free_port

SUBSCRIPTION = "subscription { embedLive { type dashboard { name } widgetId } }"
WIDGET = {
    "id": "calls",
    "kind": "timeseries",
    "title": "Calls",
    "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
    "viz": {"type": "line"},
    "layout": {"x": 0, "y": 0, "w": 12, "h": 3},
}


async def _run(*args: str, env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        str(EMBAN), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()


REDIS_DB = "redis://127.0.0.1:6379/14"


@pytest.fixture
async def two_servers(
    app_server: TestServer, database_url: str, tmp_path: Path
) -> AsyncIterator[list[str]]:
    secret = secrets.token_urlsafe(40)
    # The servers share Redis database 14, which only these tests use: start it empty, so sign-up
    # counters (10 per address per hour), socket leases and revocations of an earlier run on
    # this machine do not carry over.
    redis = Redis.from_url(REDIS_DB)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
    processes: list[asyncio.subprocess.Process] = []
    urls: list[str] = []
    for name in ("a", "b"):
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # the code under test, when it is not the installed package (a worktree)
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "EMBAN_DATA_DIR": str(tmp_path / name),
            "EMBAN_DATABASE_URL": database_url,
            "EMBAN_SECRET_KEY": secret,
            "EMBAN_REDIS_URL": REDIS_DB,
            "EMBAN_DEFAULT_PLAN": "pro",
        }
        await _run("migrate", env=env)  # this process's own chDB tables
        processes.append(
            await asyncio.create_subprocess_exec(
                str(EMBAN),
                "serve",
                "--port",
                str(port),
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    async with aiohttp.ClientSession() as http:
        for url in urls:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with http.get(f"{url}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, "emban serve did not start"
                await asyncio.sleep(0.1)
    try:
        yield urls
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            await asyncio.wait_for(process.communicate(), timeout=15)


async def _next(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    body = json.loads((await ws.receive(timeout=5)).data)
    assert body["type"] == "next", body
    event: dict[str, Any] = body["payload"]["data"]["embedLive"]
    return event


async def _published_session(
    http: aiohttp.ClientSession, url: str
) -> tuple[dict[str, str], str, str]:
    """A new org on ``url`` with a published one-widget dashboard: its admin headers, the
    dashboard id and an embed token for tenant ``acme``."""
    registered = await http.post(
        f"{url}/v1/auth/register",
        json={
            "email": f"two-{secrets.token_hex(3)}@acme.test",
            "password": "correct-horse-1",
            "name": "Two",
            "org_name": "Two",
        },
    )
    key = (await registered.json())["api_key"]["key"]
    headers = {"Authorization": f"Bearer {key}"}
    created = await http.post(
        f"{url}/v1/dashboards", json={"name": "First", "widgets": [WIDGET]}, headers=headers
    )
    dashboard_id = (await created.json())["id"]
    await http.post(f"{url}/v1/dashboards/{dashboard_id}/publish", headers=headers)
    minted = await http.post(
        f"{url}/v1/embed-sessions",
        json={"tenant_id": "acme", "dashboard_id": dashboard_id},
        headers=headers,
    )
    return headers, dashboard_id, (await minted.json())["token"]


async def test_a_publish_on_one_process_reaches_a_viewer_on_the_other(
    two_servers: list[str],
) -> None:
    a, b = two_servers
    async with aiohttp.ClientSession() as http:
        headers, dashboard_id, token = await _published_session(http, a)
        async with http.ws_connect(f"{b}/graphql", protocols=["graphql-transport-ws"]) as ws:
            await ws.send_json({"type": "connection_init", "payload": {"token": token}})
            assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
            assert (await _next(ws))["dashboard"] == {"name": "First"}
            assert (await _next(ws))["widgetId"] == "calls"
            # renamed and published on process A; the viewer is on process B
            await http.patch(
                f"{a}/v1/dashboards/{dashboard_id}", json={"name": "Second"}, headers=headers
            )
            published = await http.post(
                f"{a}/v1/dashboards/{dashboard_id}/publish", headers=headers
            )
            assert published.status == 204
            pushed = await _next(ws)
            assert pushed == {"type": "config", "dashboard": {"name": "Second"}, "widgetId": None}
            await http.post(f"{a}/v1/dashboards/{dashboard_id}/unpublish", headers=headers)
            events = [await _next(ws)]
            while events[-1]["type"] != "not_published":
                events.append(await _next(ws))
            # the new config's data first, then the unpublish
            assert [e["type"] for e in events] == ["data", "not_published"]


async def test_revocation_on_one_process_closes_sockets_and_refuses_the_token_on_the_other(
    two_servers: list[str],
) -> None:
    a, b = two_servers
    async with aiohttp.ClientSession() as http:
        headers, _, token = await _published_session(http, a)
        session_id = jwt.decode(token, options={"verify_signature": False})["jti"]
        sockets = []
        # five sockets (the default cap) spread over both processes; a sixth is refused
        for url in (a, b, a, b, b):
            ws = await http.ws_connect(f"{url}/graphql", protocols=["graphql-transport-ws"])
            await ws.send_json({"type": "connection_init", "payload": {"token": token}})
            assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
            sockets.append(ws)
        extra = await http.ws_connect(f"{a}/graphql", protocols=["graphql-transport-ws"])
        await extra.send_json({"type": "connection_init", "payload": {"token": token}})
        message = await extra.receive(timeout=5)
        assert (message.type, extra.close_code, message.extra) == (
            aiohttp.WSMsgType.CLOSE,
            4429,
            "too_many_sockets",
        )
        viewer = sockets[1]  # on process B
        await viewer.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
        assert (await _next(viewer))["type"] == "config"
        revoked = await http.delete(f"{a}/v1/embed-sessions/{session_id}", headers=headers)
        assert (revoked.status, await revoked.json()) == (
            200,
            {"revoked": True, "id": session_id},
        )
        for ws in sockets:  # on both processes
            while True:
                message = await ws.receive(timeout=5)
                if message.type == aiohttp.WSMsgType.CLOSE:
                    break
            # the CLOSE frame's own code (ws.close_code may read 1006 if the server's TCP close
            # wins the race with the client's close reply under load)
            assert (message.data, message.extra) == (4403, "embed_token_revoked")
        query = await http.post(
            f"{b}/graphql",
            json={"query": "query { embed { dashboard { id } } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = await query.json()
        assert body["errors"][0]["extensions"]["reason"] == "embed_token_revoked"
