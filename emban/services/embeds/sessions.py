"""Minting embed sessions and listing the active ones.

Sessions are not stored: the list of active ones is derived from the ``embed_session.create``
audit rows (the spec's wording), which is also why every mint is audited.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from emban.analytics.shaping import iso_seconds
from emban.auth.embed_tokens import mint_embed_token
from emban.auth.principal import Principal
from emban.error_codes import EmbedErrorCode, PlanErrorCode
from emban.errors import BadRequest, NotFound, RateLimited
from emban.models import AuditLog, Dashboard, Environment, Org
from emban.runtime import Runtime
from emban.services import audit, billing, embed_revocations
from emban.services.access import requires
from emban.services.dashboards import get_own
from emban.services.embeds.permissions import ADVANCED, EmbedPermissions, validate_permissions
from emban.services.scope import in_org
from emban.services.validation import storable

SESSION_ACTION = "embed_session.create"
SESSION_SCOPE = "dashboard:read"
DEFAULT_TTL = 3_600
MIN_TTL = 60
MAX_TTL = 86_400
MAX_TENANT = 200
MAX_LISTED_SESSIONS = 500

DEMO_TENANT = "demo_workspace"
DEMO_TTL = 3_600
DEMO_MINTS_PER_MINUTE = 30  # per IP: the route is public and every mint writes an audit row


@dataclass(frozen=True)
class EmbedSession:
    token: str
    embed_url: str
    expires_at: datetime
    jti: str
    tenant_id: str
    dashboard_id: str


def _tenant(tenant_id: Any) -> str:
    if not isinstance(tenant_id, str) or not 1 <= len(tenant_id) <= MAX_TENANT:
        raise BadRequest(
            f"tenant_id must be a string of 1 to {MAX_TENANT} characters", field="tenant_id"
        )
    if not storable(tenant_id):
        # The session is audited in the metadata database, which cannot store a NUL: a clear
        # 400 instead of a failed insert (ingest and queries take such a tenant id as it is).
        raise BadRequest("tenant_id must not contain a NUL character", field="tenant_id")
    return tenant_id


def _ttl(expires_in: Any) -> int:
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int)
        or not MIN_TTL <= expires_in <= MAX_TTL
    ):
        raise BadRequest(
            f"expires_in must be a whole number of seconds from {MIN_TTL} to {MAX_TTL}",
            field="expires_in",
        )
    return expires_in


async def _mint(
    rt: Runtime,
    actor: Principal,
    environment: Environment,
    *,
    tenant_id: str,
    dashboard_id: str,
    permissions: EmbedPermissions,
    expires_in: int,
) -> EmbedSession:
    claims = permissions.claims()
    minted = mint_embed_token(
        environment,
        tenant_id=tenant_id,
        dashboard_id=dashboard_id,
        permissions=claims,
        expires_in=expires_in,
    )
    await audit.record(
        actor,
        SESSION_ACTION,
        "embed_session",
        minted.jti,
        {
            "tenant_id": tenant_id,
            "dashboard_id": dashboard_id,
            "jti": minted.jti,
            "environment_id": environment.id,  # what revocations match (they are per environment)
            "issued_at": iso_seconds(minted.issued_at),
            "expires_at": iso_seconds(minted.expires_at),
            "scope": SESSION_SCOPE,
            "permissions": claims,
        },
    )
    return EmbedSession(
        token=minted.token,
        embed_url=f"{rt.settings.base_url}/embed/{dashboard_id}?token={minted.token}",
        expires_at=datetime.fromtimestamp(minted.expires_at, UTC),
        jti=minted.jti,
        tenant_id=tenant_id,
        dashboard_id=dashboard_id,
    )


@requires("admin")
async def create_embed_session(
    rt: Runtime,
    *,
    actor: Principal,
    tenant_id: str,
    dashboard_id: str,
    expires_in: int = DEFAULT_TTL,
    permissions: Any = None,
) -> EmbedSession:
    """Mint a signed session for one tenant and one dashboard of the actor's org (admin).

    The session reads the actor's environment. The dashboard need not be published yet: until it
    is, the embed answers ``dashboard_not_published``.
    """
    tenant = _tenant(tenant_id)
    ttl = _ttl(expires_in)
    dashboard = await get_own(actor, dashboard_id)
    granted = validate_permissions(permissions, dashboard)
    if granted.advanced:
        billing.check_feature(
            await Org.get(id=actor.org_id), ADVANCED, code=PlanErrorCode.advanced_embed_permissions
        )
    environment = await Environment.get(id=actor.environment_id)
    return await _mint(
        rt,
        actor,
        environment,
        tenant_id=tenant,
        dashboard_id=dashboard.id,
        permissions=granted,
        expires_in=ttl,
    )


@dataclass(frozen=True)
class ActiveEmbedSession:
    id: str  # the token's jti
    tenant_id: str
    dashboard_id: str
    scope: str
    actor_type: str
    actor_id: str | None
    actor_label: str | None
    issued_at: datetime
    expires_at: datetime
    ttl_seconds: int

    @property
    def resource(self) -> str:
        return f"dashboard:{self.dashboard_id}"


@requires("admin")
async def list_embed_sessions(
    *, actor: Principal, now: datetime | None = None
) -> list[ActiveEmbedSession]:
    """Sessions of the org that have not expired nor been revoked, newest first (admin), from
    the audit rows.

    No session lives longer than :data:`MAX_TTL`, so only that much of the log is read; at most
    :data:`MAX_LISTED_SESSIONS` are listed.
    """
    now = now or datetime.now(UTC)
    rows = await (
        in_org(AuditLog, actor)
        .filter(action=SESSION_ACTION, created_at__gte=now - timedelta(seconds=MAX_TTL))
        .order_by("-created_at", "-id")
    )
    revoked = await embed_revocations.revoked_filter(actor, [row.metadata for row in rows])
    active: list[ActiveEmbedSession] = []
    for row in rows:
        meta = row.metadata
        expires_at = datetime.fromisoformat(meta["expires_at"])
        if expires_at <= now or meta["jti"] in revoked:
            continue
        active.append(
            ActiveEmbedSession(
                id=meta["jti"],
                tenant_id=meta["tenant_id"],
                dashboard_id=meta["dashboard_id"],
                scope=meta["scope"],
                actor_type=row.actor_type,
                actor_id=row.actor_id,
                actor_label=row.actor_label,
                issued_at=datetime.fromisoformat(meta["issued_at"]),
                expires_at=expires_at,
                ttl_seconds=math.ceil((expires_at - now).total_seconds()),
            )
        )
        if len(active) == MAX_LISTED_SESSIONS:
            break
    return active


async def demo_embed_url(
    rt: Runtime, *, tenant_id: str = DEMO_TENANT, ip: str | None = None
) -> EmbedSession:
    """Public: a one-hour session without permissions on the seeded demo dashboard.

    404 ``demo_not_seeded`` until ``emban demo`` (or a test) has published one; audited with the
    operator as actor; rate-limited per IP (429).
    """
    wait = await rt.limiter.hit(f"demo-embed:ip:{ip}", DEMO_MINTS_PER_MINUTE, 60)
    if wait is not None:
        raise RateLimited("too many demo sessions; try again later", retry_after=wait)
    tenant = _tenant(tenant_id)
    org = await Org.filter(is_demo=True).order_by("created_at").first()
    dashboard = (
        await Dashboard.filter(org_id=org.id, is_demo=True, is_published=True)
        .order_by("created_at")
        .first()
        if org is not None
        else None
    )
    environment = (
        await Environment.get_or_none(org_id=org.id, name="production") if org is not None else None
    )
    if org is None or dashboard is None or environment is None:
        raise NotFound(
            "no demo dashboard is seeded (run `emban demo`)", code=EmbedErrorCode.demo_not_seeded
        )
    return await _mint(
        rt,
        Principal.operator(org.id, environment.id),
        environment,
        tenant_id=tenant,
        dashboard_id=dashboard.id,
        permissions=EmbedPermissions(),
        expires_in=DEMO_TTL,
    )
