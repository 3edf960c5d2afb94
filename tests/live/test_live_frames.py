"""Shared live frames (``emban.resolvers.live_frames``): what a socket receives for a push is
what Strawberry sends for the same data, the bytes are shared only inside a cohort, and a socket
that stops reading is closed without holding up the others."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import socket
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from emban.runtime import RUNTIME_KEY
from tests.conftest import EMBAN, ClientFactory, bearer, free_port
from tests.embed_scenario import mint
from tests.live_client import SUBSCRIPTION, WIDGETS, Live, close, initial, open_live, setup


async def send(owner: aiohttp.ClientSession, key: str, events: list[dict[str, Any]]) -> None:
    response = await owner.post("/v1/events", json={"events": events}, headers=bearer(key))
    assert response.status == 200, await response.text()


async def raw_next(live: Live, within: float = 3.0) -> str:
    """The next message's text, as it came over the wire."""
    message = await live.ws.receive(timeout=within)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    text: str = message.data
    return text


async def snapshot_frames(live: Live, widgets: int) -> list[dict[str, Any]]:
    """The whole ``next`` messages of a snapshot: config, then one per widget."""
    return [json.loads(await raw_next(live)) for _ in range(1 + widgets)]


async def test_a_pushed_frame_is_what_strawberry_sends_for_the_same_data(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    hub = app_server.app[RUNTIME_KEY].live
    owner, ingest, dashboard_id, token = await setup(make_client)
    await send(owner, ingest, [{"tenant_id": "acme", "event_name": "api.call"}])
    first, second = await open_live(app_server, token), await open_live(app_server, token)
    late: list[Live] = []
    try:
        await initial(first)
        await initial(second)
        written = hub.written_pushes
        await send(owner, ingest, [{"tenant_id": "acme", "event_name": "api.call"}] * 2)
        pushed = await raw_next(first)
        assert await raw_next(second) == pushed  # the same bytes on both sockets
        assert hub.written_pushes == written + 2  # both by the shared-frame writer
        assert await first.quiet(0.5)
        # A viewer joining now gets the same data in its snapshot, through Strawberry.
        late.append(await open_live(app_server, token))
        snapshot = await snapshot_frames(late[0], len(WIDGETS))
        calls = next(f for f in snapshot[1:] if f["payload"]["data"]["embedLive"]["widgetId"])
        frame = json.loads(pushed)
        assert frame == calls
        assert frame["id"] == "1"
        assert frame["type"] == "next"
        assert [(p["group"], p["value"]) for p in frame["payload"]["data"]["embedLive"]["data"]
                ["data"]] == [("current", 3), ("previous", 0)]  # fmt: skip

        # A publish pushes the config (and the data again); a new viewer's snapshot matches.
        assert (await owner.post(f"/v1/dashboards/{dashboard_id}/publish")).status == 204
        config_pushed = [json.loads(await raw_next(first)) for _ in range(1 + len(WIDGETS))]
        assert config_pushed[0]["payload"]["data"]["embedLive"]["type"] == "config"
        assert hub.written_pushes == written + 2 + 3 * (1 + len(WIDGETS))  # 3 viewers now
        late.append(await open_live(app_server, token))
        assert await snapshot_frames(late[1], len(WIDGETS)) == config_pushed

        # Unpublished: the push and a new viewer's snapshot say the same.
        assert (await owner.post(f"/v1/dashboards/{dashboard_id}/unpublish")).status == 204
        gone = json.loads(await raw_next(first))
        assert gone["payload"]["data"]["embedLive"] == {
            "type": "not_published",
            "widgetId": None,
            "message": "This dashboard is not published.",
            "dashboard": None,
            "data": None,
        }
        late.append(await open_live(app_server, token))
        assert json.loads(await raw_next(late[2])) == gone
    finally:
        for live in (first, second, *late):
            await close(live)


async def test_sessions_with_other_permissions_never_get_each_others_frames(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    """Same dashboard, same tenant: a session with a hidden widget and a locked filter, one with
    neither, and the second's token with a filter of its own are three cohorts, three frames."""
    hub = app_server.app[RUNTIME_KEY].live
    owner, ingest, dashboard_id, plain_token = await setup(make_client)
    locked_token = await mint(
        owner,
        dashboard_id,
        permissions={"hidden_widgets": ["signups"], "locked_filters": {"model": "m1"}},
    )
    plain = await open_live(app_server, plain_token)
    locked = await open_live(app_server, locked_token)
    filtered = await open_live(app_server, plain_token, filters={"dimensions": {"model": "m2"}})
    try:
        for live in (plain, locked, filtered):
            await initial(live)
        cohorts = hub.cohort_count
        assert cohorts >= 3
        await send(
            owner,
            ingest,
            [{"tenant_id": "acme", "event_name": "api.call", "string_props": {"model": "m1"}}] * 2
            + [{"tenant_id": "acme", "event_name": "api.call", "string_props": {"model": "m2"}}] * 3
            + [{"tenant_id": "acme", "event_name": "user.signup"}],
        )

        async def pushes(live: Live, count: int) -> dict[str, Any]:
            got = {}
            for _ in range(count):
                event = await live.next()
                got[event["widgetId"]] = [(p["group"], p["value"]) for p in event["data"]["data"]]
            assert await live.quiet(0.8)
            return got

        plain_got = await pushes(plain, 2)
        assert plain_got["calls"] == [("current", 5), ("previous", 0)]
        assert sum(v for _, v in plain_got["signups"]) == 1
        # The hidden widget never reaches the locked session; its calls count m1 only.
        assert await pushes(locked, 1) == {"calls": [("current", 2), ("previous", 0)]}
        # model=m2 counts 3 calls and no signup (unchanged: not pushed).
        assert await pushes(filtered, 1) == {"calls": [("current", 3), ("previous", 0)]}
    finally:
        for live in (plain, locked, filtered):
            await close(live)


# --- a socket that stops reading -------------------------------------------------------------


class RawSocket:
    """A graphql-transport-ws client on a bare TCP socket with a tiny receive buffer, so that
    not reading really leaves the server's pushes unsent (aiohttp's client reads ahead)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> RawSocket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**22)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        writer.write(
            (
                "GET /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        mask = secrets.token_bytes(4)
        size = len(payload)
        header = (
            struct.pack("!BB", 0x81, 0x80 | size)
            if size < 126
            else struct.pack("!BBH", 0x81, 0x80 | 126, size)
        )
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)

    async def frame(self, within: float = 5.0) -> tuple[int, bytes]:
        """The next frame: its opcode and payload."""
        head = await asyncio.wait_for(self.reader.readexactly(2), within)
        opcode, size = head[0] & 0x0F, head[1] & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return opcode, await asyncio.wait_for(self.reader.readexactly(size), within)


MANY_WIDGETS = [
    {
        "id": f"w{n}",
        "kind": "timeseries",
        "title": f"Calls {n}",
        # 720 zero-filled hourly buckets: each push is ~40 KB
        "query": {
            "event_name": "api.call",
            "metric": "count",
            "period": "30d",
            "granularity": "hour",
        },
        "viz": {"type": "line"},
        "layout": {"x": 0, "y": n, "w": 12, "h": 1},
    }
    for n in range(20)
]
TIMESERIES = "subscription { embedLive { type widgetId data { data { bucket value group } } } }"


class Server:
    def __init__(self, url: str) -> None:
        self.url = url
        self.dropped = asyncio.Event()  # the server logged that it closes a slow socket


@pytest.fixture
async def tight_server(tmp_path: Path) -> AsyncIterator[Server]:
    """`emban serve` whose live sockets may leave at most 1 byte unsent, refreshing fast."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "EMBAN_DATA_DIR": str(tmp_path / "data"),
        "EMBAN_SECRET_KEY": secrets.token_urlsafe(40),
        "EMBAN_DEFAULT_PLAN": "enterprise",
        "EMBAN_LIVE_MAX_SOCKET_BUFFER_BYTES": "1",
        "EMBAN_LIVE_MIN_REFRESH_INTERVAL_MS": "1",
    }
    process = await asyncio.create_subprocess_exec(
        str(EMBAN),
        "serve",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    server = Server(url)

    async def read_log() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            if b"closing a live socket that does not read its pushes" in line:
                server.dropped.set()

    reader = asyncio.create_task(read_log())
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 60
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
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), timeout=20)
        await reader


async def test_a_socket_that_stops_reading_is_closed_and_the_others_keep_up(
    tight_server: Server,
) -> None:
    url = tight_server.url
    async with aiohttp.ClientSession(url) as http:
        registered = await http.post(
            "/v1/auth/register",
            json={
                "email": "slow@acme.test",
                "password": "correct-horse-1",
                "name": "Slow",
                "org_name": "Slow",
            },
        )
        admin = bearer((await registered.json())["api_key"]["key"])
        body = {"label": "i", "scope": "ingest"}
        keyed = await http.post("/v1/api-keys", json=body, headers=admin)
        ingest = (await keyed.json())["key"]
        created = await http.post(
            "/v1/dashboards", json={"name": "Wide", "widgets": MANY_WIDGETS}, headers=admin
        )
        dashboard_id = (await created.json())["id"]
        published = await http.post(f"/v1/dashboards/{dashboard_id}/publish", headers=admin)
        assert published.status == 204
        minted = await http.post(
            "/v1/embed-sessions",
            json={"tenant_id": "acme", "dashboard_id": dashboard_id},
            headers=admin,
        )
        token = (await minted.json())["token"]

        slow = await RawSocket.connect(int(url.rsplit(":", 1)[1]))
        slow.send({"type": "connection_init", "payload": {"token": token}})
        assert json.loads((await slow.frame())[1]) == {"type": "connection_ack"}
        slow.send({"id": "1", "type": "subscribe", "payload": {"query": TIMESERIES}})
        for _ in range(1 + len(MANY_WIDGETS)):  # the snapshot is read; then it stops reading
            opcode, _ = await slow.frame()
            assert opcode == 0x1

        good = await http.ws_connect("/graphql", protocols=["graphql-transport-ws"])
        await good.send_json({"type": "connection_init", "payload": {"token": token}})
        assert (await good.receive_json(timeout=5))["type"] == "connection_ack"
        await good.send_json({"id": "1", "type": "subscribe", "payload": {"query": TIMESERIES}})
        for _ in range(1 + len(MANY_WIDGETS)):
            assert (await good.receive_json(timeout=5))["type"] == "next"

        # Each round changes all 20 widgets: 20 pushes of ~40 KB for each socket, until the
        # server gives up on the slow one.
        for total in range(1, 101):
            if tight_server.dropped.is_set():
                break
            response = await http.post(
                "/v1/events",
                json={"events": [{"tenant_id": "acme", "event_name": "api.call"}]},
                headers=bearer(ingest),
            )
            assert response.status == 200
            seen: dict[str, int] = {}
            while len(seen) < len(MANY_WIDGETS):
                event = (await good.receive_json(timeout=5))["payload"]["data"]["embedLive"]
                current = sum(p["value"] for p in event["data"]["data"])
                seen[event["widgetId"]] = current
            assert set(seen.values()) == {total}  # the good reader has every round, in time
        assert tight_server.dropped.is_set()

        # Reading the slow socket now (within the close's grace period) gives the pushes that
        # got out, then the close frame: 1013 viewer_too_slow.
        opcode, payload = await slow.frame()
        while opcode == 0x1:
            opcode, payload = await slow.frame()
        assert opcode == 0x8
        assert struct.unpack("!H", payload[:2])[0] == 1013
        assert payload[2:] == b"viewer_too_slow"
        await good.close()
        slow.writer.close()


async def test_a_completed_subscription_gets_no_frame_even_when_its_id_is_reused(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    """The runtime completes its subscription on a filter change and subscribes again; an id
    reused at once must not receive the old cohort's frames."""
    owner, ingest, _, token = await setup(make_client)
    live = await open_live(app_server, token)
    try:
        await initial(live)
        await live.ws.send_json({"id": "1", "type": "complete"})
        await live.ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {
                    "query": SUBSCRIPTION,
                    "variables": {"filters": {"dimensions": {"model": "m2"}}},
                },
            }
        )
        await initial(live)
        m1 = {"tenant_id": "acme", "event_name": "api.call", "string_props": {"model": "m1"}}
        await send(owner, ingest, [m1])  # changes the unfiltered cohort only
        assert await live.quiet(1.5)
        m2 = {"tenant_id": "acme", "event_name": "api.call", "string_props": {"model": "m2"}}
        await send(owner, ingest, [m2, m2])
        pushed = await live.next()
        assert pushed["widgetId"] == "calls"
        assert [(p["group"], p["value"]) for p in pushed["data"]["data"]] == [
            ("current", 2),
            ("previous", 0),
        ]
        assert await live.quiet(1.0)
    finally:
        await close(live)
