"""The aiohttp GraphQL view: builds the typed context, resolving the caller once."""

from __future__ import annotations

import msgspec
from aiohttp import web
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UnsetType

from emban.auth.client_address import request_client_address
from emban.auth.cookies import SESSION_COOKIE
from emban.auth.principal import Principal
from emban.errors import EmbanError, RateLimited
from emban.resolvers.context import EmbanContext
from emban.resolvers.schema import error_extensions
from emban.runtime import RUNTIME_KEY
from emban.services import accounts, budgets

# graphql-transport-ws close code for a socket refused by the request budget (4xxx: application).
WS_RATE_LIMITED = 4429

_CALLER_KEY: web.RequestKey[tuple[Principal | None, EmbanError | None]] = web.RequestKey(
    "emban.graphql.caller"
)


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def _caller(request: web.Request) -> tuple[Principal | None, EmbanError | None]:
    """Authenticate once per request and, for an HTTP request, spend one request of the caller's
    budget. An error is kept, not raised: resolvers that need a caller raise it, public ones
    (register, login) still work with a stale cookie."""
    if _CALLER_KEY not in request:
        runtime = request.app[RUNTIME_KEY]
        try:
            principal = await accounts.authenticate(
                authorization=request.headers.get("Authorization"),
                session_cookie=request.cookies.get(SESSION_COOKIE),
                ip=request_client_address(request, runtime.settings.trusted_proxies),
            )
            # A socket spends its budget at connection_init (on_ws_connect), with its token.
            if principal is not None and not _is_websocket(request):
                await budgets.charge_request(runtime, principal)
            request[_CALLER_KEY] = (principal, None)
        except EmbanError as error:
            request[_CALLER_KEY] = (None, error)
    return request[_CALLER_KEY]


class EmbanGraphQLView(GraphQLView[EmbanContext, None]):
    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """Over budget: 429 with Retry-After and the error in GraphQL shape; nothing executes."""
        if not _is_websocket(request):
            _, error = await _caller(request)
            if isinstance(error, RateLimited):
                body = {
                    "data": None,
                    "errors": [{"message": error.message, "extensions": error_extensions(error)}],
                }
                return web.Response(
                    body=msgspec.json.encode(body),
                    status=error.status,
                    headers=error.headers(),
                    content_type="application/json",
                )
        return await super().__call__(request)

    async def get_context(
        self, request: web.Request, response: web.Response | web.WebSocketResponse
    ) -> EmbanContext:
        runtime = request.app[RUNTIME_KEY]
        http_response = response if isinstance(response, web.Response) else None
        websocket = response if isinstance(response, web.WebSocketResponse) else None
        principal, error = await _caller(request)
        return EmbanContext(
            runtime, request, http_response, principal, auth_error=error, websocket=websocket
        )

    async def on_ws_connect(self, context: EmbanContext) -> UnsetType | dict[str, object] | None:
        """A live embed authenticates with ``connection_init`` ``{"token": "<embed token>"}``;
        anything else closes the socket with 4403, and a token over its request budget with
        4429 ``rate_limited`` (a socket spends one request of the budget)."""
        token = (context.connection_params or {}).get("token")
        if not isinstance(token, str) or not token:
            raise ConnectionRejectionError({"reason": "embed token required"})
        try:
            principal = await accounts.authenticate(
                authorization=f"Bearer {token}", session_cookie=None, ip=context.ip
            )
        except EmbanError as error:
            raise ConnectionRejectionError({"reason": error.code}) from None
        if principal is None or principal.kind != "embed":
            raise ConnectionRejectionError({"reason": "embed token required"})
        try:
            await budgets.charge_request(context.runtime, principal)
        except RateLimited as error:
            if context.websocket is not None:
                await context.websocket.close(code=WS_RATE_LIMITED, message=error.code.encode())
            raise ConnectionRejectionError({"reason": error.code}) from None
        context.principal = principal
        context.auth_error = None
        return None
