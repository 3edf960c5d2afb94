"""The embed runtime in a real browser: Debian's Chromium (/usr/bin/chromium) driven by Playwright
for Python, headless, against the session's app server.

A host page on another origin (its own small server) loads ``/static/embed/host.js`` from the app,
mounts a server-minted embed URL with ``Emban.mount`` and records every event in
``window.__events`` — the cross-origin setup of a real customer page. Each test checks one part of
the spec's Browser Runtime contract with exact values.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Frame,
    Page,
    Request,
    Route,
    async_playwright,
)

from emban.auth.embed_tokens import mint_embed_token
from emban.demo import DEMO_WIDGETS
from emban.models import Dashboard, Environment, Org
from tests.conftest import ClientFactory, bearer, create_key, register
from tests.embed_scenario import NO_PERMISSIONS, set_plan

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
T = TypeVar("T")

WIDGETS: list[dict[str, Any]] = [
    {
        "id": "intro",
        "kind": "text",
        "title": "About",
        "text": "Usage of **your** workspace <img src=x onerror=alert(1)>\n\n"
        "[docs](https://example.com/docs) and [bad](javascript:alert(1))",
        "layout": {"x": 0, "y": 0, "w": 12, "h": 1},
    },
    {
        "id": "calls",
        "kind": "metric",
        "title": "Calls",
        "query": {"event_name": "api.call", "metric": "count", "period": "30d"},
        "viz": {"type": "number"},
        "layout": {"x": 0, "y": 1, "w": 4, "h": 2},
    },
    {
        "id": "tokens",
        "kind": "metric",
        "title": "Tokens",
        "query": {
            "event_name": "api.call",
            "metric": "sum",
            "numeric_prop": "tokens",
            "period": "30d",
        },
        "viz": {"type": "number", "unit": "tok"},
        "layout": {"x": 4, "y": 1, "w": 4, "h": 2},
    },
    {
        "id": "internal",
        "kind": "metric",
        "title": "Internal only",
        "query": {"event_name": "api.call", "metric": "count", "period": "30d"},
        "viz": {"type": "number"},
        "layout": {"x": 8, "y": 1, "w": 4, "h": 2},
    },
    {
        "id": "per_day",
        "kind": "timeseries",
        "title": "Calls per day",
        "query": {"event_name": "api.call", "metric": "count", "period": "30d"},
        "viz": {"type": "line"},
        "layout": {"x": 0, "y": 3, "w": 8, "h": 4},
    },
    {
        "id": "by_model",
        "kind": "breakdown",
        "title": "Calls by model",
        "query": {
            "event_name": "api.call",
            "metric": "count",
            "period": "30d",
            "group_by": "model",
        },
        "viz": {"type": "donut"},
        "layout": {"x": 8, "y": 3, "w": 4, "h": 4},
    },
]
DATA_WIDGETS = 4  # visible widgets that fetch data (intro is text, internal is hidden)
HIDE_INTERNAL = {"hidden_widgets": ["internal"]}

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Host page</title>
<link rel="icon" href="data:,">
<script src="{app}/static/embed/host.js"></script></head>
<body style="margin:0"><div id="embed"></div>
<script>
window.__events = [];
window.mountEmbed = function (url) {{
  window.embed = Emban.mount(document.getElementById("embed"), {{ url: url }});
  window.embed.on("*", function (event) {{ window.__events.push(event); }});
}};
</script></body></html>
"""


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run `bash scripts/ensure-chromium.sh` (make test does)"
        )
    playwright = await async_playwright().start()
    launched = await playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    await launched.close()
    await playwright.stop()


@pytest.fixture(scope="session")
async def host_server(app_server: TestServer) -> AsyncIterator[TestServer]:
    """The customer's page, on an origin of its own."""
    app_origin = str(app_server.make_url("")).rstrip("/")
    page = HOST_PAGE.format(app=app_origin)

    async def host(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/host", host)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


async def until(
    check: Callable[[], Awaitable[T]], *, within: float = 10.0, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something truthy (the embed's CSP forbids the string
    predicates of ``wait_for_function``, so the waiting happens here)."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Host:
    page: Page
    app: TestServer
    problems: list[str] = field(default_factory=list)
    graphql_posts: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    async def mount(self, url: str) -> None:
        await self.page.evaluate("url => window.mountEmbed(url)", url)

    async def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self.page.evaluate("() => window.__events")
        return [e for e in found if kind is None or e["type"] == kind]

    async def event(self, kind: str, number: int = 1, within: float = 10.0) -> dict[str, Any]:
        """The ``number``-th event of this type (waiting for it)."""

        async def nth() -> dict[str, Any] | None:
            found = await self.events(kind)
            return found[number - 1] if len(found) >= number else None

        return await until(nth, within=within, what=f"{kind} event #{number}")

    async def quiet(self, kind: str, count: int, seconds: float = 0.6) -> None:
        """No further event of this type arrives."""
        await asyncio.sleep(seconds)
        assert len(await self.events(kind)) == count, await self.events(kind)

    async def call(self, method: str, argument: Any = None) -> Any:
        return await self.page.evaluate(
            "([method, argument]) => window.embed[method](argument)", [method, argument]
        )

    async def frame(self) -> Frame:
        handle = await self.page.wait_for_selector(
            "#embed iframe:not([aria-hidden])", state="attached"
        )
        frame = await handle.content_frame()
        assert frame is not None
        return frame

    async def ready(self, url: str) -> Frame:
        await self.mount(url)
        await self.event("ready")
        return await self.frame()

    async def text(self, selector: str) -> str | None:
        frame = await self.frame()
        return await frame.evaluate(
            "s => { const e = document.querySelector(s); return e ? e.textContent : null; }",
            selector,
        )

    async def wait_text(self, selector: str, expected: str, within: float = 10.0) -> None:
        async def matches() -> bool:
            return await self.text(selector) == expected

        try:
            await until(matches, within=within, what=f"{selector} = {expected!r}")
        except AssertionError:
            raise AssertionError(
                f"{selector}: {await self.text(selector)!r} != {expected!r}"
            ) from None

    def assert_clean(self) -> None:
        assert self.problems == [], self.problems
        origins = (str(self.app.make_url("")).rstrip("/"), self.page.url.split("/host")[0])
        foreign = [u for u in self.urls if not u.startswith(origins) and not u.startswith("data:")]
        assert foreign == [], f"requests left the server (no CDN allowed): {foreign}"


@pytest.fixture
async def host(
    browser: Browser, host_server: TestServer, app_server: TestServer
) -> AsyncIterator[Host]:
    context = await browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-US")
    page = await context.new_page()
    found = Host(page, app_server)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            found.problems.append(f"{message.type}: {message.text}")

    def on_request(request: Request) -> None:
        found.urls.append(request.url)
        if request.method == "POST" and request.url.endswith("/graphql"):
            found.graphql_posts.append(request.post_data or "")

    page.on("console", on_console)
    page.on("pageerror", lambda error: found.problems.append(f"pageerror: {error}"))
    page.on("request", on_request)
    await page.goto(str(host_server.make_url("/host")))
    yield found
    await context.close()


# --- data -----------------------------------------------------------------------------------------


@dataclass
class World:
    owner: aiohttp.ClientSession
    ingest_key: str
    org_id: str
    environment_id: str
    dashboard_id: str
    app: TestServer

    async def url(self, tenant: str = "acme", **body: Any) -> str:
        response = await self.owner.post(
            "/v1/embed-sessions",
            json={"tenant_id": tenant, "dashboard_id": self.dashboard_id, **body},
        )
        assert response.status == 201, await response.text()
        return self.url_of((await response.json())["token"])

    def url_of(self, token: str) -> str:
        # The minted embed_url names EMBAN_PUBLIC_URL (https://emban.test here): same path here.
        return f"{self.app.make_url(f'/embed/{self.dashboard_id}')}?token={token}"

    async def ingest(self, tenant: str, model: str, n: int, tokens: float = 100) -> None:
        events = [
            {
                "tenant_id": tenant,
                "event_name": "api.call",
                "string_props": {"model": model, "plan": "pro", "endpoint": "/chat"},
                "numeric_props": {"tokens": tokens},
            }
            for _ in range(n)
        ]
        response = await self.owner.post(
            "/v1/events", json={"events": events}, headers=bearer(self.ingest_key)
        )
        assert response.status == 200, await response.text()


async def make_world(
    make_client: ClientFactory,
    app_server: TestServer,
    widgets: list[dict[str, Any]] | None = None,
    *,
    plan: str | None = "pro",
) -> World:
    """An org (pro plan, for the advanced permissions) with the dashboard published and acme's
    events: 3 gpt-4 calls of 100 tokens and 2 claude calls of 50 (globex has 7 calls)."""
    owner = await make_client()
    reg = await register(owner)
    if plan:
        await set_plan(reg["org"]["id"], plan)
    key = await create_key(owner, "ingest")
    created = await owner.post(
        "/v1/dashboards", json={"name": "Usage", "widgets": widgets or WIDGETS}
    )
    assert created.status == 201, await created.text()
    dashboard_id = (await created.json())["id"]
    assert (await owner.post(f"/v1/dashboards/{dashboard_id}/publish")).status == 204
    world = World(
        owner, key, reg["org"]["id"], reg["environments"][0]["id"], dashboard_id, app_server
    )
    await world.ingest("acme", "gpt-4", 3, tokens=100)
    await world.ingest("acme", "claude", 2, tokens=50)
    await world.ingest("globex", "gpt-4", 4)
    await world.ingest("globex", "claude", 3)
    return world


CARD = "[data-widget-id={}]"
INSIDE_SLICE = """selector => {
  const path = document.querySelector(selector);
  const svg = path.ownerSVGElement;
  const box = path.getBBox();
  for (let i = 1; i < 24; i++) {
    for (let j = 1; j < 24; j++) {
      const point = svg.createSVGPoint();
      point.x = box.x + (box.width * i) / 24;
      point.y = box.y + (box.height * j) / 24;
      if (path.isPointInFill(point)) {
        const onScreen = point.matrixTransform(path.getScreenCTM());
        return [onScreen.x, onScreen.y];
      }
    }
  }
  return null;
}"""


async def click_slice(host: Host, widget_id: str, value: str) -> None:
    """A real mouse click inside a pie/donut slice (its box's centre may be the donut's hole)."""
    frame = await host.frame()
    inside = await frame.evaluate(
        INSIDE_SLICE, f"[data-widget-id={widget_id}] path[data-value='{value}']"
    )
    assert inside is not None
    box = await (await host.page.query_selector("#embed iframe:not([aria-hidden])")).bounding_box()  # type: ignore[union-attr]
    assert box is not None
    await host.page.mouse.click(box["x"] + inside[0], box["y"] + inside[1])


NUMBER = "[data-widget-id={}] .emban-number-value"


# --- lifecycle, layout, hidden widgets ------------------------------------------------------------


async def test_ready_resize_layout_and_hidden_widgets(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server)
    url = await world.url(permissions=HIDE_INTERNAL)
    frame = await host.ready(url)

    assert await host.events("ready") == [
        {"_emban": True, "type": "ready", "dashboardId": world.dashboard_id}
    ]
    assert (await host.events("filter"))[0] == {
        "_emban": True,
        "type": "filter",
        "period": None,
        "filters": {},
        "numericRanges": {},
        "dateRanges": {},
    }
    resizes = await host.events("resize")
    height = resizes[-1]["height"]
    assert height > 500
    assert await host.page.evaluate(
        "() => document.querySelector('#embed iframe').style.height"
    ) == (f"{height}px")
    # The token left the visible URL; the page still has the dashboard id.
    assert "token=" not in frame.url
    assert frame.url.endswith(f"/embed/{world.dashboard_id}")

    # Hidden widgets are not in the DOM; the rest are on the 12-column grid in (y, x) order.
    ids = await frame.eval_on_selector_all(
        "[data-widget-id]", "els => els.map(e => e.dataset.widgetId)"
    )
    assert ids == ["intro", "calls", "tokens", "per_day", "by_model"]
    assert await frame.query_selector(CARD.format("internal")) is None
    assert "Internal only" not in await frame.inner_text("body")
    boxes = {}
    for widget_id in ids:
        box = await (await frame.query_selector(CARD.format(widget_id))).bounding_box()  # type: ignore[union-attr]
        assert box is not None
        boxes[widget_id] = box
    assert boxes["calls"]["y"] == boxes["tokens"]["y"]
    assert boxes["tokens"]["x"] > boxes["calls"]["x"]
    assert abs(boxes["calls"]["width"] - boxes["tokens"]["width"]) < 1
    assert 2.2 > boxes["per_day"]["width"] / boxes["by_model"]["width"] > 1.9  # 8 vs 4 columns
    assert (
        abs(boxes["intro"]["width"] - (boxes["per_day"]["width"] + boxes["by_model"]["width"])) < 20
    )

    # The data, for acme only, formatted for the viewer's locale.
    await host.wait_text(NUMBER.format("calls"), "5")
    await host.wait_text(NUMBER.format("tokens"), "400 tok")
    states = await frame.eval_on_selector_all(
        "[data-widget-id]", "els => els.map(e => e.dataset.state)"
    )
    assert states == ["ready"] * 5
    legend = await frame.eval_on_selector_all(
        "[data-widget-id=by_model] .emban-legend-item",
        "els => els.map(e => [e.dataset.value, e.lastElementChild.textContent])",
    )
    assert sorted(legend) == [["claude", "2 · 40%"], ["gpt-4", "3 · 60%"]]
    assert await frame.get_attribute(CARD.format("per_day"), "data-total") == "5"
    assert await frame.query_selector("[data-widget-id=per_day] canvas") is not None

    # Markdown is rendered from text: markup in it stays text, only http(s) links become links.
    intro = CARD.format("intro")
    assert await frame.inner_text(f"{intro} strong") == "your"
    assert await frame.query_selector(f"{intro} img") is None
    assert "<img src=x onerror=alert(1)>" in await frame.inner_text(intro)
    links = await frame.eval_on_selector_all(
        f"{intro} a", "els => els.map(a => [a.textContent, a.href, a.target, a.rel])"
    )
    assert links == [["docs", "https://example.com/docs", "_blank", "noopener noreferrer"]]

    # Content height follows the width: a narrow host stacks the cards and the iframe grows.
    before = len(resizes)
    await host.page.set_viewport_size({"width": 520, "height": 900})
    await host.event("resize", before + 1)

    async def follows() -> bool:
        last: int = (await host.events("resize"))[-1]["height"]
        shown: bool = await host.page.evaluate(
            "h => document.querySelector('#embed iframe').style.height === h + 'px'", last
        )
        return shown and last > height

    await until(follows, what="the iframe to follow a taller content height")
    host.assert_clean()


# --- every viz type -------------------------------------------------------------------------------


def _widget(widget_id: str, kind: str, viz: str, y: int, **query: Any) -> dict[str, Any]:
    return {
        "id": widget_id,
        "kind": kind,
        "title": widget_id.replace("_", " "),
        "query": {"event_name": "api.call", "metric": "count", "period": "30d", **query},
        "viz": {"type": viz},
        "layout": {"x": (y % 3) * 4, "y": y // 3 * 3, "w": 4, "h": 3},
    }


ALL_VIZ: list[dict[str, Any]] = [
    {
        **_widget("number", "metric", "number", 0, metric="sum", numeric_prop="tokens"),
        "viz": {"type": "number", "unit": "tok"},
    },
    _widget("line", "timeseries", "line", 1),
    _widget("area", "timeseries", "area", 2),
    _widget("bar", "timeseries", "bar", 3, group_by="model"),
    _widget("stacked", "timeseries", "stacked_bar", 4, group_by="model"),
    _widget("series_table", "timeseries", "table", 5),
    _widget("breakdown_bar", "breakdown", "bar", 6, group_by="model"),
    _widget("breakdown_stacked", "breakdown", "stacked_bar", 7, group_by="model"),
    _widget("pie", "breakdown", "pie", 8, group_by="model"),
    _widget("donut", "breakdown", "donut", 9, group_by="model"),
    _widget("breakdown_table", "breakdown", "table", 10, group_by="model"),
    _widget("rows", "table", "table", 11),
    {
        **_widget("nothing", "metric", "number", 12),
        "query": {"event_name": "never.sent", "metric": "count", "period": "30d"},
    },
    {
        **_widget("empty", "timeseries", "line", 13),
        "query": {"event_name": "never.sent", "metric": "count", "period": "30d"},
    },
]


async def test_every_viz_type_renders_with_the_viewers_locale(
    browser: Browser, host_server: TestServer, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, ALL_VIZ, plan=None)
    await world.ingest("acme", "gpt-4", 1, tokens=834.5)  # 1,234.5 tokens, 6 calls in all
    context = await browser.new_context(viewport={"width": 1200, "height": 900}, locale="de-DE")
    try:
        page = await context.new_page()
        await page.goto(str(host_server.make_url("/host")))
        german = Host(page, app_server)
        frame = await german.ready(await world.url())
        card = "[data-widget-id={}]"
        states = dict(
            await frame.eval_on_selector_all(
                "[data-widget-id]", "els => els.map(e => [e.dataset.widgetId, e.dataset.state])"
            )
        )
        assert states == {w["id"]: "ready" for w in ALL_VIZ} | {"empty": "empty"}
        # German grouping and decimals; the change vs the previous (empty) period.
        assert await frame.inner_text(f"{card.format('number')} .emban-number-value") == (
            "1.234,5 tok"
        )
        assert await frame.inner_text(f"{card.format('number')} .emban-number-change") == (
            "No data for the previous 30 days"
        )
        assert await frame.inner_text(f"{card.format('nothing')} .emban-number-value") == "0"
        for uplot in ("line", "area", "bar", "stacked", "breakdown_bar"):
            assert await frame.query_selector(f"{card.format(uplot)} .uplot canvas"), uplot
        for radial in ("pie", "donut"):
            slices = await frame.eval_on_selector_all(
                f"{card.format(radial)} svg path", "els => els.map(e => e.dataset.value)"
            )
            assert sorted(slices) == ["claude", "gpt-4"], radial
        assert await frame.text_content(f"{card.format('donut')} .emban-donut-total") == "6"
        segments = await frame.eval_on_selector_all(
            f"{card.format('breakdown_stacked')} .emban-share-segment",
            "els => els.map(e => [e.dataset.value, e.style.flexGrow])",
        )
        assert sorted(segments) == [["claude", "2"], ["gpt-4", "4"]]
        rows = await frame.eval_on_selector_all(
            f"{card.format('breakdown_table')} tbody tr",
            "rows => rows.map(r => [...r.cells].map(c => c.textContent))",
        )
        assert sorted(rows) == [["claude", "2", "33,3\u00a0%"], ["gpt-4", "4", "66,7\u00a0%"]]
        for table in ("series_table", "rows"):
            cells = await frame.eval_on_selector_all(
                f"{card.format(table)} tbody td:last-child", "els => els.map(e => e.textContent)"
            )
            assert sum(int(c) for c in cells) == 6, (table, cells)
        assert await frame.get_attribute(card.format("stacked"), "data-total") == "6"
        assert await frame.inner_text(card.format("empty")) == "empty\nNo data for this period"
    finally:
        await context.close()


# --- setFilters, the in-frame controls ------------------------------------------------------------


async def test_set_filters_reports_filter_and_period_change(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, plan=None)
    frame = await host.ready(await world.url(permissions=HIDE_INTERNAL))
    await host.call("setFilters", {"period": "7d", "dimensions": {"model": "gpt-4"}})
    assert await host.event("period-change") == {
        "_emban": True,
        "type": "period-change",
        "previousPeriod": None,
        "period": "7d",
    }
    assert await host.event("filter", 2) == {
        "_emban": True,
        "type": "filter",
        "period": "7d",
        "filters": {"model": "gpt-4"},
        "numericRanges": {},
        "dateRanges": {},
    }
    await host.wait_text(NUMBER.format("calls"), "3")
    assert await frame.input_value("select[name=period]") == "7d"
    assert await frame.input_value("select[data-dimension=model]") == "gpt-4"

    # The in-frame period picker and dimension filter speak the same events.
    await frame.select_option("select[name=period]", "24h")
    assert (await host.event("period-change", 2))["previousPeriod"] == "7d"
    assert (await host.event("period-change", 2))["period"] == "24h"
    assert (await host.event("filter", 3))["period"] == "24h"
    await frame.select_option("select[data-dimension=model]", "")
    fourth = await host.event("filter", 4)
    assert (fourth["period"], fourth["filters"]) == ("24h", {})
    await host.wait_text(NUMBER.format("calls"), "5")

    # Numeric ranges and going back to each widget's own period.
    await host.call("setFilters", {"period": None, "numericRanges": {"tokens": {"min": 60}}})
    fifth = await host.event("filter", 5)
    assert (fifth["period"], fifth["numericRanges"]) == (None, {"tokens": {"min": 60}})
    assert (await host.event("period-change", 3))["period"] is None
    await host.wait_text(NUMBER.format("calls"), "3")
    assert len(await host.events("period-change")) == 3  # the dimension change kept the period
    host.assert_clean()


async def test_forbidden_filters_are_refused_and_change_nothing(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    by_endpoint = {
        **WIDGETS[5],
        "id": "by_endpoint",
        "title": "By endpoint",
        "query": {**WIDGETS[5]["query"], "group_by": "endpoint"},
        "layout": {"x": 0, "y": 7, "w": 4, "h": 3},
    }
    world = await make_world(make_client, app_server, [*WIDGETS, by_endpoint])
    url = await world.url(
        permissions={
            "allowed_periods": ["7d", "30d"],
            "allowed_dimensions": ["model"],
            "locked_filters": {"plan": "pro"},
        }
    )
    frame = await host.ready(url)
    await host.wait_text(NUMBER.format("calls"), "5")
    # The in-frame UI offers only what the session allows.
    periods = await frame.eval_on_selector_all(
        "select[name=period] option", "els => els.map(e => e.value)"
    )
    assert periods == ["", "7d", "30d"]
    dimensions = await frame.eval_on_selector_all(
        "select[data-dimension]", "els => els.map(e => e.dataset.dimension)"
    )
    assert dimensions == ["model"]
    assert await frame.inner_text(".emban-locked") == "plan: pro"
    assert await host.text(f"{CARD.format('by_endpoint')} .emban-error") == (
        "This widget is not available in this embed."
    )

    posts = len(host.graphql_posts)
    refusals = [
        ({"period": "90d"}, "The period 90d is not allowed in this embed."),
        (
            {"dimensions": {"endpoint": "/chat"}},
            "Filtering by endpoint is not allowed in this embed.",
        ),
        ({"dimensions": {"plan": "free"}}, 'plan is locked to "pro" in this embed.'),
        ({"period": "2d"}, "period 2d is not one of 1h, 24h, 7d, 30d, 90d"),
        (
            {
                "dateRanges": {
                    "timestamp": {"from": "2000-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"}
                }
            },
            "Date ranges must lie within the last 30d (the longest allowed period) in this embed.",
        ),
    ]
    for number, (filters, message) in enumerate(refusals, start=1):
        await host.call("setFilters", filters)
        assert await host.event("error", number) == {
            "_emban": True,
            "type": "error",
            "message": message,
        }
    await host.quiet("filter", 1)
    assert await host.events("period-change") == []
    assert len(host.graphql_posts) == posts  # nothing was even asked
    assert await frame.input_value("select[name=period]") == ""
    assert await host.text(NUMBER.format("calls")) == "5"

    # What only the server checks is refused by the server: the same outcome. (Which numeric
    # properties the visible widgets measure is not sent to the browser; no widget measures cost.)
    await host.call("setFilters", {"numericRanges": {"cost": {"min": 1}}})
    assert (await host.event("error", len(refusals) + 1))["message"] == (
        "numeric ranges on cost are not allowed in this embed"
    )
    assert len(host.graphql_posts) > posts  # asked, refused
    await host.quiet("filter", 1)
    assert await host.text(NUMBER.format("calls")) == "5"
    assert await frame.query_selector(".emban-refreshing") is None

    await host.call("setFilters", {"period": "7d", "dimensions": {"plan": "pro"}})
    allowed = await host.event("filter", 2)
    assert (allowed["period"], allowed["filters"]) == ("7d", {"plan": "pro"})
    host.assert_clean()


# --- theme ----------------------------------------------------------------------------------------

THEME = {
    "primaryColor": "#0f9d58",
    "backgroundColor": "#f7f9f7",
    "cardBackground": "#fffdf5",
    "cardBorder": "#d8e2d9",
    "textColor": "#101513",
    "mutedColor": "#5d6c63",
}
STYLES = """() => {
  const css = (selector, property) => getComputedStyle(document.querySelector(selector))[property];
  const canvas = document.querySelector('[data-widget-id=per_day] canvas');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let primary = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i] === 15 && pixels[i + 1] === 157 && pixels[i + 2] === 88) primary++;
  }
  return {
    background: css('body', 'backgroundColor'),
    text: css('body', 'color'),
    card: css('[data-widget-id=calls]', 'backgroundColor'),
    border: css('[data-widget-id=calls]', 'borderTopColor'),
    muted: css('[data-widget-id=calls] .emban-card-title', 'color'),
    number: css('[data-widget-id=calls] .emban-number-value', 'color'),
    slice: document.querySelector('[data-widget-id=by_model] path').style.fill,
    linePixels: primary,
  };
}"""


async def test_set_theme_changes_the_rendered_colours(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, plan=None)
    frame = await host.ready(await world.url(permissions=HIDE_INTERNAL))
    before = await frame.evaluate(STYLES)
    assert before["background"] == "rgb(246, 247, 249)"
    assert before["linePixels"] == 0
    await host.call("setTheme", THEME)

    async def themed() -> dict[str, Any] | None:
        styles: dict[str, Any] = await frame.evaluate(STYLES)
        return styles if styles["linePixels"] > 0 else None

    after = await until(themed, what="the chart redrawn in the new primary colour")
    assert after == {
        "background": "rgb(247, 249, 247)",
        "text": "rgb(16, 21, 19)",
        "card": "rgb(255, 253, 245)",
        "border": "rgb(216, 226, 217)",
        "muted": "rgb(93, 108, 99)",
        "number": "rgb(15, 157, 88)",
        "slice": "rgb(15, 157, 88)",
        "linePixels": after["linePixels"],
    }
    assert after["linePixels"] > 50

    # A bad token value is refused as a whole: nothing changes.
    await host.call("setTheme", {"backgroundColor": "#000000", "primaryColor": "not a colour"})
    assert await host.event("error") == {
        "_emban": True,
        "type": "error",
        "message": "setTheme: primaryColor must be a CSS colour",
    }
    assert (await frame.evaluate(STYLES))["background"] == "rgb(247, 249, 247)"
    host.assert_clean()


# --- reload ---------------------------------------------------------------------------------------


async def test_reload_refetches_the_dashboard_and_every_widget(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, plan=None)
    await host.ready(await world.url(permissions=HIDE_INTERNAL))
    posts = len(host.graphql_posts)
    # The first load needs no request: the page carries the dashboard and every widget's data
    # (emban/embed_boot.py). A reload asks the server for all of it.
    assert posts == 0
    await host.call("reload")
    assert (await host.event("filter", 2))["period"] is None
    fresh = host.graphql_posts[posts:]
    assert len(fresh) == 1 + DATA_WIDGETS
    assert sum("EmbedDashboard" in body for body in fresh) == 1
    assert sum("EmbedWidget" in body for body in fresh) == DATA_WIDGETS
    assert await host.events("error") == []
    host.assert_clean()


# --- drill-down -----------------------------------------------------------------------------------


async def test_a_drill_click_reports_apply_detail_and_clear(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server)
    frame = await host.ready(
        await world.url(permissions={"allow_drill_down": True, **HIDE_INTERNAL})
    )
    await frame.click("[data-widget-id=by_model] button.emban-legend-item[data-value='gpt-4']")
    assert await host.event("drill") == {
        "_emban": True,
        "type": "drill",
        "dimension": "model",
        "value": "gpt-4",
        "action": "apply",
    }
    await host.wait_text(NUMBER.format("calls"), "3")
    await host.wait_text(NUMBER.format("tokens"), "300 tok")
    assert await frame.inner_text(".emban-drill span") == "model = gpt-4"
    # The breakdown itself is not narrowed: it shows the selection.
    faded = await frame.eval_on_selector_all(
        "[data-widget-id=by_model] .emban-legend-item.emban-faded",
        "els => els.map(e => e.dataset.value)",
    )
    assert faded == ["claude"]

    await frame.click(".emban-drill-detail")
    assert (await host.event("drill", 2))["action"] == "detail"
    await frame.click(".emban-drill-clear")
    assert await host.event("drill", 3) == {
        "_emban": True,
        "type": "drill",
        "dimension": "model",
        "value": "gpt-4",
        "action": "clear",
    }
    await host.wait_text(NUMBER.format("calls"), "5")

    # A slice of the donut drills too; the same slice again clears.
    await click_slice(host, "by_model", "claude")
    assert (await host.event("drill", 4))["value"] == "claude"
    await host.wait_text(NUMBER.format("calls"), "2")
    await click_slice(host, "by_model", "claude")
    assert (await host.event("drill", 5))["action"] == "clear"
    await host.wait_text(NUMBER.format("calls"), "5")
    host.assert_clean()


async def test_no_drill_when_the_session_does_not_allow_it(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, plan=None)
    frame = await host.ready(await world.url(permissions=HIDE_INTERNAL))
    posts = len(host.graphql_posts)
    assert await frame.query_selector("[data-widget-id=by_model] button.emban-legend-item") is None
    await click_slice(host, "by_model", "gpt-4")
    await frame.click("[data-widget-id=by_model] .emban-legend-item[data-value='gpt-4']")
    await host.quiet("drill", 0)
    assert await frame.query_selector(".emban-drill") is None
    assert await host.text(NUMBER.format("calls")) == "5"
    assert len(host.graphql_posts) == posts
    host.assert_clean()


# --- session states: expired, unpublished ---------------------------------------------------------


async def test_an_expired_token_shows_a_clear_message_and_an_error_event(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, plan=None)
    environment = await Environment.get(id=world.environment_id)

    def token(issued_ago: int) -> str:
        return mint_embed_token(
            environment,
            tenant_id="acme",
            dashboard_id=world.dashboard_id,
            permissions=NO_PERMISSIONS,
            expires_in=60,
            now=int(time.time()) - issued_ago,
        ).token

    # Signed an hour ago for one minute: expired before the page opens.
    await host.mount(world.url_of(token(3600)))
    assert await host.event("error") == {
        "_emban": True,
        "type": "error",
        "message": "This embed session has expired.",
    }
    frame = await host.frame()
    await host.wait_text(".emban-notice strong", "This embed session has expired.")
    assert await frame.is_hidden(".emban-grid")
    assert await host.events("ready") == []

    # Valid for ~8 more seconds: ready now, then the runtime notices the expiry by itself.
    await host.call("destroy")
    await host.page.evaluate("() => { window.__events = []; }")
    await host.mount(world.url_of(token(52)))
    await host.event("ready")
    await host.wait_text(NUMBER.format("calls"), "5")
    assert await host.event("error", within=15) == {
        "_emban": True,
        "type": "error",
        "message": "This embed session has expired.",
    }
    await host.wait_text(".emban-notice strong", "This embed session has expired.")
    await host.call("setFilters", {"period": "7d"})
    assert (await host.event("error", 2))["message"] == "This embed session has expired."
    assert await host.events("filter") == [(await host.events("filter"))[0]]


async def test_unpublished_dashboard_says_not_published_live(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, plan=None)
    frame = await host.ready(await world.url(permissions=HIDE_INTERNAL))
    await until(lambda: frame.get_attribute("#emban-root", "data-live"), what="live")
    unpublished = await world.owner.post(f"/v1/dashboards/{world.dashboard_id}/unpublish")
    assert unpublished.status == 204
    assert await host.event("error") == {
        "_emban": True,
        "type": "error",
        "message": "This dashboard is not published.",
    }
    await host.wait_text(".emban-notice strong", "This dashboard is not published.")
    assert await frame.is_hidden(".emban-grid")
    # Published again: the live config brings the dashboard back without a reload.
    assert (await world.owner.post(f"/v1/dashboards/{world.dashboard_id}/publish")).status == 204

    async def back() -> bool:
        return await frame.is_visible(".emban-grid") and await frame.is_hidden(".emban-notice")

    await until(back, what="the dashboard to come back")
    await host.wait_text(NUMBER.format("calls"), "5")

    # Opening an unpublished dashboard: the same message, and no ready.
    await world.owner.post(f"/v1/dashboards/{world.dashboard_id}/unpublish")
    await host.call("destroy")
    await host.page.evaluate("() => { window.__events = []; }")
    await host.mount(await world.url())
    assert (await host.event("error"))["message"] == "This dashboard is not published."
    await host.wait_text(".emban-notice strong", "This dashboard is not published.")
    assert await host.events("ready") == []
    # ... and once it is published, it loads by itself and says ready.
    assert (await world.owner.post(f"/v1/dashboards/{world.dashboard_id}/publish")).status == 204
    assert (await host.event("ready"))["dashboardId"] == world.dashboard_id
    await host.wait_text(NUMBER.format("calls"), "5")
    assert await (await host.frame()).is_hidden(".emban-notice")


# --- setEmbedUrl ----------------------------------------------------------------------------------


async def test_set_embed_url_swaps_the_session_and_keeps_the_filters(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, plan=None)
    await host.ready(await world.url(permissions=HIDE_INTERNAL))
    await host.call("setFilters", {"period": "7d", "dimensions": {"model": "gpt-4"}})
    await host.event("filter", 2)
    await host.wait_text(NUMBER.format("calls"), "3")

    next_url = await world.url("globex", permissions=HIDE_INTERNAL)
    swapped = await host.page.evaluate("url => window.embed.setEmbedUrl(url)", next_url)
    expected = {
        "_emban": True,
        "type": "session-swapped",
        "filters": {
            "period": "7d",
            "dimensions": {"model": "gpt-4"},
            "numericRanges": {},
            "dateRanges": {},
        },
    }
    assert swapped == expected
    assert await host.events("session-swapped") == [expected]
    # One iframe, the new session's, already showing the kept filters (globex: 4 gpt-4 calls).
    srcs = await host.page.eval_on_selector_all("#embed iframe", "els => els.map(e => e.src)")
    assert srcs == [next_url]
    frame = await host.frame()
    await host.wait_text(NUMBER.format("calls"), "4")
    assert await frame.input_value("select[name=period]") == "7d"
    assert await frame.input_value("select[data-dimension=model]") == "gpt-4"
    # The new iframe's own ready/filter stayed inside the helper.
    assert len(await host.events("ready")) == 1
    assert len(await host.events("filter")) == 2
    # Commands now reach the new session.
    await host.call("setFilters", {"period": "30d"})
    change = await host.event("period-change", 2)
    assert (change["previousPeriod"], change["period"]) == ("7d", "30d")
    assert (await host.event("filter", 3))["filters"] == {"model": "gpt-4"}
    host.assert_clean()


# --- live -----------------------------------------------------------------------------------------


async def test_an_ingest_for_the_tenant_appears_without_a_reload(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, plan=None)
    frame = await host.ready(await world.url(permissions=HIDE_INTERNAL))
    await until(
        lambda: frame.evaluate(
            "() => document.querySelector('#emban-root').dataset.live === 'live'"
        ),
        what="the live subscription",
    )
    await frame.evaluate("() => { window.__marker = 42; }")
    posts = len(host.graphql_posts)

    await world.ingest("acme", "gpt-4", 3)
    await host.wait_text(NUMBER.format("calls"), "8", within=5)
    await host.wait_text(NUMBER.format("tokens"), "700 tok", within=5)
    assert await frame.get_attribute(CARD.format("per_day"), "data-total") == "8"
    gpt4 = "[data-widget-id=by_model] .emban-legend-item[data-value='gpt-4'] .emban-legend-value"
    await host.wait_text(gpt4, "6 · 75%", within=5)
    assert await frame.evaluate("() => window.__marker") == 42  # the same document
    assert len(host.graphql_posts) == posts  # pushed over the socket, not refetched

    await world.ingest("globex", "gpt-4", 5)  # another tenant: nothing changes
    await asyncio.sleep(0.8)
    assert await host.text(NUMBER.format("calls")) == "8"
    host.assert_clean()


# --- the message contract's guards ----------------------------------------------------------------


async def test_messages_without_the_flag_or_from_other_windows_are_ignored(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, plan=None)
    frame = await host.ready(await world.url(permissions=HIDE_INTERNAL))
    command = {"type": "setFilters", "filters": {"period": "7d"}}
    # From the parent, without _emban.
    await host.page.evaluate(
        "c => document.querySelector('#embed iframe').contentWindow.postMessage(c, '*')", command
    )
    # From the embed's own window, and from a sibling frame of the host page, with _emban.
    await frame.evaluate("c => window.postMessage({ ...c, _emban: true }, '*')", command)
    await host.page.evaluate(
        """() => {
          const sibling = document.createElement('iframe');
          sibling.srcdoc = "<script>parent.document.querySelector('#embed iframe')"
            + ".contentWindow.postMessage("
            + "{_emban: true, type: 'setFilters', filters: {period: '7d'}}, '*')<\\/script>";
          document.body.append(sibling);
        }"""
    )
    await host.quiet("filter", 1, seconds=0.8)
    assert await frame.input_value("select[name=period]") == ""
    # The same command from the parent with _emban is applied.
    await host.page.evaluate(
        "c => document.querySelector('#embed iframe')"
        ".contentWindow.postMessage({ ...c, _emban: true }, '*')",
        command,
    )
    assert (await host.event("filter", 2))["period"] == "7d"
    host.assert_clean()


# --- the demo host page ---------------------------------------------------------------------------


async def test_demo_host_page_mounts_the_demo_and_logs_events(
    browser: Browser, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, DEMO_WIDGETS)
    await Org.filter(id=world.org_id).update(is_demo=True)
    await Dashboard.filter(id=world.dashboard_id).update(is_demo=True)
    await world.ingest("demo_workspace", "gpt-4o", 6)
    await world.ingest("demo_workspace", "claude-sonnet", 4)
    context = await browser.new_context(viewport={"width": 1280, "height": 1000}, locale="en-US")
    problems: list[str] = []
    try:
        page = await context.new_page()
        page.on(
            "console",
            lambda m: (
                problems.append(m.text)
                if m.type == "error" or "Content Security Policy" in m.text
                else None
            ),
        )
        page.on("pageerror", lambda e: problems.append(str(e)))
        await page.goto(str(app_server.make_url("/demo")))
        demo = Host(page, app_server)
        await demo.event("ready")
        frame = await demo.frame()
        await until(
            lambda: frame.evaluate("() => !document.querySelector('[data-state=loading]')"),
            what="every widget",
        )
        await page.wait_for_selector("#log li[data-type=ready]")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "demo-host.png"), full_page=True)

        # Each control sends its command; the log shows what came back.
        await page.select_option("#period", "7d")
        await page.select_option("#model", "gpt-4o")
        await page.click("#apply")
        assert (await demo.event("filter", 2))["filters"] == {"model": "gpt-4o"}
        await page.click("[data-theme=dark]")
        await until(
            lambda: frame.evaluate(
                "() => getComputedStyle(document.body).backgroundColor === 'rgb(15, 17, 21)'"
            ),
            what="the dark theme",
        )
        await page.click("#reload")
        await demo.event("filter", 3)
        await page.click("#swap")
        await demo.event("session-swapped")
        await page.wait_for_selector("#log li[data-type=session-swapped]")
        frame = await demo.frame()
        await until(
            lambda: frame.evaluate("() => !document.querySelector('[data-state=loading]')"),
            what="every widget after the swap",
        )
        await page.screenshot(path=str(ARTIFACTS / "demo-host-dark.png"), full_page=True)
        logged = await page.eval_on_selector_all("#log li", "els => els.map(e => e.dataset.type)")
        assert {"ready", "resize", "filter", "period-change", "session-swapped"} <= set(logged)
        assert problems == []
    finally:
        await context.close()


# --- framing and messaging origins (the environment's allowed_origins) ----------------------------

# Records, inside the embed frame only, the targetOrigin of every message the runtime posts to its
# parent (``parent`` is a [Replaceable] attribute: the runtime's ``window.parent`` is this spy,
# which forwards each message to the real parent, so the host still receives it).
SPY_ON_PARENT = """(() => {
  if (window.parent === window || !location.pathname.startsWith("/embed/")) return;
  const real = window.parent;
  const targets = [];
  window.__targets = targets;
  window.parent = {
    postMessage(message, targetOrigin) {
      targets.push(typeof targetOrigin === "string" ? targetOrigin : JSON.stringify(targetOrigin));
      real.postMessage(message, targetOrigin);
    },
  };
})();"""

EMBED_ROOT_READY = "#emban-root[aria-busy=false]"


def host_origin(host_server: TestServer) -> str:
    return str(host_server.make_url("")).rstrip("/")


async def allow_origins(world: World, origins: list[str]) -> None:
    response = await world.owner.patch(
        f"/v1/environments/{world.environment_id}", json={"allowed_origins": origins}
    )
    assert response.status == 200, await response.text()


def _post_message_calls(source: str) -> list[str]:
    """The argument lists of every ``postMessage(…)`` call in ``source`` (brackets matched)."""
    calls: list[str] = []
    start = source.find("postMessage(")
    while start != -1:
        at = start + len("postMessage(")
        depth = 1
        end = at
        while depth:
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            end += 1
        calls.append(source[at : end - 1])
        start = source.find("postMessage(", end)
    return calls


def test_no_post_message_call_names_the_wildcard_target() -> None:
    from emban.embed_page import DIST_DIR, STATIC_DIR, built_bundle

    bundle = built_bundle()
    assert bundle is not None, "the embed runtime is not built: run `make install`"
    runtime_calls = _post_message_calls((DIST_DIR / bundle.script).read_text())
    host_calls = _post_message_calls((STATIC_DIR / "host.js").read_text())
    # One call each (the runtime's bridge, host.js's send): the check below is not vacuous.
    assert len(runtime_calls) == 1, runtime_calls
    assert host_calls == ["message, frame.origin"]
    for call in runtime_calls:
        assert '"*"' not in call and "'*'" not in call and "`*`" not in call, call


async def test_a_host_on_an_allowed_origin_receives_ready_and_talks_both_ways(
    host: Host, make_client: ClientFactory, app_server: TestServer, host_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, plan=None)
    # The host's origin is listed (not first): the runtime posts to it and accepts its commands.
    await allow_origins(world, ["https://app.example.com", host_origin(host_server)])
    frame = await host.ready(await world.url(permissions=HIDE_INTERNAL))
    assert await host.events("ready") == [
        {"_emban": True, "type": "ready", "dashboardId": world.dashboard_id}
    ]
    assert await frame.get_attribute("#emban-root", "data-allowed-origins") == (
        f"https://app.example.com {host_origin(host_server)}"
    )
    await host.call("setFilters", {"period": "7d"})
    assert (await host.event("filter", 2))["period"] == "7d"
    host.assert_clean()


async def test_a_host_not_in_allowed_origins_is_refused_by_frame_ancestors(
    host: Host, make_client: ClientFactory, app_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, plan=None)
    await allow_origins(world, ["https://app.example.com"])
    await host.mount(await world.url(permissions=HIDE_INTERNAL))
    directive = 'frame-ancestors https://app.example.com"'

    async def refused() -> bool:
        return any(directive in problem for problem in host.problems)

    # Chromium reports the refusal on the host page and shows its own error page in the frame:
    # the runtime never runs there, so no ready (nor any other event) can ever arrive.
    await until(refused, what="Chromium to refuse the frame")
    frame = await host.frame()
    assert frame.url == "chrome-error://chromewebdata/"
    assert await host.events() == []
    assert [p for p in host.problems if directive not in p] == []


async def test_every_event_is_posted_to_the_host_origin_never_the_wildcard(
    browser: Browser, make_client: ClientFactory, app_server: TestServer, host_server: TestServer
) -> None:
    world = await make_world(make_client, app_server, plan=None)
    origin = host_origin(host_server)
    context = await browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-US")
    try:
        await context.add_init_script(SPY_ON_PARENT)
        page = await context.new_page()
        await page.goto(str(host_server.make_url("/host")))
        spied = Host(page, app_server)
        # ["*"] (the default) and an explicit list: the same explicit target either way.
        for allowed in (["*"], [origin, "https://app.example.com"]):
            await allow_origins(world, allowed)
            await page.evaluate("() => { window.__events = []; }")
            frame = await spied.ready(await world.url(permissions=HIDE_INTERNAL))
            await frame.wait_for_selector(EMBED_ROOT_READY, state="attached")
            await frame.select_option("select[name=period]", "7d")  # an in-frame change
            await spied.event("period-change")
            await spied.event("filter", 2)
            received = await spied.events()
            targets: list[str] = await frame.evaluate("() => window.__targets")
            assert {e["type"] for e in received} >= {"ready", "resize", "filter", "period-change"}
            assert targets == [origin] * len(received), (allowed, targets, received)
            await spied.call("destroy")
    finally:
        await context.close()


async def test_the_runtime_itself_ignores_a_parent_the_environment_does_not_allow(
    browser: Browser, make_client: ClientFactory, app_server: TestServer, host_server: TestServer
) -> None:
    # Defence in depth, for a browser that would not enforce frame-ancestors (here: the test
    # rewrites the directive on the way): the runtime sees that its parent's origin is not
    # allowed (location.ancestorOrigins), says nothing and obeys nothing.
    world = await make_world(make_client, app_server, plan=None)
    await allow_origins(world, ["https://app.example.com"])
    context = await browser.new_context()
    served: list[str] = []

    async def without_frame_ancestors(route: Route) -> None:
        response = await route.fetch()
        headers = {name.lower(): value for name, value in response.headers.items()}
        served.append(headers["content-security-policy"])
        headers["content-security-policy"] = headers["content-security-policy"].replace(
            "frame-ancestors https://app.example.com", "frame-ancestors *"
        )
        await route.fulfill(response=response, headers=headers)

    try:
        await context.route(
            lambda url: urlsplit(url).path.startswith("/embed/"), without_frame_ancestors
        )
        page = await context.new_page()
        await page.goto(str(host_server.make_url("/host")))
        unwelcome = Host(page, app_server)
        await unwelcome.mount(await world.url(permissions=HIDE_INTERNAL))
        frame = await unwelcome.frame()
        await frame.wait_for_selector(EMBED_ROOT_READY, state="attached", timeout=10_000)
        await unwelcome.call("setFilters", {"period": "7d"})
        # A marker posted after the runtime said ready (had it said anything): messages from one
        # window to another arrive in order, so once the marker is here, nothing else is coming.
        marker = {"_emban": True, "type": "error", "message": "marker"}
        await frame.evaluate("m => window.parent.postMessage(m, '*')", marker)
        assert await unwelcome.event("error") == marker
        assert await unwelcome.events() == [marker]
        assert await frame.input_value("select[name=period]") == ""  # the command was ignored
        assert [csp.endswith("frame-ancestors https://app.example.com") for csp in served] == [True]
    finally:
        await context.close()
