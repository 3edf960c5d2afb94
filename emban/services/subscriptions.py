"""Paddle subscriptions: what an org pays for, and what a verified notification changes.

The plan follows the subscription at once: a ``subscription.*`` or ``transaction.completed``
notification that names a configured price sets the org's plan in the same transaction that
records the event, so limits (services/billing.py) rise or fall with the next request. A
canceled or paused subscription returns the org to ``free``; ``past_due`` keeps the plan (Paddle
is still collecting) and shows the status. Plan changes are audited with Paddle as the actor.

Idempotency is the unique ``event_id`` of :class:`BillingEvent`: the row is inserted first, so a
copy (a retry, or two deliveries at once) fails on the constraint and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from tortoise.exceptions import IntegrityError

from emban.auth.principal import Principal
from emban.billing import paddle
from emban.error_codes import BillingErrorCode
from emban.errors import BadGateway, NotFound, ServiceUnavailable
from emban.models import ApiKey, BillingAccount, BillingEvent, Dashboard, Org, User
from emban.services import audit, billing
from emban.services.access import requires
from emban.services.billing import Plan
from emban.services.events import events_this_month
from emban.services.scope import in_org, lock_org
from emban.settings import PLANS, Settings

SubscriptionStatus = Literal["active", "trialing", "past_due", "paused", "canceled", "none"]
STATUSES: tuple[SubscriptionStatus, ...] = (
    "active",
    "trialing",
    "past_due",
    "paused",
    "canceled",
    "none",
)
SUBSCRIPTION_EVENTS = frozenset(
    {
        "subscription.created",
        "subscription.activated",
        "subscription.updated",
        "subscription.past_due",
        "subscription.paused",
        "subscription.resumed",
        "subscription.canceled",
    }
)
CUSTOMER_EVENTS = frozenset({"customer.created", "customer.updated"})
TRANSACTION_EVENTS = frozenset({"transaction.completed"})
# Statuses under which the org keeps no paid plan.
UNPAID = frozenset({"canceled", "paused"})
# A 503's Retry-After: configuration does not fix itself within seconds.
NOT_CONFIGURED_RETRY_AFTER = 3600

Outcome = Literal["applied", "stale", "ignored", "no_org"]


class DuplicateEvent(Exception):
    """The event id was received before: the caller answers 200 and rolls back."""


@dataclass(frozen=True)
class Subscription:
    id: str
    status: str
    next_billed_at: datetime | None
    cancel_at: datetime | None


@dataclass(frozen=True)
class BillingUsage:
    events_this_month: int
    published_dashboards: int
    api_keys: int


@dataclass(frozen=True)
class BillingOverview:
    plan: Plan
    status: SubscriptionStatus
    usage: BillingUsage
    plans: list[Plan]
    subscription: Subscription | None
    customer_id: str | None


@dataclass(frozen=True)
class CheckoutConfig:
    environment: str
    client_token: str
    prices: dict[str, str]
    org_id: str
    customer_email: str | None


def require_configured(settings: Settings) -> None:
    if not settings.billing_configured:
        raise ServiceUnavailable(
            "billing is not configured on this server (PADDLE_* settings)",
            code=BillingErrorCode.billing_not_configured,
            retry_after=NOT_CONFIGURED_RETRY_AFTER,
        )


def _status(raw: str | None) -> SubscriptionStatus:
    for status in STATUSES:
        if raw == status:
            return status
    return "none"


@requires("admin")
async def get_billing(*, actor: Principal) -> BillingOverview:
    """The org's plan, subscription and usage against the plan's limits (admins)."""
    org = await Org.get(id=actor.org_id)
    account = await BillingAccount.get_or_none(org_id=org.id)
    subscription = None
    if account is not None and account.subscription_id is not None:
        subscription = Subscription(
            id=account.subscription_id,
            status=account.status,
            next_billed_at=account.next_billed_at,
            cancel_at=account.cancel_at,
        )
    usage = BillingUsage(
        events_this_month=await events_this_month(org.id, datetime.now(UTC).date()),
        published_dashboards=await in_org(Dashboard, actor).filter(is_published=True).count(),
        api_keys=await in_org(ApiKey, actor).count(),
    )
    return BillingOverview(
        plan=billing.plan_of(org),
        status=_status(account.status if account else None),
        usage=usage,
        plans=billing.list_plans(),
        subscription=subscription,
        customer_id=account.customer_id if account else None,
    )


@requires("viewer")
async def checkout_config(settings: Settings, *, actor: Principal) -> CheckoutConfig:
    """What Paddle.js needs to open checkout for this org (any console member); 503 when
    billing is not configured. ``custom_data.org_id`` comes back in every notification."""
    require_configured(settings)
    assert settings.paddle_client_token is not None  # checked just above
    email = None
    if actor.user_id is not None:
        user = await User.get_or_none(id=actor.user_id)
        email = user.email if user else None
    if email is None:
        email = (await Org.get(id=actor.org_id)).email
    return CheckoutConfig(
        environment=settings.paddle_environment,
        client_token=settings.paddle_client_token,
        prices=dict(settings.paddle_price_ids),
        org_id=actor.org_id,
        customer_email=email,
    )


@requires("admin")
async def portal_url(settings: Settings, *, actor: Principal) -> str:
    """A Paddle customer portal session for the org's customer (admins): 503 when billing is not
    configured, 404 without a Paddle customer, 502 when Paddle fails or times out."""
    require_configured(settings)
    assert settings.paddle_api_key is not None  # checked just above
    account = await BillingAccount.get_or_none(org_id=actor.org_id)
    if account is None or account.customer_id is None:
        raise NotFound(
            "this org has no Paddle customer yet: subscribe through checkout first",
            code=BillingErrorCode.no_billing_customer,
        )
    try:
        return await paddle.create_portal_session(
            api_url=settings.paddle_base_url,
            api_key=settings.paddle_api_key,
            customer_id=account.customer_id,
            subscription_ids=[account.subscription_id] if account.subscription_id else [],
        )
    except paddle.ProviderError as exc:
        raise BadGateway(str(exc), code=BillingErrorCode.billing_provider_error) from None


def plan_for_prices(settings: Settings, price_ids: list[str]) -> str | None:
    """The highest configured plan among ``price_ids`` (``None`` when none is configured)."""
    by_price = {price: plan for plan, price in settings.paddle_price_ids}
    plans = [by_price[price] for price in price_ids if price in by_price]
    return max(plans, key=PLANS.index) if plans else None


async def apply_notification(settings: Settings, event: paddle.Notification) -> Outcome:
    """Record a verified notification once and apply it; raise :class:`DuplicateEvent` for an
    event id seen before. Runs inside the caller's transaction (the webhook's)."""
    try:
        row = await BillingEvent.create(
            event_id=event.event_id,
            event_type=event.event_type,
            occurred_at=event.occurred_at,
            outcome="ignored",
        )
    except IntegrityError:
        raise DuplicateEvent(event.event_id) from None
    known = SUBSCRIPTION_EVENTS | CUSTOMER_EVENTS | TRANSACTION_EVENTS
    outcome: Outcome = "ignored"
    if event.event_type in known:
        org = await _org_of(event)
        if org is None:
            outcome = "no_org"
        else:
            row.org_id = org.id
            outcome = await _apply(settings, org, event)
    row.outcome = outcome
    await row.save(update_fields=["org_id", "outcome"])
    return outcome


async def _org_of(event: paddle.Notification) -> Org | None:
    """``custom_data.org_id``, else the org whose stored subscription this is, else the one org
    whose stored customer this is (one customer paying for several orgs names none)."""
    data = event.data
    if data.org_id is not None:
        org = await Org.get_or_none(id=data.org_id)
        if org is not None:
            return org
    subscription_id = data.id if event.event_type in SUBSCRIPTION_EVENTS else data.subscription_id
    if subscription_id is not None:
        account = await BillingAccount.get_or_none(subscription_id=subscription_id)
        if account is not None:
            return await Org.get_or_none(id=account.org_id)
    customer_id = data.id if event.event_type in CUSTOMER_EVENTS else data.customer_id
    if customer_id is None:
        return None
    accounts = await BillingAccount.filter(customer_id=customer_id).limit(2)
    return await Org.get_or_none(id=accounts[0].org_id) if len(accounts) == 1 else None


async def _apply(settings: Settings, org: Org, event: paddle.Notification) -> Outcome:
    actor = Principal.paddle(org.id, event.event_id)
    await lock_org(actor)  # one notification of an org at a time; publishes wait too
    account, _ = await BillingAccount.get_or_create(org_id=org.id)
    data = event.data
    if event.event_type in CUSTOMER_EVENTS:
        account.customer_id = data.id or account.customer_id
        account.customer_email = data.email or account.customer_email
        await account.save()
        return "applied"
    subscription_id = data.id if event.event_type in SUBSCRIPTION_EVENTS else data.subscription_id
    if (
        subscription_id is not None
        and subscription_id == account.subscription_id
        and account.last_event_at is not None
        and event.occurred_at < account.last_event_at
    ):
        return "stale"
    account.customer_id = data.customer_id or account.customer_id
    plan = plan_for_prices(settings, data.price_ids)
    if event.event_type in SUBSCRIPTION_EVENTS:
        status = _status(data.status)
        account.subscription_id = subscription_id
        account.status = status
        account.next_billed_at = data.next_billed_at
        change = data.scheduled_change
        account.cancel_at = (
            change.effective_at
            if change is not None and change.action == "cancel"
            else data.canceled_at
        )
        account.last_event_at = event.occurred_at
        if status in UNPAID:
            plan = "free"
    else:  # transaction.completed: a payment went through
        if subscription_id is not None and account.subscription_id is None:
            account.subscription_id = subscription_id
        if account.status == "none":
            account.status = "active"
        if account.status in UNPAID:
            plan = None  # a late payment of a canceled subscription does not revive it
    await account.save()
    if plan is not None and plan != org.plan:
        await audit.save_changes(
            actor,
            org,
            {"plan": plan},
            "org.set_plan",
            {
                "from": org.plan,
                "to": plan,
                "event_id": event.event_id,
                "event_type": event.event_type,
                "subscription_id": subscription_id,
            },
        )
    return "applied"
