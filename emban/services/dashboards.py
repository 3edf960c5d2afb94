"""Dashboards: a draft config edited in place and a published snapshot that embeds show.

Publish copies draft → published (plan limit on published dashboards), unpublish hides it (the
embed shows "not published"), restore copies published → draft. Inline widget routes edit the
draft. Every change is audited; publish state changes are announced to live embeds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from emban.auth.principal import Principal
from emban.error_codes import DashboardErrorCode
from emban.errors import BadRequest, Conflict, NotFound
from emban.models import Dashboard, Org
from emban.services import audit, billing
from emban.services.access import requires
from emban.services.boundary import after_commit
from emban.services.scope import in_org, lock_org
from emban.services.validation import clean_name, lookupable, require_storable
from emban.services.widget_config import (
    MAX_WIDGETS,
    Widget,
    decode_widget,
    decode_widgets,
    stored_widgets,
    widget_json,
    widgets_json,
)

# Called with (org_id, dashboard_id) after a publish-state change commits (live embeds listen).
DashboardListener = Callable[[str, str], Awaitable[None]]
_listeners: list[DashboardListener] = []


def on_publish_change(listener: DashboardListener) -> Callable[[], None]:
    """Register a listener; returns the function that removes it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def _announce(org_id: str, dashboard_id: str) -> None:
    async def call() -> None:
        for listener in list(_listeners):
            await listener(org_id, dashboard_id)

    after_commit(call)


def _description(value: str) -> str:
    require_storable(value, "description")
    return value[:2000]


async def get_own(actor: Principal, dashboard_id: str) -> Dashboard:
    """The dashboard of the actor's org, or 404."""
    found = (
        await in_org(Dashboard, actor).get_or_none(id=dashboard_id)
        if lookupable(dashboard_id)
        else None
    )
    if found is None:
        raise NotFound("dashboard not found", code=DashboardErrorCode.dashboard_not_found)
    return found


def draft_widgets(dashboard: Dashboard) -> list[Widget]:
    """The draft's widgets, decoded from their stored JSON."""
    return stored_widgets(dashboard.draft.get("widgets"))


def published_widgets(dashboard: Dashboard) -> list[Widget]:
    """The published snapshot's widgets (none when it was never published)."""
    return stored_widgets((dashboard.published or {}).get("widgets"))


def _draft_with(dashboard: Dashboard, widgets: list[Widget]) -> dict[str, Any]:
    """The dashboard's draft with these widgets (in their stored wire form)."""
    return {**dashboard.draft, "widgets": widgets_json(widgets)}


@requires("viewer")
async def list_dashboards(*, actor: Principal) -> list[Dashboard]:
    return await in_org(Dashboard, actor).order_by("created_at")


@requires("viewer")
async def get_dashboard(*, actor: Principal, dashboard_id: str) -> Dashboard:
    return await get_own(actor, dashboard_id)


@requires("editor")
async def create_dashboard(
    *, actor: Principal, name: str, widgets: Any = None, description: str | None = None
) -> Dashboard:
    dashboard = await Dashboard.create(
        org_id=actor.org_id,
        name=clean_name(name, "name"),
        description=_description(description or ""),
        draft={"widgets": widgets_json(decode_widgets(widgets))},
        created_by=actor.actor_id,
    )
    await audit.record(
        actor, "dashboard.create", "dashboard", dashboard.id, {"name": dashboard.name}
    )
    return dashboard


@requires("editor")
async def update_dashboard(
    *,
    actor: Principal,
    dashboard_id: str,
    name: str | None = None,
    description: str | None = None,
    widgets: Any = None,
) -> Dashboard:
    """Change the name, description or the draft's widgets (the published snapshot stays)."""
    dashboard = await get_own(actor, dashboard_id)
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = clean_name(name, "name")
    if description is not None:
        changes["description"] = _description(description)
    if widgets is not None:
        changes["draft"] = _draft_with(dashboard, decode_widgets(widgets))
    await audit.save_changes(
        actor, dashboard, changes, "dashboard.update", {"fields": list(changes)}
    )
    return dashboard


@requires("editor")
async def delete_dashboard(*, actor: Principal, dashboard_id: str) -> None:
    dashboard = await get_own(actor, dashboard_id)
    was_published = dashboard.is_published
    await dashboard.delete()
    await audit.record(
        actor, "dashboard.delete", "dashboard", dashboard_id, {"name": dashboard.name}
    )
    if was_published:
        _announce(actor.org_id, dashboard_id)


@requires("editor")
async def publish_dashboard(*, actor: Principal, dashboard_id: str) -> Dashboard:
    """Copy draft → published. A dashboard that is not yet published counts against the plan's
    published-dashboard limit (402 ``published_dashboards_limit``)."""
    await lock_org(actor)  # two publishes at once must not both pass the limit check
    dashboard = await get_own(actor, dashboard_id)
    if not dashboard.is_published:
        org = await Org.get(id=actor.org_id)
        used = await in_org(Dashboard, actor).filter(is_published=True).count()
        billing.check_limit(org, "published_dashboards", used)
    snapshot = {
        "name": dashboard.name,
        "description": dashboard.description,
        "widgets": widgets_json(draft_widgets(dashboard)),
    }
    await audit.save_changes(
        actor,
        dashboard,
        {"published": snapshot, "is_published": True, "published_at": datetime.now(UTC)},
        "dashboard.publish",
    )
    _announce(actor.org_id, dashboard.id)
    return dashboard


@requires("editor")
async def unpublish_dashboard(*, actor: Principal, dashboard_id: str) -> Dashboard:
    """Hide it from embeds; the snapshot is kept for restore-published."""
    dashboard = await get_own(actor, dashboard_id)
    if dashboard.is_published:
        await audit.save_changes(actor, dashboard, {"is_published": False}, "dashboard.unpublish")
        _announce(actor.org_id, dashboard.id)
    return dashboard


@requires("admin")
async def restore_published(*, actor: Principal, dashboard_id: str) -> Dashboard:
    """Replace the draft with the last published snapshot (admin)."""
    dashboard = await get_own(actor, dashboard_id)
    if dashboard.published is None:
        raise Conflict(
            "this dashboard has never been published", code=DashboardErrorCode.never_published
        )
    restored = {
        "draft": _draft_with(dashboard, published_widgets(dashboard)),
        "name": dashboard.published.get("name", dashboard.name),
        "description": dashboard.published.get("description", dashboard.description),
    }
    await audit.save_changes(actor, dashboard, restored, "dashboard.restore_published")
    return dashboard


@requires("admin")
async def add_widget(*, actor: Principal, dashboard_id: str, widget: object) -> Widget:
    """Append an inline widget to the draft (admin); its id must be new in the dashboard."""
    dashboard = await get_own(actor, dashboard_id)
    clean = decode_widget(widget)
    widgets = draft_widgets(dashboard)
    if any(w.id == clean.id for w in widgets):
        raise Conflict(f"widget {clean.id!r} already exists", code=DashboardErrorCode.widget_exists)
    if len(widgets) >= MAX_WIDGETS:
        raise BadRequest(f"widgets: at most {MAX_WIDGETS} widgets", field="widgets")
    draft = _draft_with(dashboard, [*widgets, clean])
    await audit.save_changes(
        actor, dashboard, {"draft": draft}, "dashboard.widget_add", {"widget_id": clean.id}
    )
    return clean


_PATCHABLE = ("title", "viz", "layout", "query", "text", "description")


@requires("editor")
async def update_widget(
    *, actor: Principal, dashboard_id: str, widget_id: str, patch: object
) -> Widget:
    """Merge ``patch`` (title, viz, layout, query, text) into a draft widget and revalidate."""
    if not isinstance(patch, dict):
        raise BadRequest("body must be an object", field="body")
    for key in patch:
        if key not in _PATCHABLE:
            raise BadRequest(f"{key} cannot be changed here", field=key)
    dashboard = await get_own(actor, dashboard_id)
    widgets = draft_widgets(dashboard)
    for index, current in enumerate(widgets):
        if current.id == widget_id:
            merged = decode_widget({**widget_json(current), **patch})
            widgets = [*widgets[:index], merged, *widgets[index + 1 :]]
            break
    else:
        raise NotFound(
            "widget not found in this dashboard", code=DashboardErrorCode.widget_not_found
        )
    await audit.save_changes(
        actor,
        dashboard,
        {"draft": _draft_with(dashboard, widgets)},
        "dashboard.widget_update",
        {"widget_id": widget_id, "fields": sorted(patch)},
    )
    return merged


@requires("editor")
async def delete_widget(*, actor: Principal, dashboard_id: str, widget_id: str) -> None:
    dashboard = await get_own(actor, dashboard_id)
    widgets = draft_widgets(dashboard)
    remaining = [w for w in widgets if w.id != widget_id]
    if len(remaining) == len(widgets):
        raise NotFound(
            "widget not found in this dashboard", code=DashboardErrorCode.widget_not_found
        )
    await audit.save_changes(
        actor,
        dashboard,
        {"draft": _draft_with(dashboard, remaining)},
        "dashboard.widget_delete",
        {"widget_id": widget_id},
    )
