"""``Subscription.embedLive``: a live embed over graphql-transport-ws.

The embed token travels in ``connection_init`` as ``{"token": "…"}`` (checked in the view's
``on_ws_connect``). Each viewer joins the hub's cohort for its (dashboard, tenant, permissions,
filters) and receives the current state, then every change: widget data that changed after an
ingest, the new config after a publish, or ``not_published``. After the snapshot, the changes
are written as frames encoded once per cohort (:mod:`emban.resolvers.live_frames`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

import strawberry

from emban.auth.principal import Principal
from emban.errors import EmbanError
from emban.live.hub import CohortKey, CohortSource, LiveDashboard, LiveViewer, Update
from emban.resolvers.alerts import AlertEvent
from emban.resolvers.analytics import AnalyticsResult
from emban.resolvers.context import GqlInfo, ctx
from emban.resolvers.embed import EmbedDashboard, EmbedFiltersInput, embed_filters_from_input
from emban.resolvers.live_frames import live_operation
from emban.runtime import Runtime
from emban.services import embeds
from emban.services.analytics import AnalyticsResult as ServiceResult
from emban.services.widget_config import Widget


@strawberry.type(description="One push of a live embed.")
class EmbedLiveEvent:
    type: str = strawberry.field(description="config | data | not_published | error")
    widget_id: strawberry.ID | None = None
    data: AnalyticsResult | None = None
    dashboard: EmbedDashboard | None = None
    message: str | None = None


class EmbedCohortSource:
    """What a cohort reads, with the permissions of the token that opened it."""

    def __init__(self, rt: Runtime, actor: Principal, filters: embeds.EmbedFilters) -> None:
        self._rt = rt
        self._actor = actor
        self._filters = filters
        self._dashboard: embeds.EmbedDashboard | None = None  # the config shown, for its exposure

    async def config(self) -> LiveDashboard:
        dashboard = self._dashboard = await embeds.embed_dashboard(actor=self._actor)
        return LiveDashboard(dashboard.id, dashboard.name, dashboard.widgets)

    async def widget(self, widget: Widget) -> dict[str, Any]:
        answers: list[dict[str, Any]] = await self.widgets(widget, [self])
        return answers[0]

    async def widgets(self, widget: Widget, sources: Sequence[CohortSource]) -> list[Any]:
        """Each cohort's result, the specs of all of them run together
        (:func:`embeds.embed_widget_results`)."""
        views = [
            embeds.EmbedView(source._actor, source._filters, source._dashboard)
            for source in sources
            if isinstance(source, EmbedCohortSource)
        ]
        if len(views) != len(sources):
            raise TypeError("an embed cohort is batched only with other embed cohorts")
        return [
            _payload(result)
            for result in await embeds.embed_widget_results(self._rt, widget, views)
        ]


def _payload(result: ServiceResult | EmbanError) -> dict[str, Any]:
    """What the hub keeps and pushes for one widget: the data (what counts as a change) and the
    result it came from, or the refusal's message."""
    if isinstance(result, EmbanError):
        return {"data": None, "error": result.message}
    data = [(p.bucket.isoformat(), p.value, p.group) for p in result.points]
    return {"data": data, "result": result}


def _event(update: Update) -> EmbedLiveEvent:
    kind = update["type"]
    if kind == "config":
        config: LiveDashboard = update["dashboard"]
        dashboard = embeds.EmbedDashboard(config.id, config.name, list(config.widgets))
        return EmbedLiveEvent(type="config", dashboard=EmbedDashboard.of(dashboard))
    if kind == "data":
        payload = update["result"]
        widget_id = strawberry.ID(update["widget_id"])
        result: ServiceResult | None = payload.get("result")
        if result is None:
            return EmbedLiveEvent(type="error", widget_id=widget_id, message=payload["error"])
        return EmbedLiveEvent(type="data", widget_id=widget_id, data=AnalyticsResult.of(result))
    if kind == "not_published":
        return EmbedLiveEvent(type="not_published", message="This dashboard is not published.")
    return EmbedLiveEvent(type="error", message=str(update.get("message", "error")))


def _alert_event(payload: dict[str, Any]) -> AlertEvent:
    return AlertEvent(
        id=strawberry.ID(str(payload.get("id"))),
        kind=str(payload.get("kind")),
        value=payload.get("value"),
        threshold_value=payload.get("threshold_value"),
        tenant_id=payload.get("tenant_id"),
        at=payload.get("at"),
        message=str(payload.get("message", "")),
        deliveries=[],
    )


@strawberry.type(description="A new alert event of the caller's org, with its rule.")
class AlertEventPush:
    alert_id: strawberry.ID
    alert_name: str
    event: AlertEvent


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every new alert event of the org (console users: the session cookie, or "
        'an admin key as {"authorization": "Bearer …"} in connection_init).'
    )
    async def alert_events(self, info: GqlInfo) -> AsyncGenerator[AlertEventPush, None]:
        context = ctx(info)
        actor = context.actor()
        actor.require_role("viewer")
        events = context.runtime.live.alert_events(actor.org_id)
        try:
            async for payload in events:
                alert = payload.get("alert") or {}
                yield AlertEventPush(
                    alert_id=strawberry.ID(str(alert.get("id"))),
                    alert_name=str(alert.get("name", "")),
                    event=_alert_event(payload),
                )
        finally:
            await events.aclose()

    @strawberry.subscription(
        description="Live embed: the current state, then changes (auth: connection_init token)."
    )
    async def embed_live(
        self, info: GqlInfo, filters: EmbedFiltersInput | None = None
    ) -> AsyncGenerator[EmbedLiveEvent, None]:
        context = ctx(info)
        actor = context.actor()
        grant = embeds.embed_grant(actor)
        parsed = embed_filters_from_input(filters)
        await embeds.check_live_filters(actor=actor, filters=parsed)  # refused here, with its code
        key = CohortKey(
            org_id=actor.org_id,
            environment_id=actor.environment_id,
            tenant_id=grant.tenant_id,
            dashboard_id=grant.dashboard_id,
            grant=grant.permissions.cohort_key,
            filters=parsed.cohort_key,
        )
        source = EmbedCohortSource(context.runtime, actor, parsed)
        # On a live socket the snapshot goes through Strawberry (yielded below), the pushes after
        # it are the cohort's shared frames, written by the operation (see live_frames).
        operation = live_operation(_event)
        viewer = (
            LiveViewer(writer=operation.write, on_overflow=operation.too_slow)
            if operation is not None
            else None
        )
        updates = context.runtime.live.join(key, source, viewer)
        try:
            async for update in updates:
                yield _event(update)
        finally:
            await updates.aclose()
