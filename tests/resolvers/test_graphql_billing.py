"""Billing over GraphQL: billing, plans, checkoutConfig, billingPortal give what REST gives, with
the same roles and codes (parity with tests/rest_compat/test_billing_routes.py)."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Client, ClientFactory, join_as, register
from tests.gql_client import data_of, error_of
from tests.paddle_server import (
    CLIENT_TOKEN,
    UNKNOWN_CUSTOMER,
    PaddleStandIn,
    notification,
    signed,
    subscription,
)

BILLING = """{ billing { plan status usage { eventsThisMonth publishedDashboards apiKeys }
  limits { publishedDashboards apiKeys eventsPerMonth } features { advancedEmbedPermissions }
  plans { name } subscription { id status nextBilledAt cancelAt } customerId } }"""
CHECKOUT = """{ checkoutConfig { environment clientToken prices { plan priceId } orgId
  customerEmail customData { orgId } } }"""
PORTAL = "{ billingPortal { url } }"


async def _owner(make_client: ClientFactory) -> tuple[Client, str]:
    client = await make_client()
    reg = await register(client)
    return client, reg["org"]["id"]


async def _subscribe(client: Client, org_id: str, customer_id: str = "ctm_01") -> None:
    body = notification(
        f"evt_{customer_id}",
        "subscription.created",
        subscription(org_id, price="pri_pro", customer_id=customer_id),
    )
    response = await client.post("/webhooks/paddle", data=body, headers=signed(body))
    assert response.status == 200


async def test_billing_and_plans(make_client: ClientFactory, billing_on: PaddleStandIn) -> None:
    owner, org_id = await _owner(make_client)
    await _subscribe(owner, org_id)
    data = await data_of(owner, BILLING)
    assert data == {
        "billing": {
            "plan": "pro",
            "status": "active",
            "usage": {"eventsThisMonth": 0, "publishedDashboards": 0, "apiKeys": 1},
            "limits": {"publishedDashboards": 50, "apiKeys": 100, "eventsPerMonth": 20000000},
            "features": {"advancedEmbedPermissions": True},
            "plans": [
                {"name": "free"},
                {"name": "starter"},
                {"name": "pro"},
                {"name": "enterprise"},
            ],
            "subscription": {
                "id": "sub_01",
                "status": "active",
                "nextBilledAt": "2026-12-29T10:00:00.000Z",
                "cancelAt": None,
            },
            "customerId": "ctm_01",
        }
    }
    plans = await data_of(owner, "{ plans { name } }")
    assert [p["name"] for p in plans["plans"]] == ["free", "starter", "pro", "enterprise"]
    editor, _ = await join_as(owner, make_client, "editor")
    error = await error_of(editor, BILLING)
    assert (error["extensions"]["code"], error["extensions"]["reason"]) == (
        "FORBIDDEN",
        "insufficient_role",
    )


async def test_checkout_config(make_client: ClientFactory, billing_on: PaddleStandIn) -> None:
    owner, org_id = await _owner(make_client)
    viewer, _ = await join_as(owner, make_client, "viewer", email="vee@acme.test")
    data = await data_of(viewer, CHECKOUT)
    assert data == {
        "checkoutConfig": {
            "environment": "sandbox",
            "clientToken": CLIENT_TOKEN,
            "prices": [
                {"plan": "starter", "priceId": "pri_starter"},
                {"plan": "pro", "priceId": "pri_pro"},
                {"plan": "enterprise", "priceId": "pri_enterprise"},
            ],
            "orgId": org_id,
            "customerEmail": "vee@acme.test",
            "customData": {"orgId": org_id},
        }
    }


async def test_unconfigured_is_service_unavailable(make_client: ClientFactory) -> None:
    owner, _ = await _owner(make_client)
    for query in (CHECKOUT, PORTAL):
        error = await error_of(owner, query)
        assert error["message"] == "billing is not configured on this server (PADDLE_* settings)"
        assert _without_request_id(error["extensions"]) == {
            "code": "SERVICE_UNAVAILABLE",
            "reason": "billing_not_configured",
        }


async def test_billing_portal(make_client: ClientFactory, billing_on: PaddleStandIn) -> None:
    owner, org_id = await _owner(make_client)
    error: dict[str, Any] = await error_of(owner, PORTAL)
    assert error["extensions"] == {"code": "NOT_FOUND", "reason": "no_billing_customer"}
    await _subscribe(owner, org_id)
    assert await data_of(owner, PORTAL) == {
        "billingPortal": {"url": "https://customer-portal.paddle.com/cpl_01test?c=ctm_01"}
    }
    other, other_org = await _owner_in(make_client)
    await _subscribe(other, other_org, UNKNOWN_CUSTOMER)
    error = await error_of(other, PORTAL)
    assert _without_request_id(error["extensions"]) == {
        "code": "BAD_GATEWAY",
        "reason": "billing_provider_error",
    }


def _without_request_id(extensions: dict[str, Any]) -> dict[str, Any]:
    """A 5xx-category error's extensions carry the request id (a generated one: 16 hex
    characters); the rest as given."""
    rest = dict(extensions)
    assert re.fullmatch(r"[0-9a-f]{16}", rest.pop("request_id"))
    return rest


async def _owner_in(make_client: ClientFactory) -> tuple[Client, str]:
    client = await make_client()
    reg = await register(client, email="owner@beta.test", org_name="Beta")
    return client, reg["org"]["id"]
