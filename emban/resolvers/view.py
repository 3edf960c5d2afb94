"""The aiohttp GraphQL view: builds the typed context, resolving the caller once.

Live embeds speak graphql-transport-ws only (the legacy ``graphql-ws`` protocol is not offered),
through :class:`LiveSocketHandler`, which keeps checking the embed token for as long as the
socket is open:

- ``connection_init`` with a bad, expired or revoked token closes the socket with 4403 and the
  error's code as the reason (``embed_token_invalid``, ``embed_token_expired``,
  ``embed_token_revoked``);
- a token that already holds ``EMBAN_LIVE_MAX_SOCKETS_PER_TOKEN`` sockets: 4429
  ``too_many_sockets``;
- at the token's ``exp`` the socket closes with 4403 ``embed_token_expired`` (a timer, not a
  poll), and a ``subscribe`` after it — or after a revocation — closes it the same way;
- a revocation closes the token's sockets in every process (4403 ``embed_token_revoked``, see
  :mod:`emban.live.sockets`);
- a ``subscribe`` beyond ``EMBAN_LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET`` operations is answered with
  an ``error`` message whose ``extensions.code`` is ``too_many_subscriptions``; the socket stays;
- a socket that does not read its pushes (its send buffer over
  ``EMBAN_LIVE_MAX_SOCKET_BUFFER_BYTES``, or its queue full) closes with 1013 ``viewer_too_slow``.

``embedLive`` pushes after the snapshot are written as shared, pre-encoded frames (see
:mod:`emban.resolvers.live_frames`); for that the sockets are not compressed (permessage-deflate
keeps one compressor state per socket, so no two sockets could share bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import msgspec
from aiohttp import web
from cross_web import HTTPException
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult
from strawberry.types.unset import UnsetType

from emban.auth.cross_site import normalize_origin, own_origins
from emban.auth.principal import Principal
from emban.auth.tarpit import hold_refusal
from emban.background_tasks import TaskSet
from emban.caller import CALLER_KEY, Caller, caller_of, charge_request
from emban.error_codes import AuthErrorCode, EmbedErrorCode, LiveErrorCode, RequestErrorCode
from emban.errors import EmbanError, RateLimited, TooManyAttempts, TooManySubscriptions
from emban.graphiql_page import graphiql_page
from emban.resolvers.context import EmbanContext
from emban.resolvers.live_frames import close_or_reset, enter_operation
from emban.resolvers.media_types import Negotiated, is_request_error, negotiate
from emban.resolvers.schema import error_extensions
from emban.runtime import RUNTIME_KEY
from emban.services import accounts, budgets, embed_revocations

FORBIDDEN = 4403
TOO_MANY = 4429
EXPIRED = EmbedErrorCode.embed_token_expired


def _now() -> float:
    """The clock expiry is compared with (a function, so a test can move it)."""
    return time.time()


class LiveSocketHandler(BaseGraphQLTransportWSHandler[EmbanContext, None]):
    context: EmbanContext
    _socket_id: str | None = None
    _tracked: str | None = None
    _expiry: asyncio.Task[None] | None = None
    _closers: TaskSet | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        # Strawberry closes every rejection with 4403 "Forbidden"; the same checks are made here
        # so the reason names the error, then the socket is counted and its expiry scheduled.
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload", {})
        if not isinstance(payload, dict):
            await self.websocket.close(code=4400, reason="Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.websocket.close(code=4429, reason="Too many initialisation requests")
            return
        self.connection_init_received = True
        self.context.connection_params = payload
        try:
            await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as rejection:
            reason = rejection.payload.get("reason")
            code = rejection.payload.get("close_code", FORBIDDEN)
            await self.websocket.close(
                code=code if isinstance(code, int) else FORBIDDEN,
                reason=reason if isinstance(reason, str) else "Forbidden",
            )
            return
        principal = self.context.actor()
        self._tracked = self.context.runtime.live.sockets.track(self._close)
        if principal.embed is None:  # a console socket (alert events): no token to expire
            await self.send_message({"type": "connection_ack"})
            self.connection_acknowledged = True
            return
        sockets = self.context.runtime.live.sockets
        self._socket_id = await sockets.open(principal.environment_id, principal.embed, self._close)
        if self._socket_id is None:
            await self.websocket.close(code=TOO_MANY, reason=LiveErrorCode.too_many_sockets.value)
            return
        self._expiry = asyncio.create_task(self._expire(principal.embed.expires_at))
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True

    async def _expire(self, expires_at: int) -> None:
        await asyncio.sleep(max(0.0, expires_at - _now()))
        # A timer may fire a hair early; never close before exp itself.
        await asyncio.sleep(max(0.0, expires_at - _now()))
        # Closing ends the handler, whose shutdown cancels this task: shield the close itself.
        await asyncio.shield(self._close(FORBIDDEN, EXPIRED.value))

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):  # already closing or closed
            await self.websocket.close(code=code, reason=reason)

    def close_soon(self, code: int, reason: str) -> None:
        """Close from synchronous code (the hub's fan-out); reset the connection if the close
        frame cannot get out within the grace period (a peer that stopped reading)."""
        transport = self.websocket.request.transport  # type: ignore[attr-defined]
        if self._closers is None:
            self._closers = TaskSet()
        self._closers.spawn(close_or_reset(lambda: self._close(code, reason), transport))

    async def run_operation(self, operation: Operation[EmbanContext, None]) -> None:
        # This coroutine is the operation's task: what it sets is seen by its resolver only.
        enter_operation(self, operation)
        await super().run_operation(operation)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged:
            refusal = await self._token_refusal()
            if refusal is not None:
                await self._close(FORBIDDEN, refusal)
                return
            limit = self.context.runtime.settings.live_max_subscriptions_per_socket
            if message["id"] not in self.operations and len(self.operations) >= limit:
                error = TooManySubscriptions(
                    f"at most {limit} subscriptions per socket", limit=limit
                )
                extensions = error_extensions(error)
                await self.send_message(
                    {
                        "id": message["id"],
                        "type": "error",
                        "payload": [{"message": error.message, "extensions": extensions}],
                    }
                )
                return
        await super().handle_subscribe(message)

    async def _token_refusal(self) -> str | None:
        """Why the socket's token may no longer subscribe (expired, revoked), or None."""
        principal = self.context.actor()
        if principal.embed is None:
            return None
        if principal.embed.expires_at <= _now():
            return EXPIRED
        try:
            await embed_revocations.check_not_revoked(principal)
        except EmbanError as error:
            return error.code
        return None

    async def shutdown(self) -> None:
        if self._tracked is not None:
            self.context.runtime.live.sockets.untrack(self._tracked)
            self._tracked = None
        if self._expiry is not None:
            self._expiry.cancel()
        if self._socket_id is not None:
            await self.context.runtime.live.sockets.release(self._socket_id)
            self._socket_id = None
        await super().shutdown()


_NEGOTIATED_KEY: web.RequestKey[Negotiated] = web.RequestKey("emban.graphql.negotiated")
_NEGOTIATED_RESPONSE_KEY: web.ResponseKey[Negotiated] = web.ResponseKey("emban.graphql.negotiated")


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def _caller(request: web.Request) -> Caller:
    """The caller ``caller_middleware`` resolved; an HTTP request with one spends one request of
    its budget (a socket spends it at connection_init, in on_ws_connect, with its token). A
    budget refusal becomes the caller's error. Errors are kept, not raised: resolvers that need a
    caller raise them, public ones (register, login) still work with a stale cookie."""
    caller = caller_of(request)
    if caller.principal is not None and not _is_websocket(request):
        try:
            await charge_request(request, caller.principal)
        except RateLimited as error:
            caller = Caller(None, error)
            request[CALLER_KEY] = caller
    return caller


class EmbanGraphQLView(GraphQLView[EmbanContext, None]):
    graphql_transport_ws_handler_class = LiveSocketHandler

    def __init__(self, schema: BaseSchema, **options: Any) -> None:
        # graphql-transport-ws only: a second protocol would bypass LiveSocketHandler's checks.
        options.setdefault("subscription_protocols", (GRAPHQL_TRANSPORT_WS_PROTOCOL,))
        # LiveSocketHandler applies EMBAN_LIVE_MAX_SUBSCRIPTIONS_PER_SOCKET, with a code.
        options.setdefault("max_subscriptions_per_connection", None)
        super().__init__(schema, **options)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """Over budget: 429 with Retry-After and the error in GraphQL shape; nothing executes."""
        if not _is_websocket(request):
            error = (await _caller(request)).error
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

    def is_websocket_origin_allowed(self, request: web.Request, origin: str) -> bool:
        """A socket opened by a page on another site is refused (403) before the handshake:
        the browser attaches the session cookie to the upgrade, and a console socket
        authenticates with it (cross-site WebSocket hijacking). Strawberry accepts requests
        without ``Origin``, with ``Sec-Fetch-Site: same-origin`` and with an ``Origin`` whose
        host is the ``Host`` header; this hook, asked about every other origin, also accepts
        the server's own origins as :mod:`emban.auth.cross_site` computes them (behind a
        trusted proxy that rewrites ``Host``; ``EMBAN_PUBLIC_URL``). No other site may open
        one: the embed runtime's socket comes from the iframe, which is on this origin."""
        normalized = normalize_origin(origin)
        settings = request.app[RUNTIME_KEY].settings
        return normalized is not None and normalized in own_origins(request, settings)

    def encode_json(self, data: object) -> str:
        """The response body and every socket message, by msgspec (several times faster than
        json.dumps; the same JSON but for non-ASCII characters, sent as UTF-8 rather than
        ``\\u`` escapes). Text, not bytes: strawberry sends bytes on a socket as a binary frame,
        which graphql-transport-ws clients refuse. Values msgspec refuses (an integer beyond 64
        bits inside a JSON scalar) take json.dumps, as before."""
        try:
            return msgspec.json.encode(data).decode()
        except (TypeError, OverflowError):
            return json.dumps(data, separators=(",", ":"))

    def decode_json(self, data: str | bytes) -> object:
        """The request body: a JSON object (or a batch list). Anything the parser cannot read —
        nesting past its recursion limit, bytes that are not UTF-8, integers over the 4,300-digit
        limit — or a body that is null, a number or a string is a 400, never a 500."""
        try:
            value = json.loads(data)
        except (RecursionError, UnicodeDecodeError, ValueError):
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        if not isinstance(value, dict | list):
            raise HTTPException(400, "The request body must be a JSON object")
        for request in value if isinstance(value, list) else [value]:
            _check_parameter_types(request)
        return value

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        """GraphiQL from this package's own bundle (strawberry's page loads it from a CDN)."""
        return graphiql_page(request)

    async def get_sub_response(self, request: web.Request) -> web.Response:
        # The media type is chosen before execution; process_result records a request error
        # on the same object, create_response reads both (it sees only the sub-response).
        negotiated = Negotiated(negotiate(request.headers.get("Accept")))
        request[_NEGOTIATED_KEY] = negotiated
        response = web.Response()
        response[_NEGOTIATED_RESPONSE_KEY] = negotiated
        return response

    async def process_result(
        self, request: web.Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        negotiated = request.get(_NEGOTIATED_KEY)
        if negotiated is not None and is_request_error(result.data, result.errors):
            negotiated.request_error = True
            if negotiated.status == 400:
                processed.pop("data", None)  # a request error never started executing
        if negotiated is not None:
            for error in result.errors or ():
                extensions = error.extensions or {}
                if extensions.get("reason") == RequestErrorCode.unavailable:
                    negotiated.unavailable_retry_after = int(extensions["retry_after"])
        refused = next(
            (
                error.original_error
                for error in result.errors or ()
                if isinstance(error.original_error, TooManyAttempts)
            ),
            None,
        )
        if refused is not None:
            # A login, register or acceptInvite refused by its attempt limit: the answer waits,
            # as on REST (auth/tarpit.py), once per result however many fields were refused.
            runtime = request.app[RUNTIME_KEY]
            held = await hold_refusal(
                runtime.tarpit, runtime.settings, request, refused.retry_after
            )
            if not held and negotiated is not None:
                negotiated.close_connection = True
        return processed

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: web.Response,
    ) -> web.Response:
        response = super().create_response(response_data, sub_response)
        negotiated = sub_response.get(_NEGOTIATED_RESPONSE_KEY)
        if negotiated is not None and not isinstance(response_data, list):
            response.content_type = negotiated.media_type
            if response.status == 200:
                response.set_status(negotiated.status)
            if negotiated.unavailable_retry_after is not None:
                response.headers["Retry-After"] = str(negotiated.unavailable_retry_after)
            if negotiated.close_connection:
                response.force_close()
        return response

    async def get_context(
        self, request: web.Request, response: web.Response | web.WebSocketResponse
    ) -> EmbanContext:
        runtime = request.app[RUNTIME_KEY]
        http_response = response if isinstance(response, web.Response) else None
        caller = await _caller(request)
        return EmbanContext(
            runtime, request, http_response, caller.principal, auth_error=caller.error
        )

    async def create_websocket_response(
        self, request: web.Request, subprotocol: str | None
    ) -> web.WebSocketResponse:
        # Uncompressed: live pushes share one encoded frame between sockets (see module doc).
        ws = web.WebSocketResponse(protocols=[subprotocol] if subprotocol else [], compress=False)
        await ws.prepare(request)
        return ws

    async def on_ws_connect(self, context: EmbanContext) -> UnsetType | dict[str, object] | None:
        """Who a socket is: a live embed sends ``connection_init`` ``{"token": "<embed
        token>"}``; a console user (``Subscription.alertEvents``) relies on the session cookie
        of the upgrade request or sends ``{"authorization": "Bearer <admin key>"}``. Anything
        else closes the socket with 4403, and a caller over its request budget with 4429
        ``rate_limited`` (a socket spends one request of the budget)."""
        params = context.connection_params or {}
        token = params.get("token")
        authorization = params.get("authorization")
        if isinstance(token, str) and token:
            principal = await self._authenticate(context, f"Bearer {token}")
            if principal is None or principal.kind != "embed":
                raise ConnectionRejectionError(
                    {"reason": EmbedErrorCode.embed_token_required.value}
                )
        elif isinstance(authorization, str) and authorization:
            principal = await self._authenticate(context, authorization)
            if principal is None or principal.kind == "embed":
                raise ConnectionRejectionError({"reason": AuthErrorCode.unauthenticated.value})
            if principal.scope == "ingest":
                raise ConnectionRejectionError({"reason": AuthErrorCode.insufficient_scope.value})
        elif context.principal is not None and context.principal.kind == "session":
            principal = context.principal
        else:
            raise ConnectionRejectionError({"reason": EmbedErrorCode.embed_token_required.value})
        try:
            await budgets.charge_request(context.runtime, principal)
        except RateLimited as error:
            raise ConnectionRejectionError({"reason": error.code, "close_code": TOO_MANY}) from None
        context.principal = principal
        context.auth_error = None
        return None

    async def _authenticate(self, context: EmbanContext, authorization: str) -> Principal | None:
        try:
            return await accounts.authenticate(
                authorization=authorization,
                session_cookie=None,
                ip=context.ip,
                api_keys=context.runtime.api_keys,
            )
        except EmbanError as error:
            raise ConnectionRejectionError({"reason": error.code}) from None


# GraphQL over HTTP (§ "Request parameters"): query and operationName are strings, variables
# and extensions maps; each may be absent or null. Any other type is a 400 before anything runs
# (graphql-http audits 6C00-6C03).
_PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "query": (str,),
    "operationName": (str,),
    "variables": (dict,),
    "extensions": (dict,),
}


def _check_parameter_types(request: object) -> None:
    if not isinstance(request, dict):
        raise HTTPException(400, "Each request in a batch must be a JSON object")
    for name, types in _PARAMETER_TYPES.items():
        value = request.get(name)
        if value is not None and not isinstance(value, types):
            expected = "a string" if types == (str,) else "an object"
            raise HTTPException(400, f"The {name} parameter must be {expected} or null")
