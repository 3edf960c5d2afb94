"""Alert rules: create, read, change, delete (admin writes; any console member reads).

The rule watches one widget of one of the org's dashboards (its published snapshot when the
dashboard is published, else the draft): the widget's metric, event and filters, over the last
``lookback_minutes``. Evaluation lives in :mod:`emban.services.alert_eval`.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from emban.auth.principal import Principal
from emban.error_codes import AlertErrorCode
from emban.errors import BadRequest
from emban.models import AlertEvent, AlertRule, AlertState, Dashboard, Delivery
from emban.services import audit
from emban.services.access import requires
from emban.services.alert_conditions import ConditionType, Operator, lookback_minutes
from emban.services.dashboards import draft_widgets, published_widgets
from emban.services.rule_fields import (
    clean_emails,
    clean_tenant,
    clean_webhook_url,
    differing,
    find_numeric,
    required,
)
from emban.services.scope import in_org
from emban.services.validation import clean_name, lookupable
from emban.services.widget_config import TextWidget, Widget

MAX_LOOKBACK_MINUTES = 31 * 24 * 60
UNSET = msgspec.UNSET


class AlertInput(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/alerts`` and ``PATCH /v1/alerts/{id}`` (every field optional on PATCH)."""

    dashboard_id: str | msgspec.UnsetType = UNSET
    widget_id: str | msgspec.UnsetType = UNSET
    name: str | msgspec.UnsetType = UNSET
    condition_type: str | msgspec.UnsetType = UNSET
    operator: str | msgspec.UnsetType = UNSET
    threshold_value: float | msgspec.UnsetType = UNSET
    lookback_minutes: int | msgspec.UnsetType | None = UNSET
    email_to: list[str] | msgspec.UnsetType = UNSET
    webhook_url: str | msgspec.UnsetType | None = UNSET
    enabled: bool | msgspec.UnsetType = UNSET
    tenant_id: str | msgspec.UnsetType | None = UNSET
    per_tenant: bool | msgspec.UnsetType = UNSET


def widget_of(dashboard: Dashboard, widget_id: str) -> Widget | None:
    """The widget an alert reads: from the published snapshot if there is one, else the draft."""
    widgets = published_widgets(dashboard) if dashboard.published else draft_widgets(dashboard)
    return next((w for w in widgets if w.id == widget_id), None)


async def _dashboard(actor: Principal, dashboard_id: str) -> Dashboard:
    found = (
        await in_org(Dashboard, actor).get_or_none(id=dashboard_id)
        if lookupable(dashboard_id)
        else None
    )
    if found is None:
        raise BadRequest("dashboard_id does not name a dashboard of this org", field="dashboard_id")
    return found


def _condition(value: str) -> ConditionType:
    try:
        return ConditionType(value)
    except ValueError:
        raise BadRequest(
            "condition_type must be one of threshold, delta, no_data", field="condition_type"
        ) from None


def _operator(value: str) -> Operator:
    try:
        return Operator(value)
    except ValueError:
        raise BadRequest("operator must be one of gt, gte, lt, lte, eq", field="operator") from None


def _threshold(value: float) -> float:
    if not math.isfinite(value):
        raise BadRequest("threshold_value must be a finite number", field="threshold_value")
    return float(value)


def _lookback(value: int | None) -> int:
    minutes = lookback_minutes(value)
    if minutes > MAX_LOOKBACK_MINUTES:
        raise BadRequest(
            f"lookback_minutes must be at most {MAX_LOOKBACK_MINUTES} (31 days)",
            field="lookback_minutes",
        )
    return minutes


def _check_widget(dashboard: Dashboard, widget_id: str) -> None:
    widget = widget_of(dashboard, widget_id) if lookupable(widget_id, 64) else None
    if widget is None:
        raise BadRequest("widget_id does not name a widget of that dashboard", field="widget_id")
    if isinstance(widget, TextWidget):
        raise BadRequest("widget_id names a text widget, which has no metric", field="widget_id")


async def _find(actor: Principal, alert_id: str) -> AlertRule:
    return await find_numeric(AlertRule, actor, alert_id, "alert", AlertErrorCode.alert_not_found)


@requires("viewer")
async def list_rules(*, actor: Principal) -> list[AlertRule]:
    return await in_org(AlertRule, actor).order_by("id")


@requires("viewer")
async def get_rule(*, actor: Principal, alert_id: str) -> AlertRule:
    return await _find(actor, alert_id)


async def states_of(rule_ids: list[int]) -> dict[int, str]:
    """Each rule's summary state: firing if any of its tenants fires, else error, else ok."""
    summary: dict[int, str] = {}
    rank = {"ok": 0, "error": 1, "firing": 2}
    for row in await AlertState.filter(rule_id__in=rule_ids).values("rule_id", "state"):
        current = summary.get(row["rule_id"], "ok")
        if rank.get(row["state"], 0) > rank[current]:
            summary[row["rule_id"]] = row["state"]
    return summary


@requires("admin")
async def create_rule(
    *, actor: Principal, body: AlertInput, allow_hosts: tuple[str, ...] = ()
) -> AlertRule:
    dashboard = await _dashboard(actor, required(body, "dashboard_id"))
    widget_id = required(body, "widget_id")
    _check_widget(dashboard, widget_id)
    condition = _condition(required(body, "condition_type"))
    needs_comparison = condition is not ConditionType.no_data
    operator = (
        _operator(required(body, "operator"))
        if needs_comparison or body.operator is not UNSET
        else Operator.gt
    )
    if needs_comparison:
        threshold = _threshold(required(body, "threshold_value"))
    else:
        threshold = _threshold(body.threshold_value) if body.threshold_value is not UNSET else 0.0
    rule = await AlertRule.create(
        org_id=actor.org_id,
        environment_id=actor.environment_id,
        dashboard_id=dashboard.id,
        widget_id=widget_id,
        name=clean_name(required(body, "name"), "name"),
        condition_type=condition.value,
        operator=operator.value,
        threshold_value=threshold,
        lookback_minutes=_lookback(
            None if body.lookback_minutes is UNSET else body.lookback_minutes
        ),
        email_to=clean_emails([] if body.email_to is UNSET else body.email_to, "email_to"),
        webhook_url=clean_webhook_url(
            None if body.webhook_url is UNSET else body.webhook_url, allow_hosts
        ),
        enabled=True if body.enabled is UNSET else body.enabled,
        tenant_id=clean_tenant(None if body.tenant_id is UNSET else body.tenant_id),
        per_tenant=False if body.per_tenant is UNSET else body.per_tenant,
        created_by=actor.actor_id,
    )
    await audit.record(actor, "alert.create", "alert", str(rule.id), {"name": rule.name})
    return rule


@requires("admin")
async def update_rule(
    *, actor: Principal, alert_id: str, body: AlertInput, allow_hosts: tuple[str, ...] = ()
) -> AlertRule:
    rule = await _find(actor, alert_id)
    values: dict[str, Any] = {}
    if body.dashboard_id is not UNSET or body.widget_id is not UNSET:
        dashboard_id = (
            required(body, "dashboard_id") if body.dashboard_id is not UNSET else rule.dashboard_id
        )
        widget_id = required(body, "widget_id") if body.widget_id is not UNSET else rule.widget_id
        dashboard = await _dashboard(actor, dashboard_id)
        _check_widget(dashboard, widget_id)
        values["dashboard_id"] = dashboard.id
        values["widget_id"] = widget_id
    if body.name is not UNSET:
        values["name"] = clean_name(required(body, "name"), "name")
    if body.condition_type is not UNSET:
        values["condition_type"] = _condition(required(body, "condition_type")).value
    if body.operator is not UNSET:
        values["operator"] = _operator(required(body, "operator")).value
    if body.threshold_value is not UNSET:
        values["threshold_value"] = _threshold(required(body, "threshold_value"))
    if body.lookback_minutes is not UNSET:
        values["lookback_minutes"] = _lookback(body.lookback_minutes)
    if body.email_to is not UNSET:
        values["email_to"] = clean_emails(required(body, "email_to"), "email_to")
    if body.webhook_url is not UNSET:
        values["webhook_url"] = clean_webhook_url(body.webhook_url, allow_hosts)
    if body.enabled is not UNSET:
        values["enabled"] = required(body, "enabled")
    if body.tenant_id is not UNSET:
        values["tenant_id"] = clean_tenant(body.tenant_id)
    if body.per_tenant is not UNSET:
        values["per_tenant"] = required(body, "per_tenant")
    changes = differing(rule, values)
    # What the rule watches changed: its old states say nothing about the new condition.
    if set(changes) & {"dashboard_id", "widget_id", "condition_type", "tenant_id", "per_tenant"}:
        await AlertState.filter(rule_id=rule.id).delete()
    await audit.save_changes(actor, rule, changes, "alert.update", {"fields": list(changes)})
    return rule


@requires("admin")
async def delete_rule(*, actor: Principal, alert_id: str) -> None:
    rule = await _find(actor, alert_id)
    await rule.delete()
    await audit.record(actor, "alert.delete", "alert", alert_id, {"name": rule.name})


EVENTS_PAGE = 100


async def deliveries_of(field: str, ids: list[int]) -> dict[int, list[Delivery]]:
    """Deliveries grouped by ``alert_event_id`` or ``report_run_id``, oldest first."""
    grouped: dict[int, list[Delivery]] = {}
    if not ids:
        return grouped
    for delivery in await Delivery.filter(**{f"{field}__in": ids}).order_by("id"):
        key = getattr(delivery, field)
        grouped.setdefault(int(key), []).append(delivery)
    return grouped


@requires("viewer")
async def list_events(
    *, actor: Principal, alert_id: str
) -> list[tuple[AlertEvent, list[Delivery]]]:
    """The rule's last 100 events, newest first, each with its deliveries."""
    rule = await _find(actor, alert_id)
    events = await AlertEvent.filter(rule_id=rule.id).order_by("-at", "-id").limit(EVENTS_PAGE)
    deliveries = await deliveries_of("alert_event_id", [e.id for e in events])
    return [(event, deliveries.get(event.id, [])) for event in events]


@requires("admin")
async def find_for_admin(*, actor: Principal, alert_id: str) -> AlertRule:
    return await _find(actor, alert_id)
