"""The browser side's routes: the embed page, the runtime bundle and host helper, the demo host.

- ``GET /embed/{dashboard_id}?token=…`` — the iframe page. With a token it carries the first
  data (:mod:`emban.embed_boot`): the head (stylesheet, runtime script) is sent at once so the
  browser fetches the runtime while the data is read, then a ``<script type="application/json"
  id="emban-boot">`` with the answers the runtime's own first requests would get, then the end of
  the page; such a page is ``Cache-Control: no-store`` (it holds one session's data). Without a
  token it is static HTML apart from the framing origins (the token is never rendered; the
  runtime reads it from the URL and its GraphQL calls
  are what enforce it): ``Cache-Control: no-cache`` + ``ETag``, a strict CSP (``'self'`` only, no
  CDN, no inline script or style; ``connect-src`` names the page's own host for ``ws:``/``wss:``)
  and ``Referrer-Policy: no-referrer`` (the token is in the URL). ``frame-ancestors`` lists the
  ``allowed_origins`` of the environment whose secret signed the token (``*`` when that is
  ``["*"]``); the signature is checked here (one HS256 and one lookup by ``kid``), the expiry is
  not, so an expired session still shows its message inside the customer's page. Without a token
  that verifies, no origin is known to be allowed: ``frame-ancestors 'none'``. The same list is
  handed to the runtime (``data-allowed-origins``), which posts its events only to those origins.
- ``GET /static/embed/{path}`` — ``dist/*`` (content-hashed by the build: cached for a year,
  ``immutable``; precompressed ``.gz`` siblings served when accepted), ``host.js``, ``host.d.ts``
  and ``demo/*`` (revalidated after 5 minutes). Nothing else under ``static/embed`` is served.
- ``GET /graphql`` in a browser: GraphiQL, from ``dist/graphiql-<hash>.*`` (see
  :mod:`emban.graphiql_page`).
- ``GET /demo`` (always) and ``GET /`` (embedded mode): the demo host page, which mounts the demo
  dashboard through ``host.js``.

The bundle is built by ``make install`` (``npm ci && npm run build`` in ``static/embed``); the
build writes ``dist/manifest.json`` naming the hashed files.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from emban.embed_boot import boot_json, embed_boot
from emban.services.environments import framing_origins
from emban.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "embed"
DIST_DIR = STATIC_DIR / "dist"
DEMO_DIR = STATIC_DIR / "demo"
MANIFEST = DIST_DIR / "manifest.json"

HASHED_CACHE = "public, max-age=31536000, immutable"
STABLE_CACHE = "public, max-age=300"
PAGE_CACHE = "no-cache"
BOOT_PAGE_CACHE = "no-store"
# The page is sent in two parts around the inlined data: everything up to and including this.
_BOOT_AFTER = 'aria-busy="true"></main>\n'
log = logging.getLogger(__name__)
_DASHBOARD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HOST_FILES = {"host.js", "host.d.ts"}
_FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".ts": "text/plain",
    ".json": "application/json",
    ".html": "text/html",
    ".map": "application/json",
    ".svg": "image/svg+xml",
}
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Bundle:
    script: str  # file names inside dist/
    style: str


_manifest_cache: dict[str, tuple[float, Bundle | None]] = {}


def built_entry(entry: str) -> Bundle | None:
    """The hashed file names of one build entry (``embed``, ``graphiql``) in the last build,
    re-read when the manifest changes; None before the first build."""
    try:
        mtime = MANIFEST.stat().st_mtime
    except FileNotFoundError:
        return None
    cached = _manifest_cache.get(entry)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    names = json.loads(MANIFEST.read_text())
    script, style = names.get(f"{entry}.js"), names.get(f"{entry}.css")
    bundle = Bundle(script=script, style=style) if script and style else None
    _manifest_cache[entry] = (mtime, bundle)
    return bundle


def built_bundle() -> Bundle | None:
    """The embed runtime's hashed file names in the last build."""
    return built_entry("embed")


def frame_ancestors(origins: list[str]) -> str:
    """The ``frame-ancestors`` sources: ``*``, the listed origins, or ``'none'`` for no list."""
    return " ".join(origins) if origins else "'none'"


def embed_csp(host: str, origins: list[str]) -> str:
    """The embed page's policy: own origin only; the live socket on the page's own host; framed
    only by the environment's allowed origins."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' ws://{host} wss://{host}",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {frame_ancestors(origins)}",
        )
    )


def demo_csp() -> str:
    """The demo host page: its own script, and the embed framed from the same origin."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "frame-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def render_embed_page(dashboard_id: str, bundle: Bundle, origins: list[str]) -> str:
    dashboard = html.escape(dashboard_id, quote=True)
    # Space-separated: origins never contain spaces (see services.environments.clean_origin).
    allowed = html.escape(" ".join(origins), quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Dashboard</title>
<link rel="stylesheet" href="/static/embed/dist/{html.escape(bundle.style, quote=True)}">
<script type="module" src="/static/embed/dist/{html.escape(bundle.script, quote=True)}"></script>
</head>
<body>
<main id="emban-root" data-dashboard-id="{dashboard}" data-allowed-origins="{allowed}"
 aria-busy="true"></main>
</body>
</html>
"""


_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Embed runtime not built</title></head>
<body><p>The embed runtime is not built: run <code>make install</code>
(<code>npm ci &amp;&amp; npm run build</code> in <code>static/embed</code>).</p></body></html>
"""


def html_page(body: str, *, status: int = 200, csp: str, request: web.Request) -> web.Response:
    # The policy is part of what a revalidation must compare (it depends on the token).
    etag = hashlib.sha256(f"{csp}\n{body}".encode()).hexdigest()[:32]
    headers = {
        **_COMMON_HEADERS,
        "Content-Security-Policy": csp,
        "Cache-Control": PAGE_CACHE,
        "ETag": f'"{etag}"',
    }
    if status == 200 and request.headers.get("If-None-Match") == f'"{etag}"':
        return web.Response(status=304, headers=headers)
    return web.Response(
        text=body, status=status, content_type="text/html", charset="utf-8", headers=headers
    )


def _not_found() -> web.Response:
    return web.Response(status=404, text="not found", headers=_COMMON_HEADERS)


async def embed_page(request: web.Request) -> web.StreamResponse:
    dashboard_id = request.match_info["dashboard_id"]
    if not _DASHBOARD_ID.match(dashboard_id):
        return _not_found()
    token = request.query.get("token")
    origins = await framing_origins(token)
    csp = embed_csp(request.host, origins)
    bundle = built_bundle()
    if bundle is None:
        return html_page(_NOT_BUILT, status=503, csp=csp, request=request)
    page = render_embed_page(dashboard_id, bundle, origins)
    if not token:
        return html_page(page, csp=csp, request=request)
    return await _page_with_boot(request, page, csp, dashboard_id, token)


async def _page_with_boot(
    request: web.Request, page: str, csp: str, dashboard_id: str, token: str
) -> web.StreamResponse:
    """The page in two writes: the head at once (the browser starts fetching the runtime), then
    the first data and the rest once :func:`embed_boot` has them."""
    boot = asyncio.create_task(embed_boot(request, str(STATIC_DIR), dashboard_id, token))
    split = page.index(_BOOT_AFTER) + len(_BOOT_AFTER)
    response = web.StreamResponse(
        headers={
            **_COMMON_HEADERS,
            "Content-Security-Policy": csp,
            "Cache-Control": BOOT_PAGE_CACHE,
            "Content-Type": "text/html; charset=utf-8",
        }
    )
    try:
        await response.prepare(request)
        await response.write(page[:split].encode())
        try:
            data = await boot
        except Exception:  # the runtime loads everything itself, as without the data
            log.exception("embed boot data failed")
            data = None
        inline = (
            ""
            if data is None
            else f'<script type="application/json" id="emban-boot">{boot_json(data)}</script>\n'
        )
        await response.write((inline + page[split:]).encode())
        await response.write_eof()
    finally:
        boot.cancel()
    return response


def _static_file(relative: str) -> tuple[Path, str] | None:
    """The file a ``/static/embed/`` path names, and its cache policy; None when not served."""
    parts = relative.split("/")
    if len(parts) == 1 and parts[0] in _HOST_FILES:
        return STATIC_DIR / parts[0], STABLE_CACHE
    if len(parts) != 2 or not _FILE_NAME.match(parts[1]) or parts[1].startswith("."):
        return None
    folder, name = parts
    if folder == "dist" and not name.endswith(".gz") and name != "manifest.json":
        return DIST_DIR / name, HASHED_CACHE
    if folder == "demo":
        return DEMO_DIR / name, STABLE_CACHE
    return None


async def static_file(request: web.Request) -> web.StreamResponse:
    found = _static_file(request.match_info["path"])
    if found is None or not found[0].is_file():
        return _not_found()
    path, cache = found
    headers = {**_COMMON_HEADERS, "Cache-Control": cache, "Access-Control-Allow-Origin": "*"}
    response = web.FileResponse(path, headers=headers)
    content_type = _CONTENT_TYPES.get(path.suffix)
    if content_type is not None:
        response.content_type = content_type
    return response


async def demo_page(request: web.Request) -> web.Response:
    page = DEMO_DIR / "index.html"
    if not page.is_file():
        return _not_found()
    return html_page(page.read_text(), csp=demo_csp(), request=request)


def add_embed_routes(app: web.Application, settings: Settings) -> None:
    """Register the embed page, its static files and the demo host page."""
    app.router.add_get("/embed/{dashboard_id}", embed_page)
    app.router.add_get("/static/embed/{path:.+}", static_file)
    app.router.add_get("/demo", demo_page)
    if settings.embedded:
        app.router.add_get("/", demo_page)
