"""GraphQL queries: each resolves by calling one service function."""

from __future__ import annotations

import strawberry

from emban.resolvers.context import GqlInfo, ctx
from emban.resolvers.types import (
    ApiKey,
    AuditEntry,
    Environment,
    Invite,
    Member,
    Org,
    Plan,
    Viewer,
)
from emban.services import accounts, api_keys, audit, billing, environments, orgs, team


@strawberry.type
class Query:
    @strawberry.field(description="The caller: user, org, role, scope and environment.")
    async def me(self, info: GqlInfo) -> Viewer:
        return Viewer.of(await accounts.whoami(actor=ctx(info).actor()))

    @strawberry.field(description="The caller's org.")
    async def org(self, info: GqlInfo) -> Org:
        return Org.of(await orgs.get_org(actor=ctx(info).actor()))

    @strawberry.field
    async def members(self, info: GqlInfo) -> list[Member]:
        return [Member.of(m, u) for m, u in await team.list_members(actor=ctx(info).actor())]

    @strawberry.field(description="Pending invites.")
    async def invites(self, info: GqlInfo) -> list[Invite]:
        return [Invite.of(i) for i in await team.list_invites(actor=ctx(info).actor())]

    @strawberry.field
    async def api_keys(self, info: GqlInfo) -> list[ApiKey]:
        keys = await api_keys.list_api_keys(actor=ctx(info).actor())
        return [ApiKey.of(k, env) for k, env in keys]

    @strawberry.field(description="The org's environments and their allowed origins.")
    async def environments(self, info: GqlInfo) -> list[Environment]:
        found = await environments.list_environments(actor=ctx(info).actor())
        return [Environment.of(e) for e in found]

    @strawberry.field(description="The last 100 audit entries, newest first.")
    async def audit(self, info: GqlInfo) -> list[AuditEntry]:
        return [AuditEntry.of(a) for a in await audit.list_audit(actor=ctx(info).actor())]

    @strawberry.field(description="Plan specs and feature flags (public).")
    def plans(self) -> list[Plan]:
        return [Plan.of(p) for p in billing.list_plans()]
