"""GraphQL for dashboards and standalone widgets: the same services as ``/v1/dashboards`` and
``/v1/widgets``. Widget configs go in as JSON and are validated by the service (400 naming the
field, e.g. ``widgets[0].query.metric``)."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON

from emban import models
from emban.resolvers.analytics import AnalyticsMeta, AnalyticsResult, DataPoint
from emban.resolvers.context import GqlInfo, ctx
from emban.services import dashboards, widget_config, widgets


@strawberry.type(description="A widget config: {id, kind, title, query, viz, layout} (+ text).")
class DashboardWidget:
    id: strawberry.ID
    kind: str
    title: str
    description: str | None
    query: JSON | None
    viz: JSON
    layout: JSON
    text: str | None

    @classmethod
    def of(cls, widget: widget_config.Widget) -> DashboardWidget:
        wire = widget_config.widget_json(widget)
        return cls(
            id=strawberry.ID(widget.id),
            kind=widget.kind,
            title=widget.title,
            description=widget.description,
            query=cast(JSON, wire["query"]),
            viz=cast(JSON, wire["viz"]),
            layout=cast(JSON, wire["layout"]),
            text=widget.text if isinstance(widget, widget_config.TextWidget) else None,
        )


@strawberry.type
class PublishedSnapshot:
    name: str
    description: str
    widgets: list[DashboardWidget]


@strawberry.type
class Dashboard:
    id: strawberry.ID
    name: str
    description: str
    widgets: list[DashboardWidget] = strawberry.field(description="The draft's widgets.")
    is_published: bool
    published_at: datetime | None
    published: PublishedSnapshot | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d: models.Dashboard) -> Dashboard:
        snapshot = d.published
        return cls(
            id=strawberry.ID(d.id),
            name=d.name,
            description=d.description,
            widgets=[DashboardWidget.of(w) for w in dashboards.draft_widgets(d)],
            is_published=d.is_published,
            published_at=d.published_at,
            published=PublishedSnapshot(
                name=snapshot.get("name", d.name),
                description=snapshot.get("description", ""),
                widgets=[DashboardWidget.of(w) for w in dashboards.published_widgets(d)],
            )
            if snapshot is not None
            else None,
            created_at=d.created_at,
            updated_at=d.updated_at,
        )


@strawberry.type(description="A standalone widget: its draft config and published snapshot.")
class Widget:
    id: strawberry.ID
    config: DashboardWidget
    published: DashboardWidget | None
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, w: models.Widget) -> Widget:
        return cls(
            id=strawberry.ID(w.id),
            config=DashboardWidget.of(widgets.draft_config(w)),
            published=DashboardWidget.of(published)
            if (published := widgets.published_config(w))
            else None,
            published_at=w.published_at,
            created_at=w.created_at,
            updated_at=w.updated_at,
        )


@strawberry.type
class WidgetPreview:
    widget: DashboardWidget
    data: list[DataPoint]
    meta: AnalyticsMeta | None = strawberry.field(description="Null for text widgets.")


@strawberry.type
class DashboardQueries:
    @strawberry.field
    async def dashboards(self, info: GqlInfo) -> list[Dashboard]:
        return [Dashboard.of(d) for d in await dashboards.list_dashboards(actor=ctx(info).actor())]

    @strawberry.field
    async def dashboard(self, info: GqlInfo, id: strawberry.ID) -> Dashboard:
        found = await dashboards.get_dashboard(actor=ctx(info).actor(), dashboard_id=str(id))
        return Dashboard.of(found)

    @strawberry.field(description="Standalone widgets.")
    async def widgets(self, info: GqlInfo) -> list[Widget]:
        return [Widget.of(w) for w in await widgets.list_widgets(actor=ctx(info).actor())]

    @strawberry.field
    async def widget(self, info: GqlInfo, id: strawberry.ID) -> Widget:
        return Widget.of(await widgets.get_widget(actor=ctx(info).actor(), widget_id=str(id)))

    @strawberry.field(description="Evaluate an unsaved widget config; without tenantId, all.")
    async def widget_preview(
        self, info: GqlInfo, widget: JSON, tenant_id: str | None = None
    ) -> WidgetPreview:
        context = ctx(info)
        found = await widgets.preview_data(
            context.runtime, actor=context.actor(), config=widget, tenant_id=tenant_id
        )
        result = AnalyticsResult.of(found.result) if found.result else None
        return WidgetPreview(
            widget=DashboardWidget.of(found.widget),
            data=result.data if result else [],
            meta=result.meta if result else None,
        )


@strawberry.type
class DashboardMutations:
    @strawberry.mutation
    async def create_dashboard(
        self,
        info: GqlInfo,
        name: str,
        description: str | None = None,
        widgets: JSON | None = None,
    ) -> Dashboard:
        created = await dashboards.create_dashboard(
            actor=ctx(info).actor(), name=name, widgets=widgets, description=description
        )
        return Dashboard.of(created)

    @strawberry.mutation
    async def update_dashboard(
        self,
        info: GqlInfo,
        id: strawberry.ID,
        name: str | None = None,
        description: str | None = None,
        widgets: JSON | None = None,
    ) -> Dashboard:
        updated = await dashboards.update_dashboard(
            actor=ctx(info).actor(),
            dashboard_id=str(id),
            name=name,
            description=description,
            widgets=widgets,
        )
        return Dashboard.of(updated)

    @strawberry.mutation
    async def delete_dashboard(self, info: GqlInfo, id: strawberry.ID) -> bool:
        await dashboards.delete_dashboard(actor=ctx(info).actor(), dashboard_id=str(id))
        return True

    @strawberry.mutation(description="Copy the draft to the published snapshot embeds show.")
    async def publish_dashboard(self, info: GqlInfo, id: strawberry.ID) -> Dashboard:
        found = await dashboards.publish_dashboard(actor=ctx(info).actor(), dashboard_id=str(id))
        return Dashboard.of(found)

    @strawberry.mutation
    async def unpublish_dashboard(self, info: GqlInfo, id: strawberry.ID) -> Dashboard:
        found = await dashboards.unpublish_dashboard(actor=ctx(info).actor(), dashboard_id=str(id))
        return Dashboard.of(found)

    @strawberry.mutation(description="Replace the draft with the last published snapshot (admin).")
    async def restore_published(self, info: GqlInfo, id: strawberry.ID) -> Dashboard:
        found = await dashboards.restore_published(actor=ctx(info).actor(), dashboard_id=str(id))
        return Dashboard.of(found)

    @strawberry.mutation
    async def add_dashboard_widget(
        self, info: GqlInfo, dashboard_id: strawberry.ID, widget: JSON
    ) -> DashboardWidget:
        added = await dashboards.add_widget(
            actor=ctx(info).actor(), dashboard_id=str(dashboard_id), widget=widget
        )
        return DashboardWidget.of(added)

    @strawberry.mutation
    async def update_dashboard_widget(
        self, info: GqlInfo, dashboard_id: strawberry.ID, widget_id: strawberry.ID, patch: JSON
    ) -> DashboardWidget:
        updated = await dashboards.update_widget(
            actor=ctx(info).actor(),
            dashboard_id=str(dashboard_id),
            widget_id=str(widget_id),
            patch=patch,
        )
        return DashboardWidget.of(updated)

    @strawberry.mutation
    async def delete_dashboard_widget(
        self, info: GqlInfo, dashboard_id: strawberry.ID, widget_id: strawberry.ID
    ) -> bool:
        await dashboards.delete_widget(
            actor=ctx(info).actor(), dashboard_id=str(dashboard_id), widget_id=str(widget_id)
        )
        return True

    @strawberry.mutation(description="Create a standalone widget (admin).")
    async def create_widget(self, info: GqlInfo, config: JSON) -> Widget:
        return Widget.of(await widgets.create_widget(actor=ctx(info).actor(), config=config))

    @strawberry.mutation
    async def update_widget(self, info: GqlInfo, id: strawberry.ID, patch: JSON) -> Widget:
        updated = await widgets.update_widget(
            actor=ctx(info).actor(), widget_id=str(id), patch=patch
        )
        return Widget.of(updated)

    @strawberry.mutation
    async def publish_widget(self, info: GqlInfo, id: strawberry.ID) -> Widget:
        return Widget.of(await widgets.publish_widget(actor=ctx(info).actor(), widget_id=str(id)))

    @strawberry.mutation
    async def delete_widget(self, info: GqlInfo, id: strawberry.ID) -> bool:
        await widgets.delete_widget(actor=ctx(info).actor(), widget_id=str(id))
        return True
