"""GraphQL object types, built from the same models and service results the REST shapes use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from emban import models
from emban.resolvers.scalars import Int64, optional_int64
from emban.services import billing
from emban.services.accounts import Me


@strawberry.type
class User:
    id: strawberry.ID
    email: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, u: models.User) -> User:
        return cls(id=strawberry.ID(u.id), email=u.email, name=u.name, created_at=u.created_at)


@strawberry.type
class Org:
    id: strawberry.ID
    name: str
    email: str | None
    plan: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, o: models.Org) -> Org:
        return cls(
            id=strawberry.ID(o.id),
            name=o.name,
            email=o.email,
            plan=o.plan,
            created_at=o.created_at,
            updated_at=o.updated_at,
        )


@strawberry.type
class Environment:
    id: strawberry.ID
    name: str
    allowed_origins: list[str] = strawberry.field(
        description='["*"] (any site) or the origins that may frame this environment\'s embeds.'
    )
    created_at: datetime

    @classmethod
    def of(cls, e: models.Environment) -> Environment:
        return cls(
            id=strawberry.ID(e.id),
            name=e.name,
            allowed_origins=list(e.allowed_origins),
            created_at=e.created_at,
        )


@strawberry.type
class ApiKey:
    id: strawberry.ID
    label: str
    scope: str
    prefix: str
    environment: str
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, k: models.ApiKey, env: models.Environment) -> ApiKey:
        return cls(
            id=strawberry.ID(k.id),
            label=k.label,
            scope=k.scope,
            prefix=k.prefix,
            environment=env.name,
            created_at=k.created_at,
            last_used_at=k.last_used_at,
        )


@strawberry.type
class CreatedApiKey:
    api_key: ApiKey
    key: str = strawberry.field(description="The full key; shown only in this response.")


@strawberry.type
class Member:
    id: strawberry.ID
    user_id: strawberry.ID
    email: str
    name: str
    role: str
    created_at: datetime

    @classmethod
    def of(cls, m: models.Membership, u: models.User) -> Member:
        return cls(
            id=strawberry.ID(m.id),
            user_id=strawberry.ID(u.id),
            email=u.email,
            name=u.name,
            role=m.role,
            created_at=m.created_at,
        )


@strawberry.type
class Invite:
    id: strawberry.ID
    email: str
    role: str
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, i: models.Invite) -> Invite:
        return cls(
            id=strawberry.ID(i.id),
            email=i.email,
            role=i.role,
            created_at=i.created_at,
            expires_at=i.expires_at,
        )


@strawberry.type
class CreatedInvite:
    invite: Invite
    token: str
    invite_url: str


@strawberry.type
class AuditEntry:
    id: strawberry.ID
    actor_type: str
    actor_id: str | None
    actor_label: str | None
    action: str
    resource_type: str
    resource_id: str | None
    ip: str | None
    metadata: JSON
    created_at: datetime

    @classmethod
    def of(cls, a: models.AuditLog) -> AuditEntry:
        metadata: Any = a.metadata
        return cls(
            id=strawberry.ID(str(a.id)),
            actor_type=a.actor_type,
            actor_id=a.actor_id,
            actor_label=a.actor_label,
            action=a.action,
            resource_type=a.resource_type,
            resource_id=a.resource_id,
            ip=a.ip,
            metadata=metadata,
            created_at=a.created_at,
        )


@strawberry.type
class PlanLimits:
    published_dashboards: int | None
    api_keys: int | None
    events_per_month: Int64 | None


@strawberry.type
class PlanFeatures:
    advanced_embed_permissions: bool


@strawberry.type
class Plan:
    name: str
    title: str
    limits: PlanLimits
    features: PlanFeatures

    @classmethod
    def of(cls, p: billing.Plan) -> Plan:
        return cls(
            name=p.name,
            title=p.title,
            limits=PlanLimits(
                published_dashboards=p.published_dashboards,
                api_keys=p.api_keys,
                events_per_month=optional_int64(p.events_per_month),
            ),
            features=PlanFeatures(advanced_embed_permissions=p.advanced_embed_permissions),
        )


@strawberry.type
class Viewer:
    user: User | None
    org: Org
    role: str | None
    scope: str
    environment: Environment

    @classmethod
    def of(cls, m: Me) -> Viewer:
        return cls(
            user=User.of(m.user) if m.user else None,
            org=Org.of(m.org),
            role=m.role,
            scope=m.scope,
            environment=Environment.of(m.environment),
        )


@strawberry.type
class Registration:
    user: User
    org: Org
    environments: list[Environment]
    api_key: CreatedApiKey


@strawberry.type
class LoginResult:
    user: User
    org: Org
    role: str
