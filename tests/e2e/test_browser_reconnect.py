"""The browser runtime reconnects to a restarted server by itself (issue 12 item 4): the embed is
open in Chromium on an `emban serve` process; SIGTERM closes its live socket (1001), the server is
started again on the same port and data directory, and an event ingested after the restart shows
in the open page without a reload.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from pathlib import Path

import aiohttp
from playwright.async_api import Browser

from tests.conftest import free_port
from tests.e2e.served import register_org
from tests.e2e.test_browser_embed import browser as browser  # the fixture
from tests.e2e.test_browser_embed import until
from tests.e2e.test_graceful_shutdown import _start

METRIC = {
    "id": "calls",
    "kind": "metric",
    "title": "Calls",
    "query": {"event_name": "api.call", "metric": "count", "period": "30d"},
    "viz": {"type": "number"},
    "layout": {"x": 0, "y": 0, "w": 4, "h": 2},
}
NUMBER = "[data-widget-id=calls] .emban-number-value"


async def _ingest(http: aiohttp.ClientSession, url: str, key: str, n: int) -> None:
    events = [{"tenant_id": "acme", "event_name": "api.call"} for _ in range(n)]
    response = await http.post(
        f"{url}/v1/events", json={"events": events}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status == 200, await response.text()


async def test_the_runtime_reconnects_to_a_restarted_server(
    browser: Browser,
    tmp_path: Path,
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "EMBAN_DATA_DIR": str(tmp_path / "data"),
        "EMBAN_SECRET_KEY": secrets.token_urlsafe(40),
    }
    log = tmp_path / "serve.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = await _start(env, port, log)
    context = await browser.new_context(viewport={"width": 1000, "height": 700})
    try:
        async with aiohttp.ClientSession() as http:
            _, key = await register_org(http, url, "Live")
            admin = {"Authorization": f"Bearer {key}"}
            created = await http.post(
                f"{url}/v1/dashboards", json={"name": "Live", "widgets": [METRIC]}, headers=admin
            )
            dashboard_id = (await created.json())["id"]
            published = await http.post(
                f"{url}/v1/dashboards/{dashboard_id}/publish", headers=admin
            )
            assert published.status == 204
            minted = await http.post(
                f"{url}/v1/embed-sessions",
                json={"tenant_id": "acme", "dashboard_id": dashboard_id},
                headers=admin,
            )
            token = (await minted.json())["token"]
            await _ingest(http, url, key, 2)

            page = await context.new_page()
            await page.goto(f"{url}/embed/{dashboard_id}?token={token}")

            async def live_state() -> str | None:
                return await page.get_attribute("#emban-root", "data-live")

            async def number() -> str | None:
                return await page.text_content(NUMBER)

            await until(lambda: _equals(live_state, "live"), within=20, what="live")
            await until(lambda: _equals(number, "2"), within=10, what="2 calls")

            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), timeout=10)
            assert process.returncode == 0
            await until(lambda: _equals(live_state, "closed"), within=5, what="socket closed")

            process = await _start(env, port, log)
            # The same page, never reloaded: its socket comes back by itself.
            await page.evaluate("() => { window.__marker = 7; }")
            await until(lambda: _equals(live_state, "live"), within=30, what="reconnected")
            await _ingest(http, url, key, 3)
            await until(lambda: _equals(number, "5"), within=10, what="5 calls")
            assert await page.evaluate("() => window.__marker") == 7
    finally:
        await context.close()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), timeout=20)
    assert [line for line in log.read_text().splitlines() if " ERROR " in line] == []


async def _equals(read: object, expected: str) -> bool:
    assert callable(read)
    return bool(await read() == expected)
