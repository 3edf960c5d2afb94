"""Request plumbing for ``/v1``: JSON bodies, the principal, errors rendered the spec's way."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from emban.auth.client_address import request_client_address
from emban.auth.principal import Principal
from emban.auth.tarpit import hold_refusal
from emban.caller import GRAPHQL_PATH, caller_of, charge_request
from emban.dependencies import dependency_failure
from emban.error_codes import RequestErrorCode
from emban.errors import (
    BadRequest,
    EmbanError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    TooManyAttempts,
)
from emban.metadata import refused_text
from emban.request_ids import current_request_id, request_id_of
from emban.runtime import RUNTIME_KEY, Runtime
from emban.wire import UNREADABLE_JSON, malformed_json

log = logging.getLogger("emban.http")

MAX_JSON_BODY = 1024 * 1024
MAX_INGEST_BODY = 10 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")

_AT_PATH = re.compile(r"at `\$\.?([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


def runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME_KEY]


def client_ip(request: web.Request) -> str | None:
    return request_client_address(request, runtime(request).settings.trusted_proxies)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data), status=status, content_type="application/json"
    )


async def read_body(request: web.Request, limit: int = MAX_JSON_BODY) -> bytes:
    """Read the body, refusing more than ``limit`` bytes with a 413 (before and while reading)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    # StreamReader.read(n) returns what has arrived so far (up to n), not n bytes: loop to EOF,
    # or a body sent in several chunks is cut short.
    body = bytearray()
    while len(body) <= limit:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    return bytes(body)


async def read_json_object(request: web.Request, limit: int = MAX_JSON_BODY) -> dict[str, Any]:
    """A JSON object of free shape (validated by the service, e.g. widget configs)."""
    body = await read_body(request, limit)
    try:
        value = msgspec.json.decode(body)
    except UNREADABLE_JSON as exc:
        raise malformed_json(exc, body) from None
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object", field="body")
    return value


async def parse_body(request: web.Request, model: type[T], limit: int = MAX_JSON_BODY) -> T:
    """Decode and type-check a JSON body; a 400 names the offending field."""
    body = await read_body(request, limit)
    if not body.strip():
        raise BadRequest("request body must be a JSON object", code=RequestErrorCode.invalid_json)
    try:
        return msgspec.json.decode(body, type=model)
    except msgspec.ValidationError as exc:
        message = str(exc)
        unknown = _UNKNOWN.search(message)
        if unknown:
            at = _AT_PATH.search(message)
            path = ".".join(p for p in (at.group(1) if at else "", unknown.group(1)) if p)
            raise BadRequest(f"{path} is not a known field", field=path) from None
        match = _MISSING.search(message) or _AT_PATH.search(message)
        field = match.group(1) if match else None
        if field:
            raise BadRequest(f"{field}: {message.split(' - at ')[0]}", field=field) from None
        raise BadRequest(message, code=RequestErrorCode.invalid_body) from None
    except (OverflowError, SystemError):
        raise BadRequest(
            "the body holds a number out of range", code=RequestErrorCode.invalid_body
        ) from None
    except UNREADABLE_JSON as exc:
        raise malformed_json(exc, body) from None


async def actor(request: web.Request, *, budgeted: bool = True) -> Principal:
    """The authenticated caller (resolved by ``caller_middleware``); 401 when the request carries
    no or bad credentials. Reading it spends one request of the caller's budget (429 beyond
    it), once per request, unless the route is ``budgeted=False`` (ingest)."""
    principal = caller_of(request).require()
    if budgeted:
        await charge_request(request, principal)
    return principal


def error_response(error: EmbanError) -> web.Response:
    """The error's JSON body; a 5xx one also carries the request's ``request_id``, so a report
    of it can be matched with the server's log line."""
    body = error.body()
    request_id = current_request_id.get()
    if error.status >= 500 and request_id is not None:
        body = {**body, "request_id": request_id}
    response = json_response(body, status=error.status)
    response.headers.update(error.headers())
    return response


def graphql_error_response(error: EmbanError) -> web.Response:
    """A refusal before any GraphQL field ran, in GraphQL's shape with the error's own status."""
    extensions = {"code": str(error.graphql_code), "reason": str(error.code), **error.extra}
    request_id = current_request_id.get()
    if error.status >= 500 and request_id is not None:
        extensions["request_id"] = request_id
    body = {"data": None, "errors": [{"message": error.message, "extensions": extensions}]}
    response = json_response(body, status=error.status)
    response.headers.update(error.headers())
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map EmbanError (and aiohttp's own 404/405/413) to the JSON error body; mask the rest.
    A refusal of the attempt limits (:class:`TooManyAttempts`) is sent after the tarpit's delay.

    Transactions are opened per route (see ``routes.add_routes``), not here.
    """
    try:
        return await handler(request)
    except TooManyAttempts as error:
        # An attempt limit's refusal waits before it is sent (auth/tarpit.py); with too many
        # waiting for this address it goes at once and the connection closes.
        response = error_response(error)
        rt = runtime(request)
        if not await hold_refusal(rt.tarpit, rt.settings, request, error.retry_after):
            response.force_close()
        return response
    except EmbanError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status == 404:
            return error_response(NotFound("no such route", code=RequestErrorCode.route_not_found))
        if exc.status == 405:
            response = error_response(
                MethodNotAllowed(f"{request.method} is not allowed on this route")
            )
            # RFC 9110 §15.5.6: a 405 must list the allowed methods.
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        if exc.status == 413:
            return error_response(PayloadTooLarge("request body is too large"))
        raise
    except Exception as exc:
        refused = refused_text(exc)
        if refused is not None:
            return error_response(refused)
        down = dependency_failure(exc)
        if down is not None:
            # Before the GraphQL view ran (resolving the caller needs the metadata database):
            # answered in GraphQL's shape on /graphql, as the view answers its own 429.
            if request.path == GRAPHQL_PATH:
                return graphql_error_response(down)
            return error_response(down)
        request_id = request_id_of(request)
        log.exception(
            "unexpected error request_id=%s %s %s", request_id, request.method, request.path
        )
        return json_response(
            {
                "error": "internal error",
                "code": RequestErrorCode.internal_error.value,
                "request_id": request_id,
            },
            status=500,
        )
