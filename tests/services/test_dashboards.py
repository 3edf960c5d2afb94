"""/v1/dashboards over HTTP: draft vs published, inline widgets, the publish limit, widget config
validation (a 400 naming the field for every rule), org isolation and the audit trail.

Roles of every route for every principal are in test_rest_matrix.py; here, the behaviour.
"""

from __future__ import annotations

import re
from typing import Any

from emban.models import AuditLog, Dashboard, Org
from tests.conftest import Client, ClientFactory, join_as, register
from tests.scenario import call

DASH_ID = re.compile(r"^dash_[a-z2-7]{20}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

CALLS: dict[str, Any] = {
    "id": "calls",
    "kind": "timeseries",
    "title": "Calls",
    "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
    "viz": {"type": "line"},
    "layout": {"x": 0, "y": 0, "w": 6, "h": 4},
}
TOTAL: dict[str, Any] = {
    "id": "total",
    "kind": "metric",
    "title": "Total calls",
    "query": {"event_name": "api.call", "metric": "count", "period": "7d"},
    "viz": {"type": "number", "unit": "calls"},
    "layout": {"x": 6, "y": 0, "w": 6, "h": 2},
}
BY_MODEL: dict[str, Any] = {
    "id": "by_model",
    "kind": "breakdown",
    "title": "  Calls by model  ",
    "description": "Successful calls only",
    "query": {
        "event_name": "api.call",
        "metric": "count",
        "period": "30d",
        "group_by": "model",
        "filters": {"status": "success"},
    },
    "viz": {"type": "donut"},
    "layout": {"x": 0, "y": 4, "w": 4, "h": 4},
}
NOTES: dict[str, Any] = {
    "id": "notes",
    "kind": "text",
    "title": "About",
    "text": "Usage of **your** workspace.",
    "layout": {"x": 4, "y": 4, "w": 8, "h": 1},
}

# What the server stores for each: default granularity filled in, the title trimmed, text
# widgets with no query and a "text" viz.
CALLS_CLEAN = {**CALLS, "query": {**CALLS["query"], "granularity": "hour"}}
TOTAL_CLEAN = {**TOTAL, "query": {**TOTAL["query"], "granularity": "day"}}
BY_MODEL_CLEAN = {
    **BY_MODEL,
    "title": "Calls by model",
    "query": {**BY_MODEL["query"], "granularity": "day"},
}
NOTES_CLEAN = {**NOTES, "query": None, "viz": {"type": "text"}}

NOT_FOUND = {"error": "dashboard not found", "code": "dashboard_not_found"}
WIDGET_NOT_FOUND = {"error": "widget not found in this dashboard", "code": "widget_not_found"}


async def owner_client(make_client: ClientFactory, email: str = "owner@acme.test") -> Client:
    client = await make_client()
    await register(client, email=email, org_name=email.split("@")[1])
    return client


async def create(
    client: Client, name: str = "Usage", widgets: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/dashboards", json={"name": name, "widgets": widgets or [], **extra}
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def get(client: Client, dashboard_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/dashboards/{dashboard_id}")
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def without_times(dashboard: dict[str, Any]) -> dict[str, Any]:
    """The body minus its timestamps (checked for shape, returned as booleans)."""
    out = dict(dashboard)
    for key in ("created_at", "updated_at"):
        assert ISO_MS.match(out.pop(key)), dashboard
    published_at = out.pop("published_at")
    out["published_at?"] = published_at is not None
    if published_at is not None:
        assert ISO_MS.match(published_at)
    return out


async def audit_rows(org_id: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    rows = await AuditLog.filter(org_id=org_id).order_by("id")
    return [(r.action, r.resource_id, r.metadata) for r in rows if r.resource_type == "dashboard"]


async def org_id_of(client: Client) -> str:
    me = await (await client.get("/v1/auth/me")).json()
    org_id: str = me["org"]["id"]
    return org_id


# --- create, read, list -------------------------------------------------------------------------


async def test_create_answers_201_with_the_normalized_draft(make_client: ClientFactory) -> None:
    owner = await owner_client(make_client)
    created = await create(
        owner, "  Usage  ", [CALLS, TOTAL, BY_MODEL, NOTES], description="For customers"
    )
    assert DASH_ID.match(created["id"]), created["id"]
    assert without_times(created) == {
        "id": created["id"],
        "name": "Usage",
        "description": "For customers",
        "widgets": [CALLS_CLEAN, TOTAL_CLEAN, BY_MODEL_CLEAN, NOTES_CLEAN],
        "is_published": False,
        "published": None,
        "published_at?": False,
    }
    assert await get(owner, created["id"]) == created
    empty = await create(owner, "Empty")
    assert (empty["widgets"], empty["description"]) == ([], "")
    listed = await owner.get("/v1/dashboards")
    assert listed.status == 200
    assert await listed.json() == {"dashboards": [created, empty]}


async def test_bad_names_and_bodies_are_400_and_create_nothing(make_client: ClientFactory) -> None:
    owner = await owner_client(make_client)
    cases: list[tuple[Any, dict[str, Any]]] = [
        (
            {"name": "   "},
            {"error": "name must not be empty", "code": "invalid_field", "field": "name"},
        ),
        (
            {"name": "x" * 201},
            {
                "error": "name must be at most 200 characters",
                "code": "invalid_field",
                "field": "name",
            },
        ),
        (
            {"widgets": []},
            {
                "error": "name: Object missing required field `name`",
                "code": "invalid_field",
                "field": "name",
            },
        ),
        (
            {"name": "Usage", "widgets": {"id": "calls"}},
            {
                "error": "widgets: Expected `array`, got `object`",
                "code": "invalid_field",
                "field": "widgets",
            },
        ),
        (
            {"name": "Usage", "widgets": ["calls"]},
            {
                "error": "widgets[0]: Expected `object`, got `str`",
                "code": "invalid_field",
                "field": "widgets[0]",
            },
        ),
        (["Usage"], {"error": "Expected `object`, got `array`", "code": "invalid_body"}),
    ]
    for body, expected in cases:
        status, answer = await call(owner, "POST", "/v1/dashboards", body)
        assert (status, answer) == (400, expected), body
    assert await (await owner.get("/v1/dashboards")).json() == {"dashboards": []}


async def test_another_org_sees_none_of_it(make_client: ClientFactory) -> None:
    owner = await owner_client(make_client)
    other = await owner_client(make_client, "owner@globex.test")
    mine = await create(owner, "Mine", [CALLS])
    theirs = await create(other, "Theirs")
    assert await (await owner.get("/v1/dashboards")).json() == {"dashboards": [mine]}
    assert await (await other.get("/v1/dashboards")).json() == {"dashboards": [theirs]}
    base = f"/v1/dashboards/{mine['id']}"
    for method, path, body in (
        ("GET", base, None),
        ("PATCH", base, {"name": "Stolen"}),
        ("DELETE", base, None),
        ("POST", f"{base}/publish", None),
        ("POST", f"{base}/unpublish", None),
        ("POST", f"{base}/restore-published", None),
        ("POST", f"{base}/widgets", {**TOTAL}),
        ("PATCH", f"{base}/widgets/calls", {"title": "Stolen"}),
        ("DELETE", f"{base}/widgets/calls", None),
    ):
        assert await call(other, method, path, body) == (404, NOT_FOUND), (method, path)
    assert await get(owner, mine["id"]) == mine


async def test_unknown_and_impossible_ids_are_404(make_client: ClientFactory) -> None:
    owner = await owner_client(make_client)
    for dashboard_id in ("dash_nope", "x" * 300, "dash_%00"):
        base = f"/v1/dashboards/{dashboard_id}"
        for method, path, body in (
            ("GET", base, None),
            ("PATCH", base, {"name": "X"}),
            ("DELETE", base, None),
            ("POST", f"{base}/publish", None),
            ("POST", f"{base}/unpublish", None),
            ("POST", f"{base}/restore-published", None),
            ("POST", f"{base}/widgets", CALLS),
            ("PATCH", f"{base}/widgets/calls", {"title": "X"}),
            ("DELETE", f"{base}/widgets/calls", None),
        ):
            assert await call(owner, method, path, body) == (404, NOT_FOUND), (method, path)


async def test_anonymous_is_401_and_roles_are_403_with_nothing_changed(
    make_client: ClientFactory,
) -> None:
    owner = await owner_client(make_client)
    viewer, _ = await join_as(owner, make_client, "viewer")
    editor, _ = await join_as(owner, make_client, "editor")
    dashboard = await create(owner, "Usage", [CALLS])
    base = f"/v1/dashboards/{dashboard['id']}"
    anonymous = await make_client()
    routes: list[tuple[str, str, Any]] = [
        ("GET", "/v1/dashboards", None),
        ("GET", base, None),
        ("POST", "/v1/dashboards", {"name": "X"}),
        ("PATCH", base, {"name": "X"}),
        ("DELETE", base, None),
        ("POST", f"{base}/publish", None),
        ("POST", f"{base}/unpublish", None),
        ("POST", f"{base}/restore-published", None),
        ("POST", f"{base}/widgets", TOTAL),
        ("PATCH", f"{base}/widgets/calls", {"title": "X"}),
        ("DELETE", f"{base}/widgets/calls", None),
    ]
    unauthenticated = {"error": "authentication required", "code": "unauthenticated"}
    editor_role = {"error": "this action requires the editor role", "code": "insufficient_role"}
    admin_role = {"error": "this action requires the admin role", "code": "insufficient_role"}
    admin_only = {f"{base}/widgets", f"{base}/restore-published"}
    for method, path, body in routes:
        assert await call(anonymous, method, path, body) == (401, unauthenticated), path
        if method != "GET":
            denied = admin_role if method == "POST" and path in admin_only else editor_role
            assert await call(viewer, method, path, body) == (403, denied), (method, path)
    assert await call(editor, "POST", f"{base}/widgets", TOTAL) == (403, admin_role)
    assert await call(editor, "POST", f"{base}/restore-published", None) == (403, admin_role)
    assert await get(owner, dashboard["id"]) == dashboard
    assert [a for a, _, _ in await audit_rows(await org_id_of(owner))] == ["dashboard.create"]


# --- update and delete --------------------------------------------------------------------------


async def test_patch_changes_name_description_and_draft_widgets(
    make_client: ClientFactory,
) -> None:
    owner = await owner_client(make_client)
    created = await create(owner, "Usage", [CALLS])
    path = f"/v1/dashboards/{created['id']}"
    status, renamed = await call(owner, "PATCH", path, {"name": " Usage v2 ", "description": "d"})
    assert status == 200
    assert renamed is not None
    assert without_times(renamed) == {
        **without_times(created),
        "name": "Usage v2",
        "description": "d",
    }
    status, rewired = await call(owner, "PATCH", path, {"widgets": [TOTAL, NOTES]})
    assert status == 200
    assert rewired is not None
    assert rewired["widgets"] == [TOTAL_CLEAN, NOTES_CLEAN]
    assert rewired["name"] == "Usage v2"
    status, cleared = await call(owner, "PATCH", path, {"widgets": []})
    assert (status, cleared and cleared["widgets"]) == (200, [])
    # An empty patch changes nothing and writes no audit row.
    status, same = await call(owner, "PATCH", path, {})
    assert (status, same) == (200, await get(owner, created["id"]))
    bad = {**CALLS, "layout": {"x": 8, "y": 0, "w": 6, "h": 4}}
    assert await call(owner, "PATCH", path, {"name": "Z", "widgets": [TOTAL, bad]}) == (
        400,
        {
            "error": "widgets[1].layout: x + w must be at most 12",
            "code": "invalid_field",
            "field": "widgets[1].layout.w",
        },
    )
    assert await call(owner, "PATCH", path, {"name": ""}) == (
        400,
        {"error": "name must not be empty", "code": "invalid_field", "field": "name"},
    )
    after = await get(owner, created["id"])
    assert (after["name"], after["widgets"]) == ("Usage v2", [])
    assert await audit_rows(await org_id_of(owner)) == [
        ("dashboard.create", created["id"], {"name": "Usage"}),
        ("dashboard.update", created["id"], {"fields": ["name", "description"]}),
        ("dashboard.update", created["id"], {"fields": ["draft"]}),
        ("dashboard.update", created["id"], {"fields": ["draft"]}),
    ]


async def test_delete_answers_204_then_the_dashboard_is_gone(make_client: ClientFactory) -> None:
    owner = await owner_client(make_client)
    kept = await create(owner, "Kept")
    gone = await create(owner, "Gone", [CALLS])
    assert await call(owner, "POST", f"/v1/dashboards/{gone['id']}/publish") == (204, None)
    assert await call(owner, "DELETE", f"/v1/dashboards/{gone['id']}") == (204, None)
    assert await call(owner, "GET", f"/v1/dashboards/{gone['id']}") == (404, NOT_FOUND)
    assert await call(owner, "DELETE", f"/v1/dashboards/{gone['id']}") == (404, NOT_FOUND)
    assert await (await owner.get("/v1/dashboards")).json() == {"dashboards": [kept]}
    # Deleting the published one frees the free plan's single published slot.
    assert await call(owner, "POST", f"/v1/dashboards/{kept['id']}/publish") == (204, None)
    rows = await audit_rows(await org_id_of(owner))
    assert rows[-2:] == [
        ("dashboard.delete", gone["id"], {"name": "Gone"}),
        ("dashboard.publish", kept["id"], {}),
    ]


# --- draft vs published -------------------------------------------------------------------------


async def test_publish_copies_the_draft_and_later_edits_wait_for_the_next_publish(
    make_client: ClientFactory,
) -> None:
    owner = await owner_client(make_client)
    created = await create(owner, "Usage", [CALLS, TOTAL], description="v1")
    dashboard_id = created["id"]
    base = f"/v1/dashboards/{dashboard_id}"
    assert await call(owner, "POST", f"{base}/publish") == (204, None)
    first = await get(owner, dashboard_id)
    v1 = {"name": "Usage", "description": "v1", "widgets": [CALLS_CLEAN, TOTAL_CLEAN]}
    assert without_times(first) == {
        **without_times(created),
        "is_published": True,
        "published": v1,
        "published_at?": True,
    }
    # Draft edits, every way there is: the snapshot stays as published.
    await call(owner, "PATCH", base, {"name": "Usage v2", "description": "v2"})
    await call(owner, "POST", f"{base}/widgets", BY_MODEL)
    await call(owner, "PATCH", f"{base}/widgets/calls", {"title": "API calls"})
    await call(owner, "DELETE", f"{base}/widgets/total")
    edited = await get(owner, dashboard_id)
    draft = [{**CALLS_CLEAN, "title": "API calls"}, BY_MODEL_CLEAN]
    assert edited["widgets"] == draft
    assert (edited["published"], edited["published_at"]) == (v1, first["published_at"])
    assert edited["is_published"] is True
    # Publishing again (already published: no limit check) takes the new draft.
    assert await call(owner, "POST", f"{base}/publish") == (204, None)
    second = await get(owner, dashboard_id)
    assert second["published"] == {"name": "Usage v2", "description": "v2", "widgets": draft}
    assert second["published_at"] > first["published_at"]


async def test_unpublish_hides_it_and_keeps_the_snapshot(make_client: ClientFactory) -> None:
    owner = await owner_client(make_client)
    created = await create(owner, "Usage", [CALLS])
    base = f"/v1/dashboards/{created['id']}"
    # Unpublishing a draft-only dashboard is a no-op 204.
    assert await call(owner, "POST", f"{base}/unpublish") == (204, None)
    assert await get(owner, created["id"]) == created
    await call(owner, "POST", f"{base}/publish")
    published = await get(owner, created["id"])
    assert await call(owner, "POST", f"{base}/unpublish") == (204, None)
    hidden = await get(owner, created["id"])
    assert hidden["is_published"] is False
    assert (hidden["published"], hidden["published_at"]) == (
        {"name": "Usage", "description": "", "widgets": [CALLS_CLEAN]},
        published["published_at"],
    )
    assert await call(owner, "POST", f"{base}/unpublish") == (204, None)
    assert await call(owner, "POST", f"{base}/publish") == (204, None)
    assert (await get(owner, created["id"]))["is_published"] is True
    assert [(a, m) for a, _, m in await audit_rows(await org_id_of(owner))] == [
        ("dashboard.create", {"name": "Usage"}),
        ("dashboard.publish", {}),
        ("dashboard.unpublish", {}),
        ("dashboard.publish", {}),
    ]


async def test_restore_published_copies_the_snapshot_over_the_draft(
    make_client: ClientFactory,
) -> None:
    owner = await owner_client(make_client)
    created = await create(owner, "Usage", [CALLS, TOTAL], description="v1")
    base = f"/v1/dashboards/{created['id']}"
    assert await call(owner, "POST", f"{base}/restore-published") == (
        409,
        {"error": "this dashboard has never been published", "code": "never_published"},
    )
    assert await get(owner, created["id"]) == created
    await call(owner, "POST", f"{base}/publish")
    await call(owner, "PATCH", base, {"name": "Broken", "description": "oops", "widgets": [NOTES]})
    await call(owner, "POST", f"{base}/unpublish")  # the snapshot survives unpublishing
    assert await call(owner, "POST", f"{base}/restore-published") == (204, None)
    restored = await get(owner, created["id"])
    assert (restored["name"], restored["description"], restored["widgets"]) == (
        "Usage",
        "v1",
        [CALLS_CLEAN, TOTAL_CLEAN],
    )
    assert restored["is_published"] is False
    assert restored["published"] == {
        "name": "Usage",
        "description": "v1",
        "widgets": [CALLS_CLEAN, TOTAL_CLEAN],
    }
    actions = [a for a, _, _ in await audit_rows(await org_id_of(owner))]
    assert actions == [
        "dashboard.create",
        "dashboard.publish",
        "dashboard.update",
        "dashboard.unpublish",
        "dashboard.restore_published",
    ]


# --- inline widgets ------------------------------------------------------------------------------


async def test_inline_widgets_add_patch_and_delete_edit_the_draft(
    make_client: ClientFactory,
) -> None:
    owner = await owner_client(make_client)
    created = await create(owner, "Usage", [CALLS])
    dashboard_id = created["id"]
    base = f"/v1/dashboards/{dashboard_id}/widgets"
    assert await call(owner, "POST", base, BY_MODEL) == (201, BY_MODEL_CLEAN)
    assert await call(owner, "POST", base, NOTES) == (201, NOTES_CLEAN)
    assert (await get(owner, dashboard_id))["widgets"] == [CALLS_CLEAN, BY_MODEL_CLEAN, NOTES_CLEAN]
    assert await call(owner, "POST", base, {**TOTAL, "id": "calls"}) == (
        409,
        {"error": "widget 'calls' already exists", "code": "widget_exists"},
    )
    patch = {
        "title": "API calls",
        "viz": {"type": "bar", "stacked": True},
        "layout": {"x": 0, "y": 8, "w": 12, "h": 3},
        "query": {"event_name": "api.call", "metric": "count_unique", "period": "7d"},
    }
    patched = {
        **CALLS_CLEAN,
        **patch,
        "query": {**patch["query"], "granularity": "day"},
    }
    assert await call(owner, "PATCH", f"{base}/calls", patch) == (200, patched)
    assert await call(owner, "PATCH", f"{base}/notes", {"text": "New *text*"}) == (
        200,
        {**NOTES_CLEAN, "text": "New *text*"},
    )
    assert await call(owner, "DELETE", f"{base}/by_model") == (204, None)
    assert (await get(owner, dashboard_id))["widgets"] == [
        patched,
        {**NOTES_CLEAN, "text": "New *text*"},
    ]
    assert await audit_rows(await org_id_of(owner)) == [
        ("dashboard.create", dashboard_id, {"name": "Usage"}),
        ("dashboard.widget_add", dashboard_id, {"widget_id": "by_model"}),
        ("dashboard.widget_add", dashboard_id, {"widget_id": "notes"}),
        (
            "dashboard.widget_update",
            dashboard_id,
            {"widget_id": "calls", "fields": ["layout", "query", "title", "viz"]},
        ),
        ("dashboard.widget_update", dashboard_id, {"widget_id": "notes", "fields": ["text"]}),
        ("dashboard.widget_delete", dashboard_id, {"widget_id": "by_model"}),
    ]


async def test_inline_widget_refusals_change_nothing(make_client: ClientFactory) -> None:
    owner = await owner_client(make_client)
    created = await create(owner, "Usage", [CALLS, NOTES])
    base = f"/v1/dashboards/{created['id']}/widgets"
    bad = "invalid_field"
    cases: list[tuple[str, str, Any, int, dict[str, Any]]] = [
        ("PATCH", f"{base}/nope", {"title": "X"}, 404, WIDGET_NOT_FOUND),
        ("DELETE", f"{base}/nope", None, 404, WIDGET_NOT_FOUND),
        (
            "PATCH",
            f"{base}/calls",
            {"kind": "metric"},
            400,
            {"error": "kind cannot be changed here", "code": bad, "field": "kind"},
        ),
        (
            "PATCH",
            f"{base}/calls",
            {"id": "other"},
            400,
            {"error": "id cannot be changed here", "code": bad, "field": "id"},
        ),
        (
            "PATCH",
            f"{base}/calls",
            {"viz": {"type": "pie"}},
            400,
            {
                "error": "widget.viz.type pie does not fit a timeseries widget "
                "(use line, area, bar, stacked_bar, table)",
                "code": bad,
                "field": "widget.viz.type",
            },
        ),
        (
            "PATCH",
            f"{base}/notes",
            {"query": CALLS["query"]},
            400,
            {
                "error": "widget.query: text widgets have no query",
                "code": bad,
                "field": "widget.query",
            },
        ),
        (
            "PATCH",
            f"{base}/calls",
            ["title"],
            400,
            {"error": "body must be a JSON object", "code": bad, "field": "body"},
        ),
        (
            "POST",
            base,
            {**TOTAL, "layout": {"x": 0, "y": 0, "w": 13, "h": 2}},
            400,
            {
                "error": "widget.layout.w must be a whole number from 1 to 12",
                "code": bad,
                "field": "widget.layout.w",
            },
        ),
        (
            "POST",
            base,
            {**TOTAL, "query": {**TOTAL["query"], "period": "1y"}},
            400,
            {
                "error": "widget.query.period must be one of 1h, 24h, 7d, 30d, 90d",
                "code": bad,
                "field": "widget.query.period",
            },
        ),
        (
            "POST",
            base,
            "calls",
            400,
            {"error": "body must be a JSON object", "code": bad, "field": "body"},
        ),
    ]
    for method, path, body, status, expected in cases:
        assert await call(owner, method, path, body) == (status, expected), (method, path, body)
    malformed = await owner.post(base, data=b"{", headers={"Content-Type": "application/json"})
    assert malformed.status == 400
    assert (await malformed.json())["code"] == "invalid_json"
    assert await get(owner, created["id"]) == created


async def test_a_dashboard_holds_at_most_50_widgets(make_client: ClientFactory) -> None:
    owner = await owner_client(make_client)
    many = [{**NOTES, "id": f"n{i}"} for i in range(50)]
    created = await create(owner, "Full", many)
    assert len(created["widgets"]) == 50
    too_many = {"error": "widgets: at most 50 widgets", "code": "invalid_field", "field": "widgets"}
    base = f"/v1/dashboards/{created['id']}"
    assert await call(owner, "POST", f"{base}/widgets", {**NOTES, "id": "n50"}) == (400, too_many)
    widgets = [*many, {**NOTES, "id": "n50"}]
    assert await call(owner, "POST", "/v1/dashboards", {"name": "X", "widgets": widgets}) == (
        400,
        too_many,
    )
    assert await call(owner, "PATCH", base, {"widgets": widgets}) == (400, too_many)
    assert await get(owner, created["id"]) == created


# --- the plan's published-dashboard limit -------------------------------------------------------


async def test_free_plan_publishes_one_dashboard_then_402_changing_nothing(
    make_client: ClientFactory,
) -> None:
    owner = await owner_client(make_client)
    first = await create(owner, "First", [CALLS])
    second = await create(owner, "Second", [TOTAL])
    assert await call(owner, "POST", f"/v1/dashboards/{first['id']}/publish") == (204, None)
    assert await call(owner, "POST", f"/v1/dashboards/{second['id']}/publish") == (
        402,
        {
            "error": "published dashboard limit reached for this plan",
            "code": "published_dashboards_limit",
            "plan": "free",
            "upgrade_to": "starter",
            "limit": 1,
            "used": 1,
        },
    )
    assert await get(owner, second["id"]) == second
    org_id = await org_id_of(owner)
    assert [a for a, _, _ in await audit_rows(org_id)] == [
        "dashboard.create",
        "dashboard.create",
        "dashboard.publish",
    ]
    # Republishing the published one is not a second slot; unpublishing frees the slot.
    assert await call(owner, "POST", f"/v1/dashboards/{first['id']}/publish") == (204, None)
    assert await call(owner, "POST", f"/v1/dashboards/{first['id']}/unpublish") == (204, None)
    assert await call(owner, "POST", f"/v1/dashboards/{second['id']}/publish") == (204, None)
    published = await Dashboard.filter(org_id=org_id, is_published=True).values_list(
        "name", flat=True
    )
    assert published == ["Second"]


async def test_starter_plan_publishes_five(make_client: ClientFactory) -> None:
    owner = await owner_client(make_client)
    org_id = await org_id_of(owner)
    await Org.filter(id=org_id).update(plan="starter")
    created = [await create(owner, f"D{i}") for i in range(6)]
    for dashboard in created[:5]:
        assert await call(owner, "POST", f"/v1/dashboards/{dashboard['id']}/publish") == (
            204,
            None,
        )
    assert await call(owner, "POST", f"/v1/dashboards/{created[5]['id']}/publish") == (
        402,
        {
            "error": "published dashboard limit reached for this plan",
            "code": "published_dashboards_limit",
            "plan": "starter",
            "upgrade_to": "pro",
            "limit": 5,
            "used": 5,
        },
    )
    assert await Dashboard.filter(org_id=org_id, is_published=True).count() == 5
    assert (await get(owner, created[5]["id"]))["published"] is None


# --- widget config validation: a 400 naming the field for every rule ----------------------------


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    widget = {**base, **changes}
    return {k: v for k, v in widget.items() if v is not _DROP}


def _query(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    query = {**base["query"], **changes}
    return _with(base, query={k: v for k, v in query.items() if v is not _DROP})


def _layout(**changes: Any) -> dict[str, Any]:
    return _with(CALLS, layout={**CALLS["layout"], **changes})


_DROP = object()
_KEY_RULE = "must be a property key of letters, digits and _ . : - / (max 64)"
W = "widgets[0]"

# (case, widgets, field, error)
INVALID: list[tuple[str, list[Any], str, str]] = [
    ("unknown widget field", [_with(CALLS, color="red")], f"{W}.color", "is not a widget field"),
    ("id missing", [_with(CALLS, id=_DROP)], f"{W}.id", "must be 1-64 letters, digits, _ or -"),
    (
        "id with a space",
        [_with(CALLS, id="a b")],
        f"{W}.id",
        "must be 1-64 letters, digits, _ or -",
    ),
    ("id too long", [_with(CALLS, id="a" * 65)], f"{W}.id", "must be 1-64 letters, digits, _ or -"),
    (
        "kind unknown",
        [_with(CALLS, kind="gauge")],
        f"{W}.kind",
        "must be one of metric, timeseries, breakdown, table, text",
    ),
    (
        "kind missing",
        [_with(CALLS, kind=_DROP)],
        f"{W}.kind",
        "must be one of metric, timeseries, breakdown, table, text",
    ),
    ("title blank", [_with(CALLS, title="  ")], f"{W}.title", "must be 1-200 characters"),
    ("title too long", [_with(CALLS, title="t" * 201)], f"{W}.title", "must be 1-200 characters"),
    ("title not text", [_with(CALLS, title=5)], f"{W}.title", "must be 1-200 characters"),
    ("query missing", [_with(CALLS, query=_DROP)], f"{W}.query", "must be an object"),
    ("query not an object", [_with(CALLS, query="count")], f"{W}.query", "must be an object"),
    (
        "tenant_id is not a widget query field",
        [_query(CALLS, tenant_id="acme")],
        f"{W}.query.tenant_id",
        "is not a query field",
    ),
    (
        "f_ filters are not fields",
        [_query(CALLS, f_model="x")],
        f"{W}.query.f_model",
        "is not a query field",
    ),
    (
        "event_name missing",
        [_query(CALLS, event_name=_DROP)],
        f"{W}.query.event_name",
        "is required",
    ),
    (
        "event_name not text",
        [_query(CALLS, event_name=7)],
        f"{W}.query.event_name",
        "must be a string",
    ),
    (
        "event_name too long",
        [_query(CALLS, event_name="e" * 201)],
        f"{W}.query.event_name",
        "must be at most 200 characters",
    ),
    ("metric missing", [_query(CALLS, metric=_DROP)], f"{W}.query.metric", "is required"),
    (
        "metric unknown",
        [_query(CALLS, metric="median")],
        f"{W}.query.metric",
        "must be one of count, count_unique, count_unique_approx, sum, avg, p95, p99",
    ),
    ("period missing", [_query(CALLS, period=_DROP)], f"{W}.query.period", "is required"),
    (
        "period unknown",
        [_query(CALLS, period="1y")],
        f"{W}.query.period",
        "must be one of 1h, 24h, 7d, 30d, 90d",
    ),
    (
        "granularity unknown",
        [_query(CALLS, granularity="minute")],
        f"{W}.query.granularity",
        "must be one of hour, day, week, month",
    ),
    (
        "p95 needs numeric_prop",
        [_query(CALLS, metric="p95")],
        f"{W}.query.numeric_prop",
        "is required",
    ),
    (
        "sum needs numeric_prop",
        [_query(TOTAL, metric="sum")],
        f"{W}.query.numeric_prop",
        "is required",
    ),
    (
        "numeric_prop not a key",
        [_query(CALLS, metric="avg", numeric_prop="latency ms")],
        f"{W}.query.numeric_prop",
        _KEY_RULE,
    ),
    ("group_by not a key", [_query(CALLS, group_by="mo del")], f"{W}.query.group_by", _KEY_RULE),
    (
        "filters not an object",
        [_query(CALLS, filters=["model"])],
        f"{W}.query.filters",
        "must be an object",
    ),
    (
        "filter key not a key",
        [_query(CALLS, filters={"mo del": "x"})],
        f"{W}.query.filters.mo del",
        _KEY_RULE,
    ),
    (
        "filter value not text",
        [_query(CALLS, filters={"model": 4})],
        f"{W}.query.filters.model",
        "must be a string",
    ),
    (
        "filter value too long",
        [_query(CALLS, filters={"model": "m" * 201})],
        f"{W}.query.filters.model",
        "must be at most 200 characters",
    ),
    (
        "breakdown needs group_by",
        [_query(BY_MODEL, group_by=_DROP)],
        f"{W}.query.group_by",
        "is required for a breakdown",
    ),
    ("viz missing", [_with(CALLS, viz=_DROP)], f"{W}.viz", "must be an object"),
    ("viz not an object", [_with(CALLS, viz="line")], f"{W}.viz", "must be an object"),
    (
        "viz type unknown",
        [_with(CALLS, viz={"type": "gauge"})],
        f"{W}.viz.type",
        "must be one of number, line, area, bar, stacked_bar, pie, donut, table",
    ),
    (
        "metric widgets are numbers",
        [_with(TOTAL, viz={"type": "line"})],
        f"{W}.viz.type",
        "line does not fit a metric widget (use number)",
    ),
    (
        "timeseries are not pies",
        [_with(CALLS, viz={"type": "pie"})],
        f"{W}.viz.type",
        "pie does not fit a timeseries widget (use line, area, bar, stacked_bar, table)",
    ),
    (
        "breakdowns are not lines",
        [_with(BY_MODEL, viz={"type": "line"})],
        f"{W}.viz.type",
        "line does not fit a breakdown widget (use bar, stacked_bar, pie, donut, table)",
    ),
    (
        "tables are tables",
        [_with(CALLS, kind="table", viz={"type": "bar"})],
        f"{W}.viz.type",
        "bar does not fit a table widget (use table)",
    ),
    ("layout missing", [_with(CALLS, layout=_DROP)], f"{W}.layout", "must be an object"),
    (
        "layout not an object",
        [_with(CALLS, layout=[0, 0, 6, 4])],
        f"{W}.layout",
        "must be an object",
    ),
    (
        "x missing",
        [_with(CALLS, layout={"y": 0, "w": 6, "h": 4})],
        f"{W}.layout.x",
        "must be a whole number from 0 to 11",
    ),
    ("x negative", [_layout(x=-1)], f"{W}.layout.x", "must be a whole number from 0 to 11"),
    (
        "x past the grid",
        [_layout(x=12, w=1)],
        f"{W}.layout.x",
        "must be a whole number from 0 to 11",
    ),
    ("x a boolean", [_layout(x=True)], f"{W}.layout.x", "must be a whole number from 0 to 11"),
    ("x a float", [_layout(x=1.5)], f"{W}.layout.x", "must be a whole number from 0 to 11"),
    ("w zero", [_layout(w=0)], f"{W}.layout.w", "must be a whole number from 1 to 12"),
    ("w 13", [_layout(w=13)], f"{W}.layout.w", "must be a whole number from 1 to 12"),
    (
        "x + w over 12",
        [_layout(x=7, w=6)],
        f"{W}.layout.w",
        f"{W}.layout: x + w must be at most 12",
    ),
    ("y negative", [_layout(y=-1)], f"{W}.layout.y", "must be a whole number from 0 to 10000"),
    (
        "y too far down",
        [_layout(y=10_001)],
        f"{W}.layout.y",
        "must be a whole number from 0 to 10000",
    ),
    ("h zero", [_layout(h=0)], f"{W}.layout.h", "must be a whole number from 1 to 48"),
    ("h 49", [_layout(h=49)], f"{W}.layout.h", "must be a whole number from 1 to 48"),
    (
        "text widgets need text",
        [_with(NOTES, text=_DROP)],
        f"{W}.text",
        "must be markdown of at most 20000 characters",
    ),
    (
        "text too long",
        [_with(NOTES, text="x" * 20_001)],
        f"{W}.text",
        "must be markdown of at most 20000 characters",
    ),
    (
        "text widgets have no query",
        [_with(NOTES, query=CALLS["query"])],
        f"{W}.query",
        "{f}: text widgets have no query",
    ),
    (
        "duplicate ids",
        [CALLS, _with(TOTAL, id="calls")],
        "widgets[1].id",
        "{f} 'calls' is used twice",
    ),
    (
        "the second widget is named",
        [CALLS, _with(TOTAL, kind="chart")],
        "widgets[1].kind",
        "must be one of metric, timeseries, breakdown, table, text",
    ),
]


def _message(field: str, rule: str) -> str:
    """The full error: ``rule`` after the field's name, or as given (``{f}`` = the field)."""
    if "{f}" in rule or rule.startswith("widgets"):
        return rule.replace("{f}", field)
    return f"{field} {rule}"


async def test_every_widget_rule_is_a_400_naming_the_field(make_client: ClientFactory) -> None:
    owner = await owner_client(make_client)
    observed: dict[str, tuple[int, Any]] = {}
    expected: dict[str, tuple[int, Any]] = {}
    for case, widgets, field, rule in INVALID:
        status, body = await call(
            owner, "POST", "/v1/dashboards", {"name": "X", "widgets": widgets}
        )
        observed[case] = (status, body)
        expected[case] = (
            400,
            {"error": _message(field, rule), "code": "invalid_field", "field": field},
        )
    assert observed == expected
    assert await (await owner.get("/v1/dashboards")).json() == {"dashboards": []}
    assert await audit_rows(await org_id_of(owner)) == []
