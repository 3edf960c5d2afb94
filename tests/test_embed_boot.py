"""The embed page's inlined first data (emban/embed_boot.py): exactly what the token's own
GraphQL requests answer, nothing for a token that may not read it, safe inside the HTML, and a
page that is never cached."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from emban.auth.embed_tokens import mint_embed_token
from emban.embed_boot import boot_json
from emban.embed_page import STATIC_DIR
from emban.models import Environment
from tests.conftest import Client, ClientFactory, bearer
from tests.embed_scenario import NO_PERMISSIONS, NOTES, TOTAL, claims_of, embed_org, mint
from tests.gql_client import gql
from tests.scenario import send_events, stamp

GRAPHQL = STATIC_DIR / "src" / "graphql"
DASHBOARD_DOC = (GRAPHQL / "EmbedDashboard.graphql").read_text() + (
    GRAPHQL / "EmbedDashboardFields.graphql"
).read_text()
WIDGET_DOC = (GRAPHQL / "EmbedWidget.graphql").read_text() + (
    GRAPHQL / "WidgetResultFields.graphql"
).read_text()
BOOT = re.compile(r'<script type="application/json" id="emban-boot">([^<]*)</script>\n')
BY_MODEL: dict[str, Any] = {
    "id": "by_model",
    "kind": "breakdown",
    "title": "By model",
    "query": {"event_name": "api.call", "metric": "count", "period": "24h", "group_by": "model"},
    "viz": {"type": "bar"},
    "layout": {"x": 0, "y": 2, "w": 12, "h": 4},
}


async def page(client: Client, path: str) -> tuple[Any, str, dict[str, Any] | None]:
    response = await client.get(path)
    assert response.status == 200
    html = await response.text()
    found = BOOT.findall(html)
    assert len(found) <= 1
    return response, html, json.loads(found[0]) if found else None


async def with_events(make_client: ClientFactory, name: str = "Usage") -> Any:
    acme = await embed_org(make_client, widgets=[TOTAL, NOTES, BY_MODEL])
    if name != "Usage":
        renamed = await acme.client.patch(
            f"/v1/dashboards/{acme.dashboard_id}", json={"name": name}
        )
        assert renamed.status == 200, await renamed.text()
        published = await acme.client.post(f"/v1/dashboards/{acme.dashboard_id}/publish")
        assert published.status == 204
    key = await acme.client.post("/v1/api-keys", json={"label": "i", "scope": "ingest"})
    ingest = (await key.json())["key"]
    now = datetime.now(UTC) - timedelta(minutes=5)
    events = [
        {
            "tenant_id": tenant,
            "event_name": "api.call",
            "timestamp": stamp(now),
            "string_props": {"model": model},
        }
        for tenant, model in (
            ("acme", "gpt-4o"),
            ("acme", "gpt-4o"),
            ("acme", "claude"),
            ("globex", "llama"),
        )
    ]
    await send_events(acme.client, ingest, events)
    return acme


async def test_the_page_carries_what_the_tokens_requests_answer(
    make_client: ClientFactory,
) -> None:
    acme = await with_events(make_client)
    token = await mint(acme.client, acme.dashboard_id)
    client = await make_client()
    response, html, boot = await page(client, f"/embed/{acme.dashboard_id}?token={token}")
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers
    assert token not in html
    assert boot is not None
    expected_embed = (await gql(client, DASHBOARD_DOC, headers=bearer(token)))["data"]["embed"]
    assert boot["embed"] == expected_embed
    assert [w["id"] for w in boot["embed"]["dashboard"]["widgets"]] == [
        "total",
        "notes",
        "by_model",
    ]
    widgets = {}
    for widget_id in ("total", "by_model"):
        variables = {"id": widget_id, "filters": None, "drill": None}
        answer = await gql(client, WIDGET_DOC, variables, headers=bearer(token))
        widgets[widget_id] = answer["data"]["embed"]["widgetData"]
    assert boot["widgets"] == widgets  # the text widget has no data to fetch
    assert [p["value"] for p in boot["widgets"]["total"]["data"]] == [3.0, 0.0]
    assert sorted((p["group"], p["value"]) for p in boot["widgets"]["by_model"]["data"]) == [
        ("claude", 1.0),
        ("gpt-4o", 2.0),
    ]
    # Another tenant's token: its own rows only.
    globex = await mint(acme.client, acme.dashboard_id, tenant_id="globex")
    _, _, other = await page(client, f"/embed/{acme.dashboard_id}?token={globex}")
    assert other is not None
    assert [p["value"] for p in other["widgets"]["total"]["data"]] == [1.0, 0.0]
    assert [(p["group"], p["value"]) for p in other["widgets"]["by_model"]["data"]] == [
        ("llama", 1.0)
    ]


async def test_hidden_widgets_and_locked_filters_hold(make_client: ClientFactory) -> None:
    acme = await with_events(make_client)
    token = await mint(
        acme.client,
        acme.dashboard_id,
        permissions={"hidden_widgets": ["total"], "locked_filters": {"model": "claude"}},
    )
    _, _, boot = await page(await make_client(), f"/embed/{acme.dashboard_id}?token={token}")
    assert boot is not None
    assert [w["id"] for w in boot["embed"]["dashboard"]["widgets"]] == ["notes", "by_model"]
    assert list(boot["widgets"]) == ["by_model"]
    assert [(p["group"], p["value"]) for p in boot["widgets"]["by_model"]["data"]] == [
        ("claude", 1.0)
    ]


async def test_no_data_without_a_token_that_may_read_it(make_client: ClientFactory) -> None:
    acme = await with_events(make_client)
    client = await make_client()
    path = f"/embed/{acme.dashboard_id}"
    # No token: the static page, revalidated as before.
    response, _, boot = await page(client, path)
    assert boot is None
    assert response.headers["Cache-Control"] == "no-cache"
    again = await client.get(path, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304
    # Signed with the environment's secret an hour ago, for one minute.
    expired = mint_embed_token(
        await Environment.get(id=acme.environment_id),
        tenant_id="acme",
        dashboard_id=acme.dashboard_id,
        permissions=NO_PERMISSIONS,
        expires_in=60,
        now=int(time.time()) - 3600,
    ).token
    valid = await mint(acme.client, acme.dashboard_id)
    revoked = await mint(acme.client, acme.dashboard_id)
    gone = await acme.client.delete(f"/v1/embed-sessions/{claims_of(revoked)['jti']}")
    assert gone.status == 200, await gone.text()
    other = await embed_org(make_client, email="owner@globex.test", org_name="Globex")
    foreign = await mint(other.client, other.dashboard_id)
    for token, where in (
        ("not-a-token", acme.dashboard_id),
        (expired, acme.dashboard_id),
        (revoked, acme.dashboard_id),
        (valid + "x", acme.dashboard_id),
        (valid, "dash_other"),  # the token names another dashboard than the page
        (foreign, acme.dashboard_id),
    ):
        response, html, boot = await page(client, f"/embed/{where}?token={token}")
        assert boot is None, (token, where)
        assert response.headers["Cache-Control"] == "no-store"
        assert 'id="emban-root"' in html and html.endswith("</html>\n")
    # Unpublished: the dashboard request fails, so nothing is inlined (the runtime says why).
    unpublished = await acme.client.post(f"/v1/dashboards/{acme.dashboard_id}/unpublish")
    assert unpublished.status == 204
    _, _, boot = await page(client, f"/embed/{acme.dashboard_id}?token={valid}")
    assert boot is None


async def test_the_data_cannot_break_out_of_its_script_element(
    make_client: ClientFactory,
) -> None:
    name = "</script><script>alert(1)</script><!-- \u2028\u2029 é & >"
    acme = await with_events(make_client, name=name)
    token = await mint(acme.client, acme.dashboard_id)
    _, html, boot = await page(await make_client(), f"/embed/{acme.dashboard_id}?token={token}")
    assert boot is not None
    assert boot["embed"]["dashboard"]["name"] == name
    text = BOOT.findall(html)[0]
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029", "é"}
    assert html.count("<script") == 2  # the runtime and the data, nothing else


def test_boot_json_escapes() -> None:
    assert boot_json({"a": "</script>\u2028&"}) == '{"a":"\\u003c/script\\u003e\\u2028\\u0026"}'
