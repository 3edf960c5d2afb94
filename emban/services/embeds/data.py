"""What an embed token reads: its published dashboard (hidden widgets left out) and each
widget's data, run for the token's tenant, org and environment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from emban.analytics.query_spec import QuerySpec, Scope
from emban.analytics.shaping import EMPTY
from emban.auth.principal import EmbedGrant, Principal
from emban.error_codes import DashboardErrorCode, EmbedErrorCode
from emban.errors import EmbanError, Forbidden, NotFound
from emban.models import Dashboard
from emban.runtime import Runtime
from emban.services.analytics import AnalyticsResult
from emban.services.dashboards import published_widgets
from emban.services.embeds.enforcement import Exposure, check_embed_filters, embed_spec, exposure_of
from emban.services.embeds.filters import Drill, EmbedFilters
from emban.services.scope import in_org
from emban.services.validation import lookupable
from emban.services.widget_config import TextWidget, Widget
from emban.services.widgets import run_widget_spec, run_widget_specs

# A text widget has no query; its "data" is an empty result with a meta that says so.
_NO_QUERY_META: dict[str, Any] = {
    "query_time_ms": 0.0,
    "rows_scanned": 0,
    "event_name": "",
    "metric": "",
    "period": "",
    "granularity": "",
    "group_by": None,
    "source_table": "",
    "planned_by": "none",
    "rollup_granularity": None,
}


def embed_grant(actor: Principal) -> EmbedGrant:
    """The caller's embed grant; 403 for anyone else (console users, API keys)."""
    if actor.kind != "embed" or actor.embed is None:
        raise Forbidden(
            "this needs an embed token (Authorization: Bearer <token>)",
            code=EmbedErrorCode.embed_token_required,
        )
    return actor.embed


@dataclass(frozen=True)
class EmbedDashboard:
    """The published dashboard a token names, as its viewer may see it."""

    id: str
    name: str
    widgets: list[Widget]  # full configs (query included), hidden widgets left out
    # What the session may range and which keys only hidden widgets use; computed from the whole
    # published snapshot (hidden widgets included) before they are left out of ``widgets``.
    exposure: Exposure = field(default_factory=Exposure)


async def embed_dashboard(*, actor: Principal) -> EmbedDashboard:
    """The token's dashboard, published snapshot only, without hidden widgets.

    404 ``dashboard_not_published`` when it is unpublished, deleted or not in the token's org.
    """
    grant = embed_grant(actor)
    found = (
        await in_org(Dashboard, actor).get_or_none(id=grant.dashboard_id)
        if lookupable(grant.dashboard_id)
        else None
    )
    if found is None or not found.is_published or found.published is None:
        raise NotFound(
            "this dashboard is not published", code=EmbedErrorCode.dashboard_not_published
        )
    hidden = set(grant.permissions.hidden_widgets)
    widgets = published_widgets(found)
    return EmbedDashboard(
        id=found.id,
        name=found.published.get("name", found.name),
        widgets=[w for w in widgets if w.id not in hidden],
        exposure=exposure_of(widgets, hidden),
    )


async def check_live_filters(*, actor: Principal, filters: EmbedFilters) -> None:
    """``embedLive``'s check when it subscribes, so a forbidden filter is refused with its code
    instead of joining a cohort whose every widget would answer an error. An unpublished
    dashboard is not refused here (the subscription says ``not_published`` and waits); every
    recompute checks again against the config it shows."""
    grant = embed_grant(actor)
    try:
        dashboard = await embed_dashboard(actor=actor)
    except NotFound:
        return
    check_embed_filters(filters, grant.permissions, dashboard.exposure)


async def embed_widget_result(
    rt: Runtime,
    *,
    actor: Principal,
    widget: Widget,
    filters: EmbedFilters,
    drill: Drill | None = None,
    dashboard: EmbedDashboard | None = None,
) -> AnalyticsResult:
    """One widget of :func:`embed_dashboard`'s answer (already published and visible), run for
    the token's tenant, org and environment. Text widgets answer an empty result.

    ``dashboard`` is the :func:`embed_dashboard` answer the widget came from (its exposure bounds
    the filters); without it, it is loaded again."""
    grant = embed_grant(actor)
    if dashboard is None:
        dashboard = await embed_dashboard(actor=actor)
    if isinstance(widget, TextWidget):
        # Still checked: a refused filter is refused for every widget alike.
        check_embed_filters(filters, grant.permissions, dashboard.exposure, drill)
        return AnalyticsResult(EMPTY, dict(_NO_QUERY_META))
    spec = embed_spec(widget, grant, filters, drill, exposure=dashboard.exposure)
    scope = Scope(actor.org_id, actor.environment_id)
    return await run_widget_spec(rt, scope, widget, spec)


@dataclass(frozen=True)
class EmbedView:
    """One viewer's ask for a widget: its token, its filters and the dashboard it was shown."""

    actor: Principal
    filters: EmbedFilters
    dashboard: EmbedDashboard | None = None


async def embed_widget_results(
    rt: Runtime, widget: Widget, views: Sequence[EmbedView]
) -> list[AnalyticsResult | EmbanError]:
    """:func:`embed_widget_result` for many viewers of one widget at once (the live cohorts of a
    dashboard), each with its own token's permissions and filters: each answer (or refusal) is
    the one :func:`embed_widget_result` gives that viewer, but the specs of one org and
    environment run in as few engine queries as :func:`run_widget_specs` can make of them."""
    answers: list[AnalyticsResult | EmbanError | None] = [None] * len(views)
    pending: dict[Scope, list[tuple[int, QuerySpec]]] = {}
    for index, view in enumerate(views):
        try:
            grant = embed_grant(view.actor)
            dashboard = view.dashboard or await embed_dashboard(actor=view.actor)
            if isinstance(widget, TextWidget):
                check_embed_filters(view.filters, grant.permissions, dashboard.exposure)
                answers[index] = AnalyticsResult(EMPTY, dict(_NO_QUERY_META))
                continue
            spec = embed_spec(widget, grant, view.filters, None, exposure=dashboard.exposure)
        except EmbanError as error:
            answers[index] = error
            continue
        scope = Scope(view.actor.org_id, view.actor.environment_id)
        pending.setdefault(scope, []).append((index, spec))
    if not isinstance(widget, TextWidget):
        for scope, asks in pending.items():
            results = await run_widget_specs(rt, scope, widget, [spec for _, spec in asks])
            for (index, _), result in zip(asks, results, strict=True):
                answers[index] = result
    done = [answer for answer in answers if answer is not None]
    if len(done) != len(views):  # every view is answered above; never a shorter list
        raise RuntimeError("a live view was left without an answer")
    return done


async def embed_widget_data(
    rt: Runtime,
    *,
    actor: Principal,
    widget_id: str,
    filters: EmbedFilters | None = None,
    drill: Drill | None = None,
) -> AnalyticsResult:
    """One widget's data for an embed token: only its published dashboard, only its tenant.

    Hidden and unknown widgets answer 404 ``widget_not_found``.
    """
    dashboard = await embed_dashboard(actor=actor)
    widget = next((w for w in dashboard.widgets if w.id == widget_id), None)
    if widget is None:
        raise NotFound(
            "widget not found in this dashboard", code=DashboardErrorCode.widget_not_found
        )
    return await embed_widget_result(
        rt,
        actor=actor,
        widget=widget,
        filters=filters or EmbedFilters(),
        drill=drill,
        dashboard=dashboard,
    )
