"""``/v1/embed-sessions`` and ``/v1/demo/embed-url``: thin handlers over the embed service."""

from __future__ import annotations

from aiohttp import web

from emban.analytics.shaping import iso_bucket
from emban.rest_compat import responses as out
from emban.rest_compat.bodies import EmbedSessionBody, RevokeEmbedSessionsBody
from emban.rest_compat.http import client_ip, parse_body, runtime
from emban.rest_compat.route import caller, route
from emban.services import embed_revocations, embeds


def session_json(session: embeds.EmbedSession) -> out.EmbedSession:
    return out.EmbedSession(
        token=session.token,
        embed_url=session.embed_url,
        expires_at=iso_bucket(session.expires_at),
    )


def active_session_json(session: embeds.ActiveEmbedSession) -> out.ActiveEmbedSession:
    return out.ActiveEmbedSession(
        id=session.id,
        tenant_id=session.tenant_id,
        resource=session.resource,
        scope=session.scope,
        actor=out.EmbedActor(
            type=session.actor_type, id=session.actor_id, label=session.actor_label
        ),
        issued_at=iso_bucket(session.issued_at),
        expires_at=iso_bucket(session.expires_at),
        ttl_seconds=session.ttl_seconds,
    )


@route(
    "POST",
    "/v1/embed-sessions",
    response=out.EmbedSession,
    status=201,
    body=EmbedSessionBody,
    service=embeds.create_embed_session,
    tag="embed-sessions",
    errors=(400, 402, 404),
)
async def create_embed_session(request: web.Request) -> out.EmbedSession:
    """Mint a signed embed session (admin) for one tenant and one dashboard."""
    body = await parse_body(request, EmbedSessionBody)
    session = await embeds.create_embed_session(
        runtime(request),
        actor=caller(request),
        tenant_id=body.tenant_id,
        dashboard_id=body.dashboard_id,
        expires_in=body.expires_in,
        permissions=body.permissions,
    )
    return session_json(session)


@route(
    "GET",
    "/v1/embed-sessions",
    response=out.EmbedSessionList,
    service=embeds.list_embed_sessions,
    tag="embed-sessions",
)
async def list_embed_sessions(request: web.Request) -> out.EmbedSessionList:
    """Active embed sessions of the org, from the embed_session.create audit rows (admin)."""
    found = await embeds.list_embed_sessions(actor=caller(request))
    return out.EmbedSessionList(sessions=[active_session_json(s) for s in found])


@route(
    "DELETE",
    "/v1/embed-sessions/{id}",
    response=out.RevokedSession,
    service=embed_revocations.revoke_session,
    tag="embed-sessions",
    errors=(404,),
)
async def revoke_embed_session(request: web.Request) -> out.RevokedSession:
    """Revoke one embed session (admin): its token answers 401 embed_token_revoked and its
    live sockets close (4403)."""
    revoked = await embed_revocations.revoke_session(
        runtime(request), actor=caller(request), session_id=request.match_info["id"]
    )
    return out.RevokedSession(revoked=True, id=revoked)


@route(
    "POST",
    "/v1/embed-sessions/revoke",
    response=out.RevokedCount,
    body=RevokeEmbedSessionsBody,
    service=embed_revocations.revoke_sessions,
    tag="embed-sessions",
    errors=(400,),
)
async def revoke_embed_sessions(request: web.Request) -> out.RevokedCount:
    """Revoke every embed session of the environment issued up to now that matches
    dashboard_id and tenant_id (both optional; admin). Answers the number revoked."""
    # No body at all means {}: every session of the environment.
    body = (
        await parse_body(request, RevokeEmbedSessionsBody)
        if request.body_exists
        else RevokeEmbedSessionsBody()
    )
    count = await embed_revocations.revoke_sessions(
        runtime(request),
        actor=caller(request),
        dashboard_id=body.dashboard_id,
        tenant_id=body.tenant_id,
    )
    return out.RevokedCount(revoked=count)


@route(
    "GET",
    "/v1/demo/embed-url",
    response=out.DemoEmbedSession,
    auth="public",
    tag="demo",
    errors=(400, 404, 429),
    transaction=True,  # the mint is audited
)
async def demo_embed_url(request: web.Request) -> out.DemoEmbedSession:
    """Public demo helper: a signed session on the seeded demo dashboard (?tenant_id=)."""
    session = await embeds.demo_embed_url(
        runtime(request),
        tenant_id=request.query.get("tenant_id", embeds.DEMO_TENANT),
        ip=client_ip(request),
    )
    return out.DemoEmbedSession(
        token=session.token,
        embed_url=session.embed_url,
        expires_at=iso_bucket(session.expires_at),
        dashboard_id=session.dashboard_id,
        tenant_id=session.tenant_id,
    )
