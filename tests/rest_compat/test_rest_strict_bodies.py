"""Every ``/v1`` route that takes a JSON body refuses a field it does not know: 400 naming the
field, nothing done. The same body without the stray field is accepted (so the refusal is the
field's, not the rest of the body's)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from emban.models import AuditLog, Dashboard
from emban.rest_compat.routes import ROUTES
from tests.conftest import ClientFactory
from tests.rest_compat.test_rest_matrix import _body, _url, seed_world

BODY_ROUTES = [(r.method, r.path) for r in ROUTES if r.body is not None]

# Widget configs are checked by services/widget_config.py, which names the field within the
# widget it checks.
FIELD_PREFIX = {
    ("POST", "/v1/dashboards/{id}/widgets"): "widget.",
    ("POST", "/v1/widgets"): "widget.",
    ("PATCH", "/v1/widgets/{id}"): "widget.",
}
PRINCIPAL = {("POST", "/v1/events"): "admin_key"}
PUBLIC = {
    r for r in BODY_ROUTES if next(x for x in ROUTES if (x.method, x.path) == r).auth == "public"
}


def test_every_route_that_reads_a_body_declares_it() -> None:
    """A handler that reads the request body declares its type, so the test below covers it."""
    for route in ROUTES:
        source = inspect.getsource(route.handler)
        reads = any(
            f"{read}(" in source for read in ("parse_body", "read_json_object", "read_body")
        )
        assert reads == (route.body is not None), (route.method, route.path)
    assert len(BODY_ROUTES) == 25


@pytest.mark.parametrize("route", BODY_ROUTES, ids=[f"{m} {p}" for m, p in BODY_ROUTES])
async def test_an_unknown_body_field_is_400_naming_it(
    make_client: ClientFactory, route: tuple[str, str]
) -> None:
    world = await seed_world()
    client = await make_client()
    method, path = route
    headers = {} if route in PUBLIC else world.headers[PRINCIPAL.get(route, "owner")]
    body: dict[str, Any] = _body(route, world) or {}
    audit_rows = await AuditLog.filter(org_id=world.org_id).count()

    refused = await client.request(
        method, _url(path, world), json={**body, "misspelt_field": 1}, headers=headers
    )
    assert refused.status == 400, await refused.text()
    field = FIELD_PREFIX.get(route, "") + "misspelt_field"
    answer = await refused.json()
    assert answer["code"] == "invalid_field"
    assert answer["field"] == field
    assert field in answer["error"]
    assert await AuditLog.filter(org_id=world.org_id).count() == audit_rows

    accepted = await client.request(method, _url(path, world), json=body, headers=headers)
    assert accepted.status < 300, await accepted.text()


async def test_a_misspelt_permissions_mints_nothing(make_client: ClientFactory) -> None:
    world = await seed_world()
    client = await make_client()
    response = await client.post(
        "/v1/embed-sessions",
        json={
            "tenant_id": "acme",
            "dashboard_id": world.dashboard_id,
            "permisions": {"filters": {"period": "7d"}},
        },
        headers=world.headers["admin"],
    )
    assert response.status == 400
    assert await response.json() == {
        "error": "permisions is not a known field",
        "code": "invalid_field",
        "field": "permisions",
    }
    assert not await AuditLog.filter(org_id=world.org_id, action="embed_session.create").exists()


async def test_a_misspelt_tenant_on_preview_is_refused(make_client: ClientFactory) -> None:
    world = await seed_world()
    client = await make_client()
    widget = (await Dashboard.get(id=world.dashboard_id)).draft["widgets"][0]
    response = await client.post(
        "/v1/widgets/preview/data",
        json={"widget": widget, "tenant": "acme"},
        headers=world.headers["editor"],
    )
    assert response.status == 400
    assert await response.json() == {
        "error": "tenant is not a known field",
        "code": "invalid_field",
        "field": "tenant",
    }


async def test_an_unknown_field_inside_a_nested_body_names_its_path(
    make_client: ClientFactory,
) -> None:
    world = await seed_world()
    client = await make_client()
    response = await client.post(
        "/v1/dashboards",
        json={"name": "D", "widgets": [], "layout": {}},
        headers=world.headers["editor"],
    )
    assert response.status == 400
    assert (await response.json())["field"] == "layout"
    response = await client.post(
        "/v1/events",
        json={"events": [{"tenant_id": "t", "event_name": "x", "tenant": "y"}]},
        headers=world.headers["admin_key"],
    )
    assert response.status == 400
    assert await response.json() == {
        "error": "1 invalid event field(s); nothing was stored",
        "code": "invalid_events",
        "errors": [{"index": 0, "field": "tenant", "message": "unknown field"}],
    }
