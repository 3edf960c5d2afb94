"""Plans, their limits and feature flags, and the one limit check behind every 402."""

from __future__ import annotations

from dataclasses import dataclass

from emban.auth.principal import Principal
from emban.error_codes import OrgErrorCode, PlanErrorCode
from emban.errors import BadRequest, NotFound, PlanLimitExceeded
from emban.metadata import metadata_opened
from emban.models import Org
from emban.services import audit
from emban.services.boundary import transaction
from emban.settings import PLANS, Settings


@dataclass(frozen=True)
class Plan:
    name: str
    title: str
    published_dashboards: int | None
    api_keys: int | None
    events_per_month: int | None
    advanced_embed_permissions: bool


PLAN_SPECS: dict[str, Plan] = {
    "free": Plan("free", "Free", 1, 5, 100_000, False),
    "starter": Plan("starter", "Starter", 5, 20, 1_000_000, True),
    "pro": Plan("pro", "Pro", 50, 100, 20_000_000, True),
    "enterprise": Plan("enterprise", "Enterprise", None, None, None, True),
}

_LIMIT_MESSAGES = {
    "published_dashboards": (PlanErrorCode.published_dashboards_limit, "published dashboard limit"),
    "api_keys": (PlanErrorCode.api_keys_limit, "API key limit"),
    "events_per_month": (PlanErrorCode.events_limit, "monthly events limit"),
}


def list_plans() -> list[Plan]:
    return [PLAN_SPECS[name] for name in PLANS]


def plan_of(org: Org) -> Plan:
    return PLAN_SPECS.get(org.plan, PLAN_SPECS["free"])


def next_plan(name: str) -> str | None:
    index = PLANS.index(name)
    return PLANS[index + 1] if index + 1 < len(PLANS) else None


def check_limit(org: Org, resource: str, used: int, adding: int = 1) -> None:
    """Raise the spec's 402 when ``used + adding`` would exceed the plan's ``resource`` limit."""
    plan = plan_of(org)
    limit = getattr(plan, resource)
    if limit is None or used + adding <= limit:
        return
    code, what = _LIMIT_MESSAGES[resource]
    raise PlanLimitExceeded(
        f"{what} reached for this plan",
        code=code,
        plan=plan.name,
        upgrade_to=next_plan(plan.name),
        limit=limit,
        used=used,
    )


def check_feature(org: Org, feature: str, code: PlanErrorCode) -> None:
    """Raise a 402 when the org's plan lacks a feature flag (e.g. advanced embed permissions)."""
    plan = plan_of(org)
    if getattr(plan, feature):
        return
    upgrade = next(
        (
            name
            for name in PLANS[PLANS.index(plan.name) + 1 :]
            if getattr(PLAN_SPECS[name], feature)
        ),
        None,
    )
    raise PlanLimitExceeded(
        f"{feature.replace('_', ' ')} are not included in this plan",
        code=code,
        plan=plan.name,
        upgrade_to=upgrade,
        limit=None,
        used=None,
    )


def validate_plan(name: str) -> str:
    if name not in PLAN_SPECS:
        raise BadRequest(f"plan must be one of {', '.join(PLANS)}", field="plan")
    return name


async def set_plan(org_id: str, plan: str) -> Org:
    """Operator action (``emban org set-plan``): audited with the operator as actor."""
    validate_plan(plan)
    org = await Org.get_or_none(id=org_id)
    if org is None:
        raise NotFound(f"no org {org_id}", code=OrgErrorCode.org_not_found)
    await audit.save_changes(
        Principal.operator(org.id),
        org,
        {"plan": plan},
        "org.set_plan",
        {"from": org.plan, "to": plan},
    )
    return org


async def set_plan_cli(settings: Settings, org_id: str, plan: str) -> Org:
    """Open the metadata store, change the plan in one transaction, close."""
    async with metadata_opened(settings), transaction():
        return await set_plan(org_id, plan)
