"""/v1/widgets over HTTP: standalone widget CRUD and publish, and POST /v1/widgets/preview/data
with exact values on ingested events (timeseries, breakdown, metric, text; one tenant or all of
the environment's tenants).

Events sit at known offsets from the start of the current hour; ``stable_now`` waits out the last
seconds of an hour so the server's window is the one the expectations are written for.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from emban.models import AuditLog, Widget
from emban.services import widgets
from tests.conftest import Client, ClientFactory, join_as
from tests.scenario import call, iso, owner_and_key, send_events, stable_now
from tests.services.test_dashboards import BY_MODEL, CALLS, CALLS_CLEAN, NOTES, NOTES_CLEAN, TOTAL

WID = re.compile(r"^wid_[a-z2-7]{20}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HOUR = timedelta(hours=1)
MS = timedelta(milliseconds=1)
NOT_FOUND = {"error": "widget not found", "code": "widget_not_found"}


async def create(client: Client, config: dict[str, Any]) -> dict[str, Any]:
    status, body = await call(client, "POST", "/v1/widgets", config)
    assert status == 201, body
    assert body is not None
    return body


def stored(body: dict[str, Any]) -> dict[str, Any]:
    """A widget body minus created_at/updated_at (checked for shape)."""
    out = dict(body)
    for key in ("created_at", "updated_at"):
        assert ISO_MS.match(out.pop(key)), body
    return out


async def widget_audit(client: Client) -> list[tuple[str, str | None, dict[str, Any]]]:
    me = await (await client.get("/v1/auth/me")).json()
    rows = await AuditLog.filter(org_id=me["org"]["id"], resource_type="widget").order_by("id")
    return [(r.action, r.resource_id, r.metadata) for r in rows]


# --- standalone widgets -------------------------------------------------------------------------


async def test_create_get_list_patch_publish_delete(make_client: ClientFactory) -> None:
    owner, _ = await owner_and_key(make_client)
    created = await create(owner, {**CALLS, "id": "ignored"})
    widget_id = created["id"]
    assert WID.match(widget_id), widget_id
    assert stored(created) == {
        **CALLS_CLEAN,
        "id": widget_id,
        "published": None,
        "published_at": None,
    }
    notes = await create(owner, NOTES)
    assert stored(notes) == {
        **NOTES_CLEAN,
        "id": notes["id"],
        "published": None,
        "published_at": None,
    }
    assert await call(owner, "GET", f"/v1/widgets/{widget_id}") == (200, created)
    assert await call(owner, "GET", "/v1/widgets") == (200, {"widgets": [created, notes]})

    status, patched = await call(
        owner, "PATCH", f"/v1/widgets/{widget_id}", {"title": "API calls", "viz": {"type": "bar"}}
    )
    assert status == 200
    assert patched is not None
    draft = {**CALLS_CLEAN, "id": widget_id, "title": "API calls", "viz": {"type": "bar"}}
    assert stored(patched) == {**draft, "published": None, "published_at": None}

    assert await call(owner, "POST", f"/v1/widgets/{widget_id}/publish") == (204, None)
    status, published = await call(owner, "GET", f"/v1/widgets/{widget_id}")
    assert published is not None
    assert published["published"] == draft
    assert ISO_MS.match(published["published_at"])
    # A later draft edit leaves the published snapshot as it was until the next publish.
    await call(
        owner, "PATCH", f"/v1/widgets/{widget_id}", {"layout": {"x": 0, "y": 2, "w": 12, "h": 3}}
    )
    status, edited = await call(owner, "GET", f"/v1/widgets/{widget_id}")
    assert edited is not None
    assert edited["layout"] == {"x": 0, "y": 2, "w": 12, "h": 3}
    assert (edited["published"], edited["published_at"]) == (draft, published["published_at"])
    assert await call(owner, "POST", f"/v1/widgets/{widget_id}/publish") == (204, None)
    status, republished = await call(owner, "GET", f"/v1/widgets/{widget_id}")
    assert republished is not None
    assert republished["published"] == {**draft, "layout": {"x": 0, "y": 2, "w": 12, "h": 3}}

    assert await call(owner, "DELETE", f"/v1/widgets/{widget_id}") == (204, None)
    for method in ("GET", "PATCH", "DELETE"):
        body = {"title": "X"} if method == "PATCH" else None
        assert await call(owner, method, f"/v1/widgets/{widget_id}", body) == (404, NOT_FOUND)
    assert await call(owner, "POST", f"/v1/widgets/{widget_id}/publish") == (404, NOT_FOUND)
    assert await call(owner, "GET", "/v1/widgets") == (200, {"widgets": [notes]})
    assert await widget_audit(owner) == [
        ("widget.create", widget_id, {"title": "Calls"}),
        ("widget.create", notes["id"], {"title": "About"}),
        ("widget.update", widget_id, {"fields": ["title", "viz"]}),
        ("widget.publish", widget_id, {}),
        ("widget.update", widget_id, {"fields": ["layout"]}),
        ("widget.publish", widget_id, {}),
        ("widget.delete", widget_id, {}),
    ]


async def test_invalid_configs_are_400_naming_the_field_and_save_nothing(
    make_client: ClientFactory,
) -> None:
    owner, _ = await owner_and_key(make_client)
    kept = await create(owner, TOTAL)
    path = f"/v1/widgets/{kept['id']}"
    bad = "invalid_field"
    cases: list[tuple[str, str, Any, dict[str, Any]]] = [
        (
            "POST",
            "/v1/widgets",
            {**CALLS, "query": {"event_name": "api.call", "period": "24h"}},
            {
                "error": "widget.query.metric is required",
                "code": bad,
                "field": "widget.query.metric",
            },
        ),
        (
            "POST",
            "/v1/widgets",
            {**BY_MODEL, "query": {**BY_MODEL["query"], "group_by": None}},
            {
                "error": "widget.query.group_by is required for a breakdown",
                "code": bad,
                "field": "widget.query.group_by",
            },
        ),
        (
            "POST",
            "/v1/widgets",
            {**CALLS, "shared": True},
            {"error": "widget.shared is not a widget field", "code": bad, "field": "widget.shared"},
        ),
        (
            "POST",
            "/v1/widgets",
            ["not", "an", "object"],
            {"error": "body must be a JSON object", "code": bad, "field": "body"},
        ),
        (
            "PATCH",
            path,
            {"viz": {"type": "line"}},
            {
                "error": "widget.viz.type line does not fit a metric widget (use number)",
                "code": bad,
                "field": "widget.viz.type",
            },
        ),
        (
            "PATCH",
            path,
            {"layout": {"x": 10, "y": 0, "w": 3, "h": 2}},
            {
                "error": "widget.layout: x + w must be at most 12",
                "code": bad,
                "field": "widget.layout.w",
            },
        ),
        (
            "PATCH",
            path,
            {"query": {**TOTAL["query"], "metric": "p99"}},
            {
                "error": "widget.query.numeric_prop is required",
                "code": bad,
                "field": "widget.query.numeric_prop",
            },
        ),
        (
            "PATCH",
            path,
            "title",
            {"error": "body must be a JSON object", "code": bad, "field": "body"},
        ),
    ]
    for method, route, body, expected in cases:
        assert await call(owner, method, route, body) == (400, expected), body
    assert await call(owner, "GET", "/v1/widgets") == (200, {"widgets": [kept]})
    assert [a for a, _, _ in await widget_audit(owner)] == ["widget.create"]


async def test_widgets_of_another_org_are_404_and_roles_apply(make_client: ClientFactory) -> None:
    owner, _ = await owner_and_key(make_client)
    other, _ = await owner_and_key(make_client, "owner@globex.test")
    mine = await create(owner, CALLS)
    theirs = await create(other, TOTAL)
    path = f"/v1/widgets/{mine['id']}"
    for method, route, body in (
        ("GET", path, None),
        ("PATCH", path, {"title": "Stolen"}),
        ("POST", f"{path}/publish", None),
        ("DELETE", path, None),
    ):
        assert await call(other, method, route, body) == (404, NOT_FOUND), (method, route)
    for impossible in ("wid_nope", "w" * 300):
        assert await call(owner, "GET", f"/v1/widgets/{impossible}") == (404, NOT_FOUND)
    assert await call(other, "GET", "/v1/widgets") == (200, {"widgets": [theirs]})
    assert await call(owner, "GET", path) == (200, mine)

    editor, _ = await join_as(owner, make_client, "editor")
    viewer, _ = await join_as(owner, make_client, "viewer")
    admin_role = {"error": "this action requires the admin role", "code": "insufficient_role"}
    assert await call(viewer, "GET", path) == (200, mine)
    for method, route, body in (
        ("POST", "/v1/widgets", CALLS),
        ("PATCH", path, {"title": "X"}),
        ("POST", f"{path}/publish", None),
        ("DELETE", path, None),
    ):
        assert await call(editor, method, route, body) == (403, admin_role), (method, route)
    anonymous = await make_client()
    assert await call(anonymous, "GET", "/v1/widgets") == (
        401,
        {"error": "authentication required", "code": "unauthenticated"},
    )
    assert await call(owner, "GET", path) == (200, mine)
    assert await Widget.all().count() == 2


# --- the builder preview ------------------------------------------------------------------------


def ev(
    moment: datetime, tenant: str, model: str, latency: float, name: str = "api.call"
) -> dict[str, Any]:
    return {
        "tenant_id": tenant,
        "event_name": name,
        "timestamp": moment.isoformat(timespec="milliseconds"),
        "string_props": {"model": model},
        "numeric_props": {"latency_ms": latency},
    }


async def seeded(make_client: ClientFactory) -> tuple[Client, datetime]:
    """An org whose production environment holds acme's and globex's calls; its development
    environment and another org hold more calls that no preview here may count."""
    owner, key = await owner_and_key(make_client)
    other, other_key = await owner_and_key(make_client, "owner@globex.test")
    dev_key_response = await owner.post(
        "/v1/api-keys", json={"label": "dev", "scope": "ingest", "environment": "development"}
    )
    assert dev_key_response.status == 201
    development = (await dev_key_response.json())["key"]
    h = (await stable_now()).replace(minute=0, second=0, microsecond=0)
    await send_events(
        owner,
        key,
        [
            ev(h, "acme", "gpt", 100),
            ev(h, "acme", "gpt", 300),
            ev(h - 3 * HOUR, "acme", "claude", 200),
            ev(h - 24 * HOUR, "acme", "gpt", 500),  # the oldest bucket of the 24h window
            ev(h - 24 * HOUR - MS, "acme", "gpt", 900),  # the previous window's newest bucket
            ev(h - 48 * HOUR, "acme", "claude", 50),
            ev(h - 49 * HOUR - MS, "acme", "claude", 70),  # before the previous window
            ev(h, "globex", "claude", 400),
            ev(h - 5 * HOUR, "globex", "llama", 600),
            ev(h - 5 * HOUR, "globex", "llama", 800),
            ev(h, "acme", "gpt", 0, name="user.signup"),
        ],
    )
    await send_events(other, other_key, [ev(h, "acme", "gpt", 1) for _ in range(5)])
    await send_events(owner, development, [ev(h, "acme", "gpt", 1) for _ in range(3)])
    return owner, h


async def preview(
    client: Client, widget: dict[str, Any], tenant_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"widget": widget}
    if tenant_id is not None:
        body["tenant_id"] = tenant_id
    response = await client.post("/v1/widgets/preview/data", json=body)
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


def hourly(h: datetime, values: dict[int, int]) -> list[dict[str, Any]]:
    """The 25 hour buckets of a 24h window ending with ``h``'s hour; ``values`` by hours ago."""
    return [
        {"bucket": iso(h - ago * HOUR), "value": values.get(ago, 0)} for ago in range(24, -1, -1)
    ]


def meta_without_times(meta: dict[str, Any]) -> dict[str, Any]:
    out = dict(meta)
    for key in ("query_time_ms", "previous_query_time_ms", "rows_scanned"):
        if key in out:
            value = out.pop(key)
            assert type(value) in (int, float) and value >= 0, (key, value)
    return out


async def test_timeseries_preview_zero_fills_for_one_tenant_or_all(
    make_client: ClientFactory,
) -> None:
    owner, h = await seeded(make_client)
    config = {k: v for k, v in CALLS.items() if k != "id"}
    one = await preview(owner, config, "acme")
    assert one["widget"] == {**CALLS_CLEAN, "id": "preview"}
    assert one["data"] == hourly(h, {24: 1, 3: 1, 0: 2})
    assert meta_without_times(one["meta"]) == {
        "event_name": "api.call",
        "metric": "count",
        "period": "24h",
        "granularity": "hour",
        "group_by": None,
        "source_table": "events_hourly_rollup",
        "planned_by": "hourly_rollup",
        "rollup_granularity": "hour",
    }
    everyone = await preview(owner, CALLS)
    assert everyone["widget"] == CALLS_CLEAN
    assert everyone["data"] == hourly(h, {24: 1, 5: 2, 3: 1, 0: 3})
    assert (await preview(owner, CALLS, "initech"))["data"] == hourly(h, {})
    avg = {**CALLS, "query": {**CALLS["query"], "metric": "avg", "numeric_prop": "latency_ms"}}
    # Numeric metrics have no point for a bucket without the property (no zero filling).
    assert (await preview(owner, avg))["data"] == [
        {"bucket": iso(h - 24 * HOUR), "value": 500.0},
        {"bucket": iso(h - 5 * HOUR), "value": 700.0},
        {"bucket": iso(h - 3 * HOUR), "value": 200.0},
        {"bucket": iso(h), "value": 800 / 3},
    ]


async def test_breakdown_preview_has_one_total_per_group(make_client: ClientFactory) -> None:
    owner, h = await seeded(make_client)
    config = {**BY_MODEL, "query": {**BY_MODEL["query"], "period": "24h", "filters": {}}}
    start = iso(h - 24 * HOUR)
    one = await preview(owner, config, "acme")
    assert one["data"] == [
        {"bucket": start, "value": 1, "group": "claude"},
        {"bucket": start, "value": 3, "group": "gpt"},
    ]
    assert meta_without_times(one["meta"]) == {
        "event_name": "api.call",
        "metric": "count",
        "period": "24h",
        "granularity": "hour",
        "group_by": "model",
        "source_table": "events_hourly_dim_rollup",
        "planned_by": "hourly_rollup",
        "rollup_granularity": "hour",
    }
    everyone = await preview(owner, config)
    assert everyone["data"] == [
        {"bucket": start, "value": 2, "group": "claude"},
        {"bucket": start, "value": 3, "group": "gpt"},
        {"bucket": start, "value": 2, "group": "llama"},
    ]
    p95 = {**config, "query": {**config["query"], "metric": "p95", "numeric_prop": "latency_ms"}}
    assert (await preview(owner, p95))["data"] == [
        {"bucket": start, "value": 400.0, "group": "claude"},
        {"bucket": start, "value": 500.0, "group": "gpt"},
        {"bucket": start, "value": 800.0, "group": "llama"},
    ]
    filtered = {**config, "query": {**config["query"], "filters": {"model": "gpt"}}}
    assert (await preview(owner, filtered, "acme"))["data"] == [
        {"bucket": start, "value": 3, "group": "gpt"}
    ]


async def test_metric_preview_has_current_and_previous_windows(
    make_client: ClientFactory,
) -> None:
    owner, h = await seeded(make_client)
    config = {**TOTAL, "query": {**TOTAL["query"], "period": "24h"}}
    current, previous = iso(h - 24 * HOUR), iso(h - 49 * HOUR)
    one = await preview(owner, config, "acme")
    # The previous window is the 25 hours before the current one's: no event counts twice.
    assert one["data"] == [
        {"bucket": current, "value": 4, "group": "current"},
        {"bucket": previous, "value": 2, "group": "previous"},
    ]
    assert meta_without_times(one["meta"]) == {
        "event_name": "api.call",
        "metric": "count",
        "period": "24h",
        "granularity": "hour",
        "group_by": None,
        "source_table": "events_hourly_rollup",
        "planned_by": "hourly_rollup",
        "rollup_granularity": "hour",
    }
    everyone = await preview(owner, config)
    assert [p["value"] for p in everyone["data"]] == [7, 2]
    p95 = {**config, "query": {**config["query"], "metric": "p95", "numeric_prop": "latency_ms"}}
    assert (await preview(owner, p95, "acme"))["data"] == [
        {"bucket": current, "value": 500.0, "group": "current"},
        {"bucket": previous, "value": 900.0, "group": "previous"},
    ]
    signups = {**config, "query": {**config["query"], "event_name": "user.signup"}}
    assert [p["value"] for p in (await preview(owner, signups))["data"]] == [1, 0]


async def test_a_metric_reads_its_two_windows_at_once(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, _ = await seeded(make_client)
    running, most = 0, 0
    real = widgets.run_spec

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.05)  # both are in flight if they were started together
            return await real(*args, **kwargs)
        finally:
            running -= 1

    monkeypatch.setattr(widgets, "run_spec", counted)
    config = {**TOTAL, "query": {**TOTAL["query"], "period": "24h"}}
    one = await preview(owner, config, "acme")
    assert [(p["group"], p["value"]) for p in one["data"]] == [("current", 4), ("previous", 2)]
    assert most == 2  # one after the other, it was 1


async def test_text_preview_has_no_data(make_client: ClientFactory) -> None:
    owner, _ = await owner_and_key(make_client)
    assert await preview(owner, NOTES, "acme") == {
        "widget": NOTES_CLEAN,
        "data": [],
        "meta": None,
    }


async def test_preview_refusals_and_nothing_is_saved(make_client: ClientFactory) -> None:
    owner, _ = await owner_and_key(make_client)
    viewer, _ = await join_as(owner, make_client, "viewer")
    bad = "invalid_field"
    cases: list[tuple[Client, Any, int, dict[str, Any]]] = [
        (
            owner,
            {"widget": {**CALLS, "query": {**CALLS["query"], "metric": "median"}}},
            400,
            {
                "error": "widget.query.metric must be one of count, count_unique, "
                "count_unique_approx, sum, avg, p95, p99",
                "code": bad,
                "field": "widget.query.metric",
            },
        ),
        (
            owner,
            {"widget": CALLS, "tenant_id": "t" * 201},
            400,
            {
                "error": "tenant_id must be a string of at most 200 characters",
                "code": bad,
                "field": "tenant_id",
            },
        ),
        (
            owner,
            {"widget": CALLS, "tenant_id": 7},
            400,
            {
                "error": "tenant_id: Expected `str | null`, got `int`",
                "code": bad,
                "field": "tenant_id",
            },
        ),
        (
            owner,
            {"tenant_id": "acme"},
            400,
            {
                "error": "widget: Object missing required field `widget`",
                "code": bad,
                "field": "widget",
            },
        ),
        (
            owner,
            {"widget": "calls"},
            400,
            {"error": "widget: Expected `object`, got `str`", "code": bad, "field": "widget"},
        ),
        (
            viewer,
            {"widget": CALLS},
            403,
            {"error": "this action requires the editor role", "code": "insufficient_role"},
        ),
    ]
    for client, body, status, expected in cases:
        assert await call(client, "POST", "/v1/widgets/preview/data", body) == (status, expected)
    assert await Widget.all().count() == 0
    assert await widget_audit(owner) == []
