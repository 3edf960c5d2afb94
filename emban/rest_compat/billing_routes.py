"""``/v1/billing*`` and ``POST /webhooks/paddle`` (docs/billing.md): plans, the org's
subscription and usage, Paddle checkout and portal, and the verified, idempotent webhook."""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from emban.billing import paddle
from emban.error_codes import BillingErrorCode, RequestErrorCode
from emban.errors import BadRequest, Unauthenticated
from emban.rest_compat import responses as out
from emban.rest_compat import shapes
from emban.rest_compat.http import json_response, read_body, runtime
from emban.rest_compat.responses import Response, Timestamp
from emban.rest_compat.route import caller, route
from emban.services import billing, subscriptions
from emban.services.boundary import transaction

# Paddle's notifications are small (a few KiB); the spec caps the body at 1 MiB.
MAX_WEBHOOK_BODY = 1024 * 1024


class BillingUsage(Response):
    events_this_month: int
    published_dashboards: int
    api_keys: int


class BillingSubscription(Response):
    id: str
    status: str
    next_billed_at: Timestamp | None
    cancel_at: Timestamp | None


class Billing(Response):
    plan: str
    status: Literal["active", "trialing", "past_due", "paused", "canceled", "none"]
    usage: BillingUsage
    limits: out.PlanLimits
    features: out.PlanFeatures
    plans: list[out.BillingPlan]
    subscription: BillingSubscription | None
    customer_id: str | None


class CheckoutCustomData(Response):
    org_id: str


class CheckoutConfig(Response):
    environment: Literal["sandbox", "production"]
    client_token: str
    prices: dict[str, str]
    org_id: str
    customer_email: str | None
    custom_data: CheckoutCustomData


class BillingPortal(Response):
    url: str


def billing_shape(view: subscriptions.BillingOverview) -> Billing:
    plan = shapes.plan(view.plan)
    sub = view.subscription
    return Billing(
        plan=view.plan.name,
        status=view.status,
        usage=BillingUsage(
            events_this_month=view.usage.events_this_month,
            published_dashboards=view.usage.published_dashboards,
            api_keys=view.usage.api_keys,
        ),
        limits=plan.limits,
        features=plan.features,
        plans=[shapes.plan(p) for p in view.plans],
        subscription=None
        if sub is None
        else BillingSubscription(
            id=sub.id,
            status=sub.status,
            next_billed_at=shapes.iso(sub.next_billed_at),
            cancel_at=shapes.iso(sub.cancel_at),
        ),
        customer_id=view.customer_id,
    )


@route("GET", "/v1/billing/plans", response=out.PlanList, auth="public", tag="billing")
async def list_plans(request: web.Request) -> out.PlanList:
    """List plan specs and feature flags."""
    return out.PlanList(plans=[shapes.plan(p) for p in billing.list_plans()])


@route("GET", "/v1/billing", response=Billing, service=subscriptions.get_billing, tag="billing")
async def get_billing(request: web.Request) -> Billing:
    """Current plan, billing status, usage counters, limits and the available plans."""
    return billing_shape(await subscriptions.get_billing(actor=caller(request)))


@route(
    "GET",
    "/v1/billing/checkout-config",
    response=CheckoutConfig,
    service=subscriptions.checkout_config,
    tag="billing",
    errors=(503,),
)
async def get_checkout_config(request: web.Request) -> CheckoutConfig:
    """Paddle.js initialization data (environment, client token, price ids, org id) for the
    hosted checkout overlay; 503 when Paddle is not configured."""
    config = await subscriptions.checkout_config(runtime(request).settings, actor=caller(request))
    return CheckoutConfig(
        environment="production" if config.environment == "production" else "sandbox",
        client_token=config.client_token,
        prices=config.prices,
        org_id=config.org_id,
        customer_email=config.customer_email,
        custom_data=CheckoutCustomData(org_id=config.org_id),
    )


@route(
    "GET",
    "/v1/billing/portal",
    response=BillingPortal,
    service=subscriptions.portal_url,
    tag="billing",
    errors=(404, 502, 503),
)
async def get_billing_portal(request: web.Request) -> BillingPortal:
    """A Paddle customer portal URL for the org's customer (payment method, plan changes,
    invoices, cancellation); 404 without a Paddle customer, 503 when not configured."""
    url = await subscriptions.portal_url(runtime(request).settings, actor=caller(request))
    return BillingPortal(url=url)


async def paddle_webhook(request: web.Request) -> web.Response:
    """``POST /webhooks/paddle``: verify, record once, apply. 401 for a missing, bad or stale
    signature, 413 over 1 MiB (before reading it whole), 400 for a body that is not a
    notification, 200 for everything accepted: duplicates, unknown types, unknown orgs."""
    settings = runtime(request).settings
    subscriptions.require_configured(settings)
    assert settings.paddle_notification_key is not None  # checked just above
    body = await read_body(request, MAX_WEBHOOK_BODY)
    try:
        paddle.verify_signature(
            settings.paddle_notification_key, request.headers.get("Paddle-Signature"), body
        )
    except paddle.BadSignature as exc:
        raise Unauthenticated(str(exc), code=BillingErrorCode.invalid_signature) from None
    try:
        event = paddle.parse_notification(body)
    except paddle.BadNotification as exc:
        raise BadRequest(str(exc), code=RequestErrorCode.invalid_json) from None
    outcome: str
    try:
        async with transaction():
            outcome = await subscriptions.apply_notification(settings, event)
    except subscriptions.DuplicateEvent:
        outcome = "duplicate"
    return json_response({"event_id": event.event_id, "outcome": outcome})
