"""Security headers on every response: JSON, errors, GraphQL, static files, pages, redirects.

Set in ``on_response_prepare`` rather than in a middleware, so responses no middleware sees get
them too: aiohttp's own error pages, ``FileResponse`` (including its 304s) and the websocket
upgrade. A header the handler already set wins (the embed page's ``Referrer-Policy:
no-referrer`` and its ``frame-ancestors`` policy; the GraphiQL and demo pages' own CSP).

- ``X-Content-Type-Options: nosniff``: a JSON answer holding user text is never sniffed into
  HTML or script.
- ``Referrer-Policy: strict-origin-when-cross-origin``: other sites learn at most the origin. Not
  ``no-referrer`` everywhere: under that policy a browser sends ``Origin: null`` with a page's
  form posts, which the cross-site check (:mod:`emban.auth.cross_site`) would refuse from
  browsers that do not send ``Sec-Fetch-Site``. The embed page keeps ``no-referrer`` (its URL
  holds the token) and sends no form posts.
- Framing: ``X-Frame-Options: DENY`` and, when the response has no policy of its own,
  ``Content-Security-Policy: frame-ancestors 'none'`` — nothing but the embed page may be framed
  (clickjacking of GraphiQL, the demo host, JSON answers). ``/embed/…`` is left alone: its
  ``frame-ancestors`` lists the environment's allowed origins, and ``X-Frame-Options`` cannot
  express a list (a browser that honours it over CSP would refuse every customer's frame).
  ``/static/…`` gets no CSP (a policy on a script response would bind a worker started from it).
- ``Strict-Transport-Security: max-age=63072000; includeSubDomains`` when
  ``EMBAN_COOKIE_SECURE=true`` (the deployment is served over HTTPS); browsers ignore it over
  plain HTTP, and a development setup (the default) must not pin HTTPS on ``localhost``.
"""

from __future__ import annotations

from aiohttp import web

from emban.runtime import RUNTIME_KEY
from emban.settings import Settings

HSTS = "max-age=63072000; includeSubDomains"
REFERRER_POLICY = "strict-origin-when-cross-origin"
NO_FRAMING_CSP = "frame-ancestors 'none'"
EMBED_PREFIX = "/embed/"
STATIC_PREFIX = "/static/"


def security_headers(path: str, settings: Settings) -> dict[str, str]:
    """The headers a response to ``path`` gets unless its handler set them."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": REFERRER_POLICY,
    }
    if not path.startswith(EMBED_PREFIX):
        headers["X-Frame-Options"] = "DENY"
        if not path.startswith(STATIC_PREFIX):
            headers["Content-Security-Policy"] = NO_FRAMING_CSP
    if settings.cookie_secure:
        headers["Strict-Transport-Security"] = HSTS
    return headers


def add_security_headers(app: web.Application, settings: Settings) -> None:
    """Set :func:`security_headers` on every response ``app`` prepares. The settings are the
    runtime's once it is up (what a test may swap), ``settings`` before."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        runtime = request.app.get(RUNTIME_KEY)
        current = runtime.settings if runtime is not None else settings
        for name, value in security_headers(request.path, current).items():
            response.headers.setdefault(name, value)

    app.on_response_prepare.append(on_prepare)
