"""A live-embed client over graphql-transport-ws, and a published dashboard to watch."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from tests.conftest import ClientFactory, create_key, register
from tests.embed_scenario import mint

WIDGETS: list[dict[str, Any]] = [
    {
        "id": "calls",
        "kind": "metric",
        "title": "Calls",
        "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
        "viz": {"type": "number"},
        "layout": {"x": 0, "y": 0, "w": 6, "h": 2},
    },
    {
        "id": "signups",
        "kind": "timeseries",
        "title": "Signups",
        "query": {"event_name": "user.signup", "metric": "count", "period": "24h"},
        "viz": {"type": "line"},
        "layout": {"x": 6, "y": 0, "w": 6, "h": 2},
    },
]
SUBSCRIPTION = """
subscription Live($filters: EmbedFiltersInput) {
  embedLive(filters: $filters) {
    type widgetId message
    dashboard { id name widgets { id } }
    data { data { bucket value group } meta { plannedBy } }
  }
}
"""


async def setup(make_client: ClientFactory) -> tuple[aiohttp.ClientSession, str, str, str]:
    """An owner, its ingest key, a published dashboard of WIDGETS and a token for tenant acme."""
    owner = await make_client()
    await register(owner)
    ingest = await create_key(owner, "ingest")
    created = await owner.post("/v1/dashboards", json={"name": "Live", "widgets": WIDGETS})
    dashboard_id = (await created.json())["id"]
    assert (await owner.post(f"/v1/dashboards/{dashboard_id}/publish")).status == 204
    return owner, ingest, dashboard_id, await mint(owner, dashboard_id)


class Live:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def next(self, within: float = 3.0) -> dict[str, Any]:
        message = await self.ws.receive(timeout=within)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        body = json.loads(message.data)
        assert body["type"] == "next", body
        assert body["payload"]["data"] is not None, body
        event: dict[str, Any] = body["payload"]["data"]["embedLive"]
        return event

    async def quiet(self, seconds: float) -> bool:
        try:
            await self.ws.receive(timeout=seconds)
        except TimeoutError:
            return True
        return False


async def connect(server: TestServer, token: str) -> tuple[aiohttp.ClientSession, Any]:
    """A socket after connection_init (not yet answered)."""
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(server.make_url("/graphql"), protocols=["graphql-transport-ws"])
    await ws.send_json({"type": "connection_init", "payload": {"token": token}})
    return session, ws


async def closed_with(ws: Any, within: float = 5.0) -> tuple[int | None, str]:
    """Read until the server closes the socket; its close code and reason."""
    while True:
        message = await ws.receive(timeout=within)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return ws.close_code, message.extra or ""


async def open_live(server: TestServer, token: str, filters: Any = None) -> Live:
    """A socket subscribed to ``embedLive`` with ``token`` (acknowledged)."""
    session, ws = await connect(server, token)
    ws._emban_session = session
    ack = await ws.receive_json(timeout=3)
    assert ack["type"] == "connection_ack"
    await ws.send_json(
        {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": SUBSCRIPTION, "variables": {"filters": filters}},
        }
    )
    return Live(ws)


async def close(live: Live) -> None:
    await live.ws.close()
    await live.ws._emban_session.close()  # type: ignore[attr-defined]


async def initial(live: Live) -> dict[str, Any]:
    """The first messages of a subscription: the config, then one data message per widget."""
    config = await live.next()
    assert config["type"] == "config"
    data = {}
    for _ in range(len(config["dashboard"]["widgets"])):
        event = await live.next()
        assert event["type"] == "data"
        data[event["widgetId"]] = event["data"]["data"]
    return {"config": config, "data": data}
