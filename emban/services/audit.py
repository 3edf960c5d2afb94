"""The audit log: every mutation writes one row in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tortoise.models import Model

from emban.auth.principal import Principal
from emban.models import AuditLog
from emban.services.access import requires
from emban.services.scope import in_org

AUDIT_PAGE = 100


async def record(
    actor: Principal,
    action: str,
    resource_type: str,
    resource_id: str | None,
    metadata: dict[str, Any] | None = None,
) -> AuditLog:
    return await AuditLog.create(
        org_id=actor.org_id,
        actor_type=actor.kind,
        actor_id=actor.actor_id,
        actor_label=actor.label,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        ip=actor.ip,
        metadata=metadata or {},
    )


async def save_changes(
    actor: Principal,
    row: Model,
    changes: Mapping[str, object],
    action: str,
    metadata: dict[str, Any] | None = None,
) -> bool:
    """Set the changed fields on ``row``, save only those, and audit it: ``True`` when saved.

    Nothing is written when ``changes`` is empty. ``updated_at`` moves with any change on models
    that have one. The audited resource type is the action's prefix (``dashboard.update`` →
    ``dashboard``), the resource id the row's primary key.
    """
    if not changes:
        return False
    fields = list(changes)
    for name, value in changes.items():
        setattr(row, name, value)
    if "updated_at" in row._meta.fields_map:
        fields.append("updated_at")
    await row.save(update_fields=fields)
    await record(actor, action, action.partition(".")[0], str(row.pk), metadata)
    return True


@requires("admin")
async def list_audit(*, actor: Principal) -> list[AuditLog]:
    """The last 100 rows of the actor's org, newest first (admin only)."""
    return await in_org(AuditLog, actor).order_by("-created_at", "-id").limit(AUDIT_PAGE)
