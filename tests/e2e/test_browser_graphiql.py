"""GraphiQL at /graphql in Chromium, offline: every request stays on the app server, the page's
strict CSP holds (no violation reported), a query runs with the console's session cookie and a
subscription (``embedLive``, its token in the Headers pane) shows live data as it changes.

Same setup as ``test_browser_embed.py`` (Debian's Chromium driven by Playwright); the browser
has no route to any CDN, which is the point.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, ConsoleMessage, Page

from emban.auth.cookies import SESSION_COOKIE
from emban.embed_page import MANIFEST
from tests.conftest import ClientFactory
from tests.e2e.test_browser_embed import ARTIFACTS, WIDGETS, browser, make_world, until

__all__ = ["browser"]  # the session-scoped Chromium fixture, shared with the embed tests

QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
HEADER_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"  # the shown tab
RESPONSE = ".graphiql-response .CodeMirror"


class Console:
    """One GraphiQL tab, and everything it asked for or complained about."""

    def __init__(self, page: Page, app: TestServer) -> None:
        self.page = page
        self.app = app
        self.problems: list[str] = []
        self.urls: list[str] = []

    async def set_editor(self, selector: str, text: str) -> None:
        await self.page.evaluate(
            "([s, text]) => document.querySelector(s).CodeMirror.setValue(text)", [selector, text]
        )

    async def response(self) -> str:
        value: str = await self.page.evaluate(
            "s => document.querySelector(s).CodeMirror.getValue()", RESPONSE
        )
        return value

    async def run(self, query: str) -> None:
        await self.set_editor(QUERY_EDITOR, query)
        # GraphiQL reads the operation name from the edited document after a short debounce.
        await asyncio.sleep(0.5)
        await self.page.click(".graphiql-execute-button")

    async def result_where(self, check: Any, what: str, within: float = 15.0) -> dict[str, Any]:
        async def parsed() -> dict[str, Any] | None:
            try:
                body: dict[str, Any] = json.loads(await self.response())
            except ValueError:
                return None
            return body if check(body) else None

        try:
            return await until(parsed, within=within, what=what)
        except AssertionError:
            ARTIFACTS.mkdir(exist_ok=True)
            await self.page.screenshot(path=str(ARTIFACTS / "graphiql-failure.png"))
            raise AssertionError(
                f"{what}: the response pane shows {await self.response()!r}; "
                f"problems {self.problems}; requests {self.urls}"
            ) from None

    def assert_clean(self) -> None:
        assert self.problems == [], self.problems
        app = str(self.app.make_url("")).rstrip("/")
        ws = app.replace("http://", "ws://", 1)
        foreign = [
            u for u in self.urls if not u.startswith((app, ws)) and not u.startswith("data:")
        ]
        assert foreign == [], f"requests left the server (no CDN allowed): {foreign}"


@pytest.fixture
async def console(browser: Browser, app_server: TestServer) -> AsyncIterator[Console]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    found = Console(page, app_server)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            found.problems.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: found.problems.append(f"pageerror: {error}"))
    page.on("request", lambda request: found.urls.append(request.url))
    page.on("websocket", lambda socket: found.urls.append(socket.url))
    yield found
    await context.close()


async def test_graphiql_renders_offline_and_runs_a_query_and_a_subscription(
    console: Console, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, [WIDGETS[1]])  # one metric: acme's calls
    cookie = world.owner.cookie_jar.filter_cookies(app_server.make_url("/"))[SESSION_COOKIE]
    await console.page.context.add_cookies(
        [{"name": SESSION_COOKIE, "value": cookie.value, "url": str(app_server.make_url("/"))}]
    )

    page = await console.page.goto(str(app_server.make_url("/graphql")))
    assert page is not None and page.status == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "http" not in csp.replace(f"//{app_server.host}", "")
    await console.page.wait_for_selector(".graphiql-container", timeout=15_000)
    await console.page.wait_for_selector(QUERY_EDITOR)
    assert await console.page.title() == "Emban GraphiQL"

    # A query, as the signed-in owner (the cookie, same origin).
    await console.run("{ me { role org { name } } }")
    body = await console.result_where(lambda b: "data" in b or "errors" in b, "the query result")
    assert body == {"data": {"me": {"role": "owner", "org": {"name": "Acme"}}}}

    # A subscription: the embed token in Headers becomes the connection_init payload.
    minted = await world.owner.post(
        "/v1/embed-sessions", json={"tenant_id": "acme", "dashboard_id": world.dashboard_id}
    )
    assert minted.status == 201, await minted.text()
    token = (await minted.json())["token"]
    await console.page.click("text=Headers")
    await console.set_editor(HEADER_EDITOR, json.dumps({"token": token}))
    await console.run("subscription { embedLive { type widgetId data { data { value } } } }")

    def calls(value: float) -> Any:
        expected = {
            "data": {
                "embedLive": {
                    "type": "data",
                    "widgetId": "calls",
                    # A metric's points: this period, then the previous one (no calls then).
                    "data": {"data": [{"value": value}, {"value": 0}]},
                }
            }
        }
        return lambda body: body == expected

    await console.result_where(calls(5.0), "acme's 5 calls over the socket")
    await world.ingest("acme", "gpt-4", 2)
    await console.result_where(calls(7.0), "the pushed 7 calls", within=30.0)
    console.assert_clean()


async def test_graphiql_page_headers(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status == 200
    assert response.content_type == "text/html"
    host = response.url.host
    port = response.url.port
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"font-src 'self' data:; connect-src 'self' ws://{host}:{port} wss://{host}:{port}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    page = await response.text()
    assert "unpkg" not in page and "cdn" not in page.lower() and "<script>" not in page
    names = json.loads(MANIFEST.read_text())
    assert f'src="/static/embed/dist/{names["graphiql.js"]}"' in page
    assert f'href="/static/embed/dist/{names["graphiql.css"]}"' in page
    script = await client.get(f"/static/embed/dist/{names['graphiql.js']}")
    assert (script.status, script.content_type) == (200, "text/javascript")
    assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
