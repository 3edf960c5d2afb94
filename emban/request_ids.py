"""One id per HTTP request: in every log record written while serving it, in the ``X-Request-Id``
response header, and in every 5xx body (REST ``request_id``, GraphQL ``extensions.request_id``).

An incoming ``X-Request-Id`` (set by a load balancer or the client) is kept when it is short and
plain — at most 64 characters of ``[A-Za-z0-9._-]`` — so one id follows the request through the
proxy's logs and ours; anything else is replaced by a fresh id (it would otherwise put arbitrary
text into log lines and headers).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from aiohttp import web

HEADER = "X-Request-Id"
_SAFE = re.compile(r"[A-Za-z0-9._-]{1,64}")

# The id of the request being served; None outside a request (jobs, startup). Tasks started while
# serving a request copy it, so their log lines carry it too.
current_request_id: ContextVar[str | None] = ContextVar("emban_request_id", default=None)

REQUEST_ID_KEY: web.RequestKey[str] = web.RequestKey("emban.request_id")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_request_id() -> str:
    return secrets.token_hex(8)


def accepted_request_id(incoming: str | None) -> str:
    """``incoming`` when it is a safe id, else a new one."""
    if incoming is not None and _SAFE.fullmatch(incoming):
        return incoming
    return new_request_id()


def request_id_of(request: web.Request) -> str:
    """The request's id (assigned by :func:`request_id_middleware`; a new one if it did not)."""
    request_id = request.get(REQUEST_ID_KEY)
    if request_id is None:
        request_id = request[REQUEST_ID_KEY] = new_request_id()
    return request_id


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Assign the id and make it current for the request's log records (outermost middleware)."""
    request_id = accepted_request_id(request.headers.get(HEADER))
    request[REQUEST_ID_KEY] = request_id
    token = current_request_id.set(request_id)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        exc.headers[HEADER] = request_id
        raise
    finally:
        current_request_id.reset(token)


async def add_request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the header on every response, including streamed ones and the
    websocket upgrade (their headers are sent before the handler returns)."""
    request_id = request.get(REQUEST_ID_KEY)
    if request_id is not None:
        response.headers[HEADER] = request_id
