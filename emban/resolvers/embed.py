"""GraphQL for embeds: the runtime's ``Query.embed`` (auth: the embed token) and the admin's
embed sessions. The names of ``EmbedFiltersInput`` and its fields are the runtime's contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from emban.analytics.query_spec import PERIODS
from emban.auth.principal import EmbedGrant
from emban.resolvers.analytics import AnalyticsResult
from emban.resolvers.context import GqlInfo, ctx
from emban.services import embed_revocations, embeds
from emban.services.widget_config import TextWidget, Widget, widget_json


@strawberry.input(description="The spec's setFilters payload.")
class EmbedFiltersInput:
    period: str | None = None
    dimensions: JSON | None = strawberry.field(
        default=None, description="{dimension: value}; a null value clears it."
    )
    numeric_ranges: JSON | None = strawberry.field(
        default=None, description="{property: {min?, max?}}"
    )
    date_ranges: JSON | None = strawberry.field(
        default=None, description='{"timestamp": {"from": ISO 8601, "to": ISO 8601}}'
    )


@strawberry.input
class DrillInput:
    dimension: str
    value: str


def embed_filters_from_input(filters: EmbedFiltersInput | None) -> embeds.EmbedFilters:
    """The input as the runtime's JSON payload, validated by the service (400 naming the field)."""
    if filters is None:
        return embeds.EmbedFilters()
    raw: dict[str, Any] = {}
    for key, value in (
        ("period", filters.period),
        ("dimensions", filters.dimensions),
        ("numericRanges", filters.numeric_ranges),
        ("dateRanges", filters.date_ranges),
    ):
        if value is not None:
            raw[key] = value
    return embeds.parse_embed_filters(raw)


@strawberry.type
class EmbedWidget:
    id: strawberry.ID
    kind: str
    title: str
    viz: JSON
    layout: JSON
    text: str | None

    @classmethod
    def of(cls, widget: Widget) -> EmbedWidget:
        wire = widget_json(widget)
        return cls(
            id=strawberry.ID(widget.id),
            kind=widget.kind,
            title=widget.title,
            viz=cast(JSON, wire["viz"]),
            layout=cast(JSON, wire["layout"]),
            text=widget.text if isinstance(widget, TextWidget) else None,
        )


@strawberry.type
class EmbedDashboard:
    id: strawberry.ID
    name: str
    widgets: list[EmbedWidget]

    @classmethod
    def of(cls, dashboard: embeds.EmbedDashboard) -> EmbedDashboard:
        return cls(
            id=strawberry.ID(dashboard.id),
            name=dashboard.name,
            widgets=[EmbedWidget.of(w) for w in dashboard.widgets],
        )


@strawberry.type(description="What this session allows (the runtime shows only these controls).")
class EmbedSessionPermissions:
    allow_drill_down: bool
    locked_filters: JSON = strawberry.field(description="{dimension: value}, always applied.")
    allowed_dimensions: list[str] = strawberry.field(description="Empty: any dimension.")
    allowed_periods: list[str] = strawberry.field(description="Empty: any period.")
    max_date_range_days: int | None
    periods: list[str] = strawberry.field(
        description="The periods this session may choose (allowed_periods and the max range)."
    )

    @classmethod
    def of(cls, grant: EmbedGrant) -> EmbedSessionPermissions:
        granted = grant.permissions
        return cls(
            allow_drill_down=granted.allow_drill_down,
            locked_filters=cast(JSON, dict(granted.locked_filters)),
            allowed_dimensions=list(granted.allowed_dimensions),
            allowed_periods=list(granted.allowed_periods),
            max_date_range_days=granted.max_date_range_days,
            periods=[p for p in PERIODS if granted.allows_period(p)],
        )


@strawberry.type(description="What an embed token reads (Authorization: Bearer <token>).")
class EmbedQuery:
    @strawberry.field(description="The session's permissions, as the browser runtime needs them.")
    def permissions(self, info: GqlInfo) -> EmbedSessionPermissions:
        return EmbedSessionPermissions.of(embeds.embed_grant(ctx(info).actor()))

    @strawberry.field(description="The token's published dashboard, hidden widgets left out.")
    async def dashboard(self, info: GqlInfo) -> EmbedDashboard:
        return EmbedDashboard.of(await embeds.embed_dashboard(actor=ctx(info).actor()))

    @strawberry.field(description="One widget's data for the token's tenant and permissions.")
    async def widget_data(
        self,
        info: GqlInfo,
        widget_id: strawberry.ID,
        filters: EmbedFiltersInput | None = None,
        drill: DrillInput | None = None,
    ) -> AnalyticsResult:
        context = ctx(info)
        result = await embeds.embed_widget_data(
            context.runtime,
            actor=context.actor(),
            widget_id=str(widget_id),
            filters=embed_filters_from_input(filters),
            drill=embeds.Drill(drill.dimension, drill.value) if drill else None,
        )
        return AnalyticsResult.of(result)


@strawberry.type
class EmbedSession:
    token: str
    embed_url: str
    expires_at: datetime


@strawberry.type
class EmbedSessionActor:
    type: str
    id: str | None
    label: str | None


@strawberry.type
class ActiveEmbedSession:
    id: strawberry.ID
    tenant_id: str
    resource: str
    scope: str
    actor: EmbedSessionActor
    issued_at: datetime
    expires_at: datetime
    ttl_seconds: int

    @classmethod
    def of(cls, s: embeds.ActiveEmbedSession) -> ActiveEmbedSession:
        return cls(
            id=strawberry.ID(s.id),
            tenant_id=s.tenant_id,
            resource=s.resource,
            scope=s.scope,
            actor=EmbedSessionActor(type=s.actor_type, id=s.actor_id, label=s.actor_label),
            issued_at=s.issued_at,
            expires_at=s.expires_at,
            ttl_seconds=s.ttl_seconds,
        )


@strawberry.type
class EmbedQueries:
    @strawberry.field(description="The embed runtime's API; only an embed token may call it.")
    def embed(self, info: GqlInfo) -> EmbedQuery:
        embeds.embed_grant(ctx(info).actor())
        return EmbedQuery()

    @strawberry.field(description="Active embed sessions of the org, newest first (admin).")
    async def embed_sessions(self, info: GqlInfo) -> list[ActiveEmbedSession]:
        found = await embeds.list_embed_sessions(actor=ctx(info).actor())
        return [ActiveEmbedSession.of(s) for s in found]


@strawberry.type(description="The answer of revokeEmbedSession (same as REST).")
class RevokedEmbedSession:
    revoked: bool
    id: strawberry.ID


@strawberry.type(description="The answer of revokeEmbedSessions (same as REST).")
class RevokedEmbedSessions:
    revoked: int = strawberry.field(description="Active sessions of the audit list revoked.")


@strawberry.type
class EmbedMutations:
    @strawberry.mutation(
        description="Revoke one embed session by id (the token's jti; admin); same as REST."
    )
    async def revoke_embed_session(self, info: GqlInfo, id: strawberry.ID) -> RevokedEmbedSession:
        context = ctx(info)
        revoked = await embed_revocations.revoke_session(
            context.runtime, actor=context.actor(), session_id=str(id)
        )
        return RevokedEmbedSession(revoked=True, id=strawberry.ID(revoked))

    @strawberry.mutation(
        description="Revoke the environment's embed sessions issued up to now that match "
        "dashboardId and tenantId (both optional; admin); same as REST."
    )
    async def revoke_embed_sessions(
        self,
        info: GqlInfo,
        dashboard_id: strawberry.ID | None = None,
        tenant_id: str | None = None,
    ) -> RevokedEmbedSessions:
        context = ctx(info)
        count = await embed_revocations.revoke_sessions(
            context.runtime,
            actor=context.actor(),
            dashboard_id=None if dashboard_id is None else str(dashboard_id),
            tenant_id=tenant_id,
        )
        return RevokedEmbedSessions(revoked=count)

    @strawberry.mutation(description="Mint a signed embed session (admin); same as REST.")
    async def create_embed_session(
        self,
        info: GqlInfo,
        tenant_id: str,
        dashboard_id: strawberry.ID,
        expires_in: int = embeds.DEFAULT_TTL,
        permissions: JSON | None = None,
    ) -> EmbedSession:
        context = ctx(info)
        session = await embeds.create_embed_session(
            context.runtime,
            actor=context.actor(),
            tenant_id=tenant_id,
            dashboard_id=str(dashboard_id),
            expires_in=expires_in,
            permissions=permissions,
        )
        return EmbedSession(
            token=session.token,
            embed_url=session.embed_url,
            expires_at=session.expires_at,
        )
