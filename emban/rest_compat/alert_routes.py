"""``/v1/alerts``, ``/v1/reports``, ``/v1/webhooks``: alert rules, scheduled reports and webhook
delivery observability (docs/alerts-reports.md). Reads: any console member and admin keys;
writes, manual runs and evaluations: admins (``GET /v1/webhooks`` too: it shows the secret)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any, Literal, TypeVar

import msgspec
from aiohttp import web

from emban.rest_compat.http import parse_body, runtime
from emban.rest_compat.responses import Response, Timestamp
from emban.rest_compat.route import caller, route
from emban.rest_compat.shapes import iso
from emban.services import alert_eval, alert_rules, report_runs, reports, webhooks
from emban.services.alert_rules import AlertInput, states_of
from emban.services.notifications import (
    alert_event_view,
    alert_view,
    endpoint_view,
    report_run_view,
    report_view,
    runner_of,
)
from emban.services.reports import ReportInput

# --- response types ------------------------------------------------------------------------


class Delivery(Response):
    """One e-mail or webhook POST of an alert event or a report run."""

    id: str  # the Emban-Delivery id: the same on every retry
    channel: Literal["email", "webhook"]
    target: str
    tenant_id: str | None
    status: Literal["pending", "succeeded", "failed"]
    status_code: int | None
    error: str | None
    attempts: int
    last_attempt_at: Timestamp | None


class Alert(Response):
    id: int
    name: str
    dashboard_id: str
    widget_id: str
    condition_type: Literal["threshold", "delta", "no_data"]
    operator: Literal["gt", "gte", "lt", "lte", "eq"]
    threshold_value: float
    lookback_minutes: int
    email_to: list[str]
    webhook_url: str | None
    enabled: bool
    tenant_id: str | None
    per_tenant: bool
    state: Literal["ok", "firing", "error"]
    created_at: Timestamp | None
    updated_at: Timestamp | None


class AlertList(Response):
    alerts: list[Alert]


class AlertEvent(Response):
    id: int
    kind: Literal["fired", "resolved", "error"]
    value: float | None  # null where not a finite number (a delta from 0)
    threshold_value: float | None
    tenant_id: str | None
    at: Timestamp | None
    message: str
    deliveries: list[Delivery]


class AlertEventList(Response):
    events: list[AlertEvent]


class AlertEvaluation(Response):
    state: Literal["ok", "firing", "error"]
    value: float | None
    events_created: int


class Report(Response):
    id: int
    name: str
    dashboard_id: str
    schedule: str
    timezone: str
    format: Literal["csv", "pdf"]
    recipients: list[str]
    webhook_url: str | None
    enabled: bool
    tenant_id: str | None
    tenant_recipients: dict[str, list[str]]
    next_run_at: Timestamp | None
    last_run_at: Timestamp | None
    created_at: Timestamp | None
    updated_at: Timestamp | None


class ReportList(Response):
    reports: list[Report]


class ReportRun(Response):
    id: int
    trigger: Literal["schedule", "manual"]
    status: Literal["running", "succeeded", "failed", "partial"]
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_ms: int | None
    format: Literal["csv", "pdf"]
    bytes: int
    error: str | None
    deliveries: list[Delivery]


class ReportRunList(Response):
    runs: list[ReportRun]


class RunStarted(Response):
    run_id: int


class RuleRef(Response):
    type: Literal["alert", "report"]
    id: int
    name: str


class WebhookEndpoint(Response):
    url: str
    rules: list[RuleRef]
    success_24h: int
    failure_24h: int
    last_status_code: int | None
    last_error: str | None
    last_response_excerpt: str | None
    last_duration_ms: int | None
    last_attempt_at: Timestamp | None


class Webhooks(Response):
    signing_secret: str
    endpoints: list[WebhookEndpoint]


class RotatedSecret(Response):
    signing_secret: str
    previous_valid_until: Timestamp | None


RespT = TypeVar("RespT", bound=Response)


def _convert(view: Any, to: type[RespT]) -> RespT:
    """A service view (a dataclass) as its response type, checked field by field."""
    return msgspec.convert(dataclasses.asdict(view), to)


# --- alerts ----------------------------------------------------------------------------------


@route("GET", "/v1/alerts", response=AlertList, service=alert_rules.list_rules, tag="alerts")
async def list_alerts(request: web.Request) -> AlertList:
    """Alert rules of the org, oldest first."""
    rules = await alert_rules.list_rules(actor=caller(request))
    states = await states_of([r.id for r in rules])
    return AlertList(alerts=[_convert(alert_view(r, states.get(r.id, "ok")), Alert) for r in rules])


@route(
    "GET",
    "/v1/alerts/{id}",
    response=Alert,
    service=alert_rules.get_rule,
    tag="alerts",
    errors=(404,),
)
async def get_alert(request: web.Request) -> Alert:
    """One alert rule by numeric id."""
    rule = await alert_rules.get_rule(actor=caller(request), alert_id=request.match_info["id"])
    states = await states_of([rule.id])
    return _convert(alert_view(rule, states.get(rule.id, "ok")), Alert)


@route(
    "GET",
    "/v1/alerts/{id}/events",
    response=AlertEventList,
    service=alert_rules.list_events,
    tag="alerts",
    errors=(404,),
)
async def list_alert_events(request: web.Request) -> AlertEventList:
    """The rule's last 100 fired/resolved/error events, newest first, with their deliveries."""
    found = await alert_rules.list_events(actor=caller(request), alert_id=request.match_info["id"])
    return AlertEventList(events=[_convert(alert_event_view(e, d), AlertEvent) for e, d in found])


@route(
    "POST",
    "/v1/alerts",
    response=Alert,
    status=201,
    body=AlertInput,
    service=alert_rules.create_rule,
    tag="alerts",
    errors=(400,),
)
async def create_alert(request: web.Request) -> Alert:
    """Create an alert rule (admin)."""
    body = await parse_body(request, AlertInput)
    rule = await alert_rules.create_rule(
        actor=caller(request),
        body=body,
        allow_hosts=runtime(request).settings.webhook_allow_hosts,
    )
    return _convert(alert_view(rule, "ok"), Alert)


@route(
    "PATCH",
    "/v1/alerts/{id}",
    response=Alert,
    body=AlertInput,
    service=alert_rules.update_rule,
    tag="alerts",
    errors=(400, 404),
)
async def update_alert(request: web.Request) -> Alert:
    """Change an alert rule's fields (admin)."""
    body = await parse_body(request, AlertInput)
    rule = await alert_rules.update_rule(
        actor=caller(request),
        alert_id=request.match_info["id"],
        body=body,
        allow_hosts=runtime(request).settings.webhook_allow_hosts,
    )
    states = await states_of([rule.id])
    return _convert(alert_view(rule, states.get(rule.id, "ok")), Alert)


@route(
    "DELETE",
    "/v1/alerts/{id}",
    response=None,
    service=alert_rules.delete_rule,
    tag="alerts",
    errors=(404,),
)
async def delete_alert(request: web.Request) -> None:
    """Delete an alert rule (admin); its events and deliveries go with it."""
    await alert_rules.delete_rule(actor=caller(request), alert_id=request.match_info["id"])


@route(
    "POST",
    "/v1/alerts/{id}/evaluate",
    response=AlertEvaluation,
    service=alert_eval.evaluate_now,
    tag="alerts",
    errors=(404,),
    transaction=False,  # reads the engine first, then writes its transitions in a short one
)
async def evaluate_alert(request: web.Request) -> AlertEvaluation:
    """Evaluate the rule now: records and notifies a transition like the scheduled cycle."""
    result = await alert_eval.evaluate_now(
        runner_of(runtime(request)), actor=caller(request), alert_id=request.match_info["id"]
    )
    state: Literal["ok", "firing", "error"] = (
        "firing" if result.state == "firing" else "error" if result.state == "error" else "ok"
    )
    return AlertEvaluation(state=state, value=result.value, events_created=result.events_created)


# --- reports ---------------------------------------------------------------------------------


@route("GET", "/v1/reports", response=ReportList, service=reports.list_reports, tag="reports")
async def list_reports(request: web.Request) -> ReportList:
    """Scheduled reports of the org, oldest first."""
    found = await reports.list_reports(actor=caller(request))
    return ReportList(reports=[_convert(report_view(r), Report) for r in found])


@route(
    "GET",
    "/v1/reports/{id}",
    response=Report,
    service=reports.get_report,
    tag="reports",
    errors=(404,),
)
async def get_report(request: web.Request) -> Report:
    """One scheduled report by numeric id."""
    found = await reports.get_report(actor=caller(request), report_id=request.match_info["id"])
    return _convert(report_view(found), Report)


@route(
    "GET",
    "/v1/reports/{id}/runs",
    response=ReportRunList,
    service=reports.list_runs,
    tag="reports",
    errors=(404,),
)
async def list_report_runs(request: web.Request) -> ReportRunList:
    """The report's last 100 runs, newest first, with delivery status and errors."""
    found = await reports.list_runs(actor=caller(request), report_id=request.match_info["id"])
    return ReportRunList(runs=[_convert(report_run_view(r, d), ReportRun) for r, d in found])


@route(
    "POST",
    "/v1/reports",
    response=Report,
    status=201,
    body=ReportInput,
    service=reports.create_report,
    tag="reports",
    errors=(400,),
)
async def create_report(request: web.Request) -> Report:
    """Create a scheduled report (admin)."""
    body = await parse_body(request, ReportInput)
    found = await reports.create_report(
        actor=caller(request), body=body, allow_hosts=runtime(request).settings.webhook_allow_hosts
    )
    return _convert(report_view(found), Report)


@route(
    "PATCH",
    "/v1/reports/{id}",
    response=Report,
    body=ReportInput,
    service=reports.update_report,
    tag="reports",
    errors=(400, 404),
)
async def update_report(request: web.Request) -> Report:
    """Change a report's schedule, format, recipients, webhook or enabled state (admin)."""
    body = await parse_body(request, ReportInput)
    found = await reports.update_report(
        actor=caller(request),
        report_id=request.match_info["id"],
        body=body,
        allow_hosts=runtime(request).settings.webhook_allow_hosts,
    )
    return _convert(report_view(found), Report)


@route(
    "DELETE",
    "/v1/reports/{id}",
    response=None,
    service=reports.delete_report,
    tag="reports",
    errors=(404,),
)
async def delete_report(request: web.Request) -> None:
    """Delete a scheduled report (admin); its runs go with it."""
    await reports.delete_report(actor=caller(request), report_id=request.match_info["id"])


@route(
    "POST",
    "/v1/reports/{id}/run",
    response=RunStarted,
    status=202,
    service=report_runs.run_now,
    tag="reports",
    errors=(404,),
    transaction=False,  # start_run commits the run before its job is enqueued
)
async def run_report(request: web.Request) -> RunStarted:
    """Run the report now (admin): 202 with the run's id; GET …/runs shows how it went."""
    run = await report_runs.run_now(
        runtime(request).jobs, actor=caller(request), report_id=request.match_info["id"]
    )
    return RunStarted(run_id=run.id)


# --- webhooks --------------------------------------------------------------------------------


@route("GET", "/v1/webhooks", response=Webhooks, service=webhooks.overview, tag="webhooks")
async def list_webhooks(request: web.Request) -> Webhooks:
    """The signing secret and, per webhook URL, its rules and last-24-hour delivery figures."""
    found = await webhooks.overview(actor=caller(request))
    return Webhooks(
        signing_secret=found.signing_secret,
        endpoints=[_convert(endpoint_view(e), WebhookEndpoint) for e in found.endpoints],
    )


@route(
    "POST",
    "/v1/webhooks/rotate-secret",
    response=RotatedSecret,
    service=webhooks.rotate_secret,
    tag="webhooks",
)
async def rotate_webhook_secret(request: web.Request) -> RotatedSecret:
    """A new signing secret; the previous one keeps signing, as a second v1, for 24 hours."""
    fresh, rotated_at = await webhooks.rotate_secret(actor=caller(request))
    return RotatedSecret(
        signing_secret=fresh, previous_valid_until=iso(rotated_at + timedelta(hours=24))
    )
