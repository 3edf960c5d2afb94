"""The embed page and the runtime's static files over HTTP (headers, caching, what is served), and
the GraphQL ``embed.permissions`` field the runtime reads. The browser side:
tests/test_browser_embed.py."""

from __future__ import annotations

import gzip
import json
from typing import Any

from aiohttp.test_utils import TestServer

from emban.embed_page import DIST_DIR, STATIC_DIR
from tests.conftest import ClientFactory, bearer
from tests.embed_scenario import embed_org, mint, set_plan

PERMISSIONS = """query { embed { permissions {
  allowDrillDown lockedFilters allowedDimensions allowedPeriods maxDateRangeDays periods
} } }"""


def manifest() -> dict[str, str]:
    path = DIST_DIR / "manifest.json"
    assert path.is_file(), "the embed runtime is not built: run `make install`"
    names: dict[str, str] = json.loads(path.read_text())
    return names


async def test_embed_page_has_a_strict_csp_and_the_static_page_revalidates(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    acme = await embed_org(make_client)
    token = await mint(acme.client, acme.dashboard_id)
    client = await make_client()
    names = manifest()
    response = await client.get(f"/embed/{acme.dashboard_id}?token={token}")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert f'src="/static/embed/dist/{names["embed.js"]}"' in html
    assert f'href="/static/embed/dist/{names["embed.css"]}"' in html
    assert f'data-dashboard-id="{acme.dashboard_id}"' in html
    assert 'data-allowed-origins="*"' in html  # a new environment allows any origin
    assert token not in html  # the token is read by the runtime, never rendered
    host = f"127.0.0.1:{app_server.port}"
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"font-src 'self'; connect-src 'self' ws://{host} wss://{host}; base-uri 'none'; "
        "form-action 'none'; frame-ancestors *"
    )
    # It carries the session's first data (tests/test_embed_boot.py): never cached.
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Without the token the page is static: revalidated with its ETag.
    path = f"/embed/{acme.dashboard_id}"
    untokened = await client.get(path)
    assert untokened.headers["Cache-Control"] == "no-cache"
    assert untokened.headers["Content-Security-Policy"].endswith("frame-ancestors 'none'")
    etag = untokened.headers["ETag"]
    again = await client.get(path, headers={"If-None-Match": etag})
    assert again.status == 304
    other = await client.get("/embed/dash_other", headers={"If-None-Match": etag})
    assert other.status == 200  # the page names its dashboard


async def test_bad_dashboard_ids_are_404(make_client: ClientFactory) -> None:
    client = await make_client()
    for path in ("/embed/%3Cscript%3E", "/embed/" + "a" * 65, "/embed/a.b"):
        response = await client.get(path)
        assert response.status == 404, path


async def test_bundle_is_immutable_and_precompressed(make_client: ClientFactory) -> None:
    client = await make_client()
    names = manifest()
    script = await client.get(f"/static/embed/dist/{names['embed.js']}")
    assert script.status == 200
    assert script.content_type == "text/javascript"
    assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    body = await script.read()
    assert body == (DIST_DIR / names["embed.js"]).read_bytes()
    raw = await client.get(
        f"/static/embed/dist/{names['embed.js']}",
        headers={"Accept-Encoding": "gzip"},
        auto_decompress=False,
    )
    assert raw.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await raw.read()) == body
    style = await client.get(f"/static/embed/dist/{names['embed.css']}")
    assert (style.status, style.content_type) == (200, "text/css")


async def test_host_helper_and_its_types_are_served(make_client: ClientFactory) -> None:
    client = await make_client()
    host = await client.get("/static/embed/host.js")
    assert (host.status, host.content_type) == (200, "text/javascript")
    assert host.headers["Cache-Control"] == "public, max-age=300"
    assert "Emban" in await host.text()
    types = await client.get("/static/embed/host.d.ts")
    assert types.status == 200
    assert "setEmbedUrl(nextSignedUrl: string)" in await types.text()


async def test_only_the_runtime_files_are_served(make_client: ClientFactory) -> None:
    client = await make_client()
    assert (STATIC_DIR / "package.json").is_file()
    for path in (
        "/static/embed/package.json",
        "/static/embed/src/app.ts",
        "/static/embed/build.mjs",
        "/static/embed/dist/manifest.json",
        "/static/embed/node_modules/uplot/package.json",
        "/static/embed/../../pyproject.toml",
        "/static/embed/dist/../package.json",
        "/static/embed/%2e%2e/%2e%2e/pyproject.toml",
        "/static/embed/dist/.hidden",
        "/static/embed/demo/nope.js",
    ):
        response = await client.get(path)
        assert response.status == 404, path


async def test_demo_host_page_is_served_with_its_own_policy(make_client: ClientFactory) -> None:
    client = await make_client()
    page = await client.get("/demo")
    assert page.status == 200
    html = await page.text()
    assert '<script src="/static/embed/host.js"></script>' in html
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    script = await client.get("/static/embed/demo/demo.js")
    assert script.status == 200
    # The tests' settings are not embedded mode: "/" is not the demo there.
    assert (await client.get("/")).status == 404


async def test_permissions_field_reads_the_tokens_grant(make_client: ClientFactory) -> None:
    acme = await embed_org(make_client)
    plain = await mint(acme.client, acme.dashboard_id)
    client = await make_client()
    response = await client.post("/graphql", json={"query": PERMISSIONS}, headers=bearer(plain))
    body: dict[str, Any] = await response.json()
    assert body["data"]["embed"]["permissions"] == {
        "allowDrillDown": False,
        "lockedFilters": {},
        "allowedDimensions": [],
        "allowedPeriods": [],
        "maxDateRangeDays": None,
        "periods": ["1h", "24h", "7d", "30d", "90d"],
    }
    await set_plan(acme.org_id, "pro")
    granted = await mint(
        acme.client,
        acme.dashboard_id,
        permissions={
            "allow_drill_down": True,
            "locked_filters": {"plan": "pro"},
            "allowed_dimensions": ["model"],
            "allowed_periods": ["30d", "7d"],
            "max_date_range_days": 30,
        },
    )
    response = await client.post("/graphql", json={"query": PERMISSIONS}, headers=bearer(granted))
    body = await response.json()
    assert body["data"]["embed"]["permissions"] == {
        "allowDrillDown": True,
        "lockedFilters": {"plan": "pro"},
        "allowedDimensions": ["model"],
        "allowedPeriods": ["30d", "7d"],
        "maxDateRangeDays": 30,
        "periods": ["7d", "30d"],
    }
    limited = await mint(acme.client, acme.dashboard_id, permissions={"max_date_range_days": 7})
    response = await client.post("/graphql", json={"query": PERMISSIONS}, headers=bearer(limited))
    assert (await response.json())["data"]["embed"]["permissions"]["periods"] == [
        "1h",
        "24h",
        "7d",
    ]
    # Only an embed token may read it (here: the owner's console session).
    console = await acme.client.post("/graphql", json={"query": PERMISSIONS})
    error = (await console.json())["errors"][0]
    assert error["extensions"]["reason"] == "embed_token_required"
