"""Webhook signing secrets and delivery records (``GET /v1/webhooks``).

One signing secret per org, created on first use. ``rotate`` makes a new one; the previous secret
keeps signing, as a second ``v1``, for :data:`ROTATION_OVERLAP` so receivers can switch over.
What the edges call (admins only, both edges): :func:`overview` and :func:`rotate_secret`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError

from emban.auth.principal import Principal
from emban.models import AlertRule, Delivery, Report, WebhookSecret
from emban.notify import signing
from emban.services import audit
from emban.services.access import requires

ROTATION_OVERLAP = timedelta(hours=24)


def _now() -> datetime:
    return datetime.now(UTC)


async def _row(org_id: str) -> WebhookSecret:
    row = await WebhookSecret.get_or_none(org_id=org_id)
    if row is not None:
        return row
    try:
        return await WebhookSecret.create(org_id=org_id, secret=signing.new_secret())
    except IntegrityError:  # created by a concurrent request: use theirs
        return await WebhookSecret.get(org_id=org_id)


async def current_secret(org_id: str) -> str:
    return (await _row(org_id)).secret


async def signing_secrets(org_id: str, *, now: datetime | None = None) -> list[str]:
    """The secrets that sign a delivery now: the current one, then the previous during overlap."""
    row = await _row(org_id)
    moment = now or _now()
    if row.previous and row.rotated_at and moment - row.rotated_at < ROTATION_OVERLAP:
        return [row.secret, row.previous]
    return [row.secret]


async def rotate(org_id: str) -> tuple[str, datetime]:
    """A new secret and the moment of the rotation (the old one signs for 24 h from it)."""
    row = await _row(org_id)
    fresh = signing.new_secret()
    moment = _now()
    await WebhookSecret.filter(id=row.id).update(
        secret=fresh, previous=row.secret, rotated_at=moment
    )
    return fresh, moment


@requires("admin")
async def rotate_secret(*, actor: Principal) -> tuple[str, datetime]:
    """``POST /v1/webhooks/rotate-secret`` (admin): :func:`rotate` the org's secret, audited."""
    fresh, moment = await rotate(actor.org_id)
    await audit.record(actor, "webhook.rotate_secret", "webhook_secret", actor.org_id)
    return fresh, moment


def new_delivery_uid() -> str:
    return f"dlv_{uuid.uuid4().hex}"


async def create_delivery(
    *,
    org_id: str,
    channel: str,
    event_type: str,
    target: str,
    tenant_id: str | None,
    payload: bytes | None = None,
    alert_event_id: int | None = None,
    report_run_id: int | None = None,
) -> Delivery:
    return await Delivery.create(
        org_id=org_id,
        uid=new_delivery_uid(),
        channel=channel,
        event_type=event_type,
        target=target,
        tenant_id=tenant_id,
        payload=payload,
        alert_event_id=alert_event_id,
        report_run_id=report_run_id,
    )


DAY = timedelta(hours=24)


@dataclass(frozen=True)
class RuleRef:
    type: str  # alert | report
    id: int
    name: str


@dataclass(frozen=True)
class Endpoint:
    url: str
    rules: list[RuleRef]
    success_24h: int
    failure_24h: int
    last_status_code: int | None
    last_error: str | None
    last_response_excerpt: str | None
    last_duration_ms: int | None
    last_attempt_at: datetime | None


async def endpoints(org_id: str, *, now: datetime | None = None) -> list[Endpoint]:
    """Every webhook URL of the org's alert and report rules (and any URL delivered to in the
    last 24 h), with its delivery figures: outcomes of attempts finished in the last 24 hours
    (a delivery still being retried counts as a failure until it succeeds) and the last one."""
    moment = now or _now()
    refs: dict[str, list[RuleRef]] = {}
    for alert_id, name, url in (
        await AlertRule.filter(org_id=org_id, webhook_url__isnull=False)
        .order_by("id")
        .values_list("id", "name", "webhook_url")
    ):
        refs.setdefault(str(url), []).append(RuleRef("alert", int(alert_id), str(name)))
    for report_id, name, url in (
        await Report.filter(org_id=org_id, webhook_url__isnull=False)
        .order_by("id")
        .values_list("id", "name", "webhook_url")
    ):
        refs.setdefault(str(url), []).append(RuleRef("report", int(report_id), str(name)))
    recent = await Delivery.filter(
        org_id=org_id, channel="webhook", last_attempt_at__gte=moment - DAY
    ).order_by("last_attempt_at", "id")
    by_url: dict[str, list[Delivery]] = {}
    for delivery in recent:
        by_url.setdefault(delivery.target, []).append(delivery)
    answer: list[Endpoint] = []
    for url in sorted(set(refs) | set(by_url)):
        rows = by_url.get(url, [])
        last = (
            rows[-1]
            if rows
            else await Delivery.filter(
                org_id=org_id, channel="webhook", target=url, last_attempt_at__isnull=False
            )
            .order_by("-last_attempt_at", "-id")
            .first()
        )
        answer.append(
            Endpoint(
                url=url,
                rules=refs.get(url, []),
                success_24h=sum(1 for d in rows if d.status == "succeeded"),
                failure_24h=sum(1 for d in rows if d.status != "succeeded"),
                last_status_code=last.status_code if last else None,
                last_error=last.error if last else None,
                last_response_excerpt=last.response_excerpt if last else None,
                last_duration_ms=last.duration_ms if last else None,
                last_attempt_at=last.last_attempt_at if last else None,
            )
        )
    return answer


@dataclass(frozen=True)
class Overview:
    signing_secret: str
    endpoints: list[Endpoint]


@requires("admin")
async def overview(*, actor: Principal) -> Overview:
    """``GET /v1/webhooks`` (admin): the org's signing secret and its :func:`endpoints`."""
    return Overview(await current_secret(actor.org_id), await endpoints(actor.org_id))
