"""Revoking embed sessions: one (``DELETE /v1/embed-sessions/{id}``) or many
(``POST /v1/embed-sessions/revoke``), over REST and GraphQL. A revoked token answers 401
``embed_token_revoked`` on REST, GraphQL over HTTP and ``connection_init``; its open sockets
close with 4403 ``embed_token_revoked``; the session list leaves it out; every revocation is
audited."""

from __future__ import annotations

from typing import Any

import aiohttp
import jwt
from aiohttp.test_utils import TestServer

from emban.models import AuditLog, EmbedRevocation, Org
from tests.conftest import ClientFactory, bearer, create_key, join_as, register
from tests.embed_scenario import mint
from tests.live_client import WIDGETS, close, closed_with, connect, initial, open_live

EMBED_QUERY = "query { embed { dashboard { id } } }"
REVOKED_REST = {"error": "embed session has been revoked", "code": "embed_token_revoked"}


def jti(token: str) -> str:
    value: str = jwt.decode(token, options={"verify_signature": False})["jti"]
    return value


async def dashboard(owner: aiohttp.ClientSession, name: str = "Live") -> str:
    created = await owner.post("/v1/dashboards", json={"name": name, "widgets": WIDGETS})
    dashboard_id: str = (await created.json())["id"]
    assert (await owner.post(f"/v1/dashboards/{dashboard_id}/publish")).status == 204
    return dashboard_id


async def graphql(
    client: aiohttp.ClientSession, query: str, token: str | None = None, **variables: Any
) -> dict[str, Any]:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers=bearer(token) if token else {},
    )
    body: dict[str, Any] = await response.json()
    return body


async def embed_reason(client: aiohttp.ClientSession, token: str) -> str | None:
    """None when the token reads its dashboard, else the GraphQL error's reason."""
    body = await graphql(client, EMBED_QUERY, token)
    if body.get("errors"):
        reason: str = body["errors"][0]["extensions"]["reason"]
        return reason
    return None


async def listed(owner: aiohttp.ClientSession) -> list[str]:
    body = await (await owner.get("/v1/embed-sessions")).json()
    return [s["id"] for s in body["sessions"]]


async def test_revoking_one_session_refuses_its_token_everywhere_and_closes_its_sockets(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    owner = await make_client()
    await register(owner)
    dashboard_id = await dashboard(owner)
    token, other = await mint(owner, dashboard_id, "acme"), await mint(owner, dashboard_id, "acme")
    viewer = await make_client()
    live = await open_live(app_server, token)
    try:
        await initial(live)
        response = await owner.delete(f"/v1/embed-sessions/{jti(token)}")
        assert (response.status, await response.json()) == (
            200,
            {"revoked": True, "id": jti(token)},
        )
        assert await closed_with(live.ws) == (4403, "embed_token_revoked")
    finally:
        await close(live)
    # GraphQL over HTTP, REST and a new socket all refuse the token
    body = await graphql(viewer, EMBED_QUERY, token)
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {
        "code": "UNAUTHENTICATED",
        "reason": "embed_token_revoked",
    }
    response = await viewer.get("/v1/dashboards", headers=bearer(token))
    assert (response.status, await response.json()) == (401, REVOKED_REST)
    session, ws = await connect(app_server, token)
    assert await closed_with(ws) == (4403, "embed_token_revoked")
    await session.close()
    # the other session of the same dashboard and tenant is untouched
    assert await embed_reason(viewer, other) is None
    assert await listed(owner) == [jti(other)]
    row = await AuditLog.get(action="embed_session.revoked")
    assert (row.resource_type, row.resource_id, row.actor_label) == (
        "embed_session",
        jti(token),
        "owner@acme.test",
    )
    assert row.metadata == {
        "tenant_id": "acme",
        "dashboard_id": dashboard_id,
        "environment_id": jwt.decode(token, options={"verify_signature": False})["env"],
    }


async def test_revoking_an_unknown_or_foreign_session_is_404_and_needs_an_admin(
    make_client: ClientFactory,
) -> None:
    owner = await make_client()
    await register(owner)
    dashboard_id = await dashboard(owner)
    token = await mint(owner, dashboard_id, "acme")
    stranger = await make_client()
    await register(stranger, email="owner@globex.test", org_name="Globex")
    not_found = {"error": "no such embed session", "code": "embed_session_not_found"}
    for session_id in (jti(token), "es_aaaaaaaaaaaaaaaaaaaa", "not an id"):
        response = await stranger.delete(f"/v1/embed-sessions/{session_id}")
        assert (response.status, await response.json()) == (404, not_found)
    response = await stranger.post("/v1/embed-sessions/revoke", json={})
    assert (response.status, await response.json()) == (200, {"revoked": 0})
    editor, _ = await join_as(owner, make_client, "editor")
    response = await editor.delete(f"/v1/embed-sessions/{jti(token)}")
    assert response.status == 403
    assert (await response.json())["code"] == "insufficient_role"
    response = await editor.post("/v1/embed-sessions/revoke", json={})
    assert response.status == 403
    ingest = await create_key(owner, "ingest")
    response = await stranger.delete(f"/v1/embed-sessions/{jti(token)}", headers=bearer(ingest))
    assert response.status == 403
    anonymous = await make_client()
    assert (await anonymous.delete(f"/v1/embed-sessions/{jti(token)}")).status == 401
    assert (await anonymous.post("/v1/embed-sessions/revoke", json={})).status == 401
    response = await anonymous.post("/v1/embed-sessions/revoke", json={}, headers=bearer(token))
    assert response.status == 403  # an embed token is not an admin
    assert await embed_reason(anonymous, token) is None  # nothing above revoked it
    environment = jwt.decode(token, options={"verify_signature": False})["env"]
    assert await EmbedRevocation.filter(environment_id=environment).count() == 0


async def test_revoking_many_sessions_by_dashboard_tenant_or_all(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    owner = await make_client()
    await register(owner)
    await Org.all().update(plan="pro")  # two published dashboards
    first, second = await dashboard(owner, "First"), await dashboard(owner, "Second")
    tokens = {
        ("first", "t1"): await mint(owner, first, "t1"),
        ("first", "t2"): await mint(owner, first, "t2"),
        ("second", "t1"): await mint(owner, second, "t1"),
    }
    viewer = await make_client()
    live = await open_live(app_server, tokens[("first", "t2")])
    survivor = await open_live(app_server, tokens[("second", "t1")])
    try:
        await initial(live)
        await initial(survivor)
        response = await owner.post("/v1/embed-sessions/revoke", json={"dashboard_id": first})
        assert (response.status, await response.json()) == (200, {"revoked": 2})
        assert await closed_with(live.ws) == (4403, "embed_token_revoked")
        assert await survivor.quiet(0.5)  # its socket is still open
    finally:
        await close(live)
        await close(survivor)
    reasons = {k: await embed_reason(viewer, t) for k, t in tokens.items()}
    assert reasons == {
        ("first", "t1"): "embed_token_revoked",
        ("first", "t2"): "embed_token_revoked",
        ("second", "t1"): None,
    }
    # a session minted right after (within the same second) is not revoked
    fresh = await mint(owner, first, "t1")
    assert await embed_reason(viewer, fresh) is None
    assert sorted(await listed(owner)) == sorted([jti(fresh), jti(tokens[("second", "t1")])])
    response = await owner.post("/v1/embed-sessions/revoke", json={"tenant_id": "t1"})
    assert (response.status, await response.json()) == (200, {"revoked": 2})
    assert await embed_reason(viewer, fresh) == "embed_token_revoked"
    assert await embed_reason(viewer, tokens[("second", "t1")]) == "embed_token_revoked"
    assert await listed(owner) == []
    last = await mint(owner, second, "t9")
    response = await owner.post("/v1/embed-sessions/revoke")  # no body: every session
    assert (response.status, await response.json()) == (200, {"revoked": 1})
    assert await embed_reason(viewer, last) == "embed_token_revoked"
    rows = await AuditLog.filter(action="embed_sessions.revoked").order_by("id")
    assert [
        (r.metadata["dashboard_id"], r.metadata["tenant_id"], r.metadata["revoked"]) for r in rows
    ] == [(first, None, 2), (None, "t1", 2), (None, None, 1)]


async def test_revoking_many_validates_the_body(make_client: ClientFactory) -> None:
    owner = await make_client()
    await register(owner)
    response = await owner.post("/v1/embed-sessions/revoke", json={"tenant_id": ""})
    assert (response.status, await response.json()) == (
        400,
        {
            "error": "tenant_id must be a string of 1 to 200 characters",
            "code": "invalid_field",
            "field": "tenant_id",
        },
    )
    response = await owner.post("/v1/embed-sessions/revoke", json={"dashboard_id": 5})
    assert response.status == 400
    assert (await response.json())["field"] == "dashboard_id"


async def test_a_bulk_revocation_stays_in_the_callers_environment(
    make_client: ClientFactory,
) -> None:
    owner = await make_client()
    body = await register(owner)
    names = [e["name"] for e in body["environments"]]
    other = next(name for name in names if name != "production")
    dashboard_id = await dashboard(owner)
    production = await mint(owner, dashboard_id, "acme")
    key = await create_key_in(owner, other)
    minted = await owner.post(
        "/v1/embed-sessions",
        json={"tenant_id": "acme", "dashboard_id": dashboard_id},
        headers=bearer(key),
    )
    elsewhere = (await minted.json())["token"]
    assert (
        jwt.get_unverified_header(elsewhere)["kid"] != jwt.get_unverified_header(production)["kid"]
    )
    response = await owner.post("/v1/embed-sessions/revoke", json={})
    assert (response.status, await response.json()) == (200, {"revoked": 1})
    viewer = await make_client()
    assert await embed_reason(viewer, production) == "embed_token_revoked"
    assert await embed_reason(viewer, elsewhere) is None
    # the one-session route takes any session of the org, whatever its environment
    response = await owner.delete(f"/v1/embed-sessions/{jti(elsewhere)}")
    assert response.status == 200
    assert await embed_reason(viewer, elsewhere) == "embed_token_revoked"


async def create_key_in(owner: aiohttp.ClientSession, environment: str) -> str:
    response = await owner.post(
        "/v1/api-keys", json={"label": "env", "scope": "admin", "environment": environment}
    )
    assert response.status == 201, await response.text()
    key: str = (await response.json())["key"]
    return key


async def test_graphql_mutations_revoke_like_rest(make_client: ClientFactory) -> None:
    owner = await make_client()
    await register(owner)
    dashboard_id = await dashboard(owner)
    one, two = await mint(owner, dashboard_id, "a"), await mint(owner, dashboard_id, "b")
    body = await graphql(
        owner, "mutation($id: ID!) { revokeEmbedSession(id: $id) { revoked id } }", id=jti(one)
    )
    assert body == {"data": {"revokeEmbedSession": {"revoked": True, "id": jti(one)}}}
    body = await graphql(
        owner,
        "mutation($id: ID!) { revokeEmbedSession(id: $id) { revoked } }",
        id="es_aaaaaaaaaaaaaaaaaaaa",
    )
    assert body["errors"][0]["extensions"] == {
        "code": "NOT_FOUND",
        "reason": "embed_session_not_found",
    }
    body = await graphql(
        owner,
        "mutation($d: ID, $t: String) { revokeEmbedSessions(dashboardId: $d, tenantId: $t)"
        " { revoked } }",
        d=dashboard_id,
        t="b",
    )
    assert body == {"data": {"revokeEmbedSessions": {"revoked": 1}}}
    viewer = await make_client()
    assert await embed_reason(viewer, one) == "embed_token_revoked"
    assert await embed_reason(viewer, two) == "embed_token_revoked"
    assert [r.action for r in await AuditLog.filter(action__contains="revoked").order_by("id")] == [
        "embed_session.revoked",
        "embed_sessions.revoked",
    ]
