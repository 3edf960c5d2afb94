"""The frozen principal every request resolves to, and the role/scope checks services use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from emban.auth.embed_permissions import EmbedPermissions
from emban.error_codes import AuthErrorCode
from emban.errors import Forbidden

Role = Literal["viewer", "editor", "admin", "owner"]
ROLE_RANK = {"viewer": 1, "editor": 2, "admin": 3, "owner": 4}

PrincipalKind = Literal["session", "api_key", "operator", "embed", "paddle"]


@dataclass(frozen=True)
class EmbedGrant:
    """What a signed embed session allows: one published dashboard, one tenant, permissions."""

    tenant_id: str
    dashboard_id: str
    permissions: EmbedPermissions  # decoded once, when the token was verified
    jti: str
    expires_at: int  # unix seconds
    issued_at: int = 0  # unix seconds (the token's iat): what bulk revocations compare


@dataclass(frozen=True)
class Principal:
    """Who is calling: a console user session, an API key or an embed session, bound to one org.

    Embed principals (``kind="embed"``, ``scope="embed"``, no role) carry an :class:`EmbedGrant`
    and are refused by every console route.

    ``role`` is the member's role for sessions, ``admin`` for admin-scoped keys and ``None`` for
    ingest-scoped keys, which may only ingest.
    """

    kind: PrincipalKind
    org_id: str
    environment_id: str
    role: str | None
    scope: str
    user_id: str | None = None
    api_key_id: str | None = None
    session_id: int | None = None
    ip: str | None = None
    label: str | None = None
    embed: EmbedGrant | None = None

    @property
    def actor_id(self) -> str | None:
        return self.user_id if self.kind == "session" else self.api_key_id

    @classmethod
    def operator(cls, org_id: str, environment_id: str = "") -> Principal:
        """The command-line operator (``emban org set-plan``): audited, never from a request."""
        return cls(
            kind="operator",
            org_id=org_id,
            environment_id=environment_id,
            role="owner",
            scope="operator",
            label="cli",
        )

    @classmethod
    def paddle(cls, org_id: str, event_id: str) -> Principal:
        """Paddle, through a verified webhook: the actor of plan changes that follow payments.
        Its label is the event id, so an audit row names the notification that caused it."""
        return cls(
            kind="paddle",
            org_id=org_id,
            environment_id="",
            role=None,
            scope="paddle",
            label=event_id,
        )

    def require_role(self, minimum: Role) -> None:
        """403 unless the caller has at least ``minimum`` (viewer < editor < admin < owner)."""
        if self.scope == "ingest":
            raise Forbidden(
                "ingest keys can only send events", code=AuthErrorCode.insufficient_scope
            )
        if self.role is None or ROLE_RANK[self.role] < ROLE_RANK[minimum]:
            code = (
                AuthErrorCode.owner_required
                if minimum == "owner"
                else AuthErrorCode.insufficient_role
            )
            raise Forbidden(f"this action requires the {minimum} role", code=code)
