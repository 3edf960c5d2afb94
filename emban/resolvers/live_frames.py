"""Shared frames for ``Subscription.embedLive``: one encoding per cohort, the same bytes to every
socket.

Strawberry runs a subscription per socket: each pushed event is executed against the socket's
selection set, turned into a ``next`` message and JSON-encoded, once per subscriber — with 1,000
viewers that was most of the server's CPU per refresh. Pushes after a viewer's snapshot skip it:

- :class:`LiveOperation` is the graphql-transport-ws operation an ``embedLive`` resolver runs in
  (``LiveSocketHandler`` sets it around each operation task). Its :meth:`~LiveOperation.write` is
  the cohort viewer's writer (:class:`emban.live.hub.LiveViewer`): the hub calls it for every
  push, synchronously, inside the broadcast loop.
- The ``payload`` of the push — ``{"data": …}``, the result of executing the socket's own
  document on the event, with graphql-core's executor as Strawberry does — is computed once per
  (push, query text, variables, operation name) and cached on the push, which the hub shares
  between the viewers of one cohort only. The websocket frame (``{"id":…,"type":"next",
  "payload":…}`` with its header) is cached per operation id too: the runtime's sockets all use
  id ``"1"``, so a cohort usually encodes one frame per push.
- The frame is written straight to the socket's transport (uncompressed text frames are written
  the same way by aiohttp, whole and synchronously, so frames never interleave). A socket whose
  transport buffer already holds ``EMBAN_LIVE_MAX_SOCKET_BUFFER_BYTES`` is closed with 1013
  ``viewer_too_slow`` (the runtime reconnects on every code but 4403 and gets a fresh snapshot):
  one slow reader never holds up the fan-out nor makes the process buffer without bound.

Anything unusual goes the ordinary way: a push whose execution reports errors or needs to await
is declined, so the hub queues it and Strawberry sends it. The wire stays what Strawberry
sends; ``tests/live/test_live_frames.py`` compares the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import msgspec
from graphql import DocumentNode, parse
from graphql.execution import Executor, execute_subscription_event
from graphql.execution.executor_throwing_on_incremental import ExecutorThrowingOnIncremental

from emban.error_codes import LiveErrorCode
from emban.live.hub import Push

if TYPE_CHECKING:
    from asyncio import BaseTransport

    from aiohttp.web import WebSocketResponse
    from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation

    from emban.resolvers.view import LiveSocketHandler

log = logging.getLogger("emban.live")

TRY_AGAIN_LATER = 1013  # RFC 6455: the server is overloaded, reconnect later
CLOSE_GRACE_SECONDS = 5.0  # a closing handshake stuck behind a full buffer: then the TCP reset


@lru_cache(maxsize=256)
def _document(query: str) -> DocumentNode:
    return parse(query)


def ws_text_frame(payload: bytes) -> bytes:
    """A whole, final, unmasked (server to client) text frame."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


class LiveOperation:
    """One ``embedLive`` operation on one socket: writes the cohort's shared frames to it."""

    def __init__(
        self,
        handler: LiveSocketHandler,
        operation: Operation[Any, None],
        event_of: Callable[[dict[str, Any]], object],
    ) -> None:
        self._handler = handler
        self._operation = operation
        self._ws: WebSocketResponse = handler.websocket.ws  # type: ignore[attr-defined]
        self._id = operation_id = operation.id
        self._query = query = operation.query
        self._variables = variables = operation.variables
        self._operation_name = operation_name = operation.operation_name
        self._event_of = event_of
        self._max_buffer = handler.context.runtime.settings.live_max_socket_buffer_bytes
        self._executor: Executor[Any] | None = None
        self._payload_key: Hashable = (
            "payload",
            query,
            msgspec.json.encode(variables, order="sorted"),
            operation_name,
        )
        self._frame_key: Hashable = (self._payload_key, operation_id)
        self._closing = False

    @property
    def _transport(self) -> BaseTransport | None:
        return self._handler.websocket.request.transport  # type: ignore[attr-defined,no-any-return]

    def write(self, push: Push) -> bool:
        """The viewer's writer: ``False`` declines the push (Strawberry then sends it)."""
        transport = self._transport
        if self._closing or self._ws.closed or transport is None or transport.is_closing():
            return True  # the socket is going away: nothing to send
        if self._handler.operations.get(self._id) is not self._operation:
            return True  # completed (its task is being cancelled); the id may be reused already
        if transport.get_write_buffer_size() > self._max_buffer:  # type: ignore[attr-defined]
            self.too_slow()
            return True
        frame = push.frames.get(self._frame_key)
        if frame is None:
            payload = push.frames.get(self._payload_key)
            if payload is None:
                payload = self._payload(push)
                if payload is None:
                    return False
                push.frames[self._payload_key] = payload
            frame = ws_text_frame(
                b'{"id":'
                + msgspec.json.encode(self._id)
                + b',"type":"next","payload":'
                + payload
                + b"}"
            )
            push.frames[self._frame_key] = frame
        transport.write(frame)  # type: ignore[attr-defined]
        return True

    def _payload(self, push: Push) -> bytes | None:
        """``{"data": …}`` of this operation's document executed on the push, or ``None`` when it
        is not a plain synchronous success (then Strawberry's own path handles it)."""
        if self._executor is None:
            built = ExecutorThrowingOnIncremental.build(
                self._handler.schema._schema,  # type: ignore[attr-defined]
                _document(self._query),
                context_value=self._handler.context,
                raw_variable_values=self._variables,
                operation_name=self._operation_name,
            )
            if isinstance(built, list):
                return None
            self._executor = built
        per_event = self._executor.build_per_event_executor(self._event_of(push.update))
        result = execute_subscription_event(per_event)
        if self._executor.is_awaitable(result):
            with contextlib.suppress(Exception):
                result.close()  # type: ignore[attr-defined]
            return None
        if result.errors or result.data is None:  # type: ignore[union-attr]
            return None
        return msgspec.json.encode({"data": result.data})  # type: ignore[union-attr]

    def too_slow(self) -> None:
        """Close the socket (1013 ``viewer_too_slow``); reset it if the close cannot get out."""
        if self._closing:
            return
        self._closing = True
        log.info("closing a live socket that does not read its pushes")
        self._handler.close_soon(TRY_AGAIN_LATER, LiveErrorCode.viewer_too_slow.value)


_Running = tuple["LiveSocketHandler", "Operation[Any, None]"]
_RUNNING: ContextVar[_Running | None] = ContextVar("emban_live_operation", default=None)


def enter_operation(handler: LiveSocketHandler, operation: Operation[Any, None]) -> None:
    """Called at the top of the operation's own task (so only that task's context sees it)."""
    _RUNNING.set((handler, operation))


def live_operation(event_of: Callable[[dict[str, Any]], object]) -> LiveOperation | None:
    """The live operation the running resolver belongs to (None outside a live socket), whose
    events are ``event_of(update)``."""
    running = _RUNNING.get()
    if running is None:
        return None
    return LiveOperation(*running, event_of=event_of)


async def close_or_reset(close: Callable[[], Any], transport: BaseTransport | None) -> None:
    """Send the close frame; a peer that does not read may never let it out: reset then."""
    try:
        await asyncio.wait_for(close(), CLOSE_GRACE_SECONDS)
    except (TimeoutError, Exception):
        if transport is not None and not transport.is_closing():
            transport.abort()  # type: ignore[attr-defined]
