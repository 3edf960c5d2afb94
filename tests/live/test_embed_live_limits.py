"""A live embed checks its token for as long as the socket is open (expiry at ``exp``, subscribe
after expiry) and its work is bounded: sockets per token, subscriptions per socket, cohorts per
(dashboard, tenant). Every refusal is a close code with a reason or a GraphQL error with a code."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer

from emban.auth.embed_tokens import mint_embed_token
from emban.models import Environment
from emban.resolvers import view
from emban.runtime import Runtime
from emban.services.embeds import EmbedPermissions
from tests.conftest import ClientFactory
from tests.live_client import SUBSCRIPTION, close, closed_with, connect, initial, open_live, setup


def subscribe(id_: str, filters: Any = None) -> dict[str, Any]:
    return {
        "id": id_,
        "type": "subscribe",
        "payload": {"query": SUBSCRIPTION, "variables": {"filters": filters}},
    }


async def short_lived_token(token: str, seconds: int) -> str:
    """A token for the same environment, dashboard and tenant that expires ``seconds`` from now
    (below the API's minimum lifetime, so minted directly with an ``iat`` in the past)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    environment = await Environment.get(id=claims["env"])
    now = int(time.time())
    return mint_embed_token(
        environment,
        tenant_id=claims["tenant"],
        dashboard_id=claims["dashboard"],
        permissions=EmbedPermissions().claims(),
        expires_in=60,
        now=now - 60 + seconds,
    ).token


# --- expiry ------------------------------------------------------------------------------------


async def test_an_open_socket_is_closed_at_the_tokens_expiry(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    _, _, _, token = await setup(make_client)
    expiring = await short_lived_token(token, 2)
    expires_at = jwt.decode(expiring, options={"verify_signature": False})["exp"]
    live = await open_live(app_server, expiring)
    try:
        await initial(live)
        assert await closed_with(live.ws) == (4403, "embed_token_expired")
        assert time.time() >= expires_at  # not before exp
    finally:
        await close(live)


async def test_subscribe_after_expiry_is_refused(
    make_client: ClientFactory, app_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, _, token = await setup(make_client)
    session, ws = await connect(app_server, token)
    try:
        assert (await ws.receive_json(timeout=3))["type"] == "connection_ack"
        # the token (one hour) has now expired as far as the server's clock goes
        monkeypatch.setattr(view, "_now", lambda: time.time() + 7200)
        await ws.send_json(subscribe("1"))
        assert await closed_with(ws) == (4403, "embed_token_expired")
    finally:
        await ws.close()
        await session.close()


async def test_an_expired_token_cannot_open_a_socket(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    _, _, _, token = await setup(make_client)
    expired = await short_lived_token(token, -1)
    session, ws = await connect(app_server, expired)
    try:
        assert await closed_with(ws) == (4403, "embed_token_expired")
    finally:
        await session.close()


# --- caps --------------------------------------------------------------------------------------


async def test_sockets_per_token_are_capped(
    make_client: ClientFactory, app_server: TestServer, runtime: Runtime
) -> None:
    owner, _, dashboard_id, token = await setup(make_client)
    assert runtime.settings.live_max_sockets_per_token == 5
    opened = [await connect(app_server, token) for _ in range(5)]
    try:
        for _, ws in opened:
            assert (await ws.receive_json(timeout=3))["type"] == "connection_ack"
        assert runtime.live.sockets.count == 5
        session, ws = await connect(app_server, token)
        assert await closed_with(ws) == (4429, "too_many_sockets")
        await session.close()
        # another token of the same tenant has its own allowance
        minted = await owner.post(
            "/v1/embed-sessions", json={"tenant_id": "acme", "dashboard_id": dashboard_id}
        )
        session, ws = await connect(app_server, (await minted.json())["token"])
        assert (await ws.receive_json(timeout=3))["type"] == "connection_ack"
        await ws.close()
        await session.close()
        # a closed socket frees its place
        first_session, first = opened.pop(0)
        await first.close()
        await first_session.close()
        session, ws = await connect(app_server, token)
        assert (await ws.receive_json(timeout=3))["type"] == "connection_ack"
        opened.append((session, ws))
    finally:
        for session, ws in opened:
            await ws.close()
            await session.close()


async def next_error_or_data(ws: Any, wanted: str) -> dict[str, Any]:
    """The first message for operation ``wanted`` (other operations' pushes are skipped)."""
    while True:
        body = json.loads((await ws.receive(timeout=5)).data)
        if body.get("id") == wanted:
            found: dict[str, Any] = body
            return found


async def test_subscriptions_per_socket_are_capped_with_a_code(
    make_client: ClientFactory, app_server: TestServer, runtime: Runtime
) -> None:
    _, _, _, token = await setup(make_client)
    limit = runtime.settings.live_max_subscriptions_per_socket
    assert limit == 20
    session, ws = await connect(app_server, token)
    try:
        assert (await ws.receive_json(timeout=3))["type"] == "connection_ack"
        for n in range(1, limit + 1):
            await ws.send_json(subscribe(str(n)))
            assert (await next_error_or_data(ws, str(n)))["type"] == "next"
        await ws.send_json(subscribe("extra"))
        refused = await next_error_or_data(ws, "extra")
        assert refused == {
            "id": "extra",
            "type": "error",
            "payload": [
                {
                    "message": "at most 20 subscriptions per socket",
                    "extensions": {
                        "code": "too_many_subscriptions",
                        "reason": "too_many_subscriptions",
                        "limit": 20,
                    },
                }
            ],
        }
        # the socket stays open, and completing one makes room for another
        await ws.send_json({"id": "1", "type": "complete"})
        await ws.send_json(subscribe("again"))
        assert (await next_error_or_data(ws, "again"))["type"] == "next"
    finally:
        await ws.close()
        await session.close()


async def test_cohorts_per_dashboard_and_tenant_are_capped_with_a_code(
    make_client: ClientFactory,
    app_server: TestServer,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert runtime.settings.live_max_cohorts_per_dashboard_tenant == 50
    assert runtime.live.max_cohorts == 50
    monkeypatch.setattr(runtime.live, "max_cohorts", 2)  # two distinct filter sets
    _, _, _, token = await setup(make_client)
    session, ws = await connect(app_server, token)
    try:
        assert (await ws.receive_json(timeout=3))["type"] == "connection_ack"
        await ws.send_json(subscribe("a", {"period": "24h"}))
        assert (await next_error_or_data(ws, "a"))["type"] == "next"
        await ws.send_json(subscribe("b", {"period": "7d"}))
        assert (await next_error_or_data(ws, "b"))["type"] == "next"
        await ws.send_json(subscribe("c", {"period": "30d"}))
        refused = await next_error_or_data(ws, "c")
        assert refused["type"] == "next"
        assert refused["payload"]["data"] is None
        [error] = refused["payload"]["errors"]
        assert error["extensions"] == {
            "code": "too_many_cohorts",
            "reason": "too_many_cohorts",
            "limit": 2,
        }
        assert error["message"].startswith("this dashboard already has 2 live views")
        assert await next_error_or_data(ws, "c") == {"id": "c", "type": "complete"}
        # an existing cohort can still be joined
        await ws.send_json(subscribe("d", {"period": "7d"}))
        assert (await next_error_or_data(ws, "d"))["payload"]["data"] is not None
    finally:
        await ws.close()
        await session.close()


async def test_a_subscription_cannot_run_over_http(
    make_client: ClientFactory, app_server: TestServer, runtime: Runtime
) -> None:
    """Live work only goes through the socket handler and its caps: over HTTP the subscription
    field answers nothing and joins no cohort."""
    _, _, _, token = await setup(make_client)
    client = await make_client()
    for accept in ("application/json", "multipart/mixed;subscriptionSpec=1.0"):
        response = await client.post(
            "/graphql",
            json={"query": SUBSCRIPTION},
            headers={"Authorization": f"Bearer {token}", "Accept": accept},
        )
        body = await response.json()
        assert (response.status, body["data"]) == (200, None)
        assert (runtime.live.cohort_count, runtime.live.viewer_count()) == (0, 0)


async def test_the_legacy_graphql_ws_protocol_is_not_offered(app_server: TestServer) -> None:
    """Every live socket goes through the checks above: no second protocol without them."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(app_server.make_url("/graphql"), protocols=["graphql-ws"])
        assert ws.protocol is None
        assert await closed_with(ws) == (4406, "Subprotocol not acceptable")
