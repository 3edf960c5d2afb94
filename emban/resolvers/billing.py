"""Billing over GraphQL: the same services and roles as ``/v1/billing*``
(``emban/rest_compat/billing_routes.py``). ``plans`` is in ``queries.py``."""

from __future__ import annotations

import strawberry

from emban.analytics.shaping import iso_timestamp as iso
from emban.resolvers.context import GqlInfo, ctx
from emban.resolvers.scalars import Int64
from emban.resolvers.types import Plan, PlanFeatures, PlanLimits
from emban.services import subscriptions


@strawberry.type
class BillingUsage:
    events_this_month: Int64
    published_dashboards: int
    api_keys: int


@strawberry.type
class BillingSubscription:
    id: str
    status: str
    next_billed_at: str | None
    cancel_at: str | None


@strawberry.type(description="The org's plan, Paddle subscription and usage against the limits.")
class Billing:
    plan: str
    status: str = strawberry.field(
        description="active | trialing | past_due | paused | canceled | none"
    )
    usage: BillingUsage
    limits: PlanLimits
    features: PlanFeatures
    plans: list[Plan]
    subscription: BillingSubscription | None
    customer_id: str | None


@strawberry.type
class CheckoutCustomData:
    org_id: str


@strawberry.type(description="A plan and the Paddle price that buys it.")
class CheckoutPrice:
    plan: str
    price_id: str


@strawberry.type(description="Paddle.js initialization data for the hosted checkout.")
class CheckoutConfig:
    environment: str = strawberry.field(description="sandbox | production")
    client_token: str
    prices: list[CheckoutPrice]
    org_id: str
    customer_email: str | None
    custom_data: CheckoutCustomData


@strawberry.type
class BillingPortal:
    url: str


@strawberry.type
class BillingQueries:
    @strawberry.field(description="Plan, billing status, usage, limits and plans (admin).")
    async def billing(self, info: GqlInfo) -> Billing:
        view = await subscriptions.get_billing(actor=ctx(info).actor())
        plan = Plan.of(view.plan)
        sub = view.subscription
        return Billing(
            plan=view.plan.name,
            status=view.status,
            usage=BillingUsage(
                events_this_month=Int64(view.usage.events_this_month),
                published_dashboards=view.usage.published_dashboards,
                api_keys=view.usage.api_keys,
            ),
            limits=plan.limits,
            features=plan.features,
            plans=[Plan.of(p) for p in view.plans],
            subscription=None
            if sub is None
            else BillingSubscription(
                id=sub.id,
                status=sub.status,
                next_billed_at=iso(sub.next_billed_at),
                cancel_at=iso(sub.cancel_at),
            ),
            customer_id=view.customer_id,
        )

    @strawberry.field(description="Paddle checkout data (console members); 503 when off.")
    async def checkout_config(self, info: GqlInfo) -> CheckoutConfig:
        context = ctx(info)
        config = await subscriptions.checkout_config(
            context.runtime.settings, actor=context.actor()
        )
        return CheckoutConfig(
            environment=config.environment,
            client_token=config.client_token,
            prices=[CheckoutPrice(plan=p, price_id=i) for p, i in config.prices.items()],
            org_id=config.org_id,
            customer_email=config.customer_email,
            custom_data=CheckoutCustomData(org_id=config.org_id),
        )

    @strawberry.field(description="A Paddle customer portal session (admin).")
    async def billing_portal(self, info: GqlInfo) -> BillingPortal:
        context = ctx(info)
        url = await subscriptions.portal_url(context.runtime.settings, actor=context.actor())
        return BillingPortal(url=url)
