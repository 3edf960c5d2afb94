"""Admin GraphQL for dashboards, widgets and embed sessions: the same services as REST, so the
same scenario answers the same through both edges (REST reads back what GraphQL wrote)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from emban.analytics.shaping import iso_bucket
from emban.models import AuditLog
from tests.conftest import Client, ClientFactory, bearer, create_key, join_as, register
from tests.embed_scenario import TOTAL, claims_of
from tests.gql_client import data_of, error_of

BY_MODEL: dict[str, Any] = {
    "id": "by_model",
    "kind": "breakdown",
    "title": "By model",
    "description": "All calls",
    "query": {"event_name": "api.call", "metric": "count", "period": "7d", "group_by": "model"},
    "viz": {"type": "donut"},
    "layout": {"x": 4, "y": 0, "w": 4, "h": 2},
}
NOTES: dict[str, Any] = {
    "id": "notes",
    "kind": "text",
    "title": "Notes",
    "text": "Hello",
    "layout": {"x": 8, "y": 0, "w": 4, "h": 2},
}

WIDGET_FIELDS = "id kind title description query viz layout text"
DASHBOARD_FIELDS = f"""
  id name description isPublished publishedAt createdAt updatedAt
  widgets {{ {WIDGET_FIELDS} }}
  published {{ name description widgets {{ {WIDGET_FIELDS} }} }}
"""
STANDALONE_FIELDS = f"""
  id publishedAt createdAt updatedAt
  config {{ {WIDGET_FIELDS} }}
  published {{ {WIDGET_FIELDS} }}
"""


def rest_widget(widget: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL widget config as REST writes it: absent optional fields are left out."""
    return {
        k: v
        for k, v in widget.items()
        if v is not None or (k == "query" and widget["kind"] == "text")
    }


def ms(value: str | None) -> str | None:
    """Both edges' timestamps at REST's precision (ISO 8601, milliseconds, Z)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rest_dashboard(d: dict[str, Any]) -> dict[str, Any]:
    published = d["published"]
    return {
        "id": d["id"],
        "name": d["name"],
        "description": d["description"],
        "widgets": [rest_widget(w) for w in d["widgets"]],
        "is_published": d["isPublished"],
        "published_at": ms(d["publishedAt"]),
        "published": {
            "name": published["name"],
            "description": published["description"],
            "widgets": [rest_widget(w) for w in published["widgets"]],
        }
        if published
        else None,
        "created_at": ms(d["createdAt"]),
        "updated_at": ms(d["updatedAt"]),
    }


def rest_standalone(w: dict[str, Any]) -> dict[str, Any]:
    return {
        **rest_widget(w["config"]),
        "published": rest_widget(w["published"]) if w["published"] else None,
        "published_at": ms(w["publishedAt"]),
        "created_at": ms(w["createdAt"]),
        "updated_at": ms(w["updatedAt"]),
    }


async def rest(client: Client, path: str) -> Any:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.json()


async def owner(make_client: ClientFactory) -> tuple[Client, str]:
    client = await make_client()
    reg = await register(client)
    return client, reg["org"]["id"]


async def test_dashboard_lifecycle_through_graphql_equals_rest(make_client: ClientFactory) -> None:
    client, org_id = await owner(make_client)
    created = (
        await data_of(
            client,
            f"""mutation($widgets: JSON) {{
              createDashboard(name: " Usage ", description: "For customers", widgets: $widgets)
              {{ {DASHBOARD_FIELDS} }} }}""",
            {"widgets": [TOTAL, BY_MODEL]},
        )
    )["createDashboard"]
    dashboard_id = created["id"]
    assert dashboard_id.startswith("dash_")
    assert (created["name"], created["isPublished"], created["published"]) == ("Usage", False, None)
    assert rest_dashboard(created) == await rest(client, f"/v1/dashboards/{dashboard_id}")

    updated = (
        await data_of(
            client,
            f"""mutation($id: ID!) {{ updateDashboard(id: $id, name: "Usage v2")
              {{ {DASHBOARD_FIELDS} }} }}""",
            {"id": dashboard_id},
        )
    )["updateDashboard"]
    assert updated["name"] == "Usage v2"

    added = (
        await data_of(
            client,
            f"""mutation($id: ID!, $widget: JSON!) {{
              addDashboardWidget(dashboardId: $id, widget: $widget) {{ {WIDGET_FIELDS} }} }}""",
            {"id": dashboard_id, "widget": NOTES},
        )
    )["addDashboardWidget"]
    assert rest_widget(added) == {**NOTES, "query": None, "viz": {"type": "text"}}
    patched = (
        await data_of(
            client,
            f"""mutation($id: ID!) {{
              updateDashboardWidget(dashboardId: $id, widgetId: "total", patch: {{title: "All"}})
              {{ {WIDGET_FIELDS} }} }}""",
            {"id": dashboard_id},
        )
    )["updateDashboardWidget"]
    assert patched["title"] == "All"
    removed = await data_of(
        client,
        'mutation($id: ID!) { deleteDashboardWidget(dashboardId: $id, widgetId: "by_model") }',
        {"id": dashboard_id},
    )
    assert removed == {"deleteDashboardWidget": True}

    published = (
        await data_of(
            client,
            f"mutation($id: ID!) {{ publishDashboard(id: $id) {{ {DASHBOARD_FIELDS} }} }}",
            {"id": dashboard_id},
        )
    )["publishDashboard"]
    assert published["isPublished"] is True
    assert [w["id"] for w in published["published"]["widgets"]] == ["total", "notes"]
    on_rest = await rest(client, f"/v1/dashboards/{dashboard_id}")
    assert rest_dashboard(published) == on_rest
    listed = (await data_of(client, f"{{ dashboards {{ {DASHBOARD_FIELDS} }} }}"))["dashboards"]
    one = (
        await data_of(
            client,
            f"query($id: ID!) {{ dashboard(id: $id) {{ {DASHBOARD_FIELDS} }} }}",
            {"id": dashboard_id},
        )
    )["dashboard"]
    assert [rest_dashboard(d) for d in listed] == (await rest(client, "/v1/dashboards"))[
        "dashboards"
    ]
    assert rest_dashboard(one) == on_rest

    # The free plan publishes one dashboard: the same 402 fields as REST.
    second = (await data_of(client, 'mutation { createDashboard(name: "Second") { id } }'))[
        "createDashboard"
    ]["id"]
    error = await error_of(
        client, "mutation($id: ID!) { publishDashboard(id: $id) { id } }", {"id": second}
    )
    assert error["message"] == "published dashboard limit reached for this plan"
    assert error["extensions"] == {
        "code": "PLAN_LIMIT",
        "reason": "published_dashboards_limit",
        "plan": "free",
        "upgrade_to": "starter",
        "limit": 1,
        "used": 1,
    }

    await data_of(
        client,
        """mutation($id: ID!) { updateDashboard(id: $id, name: "Draft", widgets: []) { id } }""",
        {"id": dashboard_id},
    )
    unpublished = (
        await data_of(
            client,
            "mutation($id: ID!) { unpublishDashboard(id: $id) { isPublished published { name } } }",
            {"id": dashboard_id},
        )
    )["unpublishDashboard"]
    assert unpublished == {"isPublished": False, "published": {"name": "Usage v2"}}
    restored = (
        await data_of(
            client,
            f"mutation($id: ID!) {{ restorePublished(id: $id) {{ {DASHBOARD_FIELDS} }} }}",
            {"id": dashboard_id},
        )
    )["restorePublished"]
    assert (restored["name"], [w["id"] for w in restored["widgets"]]) == (
        "Usage v2",
        ["total", "notes"],
    )
    deleted = await data_of(
        client, "mutation($id: ID!) { deleteDashboard(id: $id) }", {"id": second}
    )
    assert deleted == {"deleteDashboard": True}
    gone = await client.get(f"/v1/dashboards/{second}")
    assert gone.status == 404

    rows = await AuditLog.filter(org_id=org_id, resource_type="dashboard").order_by("id")
    assert [r.action for r in rows] == [
        "dashboard.create",
        "dashboard.update",
        "dashboard.widget_add",
        "dashboard.widget_update",
        "dashboard.widget_delete",
        "dashboard.publish",
        "dashboard.create",
        "dashboard.update",
        "dashboard.unpublish",
        "dashboard.restore_published",
        "dashboard.delete",
    ]


async def test_standalone_widgets_and_preview_equal_rest(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    key = await create_key(client, "ingest")
    sent = await client.post(
        "/v1/events",
        json={
            "events": [
                {"tenant_id": t, "event_name": "api.call", "string_props": {"model": m}}
                for t, m in (("acme", "gpt-4"), ("acme", "claude"), ("globex", "gpt-4"))
            ]
        },
        headers=bearer(key),
    )
    assert sent.status == 200
    created = (
        await data_of(
            client,
            f"mutation($c: JSON!) {{ createWidget(config: $c) {{ {STANDALONE_FIELDS} }} }}",
            {"c": TOTAL},
        )
    )["createWidget"]
    widget_id = created["id"]
    assert widget_id.startswith("wid_")
    assert created["config"]["id"] == widget_id
    updated = (
        await data_of(
            client,
            f"""mutation($id: ID!) {{ updateWidget(id: $id, patch: {{title: "Total calls"}})
              {{ {STANDALONE_FIELDS} }} }}""",
            {"id": widget_id},
        )
    )["updateWidget"]
    assert (updated["config"]["title"], updated["published"]) == ("Total calls", None)
    published = (
        await data_of(
            client,
            f"mutation($id: ID!) {{ publishWidget(id: $id) {{ {STANDALONE_FIELDS} }} }}",
            {"id": widget_id},
        )
    )["publishWidget"]
    assert published["published"] == published["config"]
    assert rest_standalone(published) == await rest(client, f"/v1/widgets/{widget_id}")
    listed = (await data_of(client, f"{{ widgets {{ {STANDALONE_FIELDS} }} }}"))["widgets"]
    assert [rest_standalone(w) for w in listed] == (await rest(client, "/v1/widgets"))["widgets"]
    one = (
        await data_of(
            client,
            f"query($id: ID!) {{ widget(id: $id) {{ {STANDALONE_FIELDS} }} }}",
            {"id": widget_id},
        )
    )["widget"]
    assert one == published

    preview = """query($widget: JSON!, $tenant: String) {
      widgetPreview(widget: $widget, tenantId: $tenant) {
        widget { id kind } data { bucket value group } meta { metric period plannedBy }
      } }"""
    for widget, tenant, points in (
        (TOTAL, "acme", [("current", 2), ("previous", 0)]),
        (TOTAL, None, [("current", 3), ("previous", 0)]),
        (BY_MODEL, "acme", [("claude", 1), ("gpt-4", 1)]),
    ):
        answer = (await data_of(client, preview, {"widget": widget, "tenant": tenant}))[
            "widgetPreview"
        ]
        assert [(p["group"], p["value"]) for p in answer["data"]] == points
        response = await client.post(
            "/v1/widgets/preview/data", json={"widget": widget, "tenant_id": tenant}
        )
        on_rest = await response.json()
        assert answer["data"] == [
            {"bucket": p["bucket"], "value": p["value"], "group": p.get("group")}
            for p in on_rest["data"]
        ]
        assert answer["meta"] == {
            "metric": on_rest["meta"]["metric"],
            "period": on_rest["meta"]["period"],
            "plannedBy": on_rest["meta"]["planned_by"],
        }
    text = (await data_of(client, preview, {"widget": NOTES}))["widgetPreview"]
    assert text == {"widget": {"id": "notes", "kind": "text"}, "data": [], "meta": None}

    deleted = await data_of(
        client, "mutation($id: ID!) { deleteWidget(id: $id) }", {"id": widget_id}
    )
    assert deleted == {"deleteWidget": True}
    assert (await client.get(f"/v1/widgets/{widget_id}")).status == 404


async def test_embed_sessions_through_graphql_equal_rest(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    dashboard_id = (
        await data_of(
            client,
            'mutation($w: JSON) { createDashboard(name: "Usage", widgets: $w) { id } }',
            {"w": [TOTAL]},
        )
    )["createDashboard"]["id"]
    await data_of(
        client, "mutation($id: ID!) { publishDashboard(id: $id) { id } }", {"id": dashboard_id}
    )
    mint = """mutation($d: ID!, $p: JSON) {
      createEmbedSession(tenantId: "acme", dashboardId: $d, expiresIn: 900, permissions: $p)
      { token embedUrl expiresAt } }"""
    session = (
        await data_of(client, mint, {"d": dashboard_id, "p": {"locked_filters": {"plan": "pro"}}})
    )["createEmbedSession"]
    token = session["token"]
    claims = claims_of(token)
    assert session["embedUrl"] == f"https://emban.test/embed/{dashboard_id}?token={token}"
    assert datetime.fromisoformat(session["expiresAt"]).timestamp() == claims["exp"]
    assert (claims["tenant"], claims["exp"] - claims["iat"]) == ("acme", 900)
    assert claims["permissions"]["locked_filters"] == {"plan": "pro"}
    embedded = await data_of(
        client, "{ embed { dashboard { id widgets { id } } } }", headers=bearer(token)
    )
    assert embedded == {"embed": {"dashboard": {"id": dashboard_id, "widgets": [{"id": "total"}]}}}

    listed = (
        await data_of(
            client,
            """{ embedSessions { id tenantId resource scope actor { type id label }
                 issuedAt expiresAt ttlSeconds } }""",
        )
    )["embedSessions"]
    on_rest = (await rest(client, "/v1/embed-sessions"))["sessions"]
    assert [
        {
            "id": s["id"],
            "tenant_id": s["tenantId"],
            "resource": s["resource"],
            "scope": s["scope"],
            "actor": s["actor"],
            "issued_at": iso_bucket(datetime.fromisoformat(s["issuedAt"])),
            "expires_at": iso_bucket(datetime.fromisoformat(s["expiresAt"])),
        }
        for s in listed
    ] == [{k: v for k, v in s.items() if k != "ttl_seconds"} for s in on_rest]
    assert listed[0]["id"] == claims["jti"]
    assert 890 <= listed[0]["ttlSeconds"] <= 900

    # The same refusals as REST: the plan gate, validation, an unknown dashboard.
    error = await error_of(client, mint, {"d": dashboard_id, "p": {"allow_drill_down": True}})
    assert error["extensions"] == {
        "code": "PLAN_LIMIT",
        "reason": "advanced_embed_permissions",
        "plan": "free",
        "upgrade_to": "starter",
        "limit": None,
        "used": None,
    }
    error = await error_of(client, mint, {"d": dashboard_id, "p": {"hidden_widgets": ["nope"]}})
    assert error["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "invalid_field",
        "field": "permissions.hidden_widgets",
    }
    error = await error_of(client, mint, {"d": "dash_nope"})
    assert error["extensions"] == {"code": "NOT_FOUND", "reason": "dashboard_not_found"}


async def test_roles_and_validation_match_rest(make_client: ClientFactory) -> None:
    client, _ = await owner(make_client)
    viewer, _ = await join_as(client, make_client, "viewer")
    editor, _ = await join_as(client, make_client, "editor")
    anonymous = await make_client()
    create = 'mutation { createDashboard(name: "X") { id } }'
    error = await error_of(anonymous, create)
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "unauthenticated"}
    error = await error_of(viewer, create)
    assert error["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_role"}
    assert (await data_of(viewer, "{ dashboards { id } }")) == {"dashboards": []}
    for forbidden in (
        "mutation($c: JSON!) { createWidget(config: $c) { id } }",
        'mutation { createEmbedSession(tenantId: "a", dashboardId: "x") { token } }',
        "{ embedSessions { id } }",
    ):
        error = await error_of(editor, forbidden, {"c": TOTAL})
        assert error["extensions"] == {"code": "FORBIDDEN", "reason": "insufficient_role"}

    bad = [{**TOTAL, "query": {"event_name": "x"}}]
    error = await error_of(
        editor, 'mutation($w: JSON) { createDashboard(name: "X", widgets: $w) { id } }', {"w": bad}
    )
    response = await editor.post("/v1/dashboards", json={"name": "X", "widgets": bad})
    on_rest = await response.json()
    assert (error["message"], error["extensions"]) == (
        on_rest["error"],
        {"code": "BAD_REQUEST", "reason": on_rest["code"], "field": "widgets[0].query.metric"},
    )
    error = await error_of(editor, 'query { dashboard(id: "dash_nope") { id } }')
    assert (error["message"], error["extensions"]) == (
        "dashboard not found",
        {"code": "NOT_FOUND", "reason": "dashboard_not_found"},
    )
