"""``/v1/embed-sessions`` and ``/v1/demo/embed-url``: thin handlers over the embed service."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emban.analytics.shaping import iso_bucket
from emban.rest_compat.bodies import EmbedSessionBody, RevokeEmbedSessionsBody
from emban.rest_compat.http import actor, client_ip, json_response, parse_body, runtime
from emban.rest_compat.route import RestRoute
from emban.services import embed_revocations, embeds


def session_json(session: embeds.EmbedSession) -> dict[str, Any]:
    return {
        "token": session.token,
        "embed_url": session.embed_url,
        "expires_at": iso_bucket(session.expires_at),
    }


def active_session_json(session: embeds.ActiveEmbedSession) -> dict[str, Any]:
    return {
        "id": session.id,
        "tenant_id": session.tenant_id,
        "resource": session.resource,
        "scope": session.scope,
        "actor": {
            "type": session.actor_type,
            "id": session.actor_id,
            "label": session.actor_label,
        },
        "issued_at": iso_bucket(session.issued_at),
        "expires_at": iso_bucket(session.expires_at),
        "ttl_seconds": session.ttl_seconds,
    }


async def create_embed_session(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await parse_body(request, EmbedSessionBody)
    session = await embeds.create_embed_session(
        runtime(request),
        actor=principal,
        tenant_id=body.tenant_id,
        dashboard_id=body.dashboard_id,
        expires_in=body.expires_in,
        permissions=body.permissions,
    )
    return json_response(session_json(session), status=201)


async def list_embed_sessions(request: web.Request) -> web.StreamResponse:
    found = await embeds.list_embed_sessions(actor=await actor(request))
    return json_response({"sessions": [active_session_json(s) for s in found]})


async def revoke_embed_session(request: web.Request) -> web.StreamResponse:
    revoked = await embed_revocations.revoke_session(
        runtime(request), actor=await actor(request), session_id=request.match_info["id"]
    )
    return json_response({"revoked": True, "id": revoked})


async def revoke_embed_sessions(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    # No body at all means {}: every session of the environment.
    body = (
        await parse_body(request, RevokeEmbedSessionsBody)
        if request.body_exists
        else RevokeEmbedSessionsBody()
    )
    count = await embed_revocations.revoke_sessions(
        runtime(request), actor=principal, dashboard_id=body.dashboard_id, tenant_id=body.tenant_id
    )
    return json_response({"revoked": count})


async def demo_embed_url(request: web.Request) -> web.StreamResponse:
    session = await embeds.demo_embed_url(
        runtime(request),
        tenant_id=request.query.get("tenant_id", embeds.DEMO_TENANT),
        ip=client_ip(request),
    )
    data = session_json(session)
    data.update(dashboard_id=session.dashboard_id, tenant_id=session.tenant_id)
    return json_response(data)


EMBED_ROUTES: tuple[RestRoute, ...] = (
    RestRoute(
        "POST",
        "/v1/embed-sessions",
        create_embed_session,
        "Mint a signed embed session (admin) for one tenant and one dashboard.",
        201,
        EmbedSessionBody,
        "console",
        "embed-sessions",
        (400, 401, 402, 403, 404),
    ),
    RestRoute(
        "GET",
        "/v1/embed-sessions",
        list_embed_sessions,
        "Active embed sessions of the org, from the embed_session.create audit rows (admin).",
        200,
        None,
        "console",
        "embed-sessions",
        (401, 403),
    ),
    RestRoute(
        "DELETE",
        "/v1/embed-sessions/{id}",
        revoke_embed_session,
        "Revoke one embed session (admin): its token answers 401 embed_token_revoked and its "
        "live sockets close (4403).",
        200,
        None,
        "console",
        "embed-sessions",
        (401, 403, 404),
    ),
    RestRoute(
        "POST",
        "/v1/embed-sessions/revoke",
        revoke_embed_sessions,
        "Revoke every embed session of the environment issued up to now that matches "
        "dashboard_id and tenant_id (both optional; admin). Answers the number revoked.",
        200,
        RevokeEmbedSessionsBody,
        "console",
        "embed-sessions",
        (400, 401, 403),
    ),
    RestRoute(
        "GET",
        "/v1/demo/embed-url",
        demo_embed_url,
        "Public demo helper: a signed session on the seeded demo dashboard (?tenant_id=).",
        200,
        None,
        "public",
        "demo",
        (400, 404, 429),
        transaction=True,  # the mint is audited
    ),
)
