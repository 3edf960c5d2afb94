"""The ``/v1`` routes implemented so far. Each handler: parse, call one service, shape the answer.

``ROUTES`` is also the source of ``schema/openapi.json``.
"""

from __future__ import annotations

from aiohttp import web

from emban.auth.cookies import clear_session_cookie, set_session_cookie
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
    actor,
    client_ip,
    json_response,
    json_response_off_loop,
    no_content,
    parse_body,
    read_body,
    runtime,
)
from emban.rest_compat.query_params import spec_from_params
from emban.rest_compat.route import Handler, RestRoute
from emban.services import (
    accounts,
    adhoc,
    analytics,
    api_keys,
    audit,
    billing,
    datasets,
    events,
    orgs,
    saved_queries,
    team,
    usage,
)
from emban.services.boundary import transaction


async def register(request: web.Request) -> web.StreamResponse:
    body = await parse_body(request, RegisterBody)
    reg = await accounts.register(
        runtime(request),
        email=body.email,
        password=body.password,
        name=body.name,
        org_name=body.org_name,
        ip=client_ip(request),
    )
    response = json_response(
        {
            "user": shapes.user(reg.user),
            "org": shapes.org(reg.org),
            "environments": [shapes.environment(e) for e in reg.environments],
            "api_key": {
                "id": reg.api_key.id,
                "label": reg.api_key.label,
                "scope": reg.api_key.scope,
                "prefix": reg.api_key.prefix,
                "environment": reg.environments[0].name,
                "key": reg.clear_key,
            },
        },
        status=201,
    )
    set_session_cookie(response, runtime(request).settings, reg.session_token)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    body = await parse_body(request, LoginBody)
    result = await accounts.login(
        runtime(request), email=body.email, password=body.password, ip=client_ip(request)
    )
    response = json_response(
        {"user": shapes.user(result.user), "org": shapes.org(result.org), "role": result.role}
    )
    set_session_cookie(response, runtime(request).settings, result.session_token)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    await accounts.logout(actor=await actor(request))
    response = no_content()
    clear_session_cookie(response)
    return response


async def me(request: web.Request) -> web.StreamResponse:
    return json_response(shapes.me(await accounts.whoami(actor=await actor(request))))


async def accept_invite(request: web.Request) -> web.StreamResponse:
    body = await parse_body(request, AcceptInviteBody)
    result = await accounts.accept_invite(
        runtime(request),
        token=body.token,
        password=body.password,
        name=body.name,
        ip=client_ip(request),
    )
    response = json_response(
        {"user": shapes.user(result.user), "org": shapes.org(result.org), "role": result.role},
        status=201,
    )
    set_session_cookie(response, runtime(request).settings, result.session_token)
    return response


async def list_api_keys(request: web.Request) -> web.StreamResponse:
    keys = await api_keys.list_api_keys(actor=await actor(request))
    return json_response({"api_keys": [shapes.api_key(k, env) for k, env in keys]})


async def create_api_key(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await parse_body(request, CreateApiKeyBody)
    created = await api_keys.create_api_key(
        actor=principal, label=body.label, scope=body.scope, environment=body.environment
    )
    data = shapes.api_key(created.api_key, created.environment)
    data["key"] = created.clear_key
    return json_response(data, status=201)


async def delete_api_key(request: web.Request) -> web.StreamResponse:
    await api_keys.delete_api_key(actor=await actor(request), key_id=request.match_info["id"])
    return no_content()


async def list_members(request: web.Request) -> web.StreamResponse:
    members = await team.list_members(actor=await actor(request))
    return json_response({"members": [shapes.member(m, u) for m, u in members]})


async def invite_member(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await parse_body(request, InviteBody)
    created = await team.invite_member(
        runtime(request), actor=principal, email=body.email, role=body.role
    )
    data = shapes.invite(created.invite)
    data.update(token=created.token, invite_url=created.url)
    return json_response(data, status=201)


async def list_invites(request: web.Request) -> web.StreamResponse:
    invites = await team.list_invites(actor=await actor(request))
    return json_response({"invites": [shapes.invite(i) for i in invites]})


async def change_role(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await parse_body(request, RoleBody)
    membership, user = await team.change_role(
        actor=principal, member_id=request.match_info["id"], role=body.role
    )
    return json_response(shapes.member(membership, user))


async def remove_member(request: web.Request) -> web.StreamResponse:
    await team.remove_member(actor=await actor(request), member_id=request.match_info["id"])
    return no_content()


async def get_org(request: web.Request) -> web.StreamResponse:
    return json_response(shapes.org(await orgs.get_org(actor=await actor(request))))


async def update_org(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await parse_body(request, OrgPatchBody)
    org = await orgs.update_org(actor=principal, name=body.name, email=body.email)
    return json_response(shapes.org(org))


async def delete_org(request: web.Request) -> web.StreamResponse:
    await orgs.delete_org(runtime(request), actor=await actor(request))
    response = no_content()
    clear_session_cookie(response)
    return response


async def list_plans(request: web.Request) -> web.StreamResponse:
    return json_response({"plans": [shapes.plan(p) for p in billing.list_plans()]})


async def list_audit(request: web.Request) -> web.StreamResponse:
    rows = await audit.list_audit(actor=await actor(request))
    return json_response({"entries": [shapes.audit_row(a) for a in rows]})


async def ingest_events(request: web.Request) -> web.StreamResponse:
    # Ingest is governed by the plan's monthly events cap, not by the request budget.
    principal = await actor(request, budgeted=False)
    body = await read_body(request, MAX_INGEST_BODY)
    events.check_can_ingest(principal)
    batch = await events.decode_body(body)
    accepted = await events.ingest_events(runtime(request), actor=principal, batch=batch)
    return json_response({"accepted": accepted, "status": "ok"})


async def query(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    spec = spec_from_params(request.query)
    result = await analytics.run_query(runtime(request), actor=principal, spec=spec)
    if len(result.points) > shapes.INLINE_POINTS:
        return await json_response_off_loop(lambda: shapes.analytics(result))
    return json_response(shapes.analytics(result))


async def adhoc_query(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await parse_body(request, AdhocBody)
    result = await adhoc.run_adhoc_query(runtime(request), actor=principal, sql=body.sql)
    return json_response({"columns": result.columns, "rows": result.rows, "stats": result.stats})


async def list_datasets(request: web.Request) -> web.StreamResponse:
    found = await datasets.list_datasets(runtime(request), actor=await actor(request))
    return json_response({"datasets": [shapes.dataset(d) for d in found]})


async def dataset_ddl(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    ddl = await datasets.dataset_ddl(runtime(request), actor=await actor(request), name=name)
    return json_response({"name": name, "ddl": ddl})


async def list_saved_queries(request: web.Request) -> web.StreamResponse:
    found = await saved_queries.list_saved_queries(actor=await actor(request))
    return json_response({"saved_queries": [shapes.saved_query(q) for q in found]})


async def create_saved_query(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await parse_body(request, SavedQueryBody)
    saved = await saved_queries.create_saved_query(
        actor=principal, name=body.name, sql=body.sql, dataset=body.dataset, starred=body.starred
    )
    return json_response(shapes.saved_query(saved), status=201)


async def update_saved_query(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await parse_body(request, SavedQueryPatchBody)
    saved = await saved_queries.update_saved_query(
        actor=principal,
        query_id=request.match_info["id"],
        name=body.name,
        sql=body.sql,
        dataset=body.dataset,
        starred=body.starred,
    )
    return json_response(shapes.saved_query(saved))


async def delete_saved_query(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    await saved_queries.delete_saved_query(actor=principal, query_id=request.match_info["id"])
    return no_content()


async def get_usage(request: web.Request) -> web.StreamResponse:
    found = await usage.get_usage(
        runtime(request), actor=await actor(request), period=request.query.get("period")
    )
    return json_response(shapes.usage(found))


async def onboarding_status(request: web.Request) -> web.StreamResponse:
    found = await usage.onboarding_status(runtime(request), actor=await actor(request))
    return json_response(shapes.onboarding(found))


_AUTH = (401,)
_ADMIN = (401, 403)

CORE_ROUTES: tuple[RestRoute, ...] = (
    RestRoute(
        "POST",
        "/v1/auth/register",
        register,
        "Create a user, org, owner membership, default environments and admin key.",
        201,
        RegisterBody,
        "public",
        "auth",
        (400, 409, 413, 429),
        transaction=False,  # the service hashes first, then writes in its own transaction
    ),
    RestRoute(
        "POST",
        "/v1/auth/login",
        login,
        "Log in and set the emban_session cookie.",
        200,
        LoginBody,
        "public",
        "auth",
        (400, 401, 429),
        transaction=False,  # the service verifies first, then writes in its own transaction
    ),
    RestRoute(
        "POST",
        "/v1/auth/logout",
        logout,
        "Delete the session cookie and its server-side row (400 for an admin key).",
        204,
        None,
        "console",
        "auth",
        (400, 401, 403),
    ),
    RestRoute(
        "GET",
        "/v1/auth/me",
        me,
        "The caller's user, org, role, scope and environment.",
        200,
        None,
        "any",
        "auth",
        _AUTH,
    ),
    RestRoute(
        "POST",
        "/v1/auth/accept-invite",
        accept_invite,
        "Accept a pending invite: creates the user and membership and starts a session.",
        201,
        AcceptInviteBody,
        "public",
        "auth",
        (400, 404, 409, 429),
        transaction=False,  # the service hashes first, then writes in its own transaction
    ),
    RestRoute(
        "GET",
        "/v1/api-keys",
        list_api_keys,
        "List API keys (prefix only, never the key).",
        200,
        None,
        "console",
        "api-keys",
        _ADMIN,
    ),
    RestRoute(
        "POST",
        "/v1/api-keys",
        create_api_key,
        "Create an API key; the key is in the response only this once.",
        201,
        CreateApiKeyBody,
        "console",
        "api-keys",
        (400, 401, 402, 403),
    ),
    RestRoute(
        "DELETE",
        "/v1/api-keys/{id}",
        delete_api_key,
        "Revoke an API key at once.",
        204,
        None,
        "console",
        "api-keys",
        (401, 403, 404),
    ),
    RestRoute(
        "GET",
        "/v1/members",
        list_members,
        "List org members.",
        200,
        None,
        "console",
        "team",
        _ADMIN,
    ),
    RestRoute(
        "POST",
        "/v1/members/invite",
        invite_member,
        "Invite a member; the response holds the invite token.",
        201,
        InviteBody,
        "console",
        "team",
        (400, 401, 403, 409),
    ),
    RestRoute(
        "GET",
        "/v1/members/invites",
        list_invites,
        "List pending invites.",
        200,
        None,
        "console",
        "team",
        _ADMIN,
    ),
    RestRoute(
        "PATCH",
        "/v1/members/{id}",
        change_role,
        "Change a member's role (owner only).",
        200,
        RoleBody,
        "console",
        "team",
        (400, 401, 403, 404, 409),
    ),
    RestRoute(
        "DELETE",
        "/v1/members/{id}",
        remove_member,
        "Remove a member.",
        204,
        None,
        "console",
        "team",
        (401, 403, 404, 409),
    ),
    RestRoute(
        "GET",
        "/v1/settings/org",
        get_org,
        "Get org details.",
        200,
        None,
        "console",
        "settings",
        _ADMIN,
    ),
    RestRoute(
        "PATCH",
        "/v1/settings/org",
        update_org,
        "Update the org's name or email.",
        200,
        OrgPatchBody,
        "console",
        "settings",
        (400, 401, 403),
    ),
    RestRoute(
        "DELETE",
        "/v1/settings/org",
        delete_org,
        "Delete the org and its metadata (owner only); its events are deleted by a job right "
        "after. Irreversible.",
        204,
        None,
        "console",
        "settings",
        _ADMIN,
    ),
    RestRoute(
        "GET",
        "/v1/billing/plans",
        list_plans,
        "List plan specs and feature flags.",
        200,
        None,
        "public",
        "billing",
    ),
    RestRoute(
        "POST",
        "/v1/events",
        ingest_events,
        "Ingest up to 10,000 events (admin or ingest key); answered once durable.",
        200,
        IngestBody,
        "any",
        "events",
        (400, 401, 402, 403, 413),
        transaction=False,
    ),
    RestRoute(
        "GET",
        "/v1/query",
        query,
        "Run an analytics query; meta carries the planner's proof.",
        200,
        None,
        "console",
        "query",
        (400, 401, 403),
    ),
    RestRoute(
        "POST",
        "/v1/query/adhoc",
        adhoc_query,
        "Run one read-only SELECT over the org's datasets (admin); 10 s, 10,000 rows and "
        "EMBAN_ADHOC_MAX_RESULT_BYTES at most, EMBAN_ADHOC_MAX_CONCURRENT_PER_ORG at once.",
        200,
        AdhocBody,
        "console",
        "query",
        (400, 401, 403, 429),
        transaction=False,
    ),
    RestRoute(
        "GET",
        "/v1/datasets",
        list_datasets,
        "Tables and rollups visible to the org: engine, org-scoped sizes, update time, columns.",
        200,
        None,
        "console",
        "datasets",
        _ADMIN,
    ),
    RestRoute(
        "GET",
        "/v1/datasets/{name}/ddl",
        dataset_ddl,
        "The CREATE statement of one dataset.",
        200,
        None,
        "console",
        "datasets",
        (401, 403, 404),
    ),
    RestRoute(
        "GET",
        "/v1/saved-queries",
        list_saved_queries,
        "List saved SQL snippets (any console user).",
        200,
        None,
        "console",
        "saved-queries",
        _ADMIN,
    ),
    RestRoute(
        "POST",
        "/v1/saved-queries",
        create_saved_query,
        "Save a SQL query (admin).",
        201,
        SavedQueryBody,
        "console",
        "saved-queries",
        (400, 401, 403),
    ),
    RestRoute(
        "PATCH",
        "/v1/saved-queries/{id}",
        update_saved_query,
        "Update name, SQL, dataset or starred state (admin).",
        200,
        SavedQueryPatchBody,
        "console",
        "saved-queries",
        (400, 401, 403, 404),
    ),
    RestRoute(
        "DELETE",
        "/v1/saved-queries/{id}",
        delete_saved_query,
        "Delete a saved query (admin).",
        204,
        None,
        "console",
        "saved-queries",
        (401, 403, 404),
    ),
    RestRoute(
        "GET",
        "/v1/usage",
        get_usage,
        "Events ingested and queries run per day for ?period= (default 30d), with the plan limit.",
        200,
        None,
        "console",
        "usage",
        (400, 401, 403),
    ),
    RestRoute(
        "GET",
        "/v1/onboarding/status",
        onboarding_status,
        "Onboarding progress: sample_only, real_events.",
        200,
        None,
        "console",
        "usage",
        _ADMIN,
    ),
    RestRoute(
        "GET",
        "/v1/audit",
        list_audit,
        "The last 100 audit entries, newest first.",
        200,
        None,
        "console",
        "audit",
        _ADMIN,
    ),
)


def _in_transaction(handler: Handler) -> Handler:
    async def run(request: web.Request) -> web.StreamResponse:
        async with transaction():
            return await handler(request)

    return run


def _all_routes() -> tuple[RestRoute, ...]:
    from emban.rest_compat.dashboard_routes import DASHBOARD_ROUTES
    from emban.rest_compat.discovery_routes import DISCOVERY_ROUTES
    from emban.rest_compat.embed_routes import EMBED_ROUTES
    from emban.rest_compat.environment_routes import ENVIRONMENT_ROUTES

    return (
        *CORE_ROUTES,
        *DASHBOARD_ROUTES,
        *EMBED_ROUTES,
        *DISCOVERY_ROUTES,
        *ENVIRONMENT_ROUTES,
    )


ROUTES: tuple[RestRoute, ...] = _all_routes()


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        handler = _in_transaction(route.handler) if route.transactional else route.handler
        app.router.add_route(route.method, route.path, handler)
