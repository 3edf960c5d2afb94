"""The core ``/v1`` routes (auth, keys, team, settings, events, queries, datasets, usage).

Each handler is declared with ``@route`` (route.py) and does: parse, call one service, shape the
answer. ``ROUTES`` collects every declared route: the app mounts them and ``schema/openapi.json``
is generated from them.
"""

from __future__ import annotations

from aiohttp import web

from emban.auth.cookies import clear_session_cookie, set_session_cookie
from emban.rest_compat import responses as out
from emban.rest_compat import shapes
from emban.rest_compat.bodies import (
    AcceptInviteBody,
    AdhocBody,
    CreateApiKeyBody,
    IngestBody,
    InviteBody,
    LoginBody,
    OrgPatchBody,
    RegisterBody,
    RoleBody,
    SavedQueryBody,
    SavedQueryPatchBody,
)
from emban.rest_compat.http import (
    MAX_INGEST_BODY,
    client_ip,
    parse_body,
    read_body,
    runtime,
)
from emban.rest_compat.query_params import spec_from_params
from emban.rest_compat.route import Reply, RestRoute, caller, registered, route
from emban.services import (
    accounts,
    adhoc,
    analytics,
    api_keys,
    audit,
    datasets,
    events,
    orgs,
    saved_queries,
    team,
    usage,
)


@route(
    "POST",
    "/v1/auth/register",
    response=out.Registration,
    status=201,
    body=RegisterBody,
    auth="public",
    tag="auth",
    errors=(400, 409, 413, 429),
    transaction=False,  # the service hashes first, then writes in its own transaction
)
async def register(request: web.Request) -> Reply[out.Registration]:
    """Create a user, org, owner membership, default environments and admin key."""
    # Counted before the body is read: a refused attempt costs no decoding (auth/tarpit.py).
    attempt = await accounts.admit(runtime(request), "register", client_ip(request))
    body = await parse_body(request, RegisterBody)
    reg = await accounts.register(
        runtime(request),
        attempt,
        email=body.email,
        password=body.password,
        name=body.name,
        org_name=body.org_name,
    )
    answer = out.Registration(
        user=shapes.user(reg.user),
        org=shapes.org(reg.org),
        environments=[shapes.environment(e) for e in reg.environments],
        api_key=out.RegisteredApiKey(
            id=reg.api_key.id,
            label=reg.api_key.label,
            scope=reg.api_key.scope,
            prefix=reg.api_key.prefix,
            environment=reg.environments[0].name,
            key=reg.clear_key,
        ),
    )
    settings = runtime(request).settings
    return Reply(
        lambda: answer,
        finish=lambda response: set_session_cookie(response, settings, reg.session_token),
    )


@route(
    "POST",
    "/v1/auth/login",
    response=out.SessionStarted,
    body=LoginBody,
    auth="public",
    tag="auth",
    errors=(400, 401, 429),
    transaction=False,  # the service verifies first, then writes in its own transaction
)
async def login(request: web.Request) -> Reply[out.SessionStarted]:
    """Log in and set the emban_session cookie."""
    attempt = await accounts.admit(runtime(request), "login", client_ip(request))
    body = await parse_body(request, LoginBody)
    result = await accounts.login(
        runtime(request), attempt, email=body.email, password=body.password
    )
    answer = out.SessionStarted(
        user=shapes.user(result.user), org=shapes.org(result.org), role=shapes.role(result.role)
    )
    settings = runtime(request).settings
    return Reply(
        lambda: answer,
        finish=lambda response: set_session_cookie(response, settings, result.session_token),
    )


@route("POST", "/v1/auth/logout", response=None, service=accounts.logout, tag="auth")
async def logout(request: web.Request) -> Reply[None]:
    """Delete the session cookie and its server-side row (403 not_a_session for an API key)."""
    await accounts.logout(actor=caller(request))
    return Reply(lambda: None, finish=clear_session_cookie)


@route("GET", "/v1/auth/me", response=out.Me, auth="any", tag="auth")
async def me(request: web.Request) -> out.Me:
    """The caller's user, org, role, scope and environment."""
    return shapes.me(await accounts.whoami(actor=caller(request)))


@route(
    "POST",
    "/v1/auth/accept-invite",
    response=out.SessionStarted,
    status=201,
    body=AcceptInviteBody,
    auth="public",
    tag="auth",
    errors=(400, 404, 409, 429),
    transaction=False,  # the service hashes first, then writes in its own transaction
)
async def accept_invite(request: web.Request) -> Reply[out.SessionStarted]:
    """Accept a pending invite: creates the user and membership and starts a session (409
    invite_used once it has been accepted)."""
    attempt = await accounts.admit(runtime(request), "accept-invite", client_ip(request))
    body = await parse_body(request, AcceptInviteBody)
    result = await accounts.accept_invite(
        runtime(request), attempt, token=body.token, password=body.password, name=body.name
    )
    answer = out.SessionStarted(
        user=shapes.user(result.user), org=shapes.org(result.org), role=shapes.role(result.role)
    )
    settings = runtime(request).settings
    return Reply(
        lambda: answer,
        finish=lambda response: set_session_cookie(response, settings, result.session_token),
    )


@route(
    "GET", "/v1/api-keys", response=out.ApiKeyList, service=api_keys.list_api_keys, tag="api-keys"
)
async def list_api_keys(request: web.Request) -> out.ApiKeyList:
    """List API keys (prefix only, never the key)."""
    keys = await api_keys.list_api_keys(actor=caller(request))
    return out.ApiKeyList(api_keys=[shapes.api_key(k, env) for k, env in keys])


@route(
    "POST",
    "/v1/api-keys",
    response=out.CreatedApiKey,
    status=201,
    body=CreateApiKeyBody,
    service=api_keys.create_api_key,
    tag="api-keys",
    errors=(400, 402),
)
async def create_api_key(request: web.Request) -> out.CreatedApiKey:
    """Create an API key; the key is in the response only this once."""
    body = await parse_body(request, CreateApiKeyBody)
    created = await api_keys.create_api_key(
        actor=caller(request), label=body.label, scope=body.scope, environment=body.environment
    )
    return shapes.created_api_key(created.api_key, created.environment, created.clear_key)


@route(
    "DELETE",
    "/v1/api-keys/{id}",
    response=None,
    service=api_keys.delete_api_key,
    tag="api-keys",
    errors=(404,),
)
async def delete_api_key(request: web.Request) -> None:
    """Revoke an API key at once."""
    await api_keys.delete_api_key(
        runtime(request), actor=caller(request), key_id=request.match_info["id"]
    )


@route("GET", "/v1/members", response=out.MemberList, service=team.list_members, tag="team")
async def list_members(request: web.Request) -> out.MemberList:
    """List org members."""
    members = await team.list_members(actor=caller(request))
    return out.MemberList(members=[shapes.member(m, u) for m, u in members])


@route(
    "POST",
    "/v1/members/invite",
    response=out.CreatedInvite,
    status=201,
    body=InviteBody,
    service=team.invite_member,
    tag="team",
    errors=(400, 409),
)
async def invite_member(request: web.Request) -> out.CreatedInvite:
    """Invite a member; the response holds the invite token."""
    body = await parse_body(request, InviteBody)
    created = await team.invite_member(
        runtime(request), actor=caller(request), email=body.email, role=body.role
    )
    return shapes.created_invite(created.invite, created.token, created.url)


@route("GET", "/v1/members/invites", response=out.InviteList, service=team.list_invites, tag="team")
async def list_invites(request: web.Request) -> out.InviteList:
    """List pending invites."""
    invites = await team.list_invites(actor=caller(request))
    return out.InviteList(invites=[shapes.invite(i) for i in invites])


@route(
    "PATCH",
    "/v1/members/{id}",
    response=out.Member,
    body=RoleBody,
    service=team.change_role,
    tag="team",
    errors=(400, 404, 409),
)
async def change_role(request: web.Request) -> out.Member:
    """Change a member's role (owner only)."""
    body = await parse_body(request, RoleBody)
    membership, user = await team.change_role(
        actor=caller(request), member_id=request.match_info["id"], role=body.role
    )
    return shapes.member(membership, user)


@route(
    "DELETE",
    "/v1/members/{id}",
    response=None,
    service=team.remove_member,
    tag="team",
    errors=(404, 409),
)
async def remove_member(request: web.Request) -> None:
    """Remove a member."""
    await team.remove_member(actor=caller(request), member_id=request.match_info["id"])


@route("GET", "/v1/settings/org", response=out.Org, service=orgs.get_org, tag="settings")
async def get_org(request: web.Request) -> out.Org:
    """Get org details."""
    return shapes.org(await orgs.get_org(actor=caller(request)))


@route(
    "PATCH",
    "/v1/settings/org",
    response=out.Org,
    body=OrgPatchBody,
    service=orgs.update_org,
    tag="settings",
    errors=(400,),
)
async def update_org(request: web.Request) -> out.Org:
    """Update the org's name or email."""
    body = await parse_body(request, OrgPatchBody)
    org = await orgs.update_org(actor=caller(request), name=body.name, email=body.email)
    return shapes.org(org)


@route("DELETE", "/v1/settings/org", response=None, service=orgs.delete_org, tag="settings")
async def delete_org(request: web.Request) -> Reply[None]:
    """Delete the org and its metadata (owner only); its events are deleted by a job right
    after. Irreversible."""
    await orgs.delete_org(runtime(request), actor=caller(request))
    return Reply(lambda: None, finish=clear_session_cookie)


@route("GET", "/v1/audit", response=out.AuditList, service=audit.list_audit, tag="audit")
async def list_audit(request: web.Request) -> out.AuditList:
    """The last 100 audit entries, newest first."""
    rows = await audit.list_audit(actor=caller(request))
    return out.AuditList(entries=[shapes.audit_row(a) for a in rows])


@route(
    "POST",
    "/v1/events",
    response=out.IngestAccepted,
    body=IngestBody,
    auth="any",
    tag="events",
    errors=(400, 402, 403, 413),
    transaction=False,
    budgeted=False,  # governed by the plan's monthly events cap, not by the request budget
)
async def ingest_events(request: web.Request) -> out.IngestAccepted:
    """Ingest up to 10,000 events (admin or ingest key); answered once durable."""
    body = await read_body(request, MAX_INGEST_BODY)
    principal = caller(request)
    events.check_can_ingest(principal)
    accepted = await events.ingest_body(runtime(request), actor=principal, body=body)
    return out.IngestAccepted(accepted=accepted, status="ok")


@route(
    "GET",
    "/v1/query",
    response=out.QueryResult,
    service=analytics.run_query,
    tag="query",
    errors=(400,),
)
async def query(request: web.Request) -> Reply[out.QueryResult]:
    """Run an analytics query; meta carries the planner's proof."""
    spec = spec_from_params(request.query)
    result = await analytics.run_query(runtime(request), actor=caller(request), spec=spec)
    return Reply(
        lambda: shapes.analytics(result), off_loop=len(result.series) > shapes.INLINE_POINTS
    )


@route(
    "POST",
    "/v1/query/adhoc",
    response=out.AdhocResult,
    body=AdhocBody,
    service=adhoc.run_adhoc_query,
    tag="query",
    errors=(400, 429),
    transaction=False,
)
async def adhoc_query(request: web.Request) -> out.AdhocResult:
    """Run one read-only SELECT over the org's datasets (admin); 10 s, 10,000 rows and
    EMBAN_ADHOC_MAX_RESULT_BYTES at most, EMBAN_ADHOC_MAX_CONCURRENT_PER_ORG at once."""
    body = await parse_body(request, AdhocBody)
    result = await adhoc.run_adhoc_query(runtime(request), actor=caller(request), sql=body.sql)
    return shapes.adhoc(result)


@route(
    "GET", "/v1/datasets", response=out.DatasetList, service=datasets.list_datasets, tag="datasets"
)
async def list_datasets(request: web.Request) -> out.DatasetList:
    """Tables and the materialized views that fill them, visible to the org: kind, engine,
    org-scoped sizes, update time, columns and DDL."""
    found = await datasets.list_datasets(runtime(request), actor=caller(request))
    return out.DatasetList(datasets=[shapes.dataset(d) for d in found])


@route(
    "GET",
    "/v1/datasets/{name}/ddl",
    response=out.DatasetDdl,
    service=datasets.dataset_ddl,
    tag="datasets",
    errors=(404,),
)
async def dataset_ddl(request: web.Request) -> out.DatasetDdl:
    """The CREATE statement of one dataset (table or materialized view)."""
    name = request.match_info["name"]
    ddl = await datasets.dataset_ddl(runtime(request), actor=caller(request), name=name)
    return out.DatasetDdl(name=name, ddl=ddl)


@route(
    "GET",
    "/v1/saved-queries",
    response=out.SavedQueryList,
    service=saved_queries.list_saved_queries,
    tag="saved-queries",
)
async def list_saved_queries(request: web.Request) -> out.SavedQueryList:
    """List saved SQL snippets (any console user)."""
    found = await saved_queries.list_saved_queries(actor=caller(request))
    return out.SavedQueryList(saved_queries=[shapes.saved_query(q) for q in found])


@route(
    "POST",
    "/v1/saved-queries",
    response=out.SavedQuery,
    status=201,
    body=SavedQueryBody,
    service=saved_queries.create_saved_query,
    tag="saved-queries",
    errors=(400,),
)
async def create_saved_query(request: web.Request) -> out.SavedQuery:
    """Save a SQL query (admin)."""
    body = await parse_body(request, SavedQueryBody)
    saved = await saved_queries.create_saved_query(
        actor=caller(request),
        name=body.name,
        sql=body.sql,
        dataset=body.dataset,
        starred=body.starred,
    )
    return shapes.saved_query(saved)


@route(
    "PATCH",
    "/v1/saved-queries/{id}",
    response=out.SavedQuery,
    body=SavedQueryPatchBody,
    service=saved_queries.update_saved_query,
    tag="saved-queries",
    errors=(400, 404),
)
async def update_saved_query(request: web.Request) -> out.SavedQuery:
    """Update name, SQL, dataset or starred state (admin)."""
    body = await parse_body(request, SavedQueryPatchBody)
    saved = await saved_queries.update_saved_query(
        actor=caller(request),
        query_id=request.match_info["id"],
        name=body.name,
        sql=body.sql,
        dataset=body.dataset,
        starred=body.starred,
    )
    return shapes.saved_query(saved)


@route(
    "DELETE",
    "/v1/saved-queries/{id}",
    response=None,
    service=saved_queries.delete_saved_query,
    tag="saved-queries",
    errors=(404,),
)
async def delete_saved_query(request: web.Request) -> None:
    """Delete a saved query (admin)."""
    await saved_queries.delete_saved_query(actor=caller(request), query_id=request.match_info["id"])


@route("GET", "/v1/usage", response=out.Usage, service=usage.get_usage, tag="usage", errors=(400,))
async def get_usage(request: web.Request) -> out.Usage:
    """Events ingested and queries run per day for ?period= (default 30d), with the plan
    limit."""
    found = await usage.get_usage(
        runtime(request), actor=caller(request), period=request.query.get("period")
    )
    return shapes.usage(found)


@route(
    "GET",
    "/v1/onboarding/status",
    response=out.Onboarding,
    service=usage.onboarding_status,
    tag="usage",
)
async def onboarding_status(request: web.Request) -> out.Onboarding:
    """Onboarding progress: sample_only, real_events."""
    found = await usage.onboarding_status(runtime(request), actor=caller(request))
    return shapes.onboarding(found)


def _all_routes() -> tuple[RestRoute, ...]:
    # Importing the route modules registers their declarations.
    from emban.rest_compat import (  # noqa: F401
        alert_routes,
        billing_routes,
        dashboard_routes,
        discovery_routes,
        embed_routes,
        environment_routes,
    )

    return registered()


ROUTES: tuple[RestRoute, ...] = _all_routes()


async def openapi_document(request: web.Request) -> web.StreamResponse:
    """``GET /openapi.json``: the contract of these routes (the same text as schema/openapi.json,
    which a test keeps current), for clients and contract testers."""
    from emban.contracts import openapi_json  # imports this module: not at import time

    return web.Response(text=openapi_json(), content_type="application/json")


def add_routes(app: web.Application) -> None:
    for declared in ROUTES:
        app.router.add_route(declared.method, declared.path, declared.aiohttp_handler())
    app.router.add_get("/openapi.json", openapi_document)


def add_webhook_routes(app: web.Application) -> None:
    """Provider webhooks: outside ``/v1`` and outside the route declarations (no caller, their
    own signature check), so not in ``ROUTES`` nor in the OpenAPI document."""
    # Imported here, after ROUTES: the route modules register in _all_routes()'s order.
    from emban.rest_compat.billing_routes import paddle_webhook

    app.router.add_post("/webhooks/paddle", paddle_webhook)
