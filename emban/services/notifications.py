"""The alert/report/webhook views both edges answer with (REST and GraphQL shape the same data).

Services return models; this module turns them into plain typed records once, so the edges do
not each re-read model fields (an alert's summary state, an event's deliveries ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from emban.models import AlertEvent, AlertRule, Delivery, Report, ReportRun
from emban.runtime import Runtime
from emban.services.alert_eval import AlertRunner


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class DeliveryView:
    id: str
    channel: str
    target: str
    tenant_id: str | None
    status: str
    status_code: int | None
    error: str | None
    attempts: int
    last_attempt_at: str | None


def delivery_view(d: Delivery) -> DeliveryView:
    return DeliveryView(
        id=d.uid,
        channel=d.channel,
        target=d.target,
        tenant_id=d.tenant_id,
        status=d.status,
        status_code=d.status_code,
        error=d.error,
        attempts=d.attempts,
        last_attempt_at=iso(d.last_attempt_at),
    )


@dataclass(frozen=True)
class AlertView:
    id: int
    name: str
    dashboard_id: str
    widget_id: str
    condition_type: str
    operator: str
    threshold_value: float
    lookback_minutes: int
    email_to: list[str]
    webhook_url: str | None
    enabled: bool
    tenant_id: str | None
    per_tenant: bool
    state: str
    created_at: str | None
    updated_at: str | None


def alert_view(rule: AlertRule, state: str) -> AlertView:
    return AlertView(
        id=rule.id,
        name=rule.name,
        dashboard_id=rule.dashboard_id,
        widget_id=rule.widget_id,
        condition_type=rule.condition_type,
        operator=rule.operator,
        threshold_value=rule.threshold_value,
        lookback_minutes=rule.lookback_minutes,
        email_to=list(rule.email_to),
        webhook_url=rule.webhook_url,
        enabled=rule.enabled,
        tenant_id=rule.tenant_id,
        per_tenant=rule.per_tenant,
        state=state,
        created_at=iso(rule.created_at),
        updated_at=iso(rule.updated_at),
    )


@dataclass(frozen=True)
class AlertEventView:
    id: int
    kind: str
    value: float | None
    threshold_value: float | None
    tenant_id: str | None
    at: str | None
    message: str
    deliveries: list[DeliveryView]


def alert_event_view(event: AlertEvent, deliveries: list[Delivery]) -> AlertEventView:
    return AlertEventView(
        id=event.id,
        kind=event.kind,
        value=finite(event.value),
        threshold_value=event.threshold_value,
        tenant_id=event.tenant_id,
        at=iso(event.at),
        message=event.message,
        deliveries=[delivery_view(d) for d in deliveries],
    )


@dataclass(frozen=True)
class ReportView:
    id: int
    name: str
    dashboard_id: str
    schedule: str
    timezone: str
    format: str
    recipients: list[str]
    webhook_url: str | None
    enabled: bool
    tenant_id: str | None
    tenant_recipients: dict[str, list[str]]
    next_run_at: str | None
    last_run_at: str | None
    created_at: str | None
    updated_at: str | None


def report_view(report: Report) -> ReportView:
    return ReportView(
        id=report.id,
        name=report.name,
        dashboard_id=report.dashboard_id,
        schedule=report.schedule,
        timezone=report.timezone,
        format=report.format,
        recipients=list(report.recipients),
        webhook_url=report.webhook_url,
        enabled=report.enabled,
        tenant_id=report.tenant_id,
        tenant_recipients={k: list(v) for k, v in report.tenant_recipients.items()},
        next_run_at=iso(report.next_run_at),
        last_run_at=iso(report.last_run_at),
        created_at=iso(report.created_at),
        updated_at=iso(report.updated_at),
    )


@dataclass(frozen=True)
class ReportRunView:
    id: int
    trigger: str
    status: str
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None
    format: str
    bytes: int
    error: str | None
    deliveries: list[DeliveryView]


def report_run_view(run: ReportRun, deliveries: list[Delivery]) -> ReportRunView:
    return ReportRunView(
        id=run.id,
        trigger=run.trigger,
        status=run.status,
        started_at=iso(run.started_at),
        finished_at=iso(run.finished_at),
        duration_ms=run.duration_ms,
        format=run.format,
        bytes=run.bytes,
        error=run.error,
        deliveries=[delivery_view(d) for d in deliveries],
    )


ROTATION_OVERLAP = timedelta(hours=24)


def runner_of(rt: Runtime) -> AlertRunner:
    """Evaluation from a request: the app's engine, job queue and live bus."""
    return AlertRunner(rt.events, rt.jobs, rt.settings, rt.live.announce_alert_event)
