"""Cross-site requests (CSRF) on the real app: a page on another site cannot change anything with
the console session cookie, through REST, GraphQL or a websocket; the same requests from the
server's own pages, and API-key requests from anywhere, still work.

The REST cases are generated from the route registry (``ROUTES``), so a new state-changing route
is covered the day it is added; the expected allowed statuses come from the role x route matrix
(tests/rest_compat/test_rest_matrix.py). "Nothing is written" is checked on the whole metadata
database (a digest of every row of every table) and on the events table.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_network
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from tortoise import connections

from emban.analytics.tables import EVENTS
from emban.auth.cross_site import SAFE_METHODS, normalize_origin
from emban.models import Dashboard, Org, User, UserSession
from emban.rest_compat.routes import ROUTES
from emban.runtime import Runtime
from tests.conftest import METADATA_TABLES, ClientFactory
from tests.rest_compat.test_rest_matrix import (
    AUDIT_ACTION,
    MATRIX,
    NEEDS_EVENTS,
    NEEDS_SESSION,
    PRINCIPALS,
    PUBLIC,
    World,
    _audit_actions,
    _body,
    _mint_session,
    _one_event,
    _url,
    seed_world,
)

EVIL = "https://evil.example"
UNSAFE = [(r.method, r.path) for r in ROUTES if r.method not in SAFE_METHODS]
UNSAFE_CONSOLE = [route for route in UNSAFE if route in MATRIX]
UNSAFE_PUBLIC = [route for route in UNSAFE if route in PUBLIC]
REFUSAL = {
    "error": "cross-site requests may not change anything with the session cookie: send the "
    "request from this server's own pages, or authenticate with an API key",
    "code": "cross_site_request",
}
# What a browser sends from another site: a modern one (Sec-Fetch-Site), an older one (Origin
# only), one on a sibling subdomain, and a sandboxed frame (Origin: null).
CROSS_SITE: dict[str, dict[str, str]] = {
    "fetch-metadata": {"Sec-Fetch-Site": "cross-site", "Origin": EVIL},
    "origin-only": {"Origin": EVIL},
    "same-site": {"Sec-Fetch-Site": "same-site", "Origin": "https://app.emban.test"},
    "null-origin": {"Origin": "null"},
}


def own_origin(server: TestServer) -> str:
    origin = normalize_origin(str(server.make_url("/")))
    assert origin is not None
    return origin


async def metadata_digest() -> str:
    """One digest of every row of every metadata table (a write anywhere changes it)."""
    # The table names are the fixture's own constants, not input.
    parts = " UNION ALL ".join(
        f"SELECT '{table}' AS name, md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), ''))"  # noqa: S608
        f" AS rows FROM {table} t"
        for table in METADATA_TABLES
    )
    rows = await connections.get("default").execute_query_dict(
        f"SELECT md5(string_agg(name || ':' || rows, '|' ORDER BY name)) AS digest FROM ({parts}) d"  # noqa: S608
    )
    digest: str = rows[0]["digest"]
    return digest


async def event_count(runtime: Runtime) -> int:
    result = await runtime.events.query(f"SELECT count() FROM {EVENTS}")  # noqa: S608 - fixed
    return int(result.rows[0][0])


async def _prepare(route: tuple[str, str], world: World, runtime: Runtime) -> int:
    if route in NEEDS_EVENTS:
        await _one_event(runtime, world)
    return await _mint_session(world) if route in NEEDS_SESSION else 0


async def _send(
    make_client: ClientFactory, route: tuple[str, str], world: World, headers: dict[str, str]
) -> aiohttp.ClientResponse:
    client = await make_client()
    method, path = route
    response = await client.request(
        method, _url(path, world), json=_body(route, world), headers=headers
    )
    await response.read()
    return response


def test_the_registry_has_state_changing_routes_of_every_kind() -> None:
    """The generated cases below cover console routes and the public ones that create a
    session; the check can fail if the registry is not what these tests think it is."""
    assert len(UNSAFE_CONSOLE) == sum(1 for method, _ in MATRIX if method != "GET") == 41
    assert UNSAFE_PUBLIC == [
        ("POST", "/v1/auth/register"),
        ("POST", "/v1/auth/login"),
        ("POST", "/v1/auth/accept-invite"),
    ]


@pytest.mark.parametrize("browser", list(CROSS_SITE))
async def test_every_cookie_mutation_from_another_site_is_refused_and_writes_nothing(
    make_client: ClientFactory, runtime: Runtime, browser: str
) -> None:
    observed: dict[tuple[str, str], tuple[int, Any, bool]] = {}
    for n, route in enumerate(UNSAFE_CONSOLE):
        world = await seed_world(f"-{n}")
        await _prepare(route, world, runtime)
        before = (await metadata_digest(), await event_count(runtime))
        response = await _send(
            make_client, route, world, {**world.headers["owner"], **CROSS_SITE[browser]}
        )
        unchanged = (await metadata_digest(), await event_count(runtime)) == before
        observed[route] = (response.status, await response.json(), unchanged)
    assert observed == {route: (403, REFUSAL, True) for route in UNSAFE_CONSOLE}


@pytest.mark.parametrize("sent", ["fetch-metadata", "origin-only", "typed-url"])
async def test_every_cookie_mutation_from_the_servers_own_pages_is_allowed(
    make_client: ClientFactory, runtime: Runtime, app_server: TestServer, sent: str
) -> None:
    own = own_origin(app_server)
    headers = {
        "fetch-metadata": {"Sec-Fetch-Site": "same-origin", "Origin": own},
        "origin-only": {"Origin": own},
        "typed-url": {"Sec-Fetch-Site": "none"},
    }[sent]
    owner = PRINCIPALS.index("owner")
    observed: dict[tuple[str, str], tuple[int, list[str] | str]] = {}
    expected: dict[tuple[str, str], tuple[int, list[str] | str]] = {}
    for n, route in enumerate(UNSAFE_CONSOLE):
        world = await seed_world(f"-{n}")
        seeded = await _prepare(route, world, runtime)
        response = await _send(make_client, route, world, {**world.headers["owner"], **headers})
        effect: list[str] | str = "org deleted"
        if await Org.filter(id=world.org_id).exists():
            effect = await _audit_actions(world.org_id, after_id=seeded)
        observed[route] = (response.status, effect)
        status = MATRIX[route][owner]
        if route == ("DELETE", "/v1/settings/org"):
            expected[route] = (status, "org deleted")
        elif status >= 400:
            expected[route] = (status, [])
        else:
            action = AUDIT_ACTION.get(route)
            expected[route] = (status, [action] if action else [])
    assert observed == expected


async def test_api_key_mutations_from_another_site_are_not_affected(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    """An Authorization header is no ambient credential: a page elsewhere cannot add it without a
    CORS preflight, so the cross-site rule leaves API keys alone (their matrix column holds)."""
    admin_key = PRINCIPALS.index("admin_key")
    observed: dict[tuple[str, str], int] = {}
    for n, route in enumerate(UNSAFE_CONSOLE):
        world = await seed_world(f"-{n}")
        await _prepare(route, world, runtime)
        headers = {**world.headers["admin_key"], **CROSS_SITE["fetch-metadata"]}
        observed[route] = (await _send(make_client, route, world, headers)).status
    assert observed == {route: MATRIX[route][admin_key] for route in UNSAFE_CONSOLE}


@pytest.mark.parametrize("route", UNSAFE_PUBLIC, ids=[f"{m} {p}" for m, p in UNSAFE_PUBLIC])
async def test_session_creating_routes_refuse_other_sites(
    make_client: ClientFactory, app_server: TestServer, route: tuple[str, str]
) -> None:
    """Login CSRF: a form on another site must not log the victim into the attacker's account
    (nor register or accept an invite in the victim's browser). No session, user or membership
    is created; from the server's own page the same request succeeds."""
    world = await seed_world()
    before = await metadata_digest()
    refused = await _send(make_client, route, world, CROSS_SITE["fetch-metadata"])
    assert (refused.status, await refused.json()) == (403, REFUSAL)
    assert "Set-Cookie" not in refused.headers
    assert await metadata_digest() == before
    own = {"Sec-Fetch-Site": "same-origin", "Origin": own_origin(app_server)}
    allowed = await _send(make_client, route, world, own)
    assert allowed.status == PUBLIC[route]
    assert allowed.cookies["emban_session"].value != ""


async def test_the_origin_may_be_the_public_url_or_one_a_trusted_proxy_forwards(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a TLS-terminating proxy the browser's origin is https://<public host>, the request
    arrives over http with another Host: ``EMBAN_PUBLIC_URL``'s origin is always the server's,
    and ``X-Forwarded-Proto``/``X-Forwarded-Host`` count only from ``EMBAN_TRUSTED_PROXIES``."""
    world = await seed_world()
    route = ("PATCH", "/v1/settings/org")
    owner = world.headers["owner"]
    forwarded = {
        "Origin": "https://console.acme.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "console.acme.example",
    }

    async def status(headers: dict[str, str]) -> int:
        return (await _send(make_client, route, world, {**owner, **headers})).status

    assert runtime.settings.public_url == "https://emban.test"
    assert await status({"Origin": "https://emban.test"}) == 200
    assert await status({"Origin": "https://EMBAN.test:443"}) == 200
    assert await status({"Origin": "http://emban.test"}) == 403  # another scheme: another origin
    assert await status({"Origin": "https://emban.test:8443"}) == 403
    # The test server's address is not a trusted proxy: its forwarded headers are ignored.
    assert await status(forwarded) == 403
    # A client-written value left of the proxy's own entry does not count either.
    spoofed = {**forwarded, "X-Forwarded-Host": "console.acme.example, emban.internal"}
    local = (ip_network("127.0.0.1/32"), ip_network("::1/128"))
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, trusted_proxies=local))
    assert await status(forwarded) == 200
    assert await status(spoofed) == 403
    assert await status({**forwarded, "X-Forwarded-Proto": "http"}) == 403
    assert (await Org.get(id=world.org_id)).name == "Acme Renamed"


async def test_requests_without_browser_headers_are_not_affected(
    make_client: ClientFactory,
) -> None:
    """curl or a backend holding a session cookie sends neither header: nothing to forge."""
    world = await seed_world()
    route = ("PATCH", "/v1/settings/org")
    response = await _send(make_client, route, world, world.headers["owner"])
    assert response.status == 200


# --- GraphQL --------------------------------------------------------------------------------------

UPDATE_ORG = 'mutation { updateOrg(name: "Hijacked") { name } }'
ME = "{ me { org { name } } }"


async def _graphql(
    make_client: ClientFactory, query: str, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    client = await make_client()
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    return response.status, await response.json()


async def test_graphql_cookie_mutation_from_another_site_is_refused_queries_are_not(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await seed_world()
    owner = world.headers["owner"]
    for name, cross in CROSS_SITE.items():
        before = await metadata_digest()
        status, body = await _graphql(make_client, UPDATE_ORG, {**owner, **cross})
        assert (name, status, body) == (
            name,
            200,
            {
                "data": None,
                "errors": [
                    {
                        "message": REFUSAL["error"],
                        "locations": [{"line": 1, "column": 12}],
                        "path": ["updateOrg"],
                        "extensions": {"code": "FORBIDDEN", "reason": "cross_site_request"},
                    }
                ],
            },
        )
        assert await metadata_digest() == before
        # A query answers: another site cannot read it (no CORS), and reading changes nothing.
        status, body = await _graphql(make_client, ME, {**owner, **cross})
        assert (status, body) == (200, {"data": {"me": {"org": {"name": "Acme"}}}})
    same_origin = {"Sec-Fetch-Site": "same-origin", "Origin": own_origin(app_server)}
    status, body = await _graphql(make_client, UPDATE_ORG, {**owner, **same_origin})
    assert (status, body) == (200, {"data": {"updateOrg": {"name": "Hijacked"}}})


async def test_graphql_api_key_mutation_from_another_site_is_allowed(
    make_client: ClientFactory,
) -> None:
    world = await seed_world()
    headers = {**world.headers["admin_key"], **CROSS_SITE["fetch-metadata"]}
    assert await _graphql(make_client, UPDATE_ORG, headers) == (
        200,
        {"data": {"updateOrg": {"name": "Hijacked"}}},
    )


async def test_graphql_register_from_another_site_is_refused(make_client: ClientFactory) -> None:
    query = (
        'mutation { register(email: "victim@x.test", password: "correct-horse-1", name: "V", '
        'orgName: "V") { org { id } } }'
    )
    status, body = await _graphql(make_client, query, CROSS_SITE["fetch-metadata"])
    assert status == 200
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "reason": "cross_site_request"}
    assert await User.filter(email="victim@x.test").count() == 0
    assert await UserSession.all().count() == 0


async def test_graphql_get_never_runs_a_mutation(make_client: ClientFactory) -> None:
    """A link or an <img> on another site is a GET (SameSite=Lax sends the cookie with a top-level
    one): GET may run queries only, whatever the headers say."""
    world = await seed_world()
    client = await make_client()
    before = await metadata_digest()
    for headers in ({}, {"Sec-Fetch-Site": "same-origin"}):
        response = await client.get(
            "/graphql",
            params={"query": UPDATE_ORG},
            headers={**world.headers["owner"], "Accept": "application/json", **headers},
        )
        assert (response.status, await response.text()) == (
            400,
            "mutations are not allowed when using GET",
        )
    assert await metadata_digest() == before
    assert await Dashboard.filter(org_id=world.org_id).count() == 1


# --- websockets -----------------------------------------------------------------------------------

SUBSCRIBE = "subscription { alertEvents { alertId } }"


async def _upgrade(
    server: TestServer, cookie: str, headers: dict[str, str]
) -> tuple[int, str | None]:
    """Open a console socket with the session cookie; (HTTP status, first message type)."""
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(
                server.make_url("/graphql"),
                protocols=["graphql-transport-ws"],
                headers={"Cookie": cookie, **headers},
            )
        except aiohttp.WSServerHandshakeError as error:
            return error.status, None
        await ws.send_json({"type": "connection_init", "payload": {}})
        message = await ws.receive_json(timeout=5)
        await ws.close()
        return 101, message["type"]


async def test_console_socket_from_another_site_is_refused(
    app_server: TestServer, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cross-site WebSocket hijacking: the browser attaches the cookie to any site's upgrade."""
    world = await seed_world()
    cookie = world.headers["owner"]["Cookie"]
    assert await _upgrade(app_server, cookie, {"Origin": EVIL}) == (403, None)
    assert await _upgrade(app_server, cookie, {"Origin": "null"}) == (403, None)
    assert await _upgrade(app_server, cookie, {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}) == (
        403,
        None,
    )
    own = own_origin(app_server)
    assert await _upgrade(app_server, cookie, {"Origin": own}) == (101, "connection_ack")
    assert await _upgrade(app_server, cookie, {}) == (101, "connection_ack")
    # The server's other origins: EMBAN_PUBLIC_URL, and a trusted proxy's forwarded host.
    public = {"Origin": "https://emban.test"}
    assert await _upgrade(app_server, cookie, public) == (101, "connection_ack")
    forwarded = {
        "Origin": "https://console.acme.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "console.acme.example",
    }
    assert await _upgrade(app_server, cookie, forwarded) == (403, None)
    local = (ip_network("127.0.0.1/32"), ip_network("::1/128"))
    monkeypatch.setattr(runtime, "settings", replace(runtime.settings, trusted_proxies=local))
    assert await _upgrade(app_server, cookie, forwarded) == (101, "connection_ack")
