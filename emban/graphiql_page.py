"""GraphiQL at ``GET /graphql`` (a browser asking for HTML), served from this package.

Strawberry's own page loads React and GraphiQL from a public CDN, so on a machine without
internet it shows "Loading..." forever. Here the IDE is bundled from npm at build time
(``static/embed/graphiql/main.ts``: graphiql, React, react-dom and the graphql-ws client, built by
``make install`` into ``static/embed/dist/graphiql-<hash>.{js,css}``, served immutable like the
embed runtime) and the page allows its own origin only: ``script-src 'self'``, no inline script
or style, fonts and images from ``'self'`` or ``data:`` (GraphiQL's CSS inlines its fonts), and
``connect-src`` for the page's own host over ``ws:``/``wss:`` (subscriptions). Queries carry the
session cookie (same origin); a subscription authenticates with the token given in GraphiQL's
Headers pane, sent as the ``connection_init`` payload.
"""

from __future__ import annotations

import html

from aiohttp import web

from emban.embed_page import Bundle, built_entry, html_page

_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GraphiQL not built</title></head>
<body><p>GraphiQL is not built: run <code>make install</code>
(<code>npm ci &amp;&amp; npm run build</code> in <code>static/embed</code>).</p></body></html>
"""


def graphiql_csp(host: str) -> str:
    """Own origin only; the subscription socket on the page's own host; never framed."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            f"connect-src 'self' ws://{host} wss://{host}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def render_graphiql_page(bundle: Bundle) -> str:
    style = html.escape(bundle.style, quote=True)
    script = html.escape(bundle.script, quote=True)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Emban GraphiQL</title>
<link rel="stylesheet" href="/static/embed/dist/{style}">
<script type="module" src="/static/embed/dist/{script}"></script>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
</body>
</html>
"""


def graphiql_page(request: web.Request) -> web.Response:
    """The IDE page, or 503 naming the build step when the bundle is missing."""
    csp = graphiql_csp(request.host)
    bundle = built_entry("graphiql")
    if bundle is None:
        return html_page(_NOT_BUILT, status=503, csp=csp, request=request)
    return html_page(render_graphiql_page(bundle), csp=csp, request=request)
