"""``Subscription.embedLive`` end to end over graphql-transport-ws: REST-minted tokens, ingest
→ push for the embed's tenant only, publish → new config, unpublish → not published."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import ClientFactory, bearer, register
from tests.live_client import WIDGETS, close, initial, open_live, setup


async def send(owner: aiohttp.ClientSession, key: str, tenant: str, event: str, n: int) -> None:
    response = await owner.post(
        "/v1/events",
        json={"events": [{"tenant_id": tenant, "event_name": event} for _ in range(n)]},
        headers=bearer(key),
    )
    assert response.status == 200


async def test_ingest_for_the_tenant_is_pushed_and_others_are_not(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    owner, ingest, dashboard_id, token = await setup(make_client)
    await send(owner, ingest, "acme", "api.call", 2)
    live = await open_live(app_server, token)
    try:
        state = await initial(live)
        assert state["config"]["dashboard"]["id"] == dashboard_id
        assert [p["value"] for p in state["data"]["calls"]] == [2, 0]  # current, previous
        loop = asyncio.get_running_loop()
        started = loop.time()
        await send(owner, ingest, "acme", "api.call", 3)
        pushed = await live.next(within=2.0)
        assert loop.time() - started < 2.0
        assert pushed["type"] == "data"
        assert pushed["widgetId"] == "calls"
        assert [(p["group"], p["value"]) for p in pushed["data"]["data"]] == [
            ("current", 5),
            ("previous", 0),
        ]
        await send(owner, ingest, "globex", "api.call", 7)  # another tenant
        await send(owner, ingest, "acme", "page.view", 1)  # an event no widget reads
        assert await live.quiet(1.0)
    finally:
        await close(live)


async def test_publish_pushes_the_new_config_and_unpublish_says_so(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    owner, _, dashboard_id, token = await setup(make_client)
    live = await open_live(app_server, token)
    try:
        await initial(live)
        renamed = await owner.patch(
            f"/v1/dashboards/{dashboard_id}", json={"name": "Renamed", "widgets": WIDGETS[:1]}
        )
        assert renamed.status == 200
        assert await live.quiet(0.6)  # a draft change is not live until published
        assert (await owner.post(f"/v1/dashboards/{dashboard_id}/publish")).status == 204
        config = await live.next()
        assert config["type"] == "config"
        assert config["dashboard"]["name"] == "Renamed"
        assert [w["id"] for w in config["dashboard"]["widgets"]] == ["calls"]
        assert (await live.next())["widgetId"] == "calls"
        assert (await owner.post(f"/v1/dashboards/{dashboard_id}/unpublish")).status == 204
        gone = await live.next()
        assert gone["type"] == "not_published"
    finally:
        await close(live)


async def test_hidden_widgets_are_never_sent_live(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    owner, ingest, dashboard_id, _ = await setup(make_client)
    minted = await owner.post(
        "/v1/embed-sessions",
        json={
            "tenant_id": "acme",
            "dashboard_id": dashboard_id,
            "permissions": {"hidden_widgets": ["signups"]},
        },
    )
    live = await open_live(app_server, (await minted.json())["token"])
    try:
        state = await initial(live)
        assert [w["id"] for w in state["config"]["dashboard"]["widgets"]] == ["calls"]
        assert list(state["data"]) == ["calls"]
        await send(owner, ingest, "acme", "user.signup", 1)
        assert await live.quiet(1.0)
    finally:
        await close(live)


@pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c"])
async def test_connection_without_a_valid_embed_token_is_refused(
    app_server: TestServer, token: str
) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            app_server.make_url("/graphql"), protocols=["graphql-transport-ws"]
        )
        await ws.send_json({"type": "connection_init", "payload": {"token": token}})
        message = await ws.receive(timeout=3)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4403


async def test_a_refused_connection_init_names_its_code(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    """The close reason is an error code of the schema's EmbedErrorCode / AuthErrorCode."""
    owner = await make_client()
    body = await register(owner)
    cases = {
        "": "embed_token_required",
        body["api_key"]["key"]: "embed_token_required",
        "a.b.c": "embed_token_invalid",
        "not-a-token": "invalid_api_key",
    }
    for token, reason in cases.items():
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(
                app_server.make_url("/graphql"), protocols=["graphql-transport-ws"]
            )
            await ws.send_json({"type": "connection_init", "payload": {"token": token}})
            message = await ws.receive(timeout=3)
            assert message.type == aiohttp.WSMsgType.CLOSE
            assert (ws.close_code, message.extra) == (4403, reason), token


async def test_an_api_key_cannot_open_a_live_embed(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    owner = await make_client()
    body = await register(owner)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            app_server.make_url("/graphql"), protocols=["graphql-transport-ws"]
        )
        await ws.send_json(
            {"type": "connection_init", "payload": {"token": body["api_key"]["key"]}}
        )
        message = await ws.receive(timeout=3)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4403
