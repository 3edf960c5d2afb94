"""``/v1/dashboards`` and ``/v1/widgets``: thin handlers over the dashboard and widget services."""

from __future__ import annotations

from aiohttp import web

from emban.models import Dashboard, Widget
from emban.rest_compat import responses as out
from emban.rest_compat import shapes
from emban.rest_compat.bodies import (
    DashboardBody,
    DashboardPatchBody,
    PreviewBody,
    StandaloneWidgetPatchBody,
    WidgetBody,
    WidgetPatchBody,
)
from emban.rest_compat.http import parse_body, read_json_object, runtime
from emban.rest_compat.route import Reply, caller, route
from emban.services import dashboards, widgets


def dashboard_json(d: Dashboard) -> out.Dashboard:
    return out.Dashboard(
        id=d.id,
        name=d.name,
        description=d.description,
        widgets=shapes.widget_configs(dashboards.draft_widgets(d)),
        is_published=d.is_published,
        published_at=shapes.iso(d.published_at),
        published=d.published,
        created_at=shapes.iso(d.created_at),
        updated_at=shapes.iso(d.updated_at),
    )


def widget_json(w: Widget) -> out.Widget:
    config = shapes.widget_config(w.draft)
    return out.Widget(
        id=w.id,
        kind=config.kind,
        title=config.title,
        description=config.description,
        text=config.text,
        query=config.query,
        viz=config.viz,
        layout=config.layout,
        published=w.published,
        published_at=shapes.iso(w.published_at),
        created_at=shapes.iso(w.created_at),
        updated_at=shapes.iso(w.updated_at),
    )


_READ = (404,)
_WRITE = (400, 404)


@route(
    "GET",
    "/v1/dashboards",
    response=out.DashboardList,
    service=dashboards.list_dashboards,
    tag="dashboards",
)
async def list_dashboards(request: web.Request) -> out.DashboardList:
    """List dashboards."""
    found = await dashboards.list_dashboards(actor=caller(request))
    return out.DashboardList(dashboards=[dashboard_json(d) for d in found])


@route(
    "GET",
    "/v1/dashboards/{id}",
    response=out.Dashboard,
    service=dashboards.get_dashboard,
    tag="dashboards",
    errors=_READ,
)
async def get_dashboard(request: web.Request) -> out.Dashboard:
    """Get a dashboard: its draft widgets and published snapshot."""
    found = await dashboards.get_dashboard(
        actor=caller(request), dashboard_id=request.match_info["id"]
    )
    return dashboard_json(found)


@route(
    "POST",
    "/v1/dashboards",
    response=out.Dashboard,
    status=201,
    body=DashboardBody,
    service=dashboards.create_dashboard,
    tag="dashboards",
    errors=(400,),
)
async def create_dashboard(request: web.Request) -> out.Dashboard:
    """Create a dashboard (editor). Each widget: id, kind, title, query, viz, layout."""
    body = await parse_body(request, DashboardBody)
    created = await dashboards.create_dashboard(
        actor=caller(request), name=body.name, widgets=body.widgets, description=body.description
    )
    return dashboard_json(created)


@route(
    "PATCH",
    "/v1/dashboards/{id}",
    response=out.Dashboard,
    body=DashboardPatchBody,
    service=dashboards.update_dashboard,
    tag="dashboards",
    errors=_WRITE,
)
async def update_dashboard(request: web.Request) -> out.Dashboard:
    """Update a dashboard's name, description or draft widgets (editor)."""
    body = await parse_body(request, DashboardPatchBody)
    updated = await dashboards.update_dashboard(
        actor=caller(request),
        dashboard_id=request.match_info["id"],
        name=body.name,
        description=body.description,
        widgets=body.widgets,
    )
    return dashboard_json(updated)


@route(
    "DELETE",
    "/v1/dashboards/{id}",
    response=None,
    service=dashboards.delete_dashboard,
    tag="dashboards",
    errors=_READ,
)
async def delete_dashboard(request: web.Request) -> None:
    """Delete a dashboard (editor)."""
    await dashboards.delete_dashboard(actor=caller(request), dashboard_id=request.match_info["id"])


@route(
    "POST",
    "/v1/dashboards/{id}/publish",
    response=None,
    service=dashboards.publish_dashboard,
    tag="dashboards",
    errors=(402, 404),
)
async def publish_dashboard(request: web.Request) -> None:
    """Publish the draft to live embeds (editor; plan limit on published dashboards)."""
    await dashboards.publish_dashboard(actor=caller(request), dashboard_id=request.match_info["id"])


@route(
    "POST",
    "/v1/dashboards/{id}/unpublish",
    response=None,
    service=dashboards.unpublish_dashboard,
    tag="dashboards",
    errors=_READ,
)
async def unpublish_dashboard(request: web.Request) -> None:
    """Unpublish: embeds show a 'not published' message (editor)."""
    await dashboards.unpublish_dashboard(
        actor=caller(request), dashboard_id=request.match_info["id"]
    )


@route(
    "POST",
    "/v1/dashboards/{id}/restore-published",
    response=None,
    service=dashboards.restore_published,
    tag="dashboards",
    errors=(404, 409),
)
async def restore_published(request: web.Request) -> None:
    """Replace the draft with the last published snapshot (admin)."""
    await dashboards.restore_published(actor=caller(request), dashboard_id=request.match_info["id"])


@route(
    "POST",
    "/v1/dashboards/{id}/widgets",
    response=out.WidgetConfig,
    body=WidgetBody,
    status=201,
    service=dashboards.add_widget,
    tag="dashboards",
    errors=(400, 404, 409),
)
async def add_dashboard_widget(request: web.Request) -> out.WidgetConfig:
    """Add an inline widget to the draft (admin)."""
    body = await read_json_object(request)
    widget = await dashboards.add_widget(
        actor=caller(request), dashboard_id=request.match_info["id"], widget=body
    )
    return shapes.widget_config(widget)


@route(
    "PATCH",
    "/v1/dashboards/{id}/widgets/{widget_id}",
    response=out.WidgetConfig,
    body=WidgetPatchBody,
    service=dashboards.update_widget,
    tag="dashboards",
    errors=_WRITE,
)
async def update_dashboard_widget(request: web.Request) -> out.WidgetConfig:
    """Update a draft widget's title, viz, layout or query (editor)."""
    body = await read_json_object(request)
    widget = await dashboards.update_widget(
        actor=caller(request),
        dashboard_id=request.match_info["id"],
        widget_id=request.match_info["widget_id"],
        patch=body,
    )
    return shapes.widget_config(widget)


@route(
    "DELETE",
    "/v1/dashboards/{id}/widgets/{widget_id}",
    response=None,
    service=dashboards.delete_widget,
    tag="dashboards",
    errors=_READ,
)
async def delete_dashboard_widget(request: web.Request) -> None:
    """Delete a draft widget (editor)."""
    await dashboards.delete_widget(
        actor=caller(request),
        dashboard_id=request.match_info["id"],
        widget_id=request.match_info["widget_id"],
    )


@route("GET", "/v1/widgets", response=out.WidgetList, service=widgets.list_widgets, tag="widgets")
async def list_widgets(request: web.Request) -> out.WidgetList:
    """List standalone widgets."""
    found = await widgets.list_widgets(actor=caller(request))
    return out.WidgetList(widgets=[widget_json(w) for w in found])


@route(
    "GET",
    "/v1/widgets/{id}",
    response=out.Widget,
    service=widgets.get_widget,
    tag="widgets",
    errors=_READ,
)
async def get_widget(request: web.Request) -> out.Widget:
    """Get one standalone widget."""
    found = await widgets.get_widget(actor=caller(request), widget_id=request.match_info["id"])
    return widget_json(found)


@route(
    "POST",
    "/v1/widgets",
    response=out.Widget,
    status=201,
    body=WidgetBody,
    service=widgets.create_widget,
    tag="widgets",
    errors=(400,),
)
async def create_widget(request: web.Request) -> out.Widget:
    """Create a standalone widget (admin)."""
    config = await read_json_object(request)
    created = await widgets.create_widget(actor=caller(request), config=config)
    return widget_json(created)


@route(
    "PATCH",
    "/v1/widgets/{id}",
    response=out.Widget,
    body=StandaloneWidgetPatchBody,
    service=widgets.update_widget,
    tag="widgets",
    errors=_WRITE,
)
async def update_widget(request: web.Request) -> out.Widget:
    """Update a standalone widget (admin)."""
    patch = await read_json_object(request)
    updated = await widgets.update_widget(
        actor=caller(request), widget_id=request.match_info["id"], patch=patch
    )
    return widget_json(updated)


@route(
    "POST",
    "/v1/widgets/{id}/publish",
    response=None,
    service=widgets.publish_widget,
    tag="widgets",
    errors=_READ,
)
async def publish_widget(request: web.Request) -> None:
    """Publish a standalone widget snapshot (admin)."""
    await widgets.publish_widget(actor=caller(request), widget_id=request.match_info["id"])


@route(
    "DELETE",
    "/v1/widgets/{id}",
    response=None,
    service=widgets.delete_widget,
    tag="widgets",
    errors=_READ,
)
async def delete_widget(request: web.Request) -> None:
    """Delete a standalone widget (admin)."""
    await widgets.delete_widget(actor=caller(request), widget_id=request.match_info["id"])


@route(
    "POST",
    "/v1/widgets/preview/data",
    response=out.WidgetPreview,
    body=PreviewBody,
    service=widgets.preview_data,
    tag="widgets",
    errors=(400,),
    transaction=False,
)
async def preview_widget_data(request: web.Request) -> Reply[out.WidgetPreview]:
    """Evaluate an unsaved widget config (editor); without tenant_id, every tenant."""
    body = await parse_body(request, PreviewBody)
    found = await widgets.preview_data(
        runtime(request), actor=caller(request), config=body.widget, tenant_id=body.tenant_id
    )
    result = found.result

    def build() -> out.WidgetPreview:
        widget = shapes.widget_config(found.widget)
        if result is None:
            return out.WidgetPreview(widget=widget, data=[], meta=None)
        return out.WidgetPreview(widget=widget, data=shapes.points(result), meta=result.meta)

    return Reply(build, off_loop=result is not None and len(result.series) > shapes.INLINE_POINTS)
