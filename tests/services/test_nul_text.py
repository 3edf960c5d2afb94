"""A NUL character in any text a request would store in the metadata DB is a 400, never a 500.

PostgreSQL text and JSON columns cannot hold NUL (events can: ClickHouse stores it). Services
refuse it where they know the field; ``metadata.refused_text`` turns every other refusal of the
database into a 400 ``invalid_text``, and the request's transaction leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from tortoise.exceptions import OperationalError

from emban.metadata import refused_text
from emban.models import AuditLog, Dashboard, SavedQuery, Widget
from tests.conftest import ClientFactory, register
from tests.gql_client import error_of

NUL = "a\x00b"
WIDGET: dict[str, Any] = {
    "id": "w",
    "kind": "metric",
    "title": "W",
    "query": {"event_name": "x", "metric": "count", "period": "24h"},
    "viz": {"type": "number"},
    "layout": {"x": 0, "y": 0, "w": 2, "h": 2},
}


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """WIDGET with ``value`` at ``path``."""
    widget: dict[str, Any] = {**WIDGET, "query": {**WIDGET["query"]}, "viz": {**WIDGET["viz"]}}
    target = widget
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return widget


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/dashboards", {"name": "D", "description": NUL}),
    ("POST", "/v1/dashboards", {"name": NUL}),
    ("POST", "/v1/dashboards", {"name": "D", "widgets": [_with(("title",), NUL)]}),
    ("POST", "/v1/dashboards", {"name": "D", "widgets": [_with(("query", "event_name"), NUL)]}),
    (
        "POST",
        "/v1/dashboards",
        {"name": "D", "widgets": [_with(("query", "filters"), {"plan": NUL})]},
    ),
    ("POST", "/v1/dashboards", {"name": "D", "widgets": [_with(("viz", "type"), NUL)]}),
    ("POST", "/v1/widgets", _with(("query", "event_name"), NUL)),
    ("POST", "/v1/saved-queries", {"name": NUL, "sql": "SELECT 1"}),
    ("POST", "/v1/saved-queries", {"name": "q", "sql": f"SELECT '{NUL}'"}),
    ("POST", "/v1/api-keys", {"label": NUL, "scope": "ingest"}),
    ("PATCH", "/v1/settings/org", {"name": NUL}),
    ("POST", "/v1/members/invite", {"email": f"{NUL}@acme.test", "role": "viewer"}),
    ("PATCH", "/v1/environments/{env}", {"allowed_origins": [f"https://{NUL}.test"]}),
    (
        "POST",
        "/v1/embed-sessions",
        {
            "tenant_id": "t",
            "dashboard_id": "{dashboard}",
            "permissions": {"locked_filters": {"plan": NUL}},
        },
    ),
]


@pytest.mark.parametrize(("method", "path", "body"), CASES, ids=[f"{c[1]} {c[2]}" for c in CASES])
async def test_nul_in_stored_text_is_a_400_and_stores_nothing(
    make_client: ClientFactory, method: str, path: str, body: dict[str, Any]
) -> None:
    owner = await make_client()
    registered = await register(owner)
    org_id = registered["org"]["id"]
    if body.get("dashboard_id") == "{dashboard}":
        created = await owner.post("/v1/dashboards", json={"name": "D", "widgets": [WIDGET]})
        body = {**body, "dashboard_id": (await created.json())["id"]}
    path = path.format(env=registered["environments"][0]["id"])
    audit_rows = await AuditLog.filter(org_id=org_id).count()
    dashboards = await Dashboard.filter(org_id=org_id).count()
    response = await owner.request(method, path, json=body)
    answer = await response.json()
    assert response.status == 400, answer
    assert answer["code"] in {"invalid_field", "invalid_text"}, answer
    # the field is named where a service knows it (some refuse the value for another reason)
    assert answer.get("field") or answer["code"] == "invalid_text", answer
    assert await AuditLog.filter(org_id=org_id).count() == audit_rows
    assert await Dashboard.filter(org_id=org_id).count() == dashboards
    for model in (Widget, SavedQuery):
        assert await model.filter(org_id=org_id).count() == 0


async def test_nul_over_graphql_is_a_client_error(make_client: ClientFactory) -> None:
    owner = await make_client()
    await register(owner)
    error = await error_of(
        owner,
        'mutation($n: String!) { createDashboard(name: "D", description: $n) { id } }',
        {"n": NUL},
    )
    assert error["extensions"]["reason"] in {"invalid_field", "invalid_text"}, error
    assert "NUL" in error["message"], error


def test_the_database_refusing_nul_text_is_a_400_wherever_it_comes_from() -> None:
    """The net under the services' own checks: PostgreSQL's refusal, as Tortoise raises it."""
    try:
        try:
            raise asyncpg.exceptions.UntranslatableCharacterError("\\u0000 cannot be converted")
        except asyncpg.exceptions.UntranslatableCharacterError as cause:
            raise OperationalError(cause) from cause
    except OperationalError as wrapped:
        refused = refused_text(wrapped)
    assert refused is not None
    assert (refused.status, refused.code, refused.message) == (
        400,
        "invalid_text",
        "text must not contain a NUL character",
    )
    assert refused_text(OperationalError("connection refused")) is None
    assert refused_text(ValueError("x")) is None
