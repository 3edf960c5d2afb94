"""Building blocks of embed tests: an org with a published dashboard, embed tokens minted for it,
their claims, and the plan switch some limits need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from emban.services import billing
from emban.services.boundary import transaction
from tests.conftest import Client, ClientFactory, register

TOTAL: dict[str, Any] = {
    "id": "total",
    "kind": "metric",
    "title": "Calls",
    "query": {"event_name": "api.call", "metric": "count", "period": "24h"},
    "viz": {"type": "number"},
    "layout": {"x": 0, "y": 0, "w": 4, "h": 2},
}
NOTES: dict[str, Any] = {
    "id": "notes",
    "kind": "text",
    "title": "Internal notes",
    "text": "For the team only.",
    "layout": {"x": 4, "y": 0, "w": 8, "h": 2},
}
# An embed session's permissions when none are granted (what the token carries by default).
NO_PERMISSIONS = {
    "allow_drill_down": False,
    "locked_filters": {},
    "hidden_widgets": [],
    "allowed_dimensions": [],
    "allowed_periods": [],
    "max_date_range_days": None,
}


@dataclass
class EmbedOrg:
    """A registered org (the owner's session in ``client``) with one dashboard."""

    client: Client
    org_id: str
    environment_id: str  # production: the environment of the owner's session
    dashboard_id: str


async def embed_org(
    make_client: ClientFactory,
    *,
    email: str = "owner@acme.test",
    org_name: str = "Acme",
    widgets: list[dict[str, Any]] | None = None,
    publish: bool = True,
) -> EmbedOrg:
    """A new org with a dashboard "Usage" of ``widgets`` (default: TOTAL and NOTES), published
    unless told otherwise."""
    client = await make_client()
    reg = await register(client, email=email, org_name=org_name)
    created = await client.post(
        "/v1/dashboards", json={"name": "Usage", "widgets": widgets or [TOTAL, NOTES]}
    )
    assert created.status == 201, await created.text()
    dashboard_id = (await created.json())["id"]
    if publish:
        published = await client.post(f"/v1/dashboards/{dashboard_id}/publish")
        assert published.status == 204, await published.text()
    return EmbedOrg(client, reg["org"]["id"], reg["environments"][0]["id"], dashboard_id)


async def mint(client: Client, dashboard_id: str, tenant_id: str = "acme", **body: Any) -> str:
    """An embed token from ``POST /v1/embed-sessions`` (``body``: permissions, expiry…)."""
    response = await client.post(
        "/v1/embed-sessions", json={"tenant_id": tenant_id, "dashboard_id": dashboard_id, **body}
    )
    assert response.status == 201, await response.text()
    token: str = (await response.json())["token"]
    return token


async def set_plan(org_id: str, plan: str) -> None:
    async with transaction():
        await billing.set_plan(org_id, plan)


def claims_of(token: str) -> dict[str, Any]:
    """A token's claims, read without checking its signature."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims
