"""Security headers on the real app's responses (JSON, errors, GraphQL, static files, pages), HSTS
with ``EMBAN_COOKIE_SECURE``, and the session cookie's attributes."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from emban.embed_page import demo_csp, embed_csp
from emban.graphiql_page import graphiql_csp
from emban.runtime import Runtime
from tests.conftest import PASSWORD, ClientFactory, register
from tests.embed_scenario import embed_org, mint

NAMES = (
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Frame-Options",
    "Content-Security-Policy",
    "Strict-Transport-Security",
)
API = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}
HSTS = {"Strict-Transport-Security": "max-age=63072000; includeSubDomains"}


def security(headers: object) -> dict[str, str]:
    """The security headers of a response (each at most once)."""
    found: dict[str, str] = {}
    for name in NAMES:
        values = headers.getall(name, [])  # type: ignore[attr-defined]
        assert len(values) <= 1, (name, values)
        if values:
            found[name] = values[0]
    return found


async def _embed(make_client: ClientFactory) -> tuple[str, str]:
    """A published dashboard and an embed token for it."""
    acme = await embed_org(make_client)
    return acme.dashboard_id, await mint(acme.client, acme.dashboard_id)


async def _sample(
    make_client: ClientFactory, dashboard_id: str, token: str
) -> dict[str, tuple[int, dict[str, str]]]:
    """One response of each kind: JSON, REST errors (the route's, the middleware's, a 405),
    GraphQL (answer and error), GraphiQL, static files, the demo host page and the embed page
    (with and without a token)."""
    client = await make_client()
    html = {"Accept": "text/html"}
    requests = {
        "json": client.get("/healthz"),
        "openapi": client.get("/openapi.json"),
        "not_found": client.get("/v1/no-such-route"),
        "unauthenticated": client.get("/v1/auth/me"),
        "method_not_allowed": client.put("/healthz"),
        "bad_body": client.post("/v1/auth/login", data=b"{"),
        "graphql": client.post("/graphql", json={"query": "{ __typename }"}),
        "graphql_error": client.post("/graphql", json={"query": "{ nope }"}),
        "graphiql": client.get("/graphql", headers=html),
        "static": client.get("/static/embed/host.js"),
        "static_missing": client.get("/static/embed/nope.js"),
        "demo": client.get("/demo"),
        "embed": client.get(f"/embed/{dashboard_id}?token={token}"),
        "embed_untokened": client.get(f"/embed/{dashboard_id}"),
        "embed_bad_id": client.get("/embed/a.b"),
    }
    sample = {}
    for name, request in requests.items():
        response = await request
        await response.read()
        sample[name] = (response.status, security(response.headers))
    return sample


def _expected(host: str, hsts: dict[str, str]) -> dict[str, tuple[int, dict[str, str]]]:
    api = {**API, **hsts}
    page = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", **hsts}
    return {
        "json": (200, api),
        "openapi": (200, api),
        "not_found": (404, api),
        "unauthenticated": (401, api),
        "method_not_allowed": (405, api),
        "bad_body": (400, api),
        "graphql": (200, api),
        "graphql_error": (200, api),
        # Pages keep their own policy (which forbids framing too) and Referrer-Policy.
        "graphiql": (
            200,
            {**page, "X-Frame-Options": "DENY", "Content-Security-Policy": graphiql_csp(host)},
        ),
        "static": (200, {**page, "X-Frame-Options": "DENY"}),
        "static_missing": (404, {**page, "X-Frame-Options": "DENY"}),
        "demo": (200, {**page, "X-Frame-Options": "DENY", "Content-Security-Policy": demo_csp()}),
        # The embed page is framed by the environment's allowed origins (here any): no
        # X-Frame-Options, its own frame-ancestors; no-referrer (the token is in its URL).
        "embed": (200, {**page, "Content-Security-Policy": embed_csp(host, ["*"])}),
        "embed_untokened": (200, {**page, "Content-Security-Policy": embed_csp(host, [])}),
        "embed_bad_id": (404, page),
    }


async def test_every_kind_of_response_carries_the_headers_and_no_hsts_by_default(
    make_client: ClientFactory, app_server: TestServer, runtime: Runtime
) -> None:
    assert runtime.settings.cookie_secure is False
    host = f"127.0.0.1:{app_server.port}"
    embed = await _embed(make_client)
    assert await _sample(make_client, *embed) == _expected(host, {})


async def test_hsts_on_every_response_when_cookies_are_secure(
    make_client: ClientFactory,
    app_server: TestServer,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    embed = await _embed(make_client)  # over plain HTTP a Secure cookie would not come back
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, cookie_secure=True))
    host = f"127.0.0.1:{app_server.port}"
    assert await _sample(make_client, *embed) == _expected(host, HSTS)


async def test_the_websocket_upgrade_carries_them_too(app_server: TestServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            app_server.make_url("/graphql"), protocols=["graphql-transport-ws"]
        ) as ws,
    ):
        assert security(ws._response.headers) == API


@pytest.mark.parametrize("secure", [False, True])
async def test_the_session_cookie_is_httponly_lax_and_secure_with_the_setting(
    make_client: ClientFactory,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    secure: bool,
) -> None:
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, cookie_secure=secure))
    await register(await make_client())
    client = await make_client()
    response = await client.post(
        "/v1/auth/login", json={"email": "owner@acme.test", "password": PASSWORD}
    )
    assert response.status == 200
    cookie = response.cookies["emban_session"]
    attributes = {k: cookie[k] for k in ("httponly", "samesite", "secure", "path", "max-age")}
    assert attributes == {
        "httponly": True,
        "samesite": "Lax",
        "secure": secure or "",
        "path": "/",
        "max-age": str(runtime.settings.session_ttl_seconds),
    }
    if secure:
        assert response.headers["Strict-Transport-Security"] == HSTS["Strict-Transport-Security"]
    else:
        assert "Strict-Transport-Security" not in response.headers
