"""The audit log: every mutation writes one row in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from emban.auth.principal import Principal
from emban.models import AuditLog
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


async def list_audit(*, actor: Principal) -> list[AuditLog]:
    """The last 100 rows of the actor's org, newest first (admin only)."""
    actor.require_role("admin")
    return await in_org(AuditLog, actor).order_by("-created_at", "-id").limit(AUDIT_PAGE)
