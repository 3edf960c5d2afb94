"""Scheduled reports: create, read, change, delete (admin writes; any console member reads).

A report exports one *published* dashboard on a five-field cron schedule read in an IANA zone
(``emban.schedules``), as CSV (one file per data widget) or PDF (the embed runtime in headless
Chromium, for one tenant), to e-mail recipients and/or a webhook. ``tenant_recipients`` bursts
the report: one export per listed tenant, sent only to that tenant's addresses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from emban.auth.principal import Principal
from emban.error_codes import AlertErrorCode
from emban.errors import BadRequest
from emban.models import Dashboard, Delivery, Report, ReportRun
from emban.schedules import BadSchedule, check_cron, next_run, parse_zone
from emban.services import audit
from emban.services.access import requires
from emban.services.alert_rules import deliveries_of
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

FORMATS = ("csv", "pdf")
MAX_BURST_TENANTS = 100
UNSET = msgspec.UNSET


class ReportInput(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/reports`` and ``PATCH /v1/reports/{id}`` (every field optional on PATCH)."""

    name: str | msgspec.UnsetType = UNSET
    dashboard_id: str | msgspec.UnsetType = UNSET
    schedule: str | msgspec.UnsetType = UNSET
    timezone: str | msgspec.UnsetType = UNSET
    format: str | msgspec.UnsetType = UNSET
    recipients: list[str] | msgspec.UnsetType = UNSET
    webhook_url: str | msgspec.UnsetType | None = UNSET
    enabled: bool | msgspec.UnsetType = UNSET
    tenant_id: str | msgspec.UnsetType | None = UNSET
    tenant_recipients: dict[str, list[str]] | msgspec.UnsetType | None = UNSET


def _now() -> datetime:
    return datetime.now(UTC)


def _schedule(value: str) -> str:
    try:
        return check_cron(value)
    except BadSchedule as exc:
        raise BadRequest(f"schedule {exc}", field="schedule") from None


def _timezone(value: str) -> str:
    try:
        parse_zone(value)
    except BadSchedule as exc:
        raise BadRequest(f"timezone: {exc}", field="timezone") from None
    return value


def _format(value: str) -> str:
    if value not in FORMATS:
        raise BadRequest("format must be csv or pdf", field="format")
    return value


def _burst(value: dict[str, list[str]] | None) -> dict[str, list[str]]:
    if not value:
        return {}
    if len(value) > MAX_BURST_TENANTS:
        raise BadRequest(
            f"tenant_recipients: at most {MAX_BURST_TENANTS} tenants", field="tenant_recipients"
        )
    cleaned: dict[str, list[str]] = {}
    for tenant, emails in value.items():
        field = f"tenant_recipients.{tenant}"
        clean_tenant(tenant, "tenant_recipients")
        if not emails:
            raise BadRequest(f"{field} must list at least one address", field=field)
        cleaned[tenant] = clean_emails(emails, field)
    return cleaned


async def _published(actor: Principal, dashboard_id: str) -> Dashboard:
    found = (
        await in_org(Dashboard, actor).get_or_none(id=dashboard_id)
        if lookupable(dashboard_id)
        else None
    )
    if found is None:
        raise BadRequest("dashboard_id does not name a dashboard of this org", field="dashboard_id")
    if not found.is_published:
        raise BadRequest(
            "dashboard_id names a dashboard that is not published (reports export what embeds "
            "show)",
            field="dashboard_id",
        )
    return found


def _check_pdf_tenant(
    format_: str, tenant_id: str | None, tenant_recipients: dict[str, list[str]]
) -> None:
    if format_ == "pdf" and tenant_id is None and not tenant_recipients:
        raise BadRequest(
            "format pdf needs tenant_id or tenant_recipients: a PDF is the dashboard as one "
            "tenant's viewers see it",
            field="format",
        )


def _next_run_at(schedule: str, timezone: str, enabled: bool) -> datetime | None:
    return next_run(schedule, timezone, _now()) if enabled else None


async def _find(actor: Principal, report_id: str) -> Report:
    return await find_numeric(Report, actor, report_id, "report", AlertErrorCode.report_not_found)


@requires("viewer")
async def list_reports(*, actor: Principal) -> list[Report]:
    return await in_org(Report, actor).order_by("id")


@requires("viewer")
async def get_report(*, actor: Principal, report_id: str) -> Report:
    return await _find(actor, report_id)


@requires("admin")
async def find_for_admin(*, actor: Principal, report_id: str) -> Report:
    return await _find(actor, report_id)


@requires("admin")
async def create_report(
    *, actor: Principal, body: ReportInput, allow_hosts: tuple[str, ...] = ()
) -> Report:
    dashboard = await _published(actor, required(body, "dashboard_id"))
    report = Report(
        org_id=actor.org_id,
        environment_id=actor.environment_id,
        dashboard_id=dashboard.id,
        name=clean_name(required(body, "name"), "name"),
        schedule=_schedule(required(body, "schedule")),
        timezone=_timezone(body.timezone if isinstance(body.timezone, str) else "UTC"),
        format=_format(body.format if isinstance(body.format, str) else "csv"),
        recipients=clean_emails(
            body.recipients if isinstance(body.recipients, list) else [], "recipients"
        ),
        webhook_url=clean_webhook_url(
            body.webhook_url if isinstance(body.webhook_url, str) else None, allow_hosts
        ),
        enabled=body.enabled if isinstance(body.enabled, bool) else True,
        tenant_id=clean_tenant(body.tenant_id if isinstance(body.tenant_id, str) else None),
        tenant_recipients=_burst(
            body.tenant_recipients if isinstance(body.tenant_recipients, dict) else None
        ),
        created_by=actor.actor_id,
    )
    _check_pdf_tenant(report.format, report.tenant_id, report.tenant_recipients)
    report.next_run_at = _next_run_at(report.schedule, report.timezone, report.enabled)
    await report.save()
    await audit.record(actor, "report.create", "report", str(report.id), {"name": report.name})
    return report


@requires("admin")
async def update_report(
    *, actor: Principal, report_id: str, body: ReportInput, allow_hosts: tuple[str, ...] = ()
) -> Report:
    report = await _find(actor, report_id)
    values: dict[str, Any] = {}
    if body.dashboard_id is not UNSET:
        values["dashboard_id"] = (await _published(actor, required(body, "dashboard_id"))).id
    if body.name is not UNSET:
        values["name"] = clean_name(required(body, "name"), "name")
    if body.schedule is not UNSET:
        values["schedule"] = _schedule(required(body, "schedule"))
    if body.timezone is not UNSET:
        values["timezone"] = _timezone(required(body, "timezone"))
    if body.format is not UNSET:
        values["format"] = _format(required(body, "format"))
    if body.recipients is not UNSET:
        values["recipients"] = clean_emails(required(body, "recipients"), "recipients")
    if body.webhook_url is not UNSET:
        values["webhook_url"] = clean_webhook_url(body.webhook_url, allow_hosts)
    if body.enabled is not UNSET:
        values["enabled"] = required(body, "enabled")
    if body.tenant_id is not UNSET:
        values["tenant_id"] = clean_tenant(body.tenant_id)
    if body.tenant_recipients is not UNSET:
        values["tenant_recipients"] = _burst(body.tenant_recipients)
    changes = differing(report, values)

    def merged(name: str) -> Any:
        return changes.get(name, getattr(report, name))

    _check_pdf_tenant(merged("format"), merged("tenant_id"), merged("tenant_recipients"))
    if {"schedule", "timezone", "enabled"} & set(changes):
        changes["next_run_at"] = _next_run_at(
            merged("schedule"), merged("timezone"), merged("enabled")
        )
    fields = [name for name in changes if name != "next_run_at"]
    await audit.save_changes(actor, report, changes, "report.update", {"fields": fields})
    return report


@requires("admin")
async def delete_report(*, actor: Principal, report_id: str) -> None:
    report = await _find(actor, report_id)
    await report.delete()
    await audit.record(actor, "report.delete", "report", report_id, {"name": report.name})


RUNS_PAGE = 100


@requires("viewer")
async def list_runs(*, actor: Principal, report_id: str) -> list[tuple[ReportRun, list[Delivery]]]:
    """The report's last 100 runs, newest first, each with its deliveries."""
    report = await _find(actor, report_id)
    runs = (
        await ReportRun.filter(report_id=report.id).order_by("-started_at", "-id").limit(RUNS_PAGE)
    )
    deliveries = await deliveries_of("report_run_id", [r.id for r in runs])
    return [(run, deliveries.get(run.id, [])) for run in runs]
