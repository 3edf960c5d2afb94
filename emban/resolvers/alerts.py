"""Alerts, scheduled reports and webhooks over GraphQL: the same services and views as REST
(``emban/rest_compat/alert_routes.py``), the same roles, codes and audit rows."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import msgspec
import strawberry
from strawberry.scalars import JSON

from emban.resolvers.context import GqlInfo, OwnTransaction, ctx
from emban.services import alert_rules, reports, webhooks
from emban.services.alert_eval import evaluate_now
from emban.services.alert_rules import AlertInput, states_of
from emban.services.notifications import (
    AlertEventView,
    AlertView,
    DeliveryView,
    EndpointView,
    ReportRunView,
    ReportView,
    alert_event_view,
    alert_view,
    endpoint_view,
    report_run_view,
    report_view,
    runner_of,
)
from emban.services.report_runs import run_now
from emban.services.reports import ReportInput
from emban.wire import CONVERT_FAILURES

T = TypeVar("T")


def _fields(cls: type[T], view: Any) -> T:
    values = {f.name: getattr(view, f.name) for f in dataclasses.fields(view)}
    return cls(**values)


@strawberry.type(description="One e-mail or webhook POST of an alert event or a report run.")
class Delivery:
    id: str = strawberry.field(description="The Emban-Delivery id (the same on every retry).")
    channel: str = strawberry.field(description="email | webhook")
    target: str
    tenant_id: str | None
    status: str = strawberry.field(description="pending | succeeded | failed")
    status_code: int | None
    error: str | None
    attempts: int
    last_attempt_at: str | None

    @classmethod
    def of(cls, view: DeliveryView) -> Delivery:
        return _fields(cls, view)


@strawberry.type(description="An alert rule on a dashboard widget's metric.")
class AlertRule:
    id: strawberry.ID
    name: str
    dashboard_id: str
    widget_id: str
    condition_type: str = strawberry.field(description="threshold | delta | no_data")
    operator: str = strawberry.field(description="gt | gte | lt | lte | eq")
    threshold_value: float
    lookback_minutes: int
    email_to: list[str]
    webhook_url: str | None
    enabled: bool
    tenant_id: str | None
    per_tenant: bool
    state: str = strawberry.field(description="ok | firing | error")
    created_at: str | None
    updated_at: str | None

    @classmethod
    def of(cls, view: AlertView) -> AlertRule:
        rule = _fields(cls, view)
        rule.id = strawberry.ID(str(view.id))
        return rule


@strawberry.type(description="A fired, resolved or error event of an alert rule.")
class AlertEvent:
    id: strawberry.ID
    kind: str = strawberry.field(description="fired | resolved | error")
    value: float | None = strawberry.field(description="null where not finite (a delta from 0)")
    threshold_value: float | None
    tenant_id: str | None
    at: str | None
    message: str
    deliveries: list[Delivery]

    @classmethod
    def of(cls, view: AlertEventView) -> AlertEvent:
        return cls(
            id=strawberry.ID(str(view.id)),
            kind=view.kind,
            value=view.value,
            threshold_value=view.threshold_value,
            tenant_id=view.tenant_id,
            at=view.at,
            message=view.message,
            deliveries=[Delivery.of(d) for d in view.deliveries],
        )


@strawberry.type(description="What POST /v1/alerts/{id}/evaluate answers.")
class AlertEvaluation:
    state: str
    value: float | None
    events_created: int


@strawberry.type(description="A scheduled export of a published dashboard.")
class Report:
    id: strawberry.ID
    name: str
    dashboard_id: str
    schedule: str
    timezone: str
    format: str = strawberry.field(description="csv | pdf")
    recipients: list[str]
    webhook_url: str | None
    enabled: bool
    tenant_id: str | None
    tenant_recipients: JSON = strawberry.field(description="{tenant_id: [emails]} (bursting)")
    next_run_at: str | None
    last_run_at: str | None
    created_at: str | None
    updated_at: str | None

    @classmethod
    def of(cls, view: ReportView) -> Report:
        report = _fields(cls, view)
        report.id = strawberry.ID(str(view.id))
        return report


@strawberry.type(description="One run of a scheduled report.")
class ReportRun:
    id: strawberry.ID
    trigger: str = strawberry.field(description="schedule | manual")
    status: str = strawberry.field(description="running | succeeded | failed | partial")
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None
    format: str
    bytes: int
    error: str | None
    deliveries: list[Delivery]

    @classmethod
    def of(cls, view: ReportRunView) -> ReportRun:
        return cls(
            id=strawberry.ID(str(view.id)),
            trigger=view.trigger,
            status=view.status,
            started_at=view.started_at,
            finished_at=view.finished_at,
            duration_ms=view.duration_ms,
            format=view.format,
            bytes=view.bytes,
            error=view.error,
            deliveries=[Delivery.of(d) for d in view.deliveries],
        )


@strawberry.type
class WebhookRuleRef:
    type: str = strawberry.field(description="alert | report")
    id: strawberry.ID
    name: str


@strawberry.type(description="A webhook URL and its delivery figures over the last 24 hours.")
class WebhookEndpoint:
    url: str
    rules: list[WebhookRuleRef]
    success_24h: int
    failure_24h: int
    last_status_code: int | None
    last_error: str | None
    last_response_excerpt: str | None
    last_duration_ms: int | None
    last_attempt_at: str | None

    @classmethod
    def of(cls, view: EndpointView) -> WebhookEndpoint:
        return cls(
            url=view.url,
            rules=[
                WebhookRuleRef(type=r.type, id=strawberry.ID(str(r.id)), name=r.name)
                for r in view.rules
            ],
            success_24h=view.success_24h,
            failure_24h=view.failure_24h,
            last_status_code=view.last_status_code,
            last_error=view.last_error,
            last_response_excerpt=view.last_response_excerpt,
            last_duration_ms=view.last_duration_ms,
            last_attempt_at=view.last_attempt_at,
        )


@strawberry.type
class Webhooks:
    signing_secret: str
    endpoints: list[WebhookEndpoint]


@strawberry.input(description="Alert rule fields; on update, only the fields given change.")
class AlertRuleInput:
    dashboard_id: str | None = strawberry.UNSET
    widget_id: str | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    condition_type: str | None = strawberry.UNSET
    operator: str | None = strawberry.UNSET
    threshold_value: float | None = strawberry.UNSET
    lookback_minutes: int | None = strawberry.UNSET
    email_to: list[str] | None = strawberry.UNSET
    webhook_url: str | None = strawberry.UNSET
    enabled: bool | None = strawberry.UNSET
    tenant_id: str | None = strawberry.UNSET
    per_tenant: bool | None = strawberry.UNSET


@strawberry.input(
    name="ReportInput", description="Report fields; on update, only the fields given change."
)
class ReportInputGql:
    name: str | None = strawberry.UNSET
    dashboard_id: str | None = strawberry.UNSET
    schedule: str | None = strawberry.UNSET
    timezone: str | None = strawberry.UNSET
    format: str | None = strawberry.UNSET
    recipients: list[str] | None = strawberry.UNSET
    webhook_url: str | None = strawberry.UNSET
    enabled: bool | None = strawberry.UNSET
    tenant_id: str | None = strawberry.UNSET
    tenant_recipients: JSON | None = strawberry.UNSET


S = TypeVar("S", AlertInput, ReportInput)


def _struct(value: object, to: type[S]) -> S:
    """The given fields of a GraphQL input as the service's input struct (validated there)."""
    given = {
        f.name: getattr(value, f.name)
        for f in dataclasses.fields(value)  # type: ignore[arg-type]
        if getattr(value, f.name) is not strawberry.UNSET
    }
    return msgspec.convert(given, to)


def _alerts(views: list[AlertView]) -> list[AlertRule]:
    return [AlertRule.of(v) for v in views]


@strawberry.type
class AlertQueries:
    @strawberry.field(description="The org's alert rules (any console user, admin keys).")
    async def alerts(self, info: GqlInfo) -> list[AlertRule]:
        rules = await alert_rules.list_rules(actor=ctx(info).actor())
        states = await states_of([r.id for r in rules])
        return _alerts([alert_view(r, states.get(r.id, "ok")) for r in rules])

    @strawberry.field
    async def alert(self, info: GqlInfo, id: strawberry.ID) -> AlertRule:
        rule = await alert_rules.get_rule(actor=ctx(info).actor(), alert_id=str(id))
        states = await states_of([rule.id])
        return AlertRule.of(alert_view(rule, states.get(rule.id, "ok")))

    @strawberry.field(description="The rule's last 100 events, newest first.")
    async def alert_events(self, info: GqlInfo, alert_id: strawberry.ID) -> list[AlertEvent]:
        found = await alert_rules.list_events(actor=ctx(info).actor(), alert_id=str(alert_id))
        return [AlertEvent.of(alert_event_view(e, d)) for e, d in found]

    @strawberry.field(description="The org's scheduled reports.")
    async def reports(self, info: GqlInfo) -> list[Report]:
        return [
            Report.of(report_view(r)) for r in await reports.list_reports(actor=ctx(info).actor())
        ]

    @strawberry.field
    async def report(self, info: GqlInfo, id: strawberry.ID) -> Report:
        found = await reports.get_report(actor=ctx(info).actor(), report_id=str(id))
        return Report.of(report_view(found))

    @strawberry.field(description="The report's last 100 runs, newest first.")
    async def report_runs(self, info: GqlInfo, report_id: strawberry.ID) -> list[ReportRun]:
        found = await reports.list_runs(actor=ctx(info).actor(), report_id=str(report_id))
        return [ReportRun.of(report_run_view(r, d)) for r, d in found]

    @strawberry.field(description="The signing secret and each webhook URL's figures (admin).")
    async def webhooks(self, info: GqlInfo) -> Webhooks:
        found = await webhooks.overview(actor=ctx(info).actor())
        return Webhooks(
            signing_secret=found.signing_secret,
            endpoints=[WebhookEndpoint.of(endpoint_view(e)) for e in found.endpoints],
        )


def _bad_input(error: BaseException) -> Exception:
    from emban.errors import BadRequest

    return BadRequest(f"input: {error}", field="input")


@strawberry.type
class AlertMutations:
    @strawberry.mutation(description="Create an alert rule (admin).")
    async def create_alert(self, info: GqlInfo, input: AlertRuleInput) -> AlertRule:
        context = ctx(info)
        try:
            body = _struct(input, AlertInput)
        except CONVERT_FAILURES as error:
            raise _bad_input(error) from None
        rule = await alert_rules.create_rule(
            actor=context.actor(),
            body=body,
            allow_hosts=context.runtime.settings.webhook_allow_hosts,
        )
        return AlertRule.of(alert_view(rule, "ok"))

    @strawberry.mutation(description="Change an alert rule (admin).")
    async def update_alert(
        self, info: GqlInfo, id: strawberry.ID, input: AlertRuleInput
    ) -> AlertRule:
        context = ctx(info)
        try:
            body = _struct(input, AlertInput)
        except CONVERT_FAILURES as error:
            raise _bad_input(error) from None
        rule = await alert_rules.update_rule(
            actor=context.actor(),
            alert_id=str(id),
            body=body,
            allow_hosts=context.runtime.settings.webhook_allow_hosts,
        )
        states = await states_of([rule.id])
        return AlertRule.of(alert_view(rule, states.get(rule.id, "ok")))

    @strawberry.mutation(description="Delete an alert rule (admin).")
    async def delete_alert(self, info: GqlInfo, id: strawberry.ID) -> bool:
        await alert_rules.delete_rule(actor=ctx(info).actor(), alert_id=str(id))
        return True

    @strawberry.mutation(
        description="Evaluate an alert rule now (admin).",
        extensions=[OwnTransaction("the engine is read first; transitions commit on their own")],
    )
    async def evaluate_alert(self, info: GqlInfo, id: strawberry.ID) -> AlertEvaluation:
        context = ctx(info)
        result = await evaluate_now(
            runner_of(context.runtime), actor=context.actor(), alert_id=str(id)
        )
        return AlertEvaluation(
            state=result.state, value=result.value, events_created=result.events_created
        )

    @strawberry.mutation(description="Create a scheduled report (admin).")
    async def create_report(self, info: GqlInfo, input: ReportInputGql) -> Report:
        context = ctx(info)
        try:
            body = _struct(input, ReportInput)
        except CONVERT_FAILURES as error:
            raise _bad_input(error) from None
        found = await reports.create_report(
            actor=context.actor(),
            body=body,
            allow_hosts=context.runtime.settings.webhook_allow_hosts,
        )
        return Report.of(report_view(found))

    @strawberry.mutation(description="Change a scheduled report (admin).")
    async def update_report(
        self, info: GqlInfo, id: strawberry.ID, input: ReportInputGql
    ) -> Report:
        context = ctx(info)
        try:
            body = _struct(input, ReportInput)
        except CONVERT_FAILURES as error:
            raise _bad_input(error) from None
        found = await reports.update_report(
            actor=context.actor(),
            report_id=str(id),
            body=body,
            allow_hosts=context.runtime.settings.webhook_allow_hosts,
        )
        return Report.of(report_view(found))

    @strawberry.mutation(description="Delete a scheduled report (admin).")
    async def delete_report(self, info: GqlInfo, id: strawberry.ID) -> bool:
        await reports.delete_report(actor=ctx(info).actor(), report_id=str(id))
        return True

    @strawberry.mutation(
        description="Run a report now (admin); returns the run's id.",
        extensions=[OwnTransaction("the run commits before its job is enqueued")],
    )
    async def run_report(self, info: GqlInfo, id: strawberry.ID) -> strawberry.ID:
        context = ctx(info)
        actor = context.actor()
        run = await run_now(context.runtime.jobs, actor=actor, report_id=str(id))
        return strawberry.ID(str(run.id))

    @strawberry.mutation(description="A new webhook signing secret (admin).")
    async def rotate_webhook_secret(self, info: GqlInfo) -> str:
        fresh, _ = await webhooks.rotate_secret(actor=ctx(info).actor())
        return fresh
