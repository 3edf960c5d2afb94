"""``GET /metrics`` and the middleware that counts HTTP requests.

Access (docs/operations.md, "Metrics and logs"):

- with ``EMBAN_METRICS_TOKEN`` set, the request must carry ``Authorization: Bearer <token>``
  (compared in constant time); otherwise 401 ``unauthenticated`` in the API's error shape;
- without it, only loopback clients (127.0.0.0/8, ::1) are answered, judged from the socket peer
  (``X-Forwarded-For`` only through ``EMBAN_TRUSTED_PROXIES``, like every per-IP rule); anyone
  else gets 403 ``forbidden`` naming the setting. 403 rather than 404: the refusal is a
  configuration matter an operator should be able to see, and the route's existence is no secret
  (it is documented).

The route is outside ``/v1`` and ``/graphql``: no caller is resolved and no request budget spent.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from collections.abc import Awaitable, Callable, Sequence

import msgspec
from aiohttp import web
from aiohttp.typedefs import Middleware

from emban.auth.client_address import client_address
from emban.error_codes import AuthErrorCode, RequestErrorCode
from emban.errors import EmbanError, Forbidden, Unauthenticated
from emban.metrics import CONTENT_TYPE, UNMATCHED_ROUTE, Metrics
from emban.request_ids import add_request_id_header, request_id_middleware
from emban.settings import IPNetwork, Settings

METRICS_PATH = "/metrics"
CLIENT_CLOSED = 499  # nginx's status for a request whose client left before the answer
# Any other method (aiohttp accepts any token) is labelled "other": one series, not one per token.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
METRICS_KEY = web.AppKey("metrics", Metrics)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_loopback(address: str | None) -> bool:
    if address is None:
        return False
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_access(
    request: web.Request, token: str | None, trusted_proxies: Sequence[IPNetwork]
) -> None:
    """Raise the refusal of a scrape that may not read the metrics (see the module docstring)."""
    if token is not None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise Unauthenticated(
                "GET /metrics requires Authorization: Bearer <EMBAN_METRICS_TOKEN>",
                code=AuthErrorCode.unauthenticated,
            )
        return
    peer = client_address(request.remote, request.headers.get("X-Forwarded-For"), trusted_proxies)
    if not _is_loopback(peer):
        raise Forbidden(
            "metrics are served to loopback clients only; set EMBAN_METRICS_TOKEN to scrape "
            "from elsewhere",
            code=RequestErrorCode.forbidden,
        )


def metrics_handler(
    metrics: Metrics, token: str | None, trusted_proxies: Sequence[IPNetwork]
) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        try:
            check_access(request, token, trusted_proxies)
        except EmbanError as error:
            # Rendered here, not by error_middleware: the worker's metrics server has none.
            return web.Response(
                body=msgspec.json.encode(error.body()),
                status=error.status,
                content_type="application/json",
            )
        response = web.Response(body=metrics.exposition())
        # Set whole: aiohttp's content_type= would drop the format's version parameter.
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    return handler


def route_label(request: web.Request) -> str:
    """The route template (``/v1/dashboards/{id}``); never the raw path (cardinality)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def metrics_middleware(metrics: Metrics) -> Middleware:
    """Count every answered request by method, route and status, and time it (websocket
    upgrades are counted, not timed: their duration is the socket's lifetime)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        timed = True
        try:
            response = await handler(request)
            status = response.status
            timed = not isinstance(response, web.WebSocketResponse)
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED  # the client went away (or the server is stopping)
            raise
        finally:
            route = route_label(request)
            method = request.method if request.method in METHODS else "other"
            metrics.http_requests.labels(method, route, str(status)).inc()
            if timed:
                metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)

    return middleware


async def serve_metrics(
    metrics: Metrics, settings: Settings, host: str, port: int
) -> web.AppRunner:
    """``emban worker``'s own ``GET /metrics`` (it has no API port), with the same access rules
    and request ids; the caller cleans the runner up at shutdown."""
    app = web.Application(middlewares=[request_id_middleware])
    app.on_response_prepare.append(add_request_id_header)
    app.router.add_get(
        METRICS_PATH, metrics_handler(metrics, settings.metrics_token, settings.trusted_proxies)
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
