"""/v1/billing*, and POST /webhooks/paddle against a local Paddle stand-in: signatures, the 1 MiB
cap, idempotency (also for two copies at once), order, and plans that change limits at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from emban.billing import paddle as paddle_wire
from emban.models import BillingEvent
from tests.conftest import Client, ClientFactory, bearer, create_key, join_as, register
from tests.paddle_server import (
    CLIENT_TOKEN,
    NOTIFICATION_KEY,
    SLOW_CUSTOMER,
    UNKNOWN_CUSTOMER,
    PaddleStandIn,
    notification,
    signed,
    subscription,
)

FREE_PLAN = {
    "name": "free",
    "title": "Free",
    "limits": {"published_dashboards": 1, "api_keys": 5, "events_per_month": 100_000},
    "features": {"advanced_embed_permissions": False},
}
ALL_PLANS = [
    FREE_PLAN,
    {
        "name": "starter",
        "title": "Starter",
        "limits": {"published_dashboards": 5, "api_keys": 20, "events_per_month": 1_000_000},
        "features": {"advanced_embed_permissions": True},
    },
    {
        "name": "pro",
        "title": "Pro",
        "limits": {"published_dashboards": 50, "api_keys": 100, "events_per_month": 20_000_000},
        "features": {"advanced_embed_permissions": True},
    },
    {
        "name": "enterprise",
        "title": "Enterprise",
        "limits": {"published_dashboards": None, "api_keys": None, "events_per_month": None},
        "features": {"advanced_embed_permissions": True},
    },
]


async def _owner(make_client: ClientFactory) -> tuple[Client, str]:
    client = await make_client()
    reg = await register(client)
    return client, reg["org"]["id"]


async def _hook(client: Client, body: bytes, headers: dict[str, str] | None = None) -> Any:
    response = await client.post(
        "/webhooks/paddle", data=body, headers=signed(body) if headers is None else headers
    )
    return response.status, await response.json()


# --- not configured -------------------------------------------------------------------------


async def test_unconfigured_billing_answers_503_with_retry_after(
    make_client: ClientFactory,
) -> None:
    owner, _ = await _owner(make_client)
    for path in ("/v1/billing/checkout-config", "/v1/billing/portal"):
        response = await owner.get(path)
        assert response.status == 503
        assert response.headers["Retry-After"] == "3600"
        assert await response.json() == {
            "error": "billing is not configured on this server (PADDLE_* settings)",
            "code": "billing_not_configured",
            "request_id": response.headers["X-Request-Id"],  # every 5xx body carries it
        }
    body = notification("evt_1", "subscription.created", subscription(None))
    status, answer = await _hook(owner, body)
    assert (status, answer["code"]) == (503, "billing_not_configured")
    # Billing itself and the plans answer without Paddle.
    assert (await owner.get("/v1/billing")).status == 200
    assert (await owner.get("/v1/billing/plans")).status == 200


# --- GET /v1/billing, checkout-config ---------------------------------------------------------


async def test_billing_overview_of_a_new_org(make_client: ClientFactory) -> None:
    owner, _ = await _owner(make_client)
    response = await owner.get("/v1/billing")
    assert response.status == 200
    assert await response.json() == {
        "plan": "free",
        "status": "none",
        "usage": {"events_this_month": 0, "published_dashboards": 0, "api_keys": 1},
        "limits": FREE_PLAN["limits"],
        "features": FREE_PLAN["features"],
        "plans": ALL_PLANS,
        "subscription": None,
        "customer_id": None,
    }


async def test_billing_overview_is_for_admins(make_client: ClientFactory) -> None:
    owner, _ = await _owner(make_client)
    admin, _ = await join_as(owner, make_client, "admin")
    assert (await admin.get("/v1/billing")).status == 200
    editor, _ = await join_as(owner, make_client, "editor")
    refused = await editor.get("/v1/billing")
    assert refused.status == 403
    assert (await refused.json())["code"] == "insufficient_role"


async def test_checkout_config_for_any_console_member(
    make_client: ClientFactory, billing_on: PaddleStandIn
) -> None:
    owner, org_id = await _owner(make_client)
    expected = {
        "environment": "sandbox",
        "client_token": CLIENT_TOKEN,
        "prices": {"starter": "pri_starter", "pro": "pri_pro", "enterprise": "pri_enterprise"},
        "org_id": org_id,
        "customer_email": "owner@acme.test",
        "custom_data": {"org_id": org_id},
    }
    response = await owner.get("/v1/billing/checkout-config")
    assert (response.status, await response.json()) == (200, expected)
    viewer, _ = await join_as(owner, make_client, "viewer", email="vee@acme.test")
    response = await viewer.get("/v1/billing/checkout-config")
    assert (response.status, await response.json()) == (
        200,
        {**expected, "customer_email": "vee@acme.test"},
    )
    ingest = await create_key(owner, "ingest")
    anonymous = await make_client()
    refused = await anonymous.get("/v1/billing/checkout-config", headers=bearer(ingest))
    assert refused.status == 403
    assert (await anonymous.get("/v1/billing/checkout-config")).status == 401


# --- the webhook's signature and size -----------------------------------------------------------


async def test_signature_checks(make_client: ClientFactory, billing_on: PaddleStandIn) -> None:
    owner, org_id = await _owner(make_client)
    now = int(time.time())

    def body(n: int) -> bytes:
        return notification(f"evt_sig{n}", "subscription.created", subscription(org_id))

    valid = body(1)
    assert await _hook(owner, valid) == (200, {"event_id": "evt_sig1", "outcome": "applied"})

    refusals = {
        "tampered body": (body(2), signed(body(2).replace(b"pri_starter", b"pri_pro"))),
        "wrong key": (body(3), signed(body(3), key="not-the-key")),
        "stale ts": (body(4), signed(body(4), ts=now - 6)),
        "future ts": (body(5), signed(body(5), ts=now + 6)),
        "missing header": (body(6), {"Content-Type": "application/json"}),
        "no h1": (body(7), {"Paddle-Signature": f"ts={now}"}),
        "bad ts": (body(8), {"Paddle-Signature": f"ts=soon;h1={'0' * 64}"}),
    }
    messages = {}
    for name, (payload, headers) in refusals.items():
        status, answer = await _hook(owner, payload, headers)
        assert (status, answer["code"]) == (401, "invalid_signature"), name
        messages[name] = answer["error"]
    assert messages == {
        "tampered body": "Paddle-Signature does not match the body",
        "wrong key": "Paddle-Signature does not match the body",
        "stale ts": "Paddle-Signature timestamp is too far from now",
        "future ts": "Paddle-Signature timestamp is too far from now",
        "missing header": "missing Paddle-Signature header",
        "no h1": "malformed Paddle-Signature header",
        "bad ts": "malformed Paddle-Signature header",
    }
    # Nothing refused was recorded.
    assert await BillingEvent.all().values_list("event_id", flat=True) == ["evt_sig1"]

    # While Paddle rotates the secret, two h1 values arrive: one valid is enough.
    rotated = body(9)
    good = signed(rotated)["Paddle-Signature"]
    ts_part, h1_part = good.split(";")
    two = {"Paddle-Signature": f"{ts_part};h1={'ab' * 32};{h1_part}"}
    assert await _hook(owner, rotated, two) == (200, {"event_id": "evt_sig9", "outcome": "applied"})
    # Within the tolerance (4 s, leaving a second for the request itself) passes.
    edge = body(10)
    assert (await _hook(owner, edge, signed(edge, ts=int(time.time()) - 4)))[0] == 200


async def test_body_cap_and_bad_json(make_client: ClientFactory, billing_on: PaddleStandIn) -> None:
    client = await make_client()
    too_big = b"x" * (1024 * 1024 + 1)
    status, answer = await _hook(client, too_big)
    assert (status, answer["code"]) == (413, "payload_too_large")

    async def chunks() -> Any:
        for _ in range(17):
            yield b"y" * 65536  # 1 MiB + 64 KiB, no Content-Length

    response = await client.post("/webhooks/paddle", data=chunks(), headers=signed(b""))
    assert (response.status, (await response.json())["code"]) == (413, "payload_too_large")

    exactly = b" " * (1024 * 1024 - 2) + b"{}"
    status, answer = await _hook(client, exactly)
    assert (status, answer["code"]) == (400, "invalid_json")
    status, answer = await _hook(client, b"{not json")
    assert (status, answer["code"]) == (400, "invalid_json")
    assert await BillingEvent.all().count() == 0


# --- idempotency, order, unknown events --------------------------------------------------------


async def _audit(owner: Client) -> list[dict[str, Any]]:
    entries = (await (await owner.get("/v1/audit")).json())["entries"]
    return [e for e in entries if e["action"] == "org.set_plan"]


async def test_a_duplicate_changes_nothing(
    make_client: ClientFactory, billing_on: PaddleStandIn
) -> None:
    owner, org_id = await _owner(make_client)
    body = notification("evt_dup", "subscription.created", subscription(org_id, price="pri_pro"))
    assert await _hook(owner, body) == (200, {"event_id": "evt_dup", "outcome": "applied"})
    assert await _hook(owner, body) == (200, {"event_id": "evt_dup", "outcome": "duplicate"})
    assert len(await _audit(owner)) == 1
    assert await BillingEvent.filter(event_id="evt_dup").count() == 1


async def test_two_copies_at_once_apply_once(
    make_client: ClientFactory, billing_on: PaddleStandIn
) -> None:
    owner, org_id = await _owner(make_client)
    other = await make_client()
    body = notification("evt_race", "subscription.created", subscription(org_id, price="pri_pro"))
    answers = await asyncio.gather(_hook(owner, body), _hook(other, body))
    assert sorted(a[1]["outcome"] for a in answers) == ["applied", "duplicate"]
    assert {a[0] for a in answers} == {200}
    audit = await _audit(owner)
    assert [(a["actor_type"], a["metadata"]["from"], a["metadata"]["to"]) for a in audit] == [
        ("paddle", "free", "pro")
    ]


async def test_an_older_update_changes_nothing(
    make_client: ClientFactory, billing_on: PaddleStandIn
) -> None:
    owner, org_id = await _owner(make_client)
    newer = notification(
        "evt_new",
        "subscription.updated",
        subscription(org_id, price="pri_pro"),
        occurred_at="2026-11-29T10:00:05Z",
    )
    older = notification(
        "evt_old",
        "subscription.updated",
        subscription(org_id, price="pri_starter"),
        occurred_at="2026-11-29T10:00:01Z",
    )
    assert (await _hook(owner, newer))[1]["outcome"] == "applied"
    assert (await _hook(owner, older))[1]["outcome"] == "stale"
    billing = await (await owner.get("/v1/billing")).json()
    assert (billing["plan"], billing["status"]) == ("pro", "active")


async def test_unknown_types_and_unknown_orgs_are_recorded_only(
    make_client: ClientFactory, billing_on: PaddleStandIn
) -> None:
    owner, _ = await _owner(make_client)
    unknown = notification("evt_a", "address.created", {"id": "add_1"})
    assert await _hook(owner, unknown) == (200, {"event_id": "evt_a", "outcome": "ignored"})
    nobody = notification(
        "evt_b", "subscription.created", subscription("org_nobody", customer_id="ctm_nobody")
    )
    assert await _hook(owner, nobody) == (200, {"event_id": "evt_b", "outcome": "no_org"})
    rows = await BillingEvent.all().order_by("id").values_list("event_id", "org_id", "outcome")
    assert rows == [("evt_a", None, "ignored"), ("evt_b", None, "no_org")]
    billing = await (await owner.get("/v1/billing")).json()
    assert (billing["plan"], billing["customer_id"]) == ("free", None)


async def test_the_org_comes_from_the_stored_customer_id(
    make_client: ClientFactory, billing_on: PaddleStandIn
) -> None:
    owner, org_id = await _owner(make_client)
    first = notification(
        "evt_c1", "subscription.created", subscription(org_id, customer_id="ctm_9")
    )
    assert (await _hook(owner, first))[1]["outcome"] == "applied"
    # No custom_data: the customer id stored by the first event names the org.
    later = notification(
        "evt_c2",
        "subscription.updated",
        subscription(None, customer_id="ctm_9", price="pri_enterprise"),
        occurred_at="2026-11-29T11:00:00Z",
    )
    assert (await _hook(owner, later))[1]["outcome"] == "applied"
    customer = notification(
        "evt_c3", "customer.updated", {"id": "ctm_9", "email": "billing@acme.test"}
    )
    assert (await _hook(owner, customer))[1]["outcome"] == "applied"
    billing = await (await owner.get("/v1/billing")).json()
    assert (billing["plan"], billing["customer_id"]) == ("enterprise", "ctm_9")


# --- plans follow payments ---------------------------------------------------------------------


async def _publish(owner: Client, n: int) -> Any:
    made = await owner.post("/v1/dashboards", json={"name": f"D{n}"})
    assert made.status == 201, await made.text()
    dashboard = (await made.json())["id"]
    response = await owner.post(f"/v1/dashboards/{dashboard}/publish")
    return response.status, (None if response.status == 204 else await response.json())


async def test_upgrade_then_cancel_moves_limits_at_once(
    make_client: ClientFactory, billing_on: PaddleStandIn
) -> None:
    owner, org_id = await _owner(make_client)
    assert (await _publish(owner, 1))[0] == 204
    assert await _publish(owner, 2) == (
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
    upgrade = notification(
        "evt_up",
        "subscription.created",
        subscription(org_id, scheduled_cancel="2026-12-29T10:00:00Z"),
    )
    assert (await _hook(owner, upgrade))[1]["outcome"] == "applied"
    billing = await (await owner.get("/v1/billing")).json()
    assert billing["plan"] == "starter"
    assert billing["status"] == "active"
    assert billing["limits"]["published_dashboards"] == 5
    assert billing["customer_id"] == "ctm_01"
    assert billing["subscription"] == {
        "id": "sub_01",
        "status": "active",
        "next_billed_at": "2026-12-29T10:00:00.000Z",
        "cancel_at": "2026-12-29T10:00:00.000Z",
    }
    for n in range(3, 7):
        assert (await _publish(owner, n))[0] == 204
    assert (await _publish(owner, 7))[1]["limit"] == 5

    cancel = notification(
        "evt_cancel",
        "subscription.canceled",
        subscription(org_id, status="canceled"),
        occurred_at="2026-11-29T12:00:00Z",
    )
    assert (await _hook(owner, cancel))[1]["outcome"] == "applied"
    billing = await (await owner.get("/v1/billing")).json()
    assert (billing["plan"], billing["status"]) == ("free", "canceled")
    assert billing["usage"]["published_dashboards"] == 5  # still published
    assert await _publish(owner, 8) == (
        402,
        {
            "error": "published dashboard limit reached for this plan",
            "code": "published_dashboards_limit",
            "plan": "free",
            "upgrade_to": "starter",
            "limit": 1,
            "used": 5,
        },
    )
    audit = await _audit(owner)
    assert [
        (a["actor_type"], a["actor_label"], a["metadata"]["from"], a["metadata"]["to"])
        for a in audit
    ] == [
        ("paddle", "evt_cancel", "starter", "free"),
        ("paddle", "evt_up", "free", "starter"),
    ]


async def test_past_due_keeps_the_plan_and_shows_the_status(
    make_client: ClientFactory, billing_on: PaddleStandIn
) -> None:
    owner, org_id = await _owner(make_client)
    created = notification("evt_p1", "subscription.created", subscription(org_id, price="pri_pro"))
    await _hook(owner, created)
    late = notification(
        "evt_p2",
        "subscription.past_due",
        subscription(org_id, status="past_due", price="pri_pro"),
        occurred_at="2026-11-29T11:00:00Z",
    )
    assert (await _hook(owner, late))[1]["outcome"] == "applied"
    billing = await (await owner.get("/v1/billing")).json()
    assert (billing["plan"], billing["status"], billing["subscription"]["status"]) == (
        "pro",
        "past_due",
        "past_due",
    )


# --- the customer portal --------------------------------------------------------------------


async def _customer(owner: Client, org_id: str, customer_id: str = "ctm_01") -> None:
    body = notification(
        f"evt_{customer_id}", "subscription.created", subscription(org_id, customer_id=customer_id)
    )
    assert (await _hook(owner, body))[1]["outcome"] == "applied"


async def test_portal_returns_paddles_overview_url(
    make_client: ClientFactory, billing_on: PaddleStandIn
) -> None:
    owner, org_id = await _owner(make_client)
    await _customer(owner, org_id)
    response = await owner.get("/v1/billing/portal")
    assert (response.status, await response.json()) == (
        200,
        {"url": "https://customer-portal.paddle.com/cpl_01test?c=ctm_01"},
    )
    assert billing_on.seen == [
        (
            "/customers/ctm_01/portal-sessions",
            "Bearer pdl_sdbx_apikey_01test",
            {"subscription_ids": ["sub_01"]},
        )
    ]
    editor, _ = await join_as(owner, make_client, "editor")
    assert (await editor.get("/v1/billing/portal")).status == 403


async def test_portal_without_a_customer_is_404(
    make_client: ClientFactory, billing_on: PaddleStandIn
) -> None:
    owner, _ = await _owner(make_client)
    response = await owner.get("/v1/billing/portal")
    assert (response.status, await response.json()) == (
        404,
        {
            "error": "this org has no Paddle customer yet: subscribe through checkout first",
            "code": "no_billing_customer",
        },
    )
    assert billing_on.seen == []


async def test_portal_when_paddle_refuses_is_502(
    make_client: ClientFactory, billing_on: PaddleStandIn
) -> None:
    owner, org_id = await _owner(make_client)
    await _customer(owner, org_id, UNKNOWN_CUSTOMER)
    response = await owner.get("/v1/billing/portal")
    assert (response.status, await response.json()) == (
        502,
        {
            "error": "Paddle refused the portal session (entity_not_found: Entity ctm_unknown "
            "not found)",
            "code": "billing_provider_error",
            "request_id": response.headers["X-Request-Id"],
        },
    )


async def test_portal_when_paddle_times_out_is_502(
    make_client: ClientFactory, billing_on: PaddleStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paddle_wire, "API_TIMEOUT_SECONDS", 0.3)
    owner, org_id = await _owner(make_client)
    await _customer(owner, org_id, SLOW_CUSTOMER)
    started = time.monotonic()
    response = await owner.get("/v1/billing/portal")
    assert time.monotonic() - started < 3
    assert (response.status, await response.json()) == (
        502,
        {
            "error": "Paddle did not answer within 0.3 s",
            "code": "billing_provider_error",
            "request_id": response.headers["X-Request-Id"],
        },
    )


async def test_signature_helper_matches_paddles_documented_example() -> None:
    """Paddle's docs sign ``ts:body`` with HMAC-SHA256; the header is ``ts=…;h1=…``."""
    header = paddle_wire.signature_header(NOTIFICATION_KEY, b"{}", 1671552777)
    assert header.startswith("ts=1671552777;h1=")
    paddle_wire.verify_signature(NOTIFICATION_KEY, header, b"{}", now=1671552777)
    with pytest.raises(paddle_wire.BadSignature):
        paddle_wire.verify_signature(NOTIFICATION_KEY, header, b"{} ", now=1671552777)
