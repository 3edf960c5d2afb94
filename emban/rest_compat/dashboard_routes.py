"""``/v1/dashboards`` and ``/v1/widgets``: thin handlers over the dashboard and widget services."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emban.models import Dashboard, Widget
from emban.rest_compat import shapes
from emban.rest_compat.bodies import DashboardBody, DashboardPatchBody, PreviewBody
from emban.rest_compat.http import (
    actor,
    json_response,
    json_response_off_loop,
    no_content,
    parse_body,
    read_json_object,
    runtime,
)
from emban.rest_compat.route import RestRoute
from emban.services import dashboards, widgets
from emban.services.widget_config import widget_json as config_json
from emban.services.widget_config import widgets_json


def dashboard_json(d: Dashboard) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "widgets": widgets_json(dashboards.draft_widgets(d)),
        "is_published": d.is_published,
        "published_at": shapes.iso(d.published_at),
        "published": d.published,
        "created_at": shapes.iso(d.created_at),
        "updated_at": shapes.iso(d.updated_at),
    }


def widget_json(w: Widget) -> dict[str, Any]:
    return {
        **w.draft,
        "id": w.id,
        "published": w.published,
        "published_at": shapes.iso(w.published_at),
        "created_at": shapes.iso(w.created_at),
        "updated_at": shapes.iso(w.updated_at),
    }


async def list_dashboards(request: web.Request) -> web.StreamResponse:
    found = await dashboards.list_dashboards(actor=await actor(request))
    return json_response({"dashboards": [dashboard_json(d) for d in found]})


async def get_dashboard(request: web.Request) -> web.StreamResponse:
    found = await dashboards.get_dashboard(
        actor=await actor(request), dashboard_id=request.match_info["id"]
    )
    return json_response(dashboard_json(found))


async def create_dashboard(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await parse_body(request, DashboardBody)
    created = await dashboards.create_dashboard(
        actor=principal, name=body.name, widgets=body.widgets, description=body.description
    )
    return json_response(dashboard_json(created), status=201)


async def update_dashboard(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await parse_body(request, DashboardPatchBody)
    updated = await dashboards.update_dashboard(
        actor=principal,
        dashboard_id=request.match_info["id"],
        name=body.name,
        description=body.description,
        widgets=body.widgets,
    )
    return json_response(dashboard_json(updated))


async def delete_dashboard(request: web.Request) -> web.StreamResponse:
    await dashboards.delete_dashboard(
        actor=await actor(request), dashboard_id=request.match_info["id"]
    )
    return no_content()


async def publish_dashboard(request: web.Request) -> web.StreamResponse:
    await dashboards.publish_dashboard(
        actor=await actor(request), dashboard_id=request.match_info["id"]
    )
    return no_content()


async def unpublish_dashboard(request: web.Request) -> web.StreamResponse:
    await dashboards.unpublish_dashboard(
        actor=await actor(request), dashboard_id=request.match_info["id"]
    )
    return no_content()


async def restore_published(request: web.Request) -> web.StreamResponse:
    await dashboards.restore_published(
        actor=await actor(request), dashboard_id=request.match_info["id"]
    )
    return no_content()


async def add_dashboard_widget(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await read_json_object(request)
    widget = await dashboards.add_widget(
        actor=principal, dashboard_id=request.match_info["id"], widget=body
    )
    return json_response(config_json(widget), status=201)


async def update_dashboard_widget(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await read_json_object(request)
    widget = await dashboards.update_widget(
        actor=principal,
        dashboard_id=request.match_info["id"],
        widget_id=request.match_info["widget_id"],
        patch=body,
    )
    return json_response(config_json(widget))


async def delete_dashboard_widget(request: web.Request) -> web.StreamResponse:
    await dashboards.delete_widget(
        actor=await actor(request),
        dashboard_id=request.match_info["id"],
        widget_id=request.match_info["widget_id"],
    )
    return no_content()


async def list_widgets(request: web.Request) -> web.StreamResponse:
    found = await widgets.list_widgets(actor=await actor(request))
    return json_response({"widgets": [widget_json(w) for w in found]})


async def get_widget(request: web.Request) -> web.StreamResponse:
    found = await widgets.get_widget(actor=await actor(request), widget_id=request.match_info["id"])
    return json_response(widget_json(found))


async def create_widget(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    created = await widgets.create_widget(actor=principal, config=await read_json_object(request))
    return json_response(widget_json(created), status=201)


async def update_widget(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    updated = await widgets.update_widget(
        actor=principal, widget_id=request.match_info["id"], patch=await read_json_object(request)
    )
    return json_response(widget_json(updated))


async def publish_widget(request: web.Request) -> web.StreamResponse:
    await widgets.publish_widget(actor=await actor(request), widget_id=request.match_info["id"])
    return no_content()


async def delete_widget(request: web.Request) -> web.StreamResponse:
    await widgets.delete_widget(actor=await actor(request), widget_id=request.match_info["id"])
    return no_content()


async def preview_widget_data(request: web.Request) -> web.StreamResponse:
    principal = await actor(request)
    body = await parse_body(request, PreviewBody)
    found = await widgets.preview_data(
        runtime(request), actor=principal, config=body.widget, tenant_id=body.tenant_id
    )
    if found.result and len(found.result.points) > shapes.INLINE_POINTS:
        answer = found.result
        return await json_response_off_loop(
            lambda: {"widget": config_json(found.widget), **shapes.analytics(answer)}
        )
    result = shapes.analytics(found.result) if found.result else {"data": [], "meta": None}
    return json_response({"widget": config_json(found.widget), **result})


_READ = (401, 403, 404)
_WRITE = (400, 401, 403, 404)

DASHBOARD_ROUTES: tuple[RestRoute, ...] = (
    RestRoute(
        "GET",
        "/v1/dashboards",
        list_dashboards,
        "List dashboards.",
        200,
        None,
        "console",
        "dashboards",
        (401, 403),
    ),
    RestRoute(
        "GET",
        "/v1/dashboards/{id}",
        get_dashboard,
        "Get a dashboard: its draft widgets and published snapshot.",
        200,
        None,
        "console",
        "dashboards",
        _READ,
    ),
    RestRoute(
        "POST",
        "/v1/dashboards",
        create_dashboard,
        "Create a dashboard (editor). Each widget: id, kind, title, query, viz, layout.",
        201,
        DashboardBody,
        "console",
        "dashboards",
        (400, 401, 403),
    ),
    RestRoute(
        "PATCH",
        "/v1/dashboards/{id}",
        update_dashboard,
        "Update a dashboard's name, description or draft widgets (editor).",
        200,
        DashboardPatchBody,
        "console",
        "dashboards",
        _WRITE,
    ),
    RestRoute(
        "DELETE",
        "/v1/dashboards/{id}",
        delete_dashboard,
        "Delete a dashboard (editor).",
        204,
        None,
        "console",
        "dashboards",
        _READ,
    ),
    RestRoute(
        "POST",
        "/v1/dashboards/{id}/publish",
        publish_dashboard,
        "Publish the draft to live embeds (editor; plan limit on published dashboards).",
        204,
        None,
        "console",
        "dashboards",
        (401, 402, 403, 404),
    ),
    RestRoute(
        "POST",
        "/v1/dashboards/{id}/unpublish",
        unpublish_dashboard,
        "Unpublish: embeds show a 'not published' message (editor).",
        204,
        None,
        "console",
        "dashboards",
        _READ,
    ),
    RestRoute(
        "POST",
        "/v1/dashboards/{id}/restore-published",
        restore_published,
        "Replace the draft with the last published snapshot (admin).",
        204,
        None,
        "console",
        "dashboards",
        (401, 403, 404, 409),
    ),
    RestRoute(
        "POST",
        "/v1/dashboards/{id}/widgets",
        add_dashboard_widget,
        "Add an inline widget to the draft (admin).",
        201,
        None,
        "console",
        "dashboards",
        (400, 401, 403, 404, 409),
    ),
    RestRoute(
        "PATCH",
        "/v1/dashboards/{id}/widgets/{widget_id}",
        update_dashboard_widget,
        "Update a draft widget's title, viz, layout or query (editor).",
        200,
        None,
        "console",
        "dashboards",
        _WRITE,
    ),
    RestRoute(
        "DELETE",
        "/v1/dashboards/{id}/widgets/{widget_id}",
        delete_dashboard_widget,
        "Delete a draft widget (editor).",
        204,
        None,
        "console",
        "dashboards",
        _READ,
    ),
    RestRoute(
        "GET",
        "/v1/widgets",
        list_widgets,
        "List standalone widgets.",
        200,
        None,
        "console",
        "widgets",
        (401, 403),
    ),
    RestRoute(
        "GET",
        "/v1/widgets/{id}",
        get_widget,
        "Get one standalone widget.",
        200,
        None,
        "console",
        "widgets",
        _READ,
    ),
    RestRoute(
        "POST",
        "/v1/widgets",
        create_widget,
        "Create a standalone widget (admin).",
        201,
        None,
        "console",
        "widgets",
        (400, 401, 403),
    ),
    RestRoute(
        "PATCH",
        "/v1/widgets/{id}",
        update_widget,
        "Update a standalone widget (admin).",
        200,
        None,
        "console",
        "widgets",
        _WRITE,
    ),
    RestRoute(
        "POST",
        "/v1/widgets/{id}/publish",
        publish_widget,
        "Publish a standalone widget snapshot (admin).",
        204,
        None,
        "console",
        "widgets",
        _READ,
    ),
    RestRoute(
        "DELETE",
        "/v1/widgets/{id}",
        delete_widget,
        "Delete a standalone widget (admin).",
        204,
        None,
        "console",
        "widgets",
        _READ,
    ),
    RestRoute(
        "POST",
        "/v1/widgets/preview/data",
        preview_widget_data,
        "Evaluate an unsaved widget config (editor); without tenant_id, every tenant.",
        200,
        PreviewBody,
        "console",
        "widgets",
        (400, 401, 403),
        transaction=False,
    ),
)
