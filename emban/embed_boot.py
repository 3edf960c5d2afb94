"""The embed page's first data, inlined so the runtime paints without a round trip (issue 13, 5).

Before this, the first paint waited for the HTML, then the runtime script, then one GraphQL
request (permissions + published dashboard), then one request per widget. Now
:func:`embed_boot` runs the runtime's own GraphQL documents (``static/embed/src/graphql``, the
files the bundle is built from) through the same schema, with the same embed principal the
runtime's requests would resolve, and the page carries the answers as JSON; the browser fetches
the runtime script meanwhile (the page's head is sent before the data is ready).

What is inlined is exactly what the token's own requests would return, because it *is* those
requests: the token is authenticated as ``/graphql`` authenticates it (signature, expiry,
revocation), each operation spends one request of the session's budget as the runtime's request
would, and the resolvers enforce tenant, hidden widgets and the other permissions as always. Only
successful answers are inlined; anything else (an error, a refusal, a widget slower than
``BOOT_WAIT_SECONDS``) is left for the runtime to request, which shows it as before. A page
carrying data is ``Cache-Control: no-store``.

Nothing is inlined when the token does not name the page's dashboard.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from aiohttp import web

from emban.auth.client_address import request_client_address
from emban.auth.principal import Principal
from emban.errors import EmbanError
from emban.resolvers.context import EmbanContext
from emban.resolvers.schema import schema
from emban.runtime import RUNTIME_KEY
from emban.services import accounts, budgets

GRAPHQL_DIR = "src/graphql"
# A widget slower than this is fetched by the runtime instead of holding the page back.
BOOT_WAIT_SECONDS = 1.0


@functools.cache
def _documents(static_dir: str) -> tuple[str, str] | None:
    """The runtime's dashboard and widget documents (with their fragments), as it sends them."""
    from pathlib import Path

    folder = Path(static_dir) / GRAPHQL_DIR

    def read(*names: str) -> str:
        return "\n".join((folder / f"{name}.graphql").read_text() for name in names)

    try:
        return (
            read("EmbedDashboard", "EmbedDashboardFields"),
            read("EmbedWidget", "WidgetResultFields"),
        )
    except FileNotFoundError:
        return None


async def _principal(request: web.Request, token: str, dashboard_id: str) -> Principal | None:
    runtime = request.app[RUNTIME_KEY]
    try:
        principal = await accounts.authenticate(
            authorization=f"Bearer {token}",
            session_cookie=None,
            ip=request_client_address(request, runtime.settings.trusted_proxies),
        )
    except EmbanError:
        return None
    if principal is None or principal.embed is None or principal.embed.dashboard_id != dashboard_id:
        return None
    return principal


async def _run(
    context: EmbanContext, document: str, variables: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """One operation as one runtime request: its budget spent, its data if it succeeded."""
    try:
        await budgets.charge_request(context.runtime, context.actor())
    except EmbanError:
        return None
    result = await schema.execute(document, variable_values=variables, context_value=context)
    if result.errors or not result.data:
        return None
    embed: dict[str, Any] = result.data["embed"]
    return embed


async def embed_boot(
    request: web.Request, static_dir: str, dashboard_id: str, token: str
) -> dict[str, Any] | None:
    """``{"embed": <EmbedDashboard's embed>, "widgets": {id: <widgetData>}}`` for the default
    state (no filters, no drill), or None when the runtime must load everything itself."""
    documents = _documents(static_dir)
    if documents is None:
        return None
    principal = await _principal(request, token, dashboard_id)
    if principal is None:
        return None
    dashboard_document, widget_document = documents
    context = EmbanContext(request.app[RUNTIME_KEY], request, None, principal)
    embed = await _run(context, dashboard_document)
    if embed is None:
        return None
    tasks = {
        widget["id"]: asyncio.create_task(
            _run(context, widget_document, {"id": widget["id"], "filters": None, "drill": None})
        )
        for widget in embed["dashboard"]["widgets"]
        if widget["kind"] != "text"
    }
    if tasks:
        _, late = await asyncio.wait(tasks.values(), timeout=BOOT_WAIT_SECONDS)
        for task in late:
            task.cancel()
    widgets: dict[str, Any] = {}
    for widget_id, task in tasks.items():
        if task.done() and not task.cancelled() and task.exception() is None:
            answer = task.result()
            if answer is not None:
                widgets[widget_id] = answer["widgetData"]
    return {"embed": embed, "widgets": widgets}


_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def boot_json(boot: dict[str, Any]) -> str:
    """``boot`` as the text of a ``<script type="application/json">``: ASCII only (so U+2028 and
    U+2029 are escapes too) and no ``<``, ``>`` or ``&``, so no ``</script>`` or ``<!--`` can end
    or confuse the element, whatever a title or a value holds."""
    return json.dumps(boot, ensure_ascii=True, separators=(",", ":")).translate(_SCRIPT_SAFE)
