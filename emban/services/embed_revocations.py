"""Revoking embed sessions before they expire (beyond the spec), and checking tokens against it.

- ``DELETE /v1/embed-sessions/{id}`` revokes one session (its token's ``jti``) of the caller's
  org; ``POST /v1/embed-sessions/revoke`` with ``{"dashboard_id"?, "tenant_id"?}`` revokes every
  session of the caller's environment issued up to now that matches the given fields (both
  absent: all of them). Admin; audited (``embed_session.revoked``, ``embed_sessions.revoked``).
- A revocation is an :class:`~emban.models.EmbedRevocation` row (a :class:`RevocationRule`). Once
  it commits it is published on the live bus: every process forgets its cached rules for the
  environment and closes the matching open sockets (4403 ``embed_token_revoked``).
- Every request made with an embed token is checked by :func:`check_not_revoked` (401
  ``embed_token_revoked``). The rules of an environment are cached in the process and dropped
  when the bus announces a revocation there; the cache also expires after
  :data:`CACHE_SECONDS`, which bounds how stale a process can be if it missed a bus message
  (Redis reconnecting). A request therefore costs no query while the cache holds, and one
  indexed query (``environment_id``) per environment and :data:`CACHE_SECONDS` otherwise.

Bulk revocations compare the token's ``iat``, which has whole seconds: the row revokes what was
issued *before* the current second, and the sessions of the audit log issued in the current
second get one row each, so a session minted right after the revocation (same second) works.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from emban.auth.principal import Principal
from emban.error_codes import EmbedErrorCode
from emban.errors import BadRequest, NotFound, Unauthenticated
from emban.live.sockets import RevocationRule
from emban.models import AuditLog, EmbedRevocation
from emban.runtime import Runtime
from emban.services import audit, embeds  # embeds imports this module: names used at call time
from emban.services.access import requires
from emban.services.boundary import after_commit
from emban.services.scope import in_org
from emban.services.validation import lookupable

SESSION_REVOKED = "embed_session.revoked"
SESSIONS_REVOKED = "embed_sessions.revoked"
CACHE_SECONDS = 5.0
_CACHE_LIMIT = 10_000  # environments remembered at once

# environment id → (monotonic load time, its rules); a generation per environment makes sure a
# load that raced with an invalidation is not stored.
_cache: dict[str, tuple[float, tuple[RevocationRule, ...]]] = {}
_generation: dict[str, int] = {}


def forget(rule: RevocationRule) -> None:
    """Drop the cached rules of the rule's environment (the live bus calls this)."""
    _generation[rule.environment_id] = _generation.get(rule.environment_id, 0) + 1
    _cache.pop(rule.environment_id, None)


def _rule(row: EmbedRevocation) -> RevocationRule:
    return RevocationRule(
        environment_id=row.environment_id,
        issued_before=row.issued_before,
        expires_at=row.expires_at,
        session_id=row.session_id,
        dashboard_id=row.dashboard_id,
        tenant_id=row.tenant_id,
    )


async def rules_for(environment_id: str) -> tuple[RevocationRule, ...]:
    """The revocations of an environment that can still match a live token (cached)."""
    hit = _cache.get(environment_id)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    generation = _generation.get(environment_id, 0)
    rows = await EmbedRevocation.filter(
        environment_id=environment_id, expires_at__gt=int(time.time())
    )
    rules = tuple(_rule(row) for row in rows)
    if _generation.get(environment_id, 0) == generation:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[environment_id] = (time.monotonic(), rules)
    return rules


async def check_not_revoked(principal: Principal) -> None:
    """401 ``embed_token_revoked`` when a revocation matches the principal's embed token."""
    grant = principal.embed
    if grant is None:
        return
    for rule in await rules_for(principal.environment_id):
        if rule.matches(principal.environment_id, grant):
            raise Unauthenticated(
                "embed session has been revoked", code=EmbedErrorCode.embed_token_revoked
            )


# --- revoking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Listed:
    """A session as the audit log recorded its mint."""

    id: str
    environment_id: str
    dashboard_id: str
    tenant_id: str
    issued_at: int
    expires_at: int


def _listed(meta: dict[str, Any], fallback_environment: str) -> _Listed:
    return _Listed(
        id=meta["jti"],
        # Sessions minted before the environment was recorded were minted by this caller's
        # environment as far as anyone can tell.
        environment_id=meta.get("environment_id") or fallback_environment,
        dashboard_id=meta["dashboard_id"],
        tenant_id=meta["tenant_id"],
        issued_at=int(datetime.fromisoformat(meta["issued_at"]).timestamp()),
        expires_at=int(datetime.fromisoformat(meta["expires_at"]).timestamp()),
    )


async def _recent_sessions(actor: Principal, now: int) -> list[_Listed]:
    """Sessions of the org minted within the longest lifetime (older ones have all expired)."""
    since = datetime.fromtimestamp(now, UTC) - timedelta(seconds=embeds.MAX_TTL + 1)
    rows = await in_org(AuditLog, actor).filter(action=embeds.SESSION_ACTION, created_at__gte=since)
    return [_listed(row.metadata, actor.environment_id) for row in rows]


def _revoked(session: _Listed, rules: tuple[RevocationRule, ...]) -> bool:
    return any(
        r.environment_id == session.environment_id
        and session.issued_at <= r.issued_before
        and r.session_id in (None, session.id)
        and r.dashboard_id in (None, session.dashboard_id)
        and r.tenant_id in (None, session.tenant_id)
        for r in rules
    )


async def revoked_filter(actor: Principal, sessions: list[dict[str, Any]]) -> set[str]:
    """The ids among mint audit metadata (``jti``, ``environment_id``?, ``dashboard_id``,
    ``tenant_id``, ``issued_at``, ``expires_at``) that a revocation matches: the session list
    leaves them out."""
    listed = [_listed(meta, actor.environment_id) for meta in sessions]
    revoked: set[str] = set()
    for environment_id in {s.environment_id for s in listed}:
        rules = await rules_for(environment_id)
        revoked.update(s.id for s in listed if _revoked(s, rules))
    return revoked


def _announce(rt: Runtime, rules: list[RevocationRule]) -> None:
    async def call() -> None:
        for rule in rules:
            forget(rule)  # this process at once; the others when the bus delivers
            await rt.live.sockets.announce_revocation(rule)

    after_commit(call)


@requires("admin")
async def revoke_session(rt: Runtime, *, actor: Principal, session_id: str) -> str:
    """Revoke one session of the actor's org (admin); 404 ``embed_session_not_found`` for an id
    no mint of this org issued (unknown, another org's, or expired for over a day)."""
    now = int(time.time())
    row = (
        await in_org(AuditLog, actor)
        .filter(action=embeds.SESSION_ACTION, resource_id=session_id)
        .order_by("-id")
        .first()
        if lookupable(session_id)
        else None
    )
    session = _listed(row.metadata, actor.environment_id) if row is not None else None
    if session is None or session.expires_at <= now - embeds.MAX_TTL:
        raise NotFound("no such embed session", code=EmbedErrorCode.embed_session_not_found)
    rule = RevocationRule(
        environment_id=session.environment_id,
        issued_before=max(now, session.issued_at),
        expires_at=session.expires_at,
        session_id=session.id,
    )
    await _store(actor, [rule])
    await audit.record(
        actor,
        SESSION_REVOKED,
        "embed_session",
        session.id,
        {
            "tenant_id": session.tenant_id,
            "dashboard_id": session.dashboard_id,
            "environment_id": session.environment_id,
        },
    )
    _announce(rt, [rule])
    return session.id


def _optional(value: Any, name: str, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise BadRequest(f"{name} must be a string of 1 to {max_length} characters", field=name)
    return value


@requires("admin")
async def revoke_sessions(
    rt: Runtime, *, actor: Principal, dashboard_id: Any = None, tenant_id: Any = None
) -> int:
    """Revoke every session of the actor's environment issued up to now whose dashboard and
    tenant match the given ones (admin). Returns how many active sessions of the audit list
    that revoked (tokens minted outside the API are revoked too but not counted)."""
    dashboard = _optional(dashboard_id, "dashboard_id", 32)
    tenant = _optional(tenant_id, "tenant_id", embeds.MAX_TENANT)
    now = int(time.time())
    already = await rules_for(actor.environment_id)
    matching = [
        s
        for s in await _recent_sessions(actor, now)
        if s.environment_id == actor.environment_id
        and s.expires_at > now
        and dashboard in (None, s.dashboard_id)
        and tenant in (None, s.tenant_id)
        and not _revoked(s, already)
    ]
    rules = [
        RevocationRule(
            environment_id=actor.environment_id,
            issued_before=now - 1,  # whole seconds before this one; this second's go below
            expires_at=now + embeds.MAX_TTL,  # every token it can match has expired by then
            dashboard_id=dashboard,
            tenant_id=tenant,
        ),
        *(
            RevocationRule(
                environment_id=actor.environment_id,
                issued_before=now,
                expires_at=s.expires_at,
                session_id=s.id,
            )
            for s in matching
            if s.issued_at >= now
        ),
    ]
    await _store(actor, rules)
    await audit.record(
        actor,
        SESSIONS_REVOKED,
        "embed_session",
        None,
        {
            "dashboard_id": dashboard,
            "tenant_id": tenant,
            "environment_id": actor.environment_id,
            "revoked": len(matching),
            "issued_before": datetime.fromtimestamp(now, UTC).isoformat(),
        },
    )
    _announce(rt, rules)
    return len(matching)


async def _store(actor: Principal, rules: list[RevocationRule]) -> None:
    # Rows no token can match any more are dead weight on every cache load: drop them here.
    await EmbedRevocation.filter(
        environment_id=actor.environment_id, expires_at__lte=int(time.time())
    ).delete()
    for rule in rules:
        await EmbedRevocation.create(
            org_id=actor.org_id,
            environment_id=rule.environment_id,
            session_id=rule.session_id,
            dashboard_id=rule.dashboard_id,
            tenant_id=rule.tenant_id,
            issued_before=rule.issued_before,
            expires_at=rule.expires_at,
            created_by=(actor.actor_id or actor.kind)[:64],
        )
