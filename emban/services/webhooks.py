"""Webhook signing secrets and delivery records (``GET /v1/webhooks``).

One signing secret per org, created on first use. ``rotate`` makes a new one; the previous secret
keeps signing, as a second ``v1``, for :data:`ROTATION_OVERLAP` so receivers can switch over.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError

from emban.models import Delivery, WebhookSecret
from emban.notify import signing

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


async def rotate(org_id: str) -> str:
    row = await _row(org_id)
    fresh = signing.new_secret()
    await WebhookSecret.filter(id=row.id).update(
        secret=fresh, previous=row.secret, rotated_at=_now()
    )
    return fresh


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
