"""Who is calling: resolved once per request by :func:`caller_middleware`, read by both edges.

The middleware turns the request's credentials (``Authorization: Bearer`` with an API key or an
embed token, or the console session cookie) into a :class:`Caller` stored on the request; the
REST handlers (``rest_compat.http.actor``) and the GraphQL context (``resolvers.view``) read it
instead of each authenticating. Bad credentials are kept, not raised: a route that needs a caller
raises them, a public one (register, login, the GraphQL ``register`` mutation) still works with a
stale cookie.

The request budget is not spent here: which requests spend it is the edge's decision (REST
routes that read the caller, except ingest; every GraphQL HTTP request with a caller; a live
socket at ``connection_init``, with its token). :func:`charge_request` spends it at most once per
request.

Only the two edges' paths (``/v1/…`` and ``/graphql``) are resolved: the embed page, its assets
and ``/healthz`` never read a caller, so a browser holding a session cookie costs them no lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from emban.analytics.guarded import reading_org
from emban.auth.client_address import request_client_address
from emban.auth.cookies import SESSION_COOKIE
from emban.auth.principal import Principal
from emban.error_codes import AuthErrorCode
from emban.errors import EmbanError, Unauthenticated
from emban.runtime import RUNTIME_KEY
from emban.services import accounts, budgets

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

GRAPHQL_PATH = "/graphql"
REST_PREFIX = "/v1/"


@dataclass(frozen=True)
class Caller:
    """The resolved credentials of one request: a principal, none, or the error they raised."""

    principal: Principal | None
    error: EmbanError | None = None

    def require(self) -> Principal:
        """The principal, else the credentials' error, else 401 ``unauthenticated``."""
        if self.error is not None:
            raise self.error
        if self.principal is None:
            raise Unauthenticated("authentication required", code=AuthErrorCode.unauthenticated)
        return self.principal


CALLER_KEY: web.RequestKey[Caller] = web.RequestKey("emban.caller")
_CHARGED_KEY: web.RequestKey[bool] = web.RequestKey("emban.caller.charged")


def reads_caller(request: web.Request) -> bool:
    """Whether the request goes to an edge that reads the caller."""
    return request.path == GRAPHQL_PATH or request.path.startswith(REST_PREFIX)


async def resolve_caller(request: web.Request) -> Caller:
    """Authenticate the request's credentials; an :class:`EmbanError` is kept in the answer."""
    runtime = request.app[RUNTIME_KEY]
    try:
        principal = await accounts.authenticate(
            authorization=request.headers.get("Authorization"),
            session_cookie=request.cookies.get(SESSION_COOKIE),
            ip=request_client_address(request, runtime.settings.trusted_proxies),
            api_keys=runtime.api_keys,
        )
    except EmbanError as error:
        return Caller(None, error)
    return Caller(principal)


@web.middleware
async def caller_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller once, before the handler, for the REST and GraphQL edges."""
    if not reads_caller(request):
        return await handler(request)
    caller = request[CALLER_KEY] = await resolve_caller(request)
    # This request's reads wait for its own org's ingest only; reset after, since requests of
    # one keep-alive connection run in one task and would otherwise inherit it.
    token = reading_org.set(caller.principal.org_id if caller.principal is not None else None)
    try:
        return await handler(request)
    finally:
        reading_org.reset(token)


def caller_of(request: web.Request) -> Caller:
    """The caller :func:`caller_middleware` resolved for this request."""
    return request[CALLER_KEY]


async def charge_request(request: web.Request, principal: Principal) -> None:
    """Spend one request of ``principal``'s budget (429 beyond it), at most once per request."""
    if request.get(_CHARGED_KEY):
        return
    request[_CHARGED_KEY] = True
    await budgets.charge_request(request.app[RUNTIME_KEY], principal)
