"""Cross-site request refusal (CSRF): a browser on another site must not act with the console
session cookie.

The rule, applied to every state-changing request a browser could send with ambient credentials
— a ``/v1`` route with an unsafe method (POST, PUT, PATCH, DELETE) and a GraphQL mutation over
HTTP — that carries no ``Authorization`` header:

1. ``Sec-Fetch-Site`` present (every current browser sends it): it must be ``same-origin`` or
   ``none`` (the user typed the URL or used a bookmark). ``same-site`` is refused too: a sibling
   subdomain is another application.
2. Else ``Origin`` present (older browsers): it must be one of the server's own origins
   (:func:`own_origins`). ``Origin: null`` (sandboxed frames, privacy redirects) is refused.
3. Neither header: not a browser (curl, a backend, a webhook sender), so there is no ambient
   credential to abuse; allowed.

A refusal is 403 ``cross_site_request`` before the handler runs, so nothing is read, spent or
written. Requests with an ``Authorization`` header (API keys, embed tokens) are never affected: a
page on another site cannot add that header without a CORS preflight, which this server never
grants. Requests without any credentials are checked too: login, register and accept-invite
*create* a session, and a cross-site form posting to them would log the victim into the
attacker's account (login CSRF). The session cookie is also ``SameSite=Lax``
(:mod:`emban.auth.cookies`), so a cross-site POST does not carry it in current browsers; this
check is the second, independent layer (older browsers, same-site subdomains, a lax proxy).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from emban.auth.client_address import trusted_peer
from emban.error_codes import RequestErrorCode
from emban.errors import Forbidden
from emban.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` as browsers serialize an origin (lower case, no default port);
    None for anything that is not an http(s) origin (``null``, a bare word, a bad port)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def _last(value: str | None) -> str | None:
    """The right-most entry of a comma-separated forwarded header: the one the nearest proxy
    (the trusted one) wrote; entries to its left may come from the client."""
    if not value:
        return None
    hops = [hop.strip() for hop in value.split(",") if hop.strip()]
    return hops[-1] if hops else None


def own_origins(request: web.Request, settings: Settings) -> frozenset[str]:
    """The origins this server answers as: the one the request was sent to and, when set,
    ``EMBAN_PUBLIC_URL``'s. The request's origin is its scheme and ``Host``; behind a trusted
    proxy (``EMBAN_TRUSTED_PROXIES``) ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` replace
    them (the proxy terminates TLS, and may rewrite ``Host``). From any other peer those
    headers are ignored."""
    scheme, host = request.scheme, request.headers.get("Host")
    if trusted_peer(request.remote, settings.trusted_proxies):
        scheme = _last(request.headers.get("X-Forwarded-Proto")) or scheme
        host = _last(request.headers.get("X-Forwarded-Host")) or host
    origins: set[str] = set()
    if host:
        origin = normalize_origin(f"{scheme}://{host}")
        if origin is not None:
            origins.add(origin)
    if settings.public_url:
        public = normalize_origin(settings.public_url)
        if public is not None:
            origins.add(public)
    return frozenset(origins)


def is_cross_site(request: web.Request, settings: Settings) -> bool:
    """Whether the browser says (``Sec-Fetch-Site``) or shows (``Origin``) that the request
    comes from a page that is not this server's; False when neither header is sent."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site.strip().lower() not in ALLOWED_FETCH_SITES
    origin = request.headers.get("Origin")
    if origin is not None:
        normalized = normalize_origin(origin)
        return normalized is None or normalized not in own_origins(request, settings)
    return False


def refuse_cross_site(request: web.Request, settings: Settings) -> None:
    """403 ``cross_site_request`` when a request without an ``Authorization`` header comes from
    another site. Call it for state-changing requests only (the caller knows which are)."""
    if "Authorization" in request.headers:
        return
    if is_cross_site(request, settings):
        raise Forbidden(
            "cross-site requests may not change anything with the session cookie: send the "
            "request from this server's own pages, or authenticate with an API key",
            code=RequestErrorCode.cross_site_request,
        )
