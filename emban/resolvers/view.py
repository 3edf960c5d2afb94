"""The aiohttp GraphQL view: builds the typed context, resolving the caller once."""

from __future__ import annotations

from aiohttp import web
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UnsetType

from emban.auth.cookies import SESSION_COOKIE
from emban.errors import EmbanError
from emban.resolvers.context import EmbanContext
from emban.runtime import RUNTIME_KEY
from emban.services import accounts


class EmbanGraphQLView(GraphQLView[EmbanContext, None]):
    async def get_context(
        self, request: web.Request, response: web.Response | web.WebSocketResponse
    ) -> EmbanContext:
        runtime = request.app[RUNTIME_KEY]
        http_response = response if isinstance(response, web.Response) else None
        try:
            principal = await accounts.authenticate(
                authorization=request.headers.get("Authorization"),
                session_cookie=request.cookies.get(SESSION_COOKIE),
                ip=request.remote,
            )
        except EmbanError as error:
            # An exception here would become a bare 500; resolvers that need a caller raise it.
            return EmbanContext(runtime, request, http_response, None, auth_error=error)
        return EmbanContext(runtime, request, http_response, principal)

    async def on_ws_connect(self, context: EmbanContext) -> UnsetType | dict[str, object] | None:
        """A live embed authenticates with ``connection_init`` ``{"token": "<embed token>"}``;
        anything else closes the socket with 4403."""
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
        context.principal = principal
        context.auth_error = None
        return None
