"""The embed runtime's budget: bundle size and first meaningful render of a 6-widget dashboard.

    .venv/bin/python -m bench.embed_render [--runs 15] [--events 20000]

A fresh `emban serve` (embedded, temp dir), the demo's 6-widget dashboard (text, 2 metrics, area
timeseries, donut breakdown, p95 line) over N events of one tenant spread over 30 days, published,
one embed session. Headless Debian Chromium (Playwright, /usr/bin/chromium) opens
`/embed/:id?token=…` in a new browser context per run (empty HTTP cache: a first visit) and reads
the runtime's performance marks: `emban:first-render` is set once every widget has drawn its data
(or its empty/error state), in ms since navigation start. Also printed: when the HTML arrived,
when the runtime's script started, and the served sizes of the bundle (dist/sizes.json).
Not pass/fail; the budget (≤ 80 KB gzipped JS, ≤ 500 ms first render) is in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import async_playwright

from bench.common import free_port, serve
from emban.demo import DEMO_WIDGETS
from emban.embed_page import DIST_DIR

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TENANT = "acme"
MARKS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const mark = name => (performance.getEntriesByName(name)[0] || {}).startTime ?? null;
  return {
    html: nav.responseEnd,
    script: mark('emban:start'),
    render: mark('emban:first-render'),
    cards: document.querySelectorAll('[data-widget-id]').length,
    loading: document.querySelectorAll('[data-state=loading]').length,
  };
}"""


def events(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    now = time.time()
    out = []
    for _ in range(n):
        at = now - rng.random() * 30 * 86_400
        out.append(
            {
                "tenant_id": TENANT,
                "event_name": "api.call",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                "user_id": f"u{rng.randrange(200)}",
                "string_props": {
                    "model": rng.choice(["gpt-4o", "claude-sonnet", "llama-3-70b"]),
                    "status": "error" if rng.random() < 0.03 else "success",
                },
                "numeric_props": {"latency_ms": rng.lognormvariate(6.3, 0.5)},
            }
        )
    return out


async def prepare(base: str, n: int) -> str:
    async with aiohttp.ClientSession(base) as http:
        async with http.post(
            "/v1/auth/register",
            json={
                "email": "render@emban.test",
                "password": "bench-password",
                "name": "Bench",
                "org_name": "Bench",
            },
        ) as resp:
            admin = (await resp.json())["api_key"]["key"]
        headers = {"Authorization": f"Bearer {admin}"}
        async with http.post(
            "/v1/api-keys", json={"label": "i", "scope": "ingest"}, headers=headers
        ) as resp:
            ingest = {"Authorization": f"Bearer {(await resp.json())['key']}"}
        batch = events(n)
        for start in range(0, n, 5000):
            async with http.post(
                "/v1/events", json={"events": batch[start : start + 5000]}, headers=ingest
            ) as resp:
                assert resp.status == 200, await resp.text()
        async with http.post(
            "/v1/dashboards", json={"name": "Render", "widgets": DEMO_WIDGETS}, headers=headers
        ) as resp:
            dashboard = (await resp.json())["id"]
        async with http.post(f"/v1/dashboards/{dashboard}/publish", headers=headers) as resp:
            assert resp.status == 204
        async with http.post(
            "/v1/embed-sessions",
            headers=headers,
            json={"tenant_id": TENANT, "dashboard_id": dashboard},
        ) as resp:
            token = (await resp.json())["token"]
    return f"{base}/embed/{dashboard}?token={token}"


async def measure(url: str, runs: int) -> list[dict[str, Any]]:
    results = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        for _ in range(runs + 1):  # the first run warms the server (chDB caches)
            context = await browser.new_context(viewport={"width": 1200, "height": 900})
            page = await context.new_page()
            await page.goto(url)
            deadline = time.monotonic() + 20
            while True:
                marks = await page.evaluate(MARKS)
                if marks["render"] is not None or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.02)
            assert marks["render"] is not None, "no emban:first-render mark"
            assert marks["cards"] == len(DEMO_WIDGETS) and marks["loading"] == 0, marks
            results.append(marks)
            await context.close()
        await browser.close()
    return results[1:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    sizes = json.loads((DIST_DIR / "sizes.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        with serve(Path(tmp), port):
            url = asyncio.run(prepare(f"http://127.0.0.1:{port}", args.events))
            rows = asyncio.run(measure(url, args.runs))
    for entry in sizes:
        print(
            f"{entry['file']}: {entry['bytes'] / 1024:.1f} KiB, "
            f"{entry['gzip'] / 1024:.1f} KiB gzipped"
        )
    # The runtime alone: GraphiQL's bundle (console only) is never loaded by an embed.
    js = sum(
        e["gzip"] for e in sizes if e["file"].startswith("embed-") and e["file"].endswith(".js")
    )
    print(f"runtime JS gzipped (uPlot included): {js / 1024:.1f} KiB (budget 80 KB)")
    print(f"{args.runs} cold loads, 6 widgets, {args.events:,} events:")
    for key, label in (
        ("html", "HTML received"),
        ("script", "runtime started"),
        ("render", "first meaningful render"),
    ):
        values = sorted(r[key] for r in rows)
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        print(
            f"  {label:<24} median {statistics.median(values):6.0f} ms   p95 {p95:6.0f} ms"
            "   (since navigation start)"
        )


if __name__ == "__main__":
    main()
