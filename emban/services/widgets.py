"""Standalone widgets (outside dashboards) and the builder's preview of an unsaved config."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from emban.analytics.query_spec import QuerySpec, Scope
from emban.analytics.shaping import Series
from emban.auth.principal import Principal
from emban.error_codes import DashboardErrorCode
from emban.errors import BadRequest, EmbanError, NotFound
from emban.models import Widget as WidgetModel
from emban.runtime import Runtime
from emban.services import audit
from emban.services.access import requires
from emban.services.analytics import AnalyticsResult, run_spec, run_specs
from emban.services.scope import in_org
from emban.services.validation import lookupable
from emban.services.widget_config import (
    BreakdownWidget,
    MetricWidget,
    QueryWidget,
    TextWidget,
    Widget,
    decode_widget,
    spec_of,
    stored_widget,
    widget_json,
)

PREVIEW_ID = "preview"


async def _own(actor: Principal, widget_id: str) -> WidgetModel:
    found = (
        await in_org(WidgetModel, actor).get_or_none(id=widget_id)
        if lookupable(widget_id)
        else None
    )
    if found is None:
        raise NotFound("widget not found", code=DashboardErrorCode.widget_not_found)
    return found


def _config(raw: object, widget_id: str) -> Widget:
    """A standalone widget's config: the dashboard widget format; its id is the widget's id."""
    if not isinstance(raw, dict):
        raise BadRequest("body must be a widget config object", field="body")
    return decode_widget({**raw, "id": widget_id}, "widget")


def draft_config(widget: WidgetModel) -> Widget:
    """A standalone widget's draft, decoded from its stored JSON."""
    return stored_widget(widget.draft)


def published_config(widget: WidgetModel) -> Widget | None:
    return None if widget.published is None else stored_widget(widget.published)


@requires("viewer")
async def list_widgets(*, actor: Principal) -> list[WidgetModel]:
    return await in_org(WidgetModel, actor).order_by("created_at")


@requires("viewer")
async def get_widget(*, actor: Principal, widget_id: str) -> WidgetModel:
    return await _own(actor, widget_id)


@requires("admin")
async def create_widget(*, actor: Principal, config: object) -> WidgetModel:
    widget = WidgetModel(org_id=actor.org_id, created_by=actor.actor_id)
    draft = _config(config, widget.id)
    widget.draft = widget_json(draft)
    await widget.save()
    await audit.record(actor, "widget.create", "widget", widget.id, {"title": draft.title})
    return widget


@requires("admin")
async def update_widget(*, actor: Principal, widget_id: str, patch: object) -> WidgetModel:
    widget = await _own(actor, widget_id)
    if not isinstance(patch, dict):
        raise BadRequest("body must be an object", field="body")
    draft = widget_json(_config({**widget_json(draft_config(widget)), **patch}, widget.id))
    await audit.save_changes(
        actor, widget, {"draft": draft}, "widget.update", {"fields": sorted(patch)}
    )
    return widget


@requires("admin")
async def publish_widget(*, actor: Principal, widget_id: str) -> WidgetModel:
    widget = await _own(actor, widget_id)
    published = {"published": widget_json(draft_config(widget)), "published_at": datetime.now(UTC)}
    await audit.save_changes(actor, widget, published, "widget.publish")
    return widget


@requires("admin")
async def delete_widget(*, actor: Principal, widget_id: str) -> None:
    widget = await _own(actor, widget_id)
    await widget.delete()
    await audit.record(actor, "widget.delete", "widget", widget_id)


@dataclass(frozen=True)
class WidgetData:
    widget: Widget
    result: AnalyticsResult | None  # None for text widgets


async def widget_result(
    rt: Runtime, scope: Scope, widget: Widget, tenant_id: str | None
) -> AnalyticsResult | None:
    """Run a widget's query for one tenant (or every tenant of the environment).

    A ``metric`` widget answers two points, ``current`` and ``previous`` (the same-length
    period before), so the runtime can show the change. A ``breakdown`` answers one total per
    group for the whole window (a p95 or a unique-user count per bucket cannot be added up into
    a slice).
    """
    if isinstance(widget, TextWidget):
        return None
    return await run_widget_spec(rt, scope, widget, spec_of(widget, tenant_id))


async def run_widget_spec(
    rt: Runtime, scope: Scope, widget: QueryWidget, spec: QuerySpec
) -> AnalyticsResult:
    """Run a prepared spec (e.g. an embed's, with its filters) the way ``widget`` reads."""
    if isinstance(widget, BreakdownWidget):
        return await run_spec(rt, scope, replace(spec, total=True))
    if not isinstance(widget, MetricWidget):
        return await run_spec(rt, scope, spec)
    return await metric_result(rt, scope, spec)


async def metric_result(rt: Runtime, scope: Scope, spec: QuerySpec) -> AnalyticsResult:
    """One total for the window and one for the window before it (same length), read at once:
    the two are independent, and a metric widget then answers in the time of the slower one."""
    current, previous = await asyncio.gather(
        run_spec(rt, scope, _current(spec)), run_spec(rt, scope, _previous(spec))
    )
    return _metric(current, previous)


async def run_widget_specs(
    rt: Runtime, scope: Scope, widget: QueryWidget, specs: Sequence[QuerySpec]
) -> list[AnalyticsResult | EmbanError]:
    """:func:`run_widget_spec` for many specs of one widget at once (one per live cohort of a
    dashboard and tenant), in as few engine queries as :func:`run_specs` can make of them."""
    if isinstance(widget, BreakdownWidget):
        return await run_specs(rt, scope, [replace(spec, total=True) for spec in specs])
    if not isinstance(widget, MetricWidget):
        return await run_specs(rt, scope, specs)
    current, previous = await asyncio.gather(
        run_specs(rt, scope, [_current(spec) for spec in specs]),
        run_specs(rt, scope, [_previous(spec) for spec in specs]),
    )
    answers: list[AnalyticsResult | EmbanError] = []
    for now, before in zip(current, previous, strict=True):
        if isinstance(now, EmbanError):
            answers.append(now)
        elif isinstance(before, EmbanError):
            answers.append(before)
        else:
            answers.append(_metric(now, before))
    return answers


def _current(spec: QuerySpec) -> QuerySpec:
    return replace(spec, group_by=None, total=True)


def _previous(spec: QuerySpec) -> QuerySpec:
    return replace(spec, group_by=None, total=True, periods_back=1)


def _metric(current: AnalyticsResult, previous: AnalyticsResult) -> AnalyticsResult:
    points = [
        replace(point, group=label)
        for label, result in (("current", current), ("previous", previous))
        for point in result.points
    ]
    meta = {**current.meta, "previous_query_time_ms": previous.meta["query_time_ms"]}
    return AnalyticsResult(Series.of_points(points), meta)


@requires("editor")
async def preview_data(
    rt: Runtime, *, actor: Principal, config: Any, tenant_id: str | None
) -> WidgetData:
    """Evaluate an unsaved widget config (builder preview). Without ``tenant_id`` the data
    covers every tenant of the caller's environment."""
    if not isinstance(config, dict):
        raise BadRequest("widget must be an object", field="widget")
    widget = decode_widget({"id": PREVIEW_ID, **config}, "widget")
    if tenant_id is not None and (not isinstance(tenant_id, str) or len(tenant_id) > 200):
        raise BadRequest("tenant_id must be a string of at most 200 characters", field="tenant_id")
    scope = Scope(actor.org_id, actor.environment_id)
    return WidgetData(widget, await widget_result(rt, scope, widget, tenant_id))
