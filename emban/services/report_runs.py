"""Report runs: due reports start once (whatever the number of workers), exports are made per
tenant and delivered; every run and delivery is recorded (``GET /v1/reports/{id}/runs``).

Missed occurrences (the service was down) are not replayed one by one: a due report runs once and
its next run is computed from now, as Metabase and Superset do.

Deliveries of one run: the ``recipients`` (and the webhook) receive the export of ``tenant_id``
(all tenants when unset); each tenant of ``tenant_recipients`` gets an export of its own data,
mailed only to its addresses (and posted to the webhook with its ``tenant_id``). E-mails are sent
by the run itself (attachments are not kept); webhooks are delivery jobs with retries. A run is
``succeeded`` when every export was made and every e-mail sent, ``failed`` when nothing could be
delivered (or no export made), ``partial`` in between.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiosmtplib
import msgspec
from tortoise.exceptions import IntegrityError

from emban.auth.principal import Principal
from emban.dependencies import dependency_failure
from emban.models import Dashboard, Delivery, Environment, Report, ReportRun
from emban.notify.email import Attachment, SmtpConfig, build_message, escape, send
from emban.notify.ssrf import describe
from emban.schedules import next_run
from emban.services import audit, reports, webhooks
from emban.services.access import requires
from emban.services.boundary import after_commit, transaction
from emban.services.report_exports import (
    ExportFailed,
    ExportFile,
    QueryRuntime,
    csv_files,
    pdf_file,
    widget_tables,
)

if TYPE_CHECKING:
    from emban.jobs.queue import JobQueue

log = logging.getLogger("emban.reports")

EMAIL_TRIES = 3


def _now() -> datetime:
    return datetime.now(UTC)


async def start_run(
    jobs: JobQueue, report: Report, *, trigger: str, scheduled_for: datetime | None = None
) -> ReportRun | None:
    """Record a run and enqueue it; None when another worker already started this occurrence."""
    async with transaction():
        try:
            run = await ReportRun.create(
                report_id=report.id,
                org_id=report.org_id,
                trigger=trigger,
                format=report.format,
                scheduled_for=scheduled_for,
            )
        except IntegrityError:
            return None
        if trigger == "schedule":
            upcoming = next_run(
                report.schedule, report.timezone, max(_now(), scheduled_for or _now())
            )
            await Report.filter(id=report.id).update(next_run_at=upcoming)

        async def enqueue() -> None:
            try:
                await jobs.enqueue("run_report", str(run.id))
            except Exception as exc:
                down = dependency_failure(exc)
                if down is None:
                    raise
                # Never a run that stays queued with no job behind it: it failed, and says why.
                await ReportRun.filter(id=run.id).update(
                    status="failed",
                    error=f"not queued: {down.dependency} unavailable",
                    finished_at=_now(),
                )
                raise down from exc

        after_commit(enqueue)
    return run


@requires("admin")
async def run_now(jobs: JobQueue, *, actor: Principal, report_id: str) -> ReportRun:
    """``POST /v1/reports/{id}/run`` and ``runReport``: a manual run of the actor's report,
    committed, enqueued and audited; the caller answers with its id."""
    report = await reports.find_for_admin(actor=actor, report_id=report_id)
    run = await start_run(jobs, report, trigger="manual")
    assert run is not None  # a manual run has no scheduled instant to collide on
    await audit.record(actor, "report.run", "report", str(report.id), {"run_id": run.id})
    return run


async def start_due(jobs: JobQueue, *, now: datetime | None = None) -> int:
    """Start every enabled report whose next run is due; returns how many this call started."""
    moment = now or _now()
    started = 0
    for report in await Report.filter(enabled=True, next_run_at__lte=moment).order_by(
        "next_run_at"
    ):
        if await start_run(jobs, report, trigger="schedule", scheduled_for=report.next_run_at):
            started += 1
    return started


@dataclass
class Target:
    tenant_id: str | None
    emails: list[str]
    webhook: str | None


@dataclass
class RunOutcome:
    bytes: int = 0
    errors: list[str] = field(default_factory=list)
    delivered: int = 0
    failed: int = 0
    exports: int = 0


def targets_of(report: Report) -> list[Target]:
    targets: list[Target] = []
    if report.recipients or (report.webhook_url and not report.tenant_recipients):
        targets.append(Target(report.tenant_id, list(report.recipients), report.webhook_url))
    for tenant, emails in sorted(report.tenant_recipients.items()):
        targets.append(Target(tenant, list(emails), report.webhook_url))
    if not targets:
        targets.append(Target(report.tenant_id, [], None))  # export only, nobody to tell
    return targets


def _mail(
    report: Report, dashboard: Dashboard, tenant: str | None, files: list[ExportFile]
) -> tuple[str, str, str]:
    scope = f"tenant {tenant}" if tenant is not None else "all tenants"
    subject = f"[Emban] {report.name}: {dashboard.name} ({scope})"
    names = ", ".join(f.filename for f in files)
    text = f"{report.name}\n\nDashboard: {dashboard.name}\nScope: {scope}\nAttached: {names}\n"
    html_body = (
        f"<h2>{escape(report.name)}</h2><p>Dashboard: <b>{escape(dashboard.name)}</b><br>"
        f"Scope: {escape(scope)}<br>Attached: {escape(names)}</p>"
    )
    return subject, text, html_body


async def _email(
    settings: Any,
    run: ReportRun,
    report: Report,
    dashboard: Dashboard,
    target: Target,
    files: list[ExportFile],
    email: str,
) -> bool:
    delivery = await webhooks.create_delivery(
        org_id=report.org_id,
        channel="email",
        event_type="report.run",
        target=email,
        tenant_id=target.tenant_id,
        report_run_id=run.id,
    )
    if settings.smtp_url is None:
        await Delivery.filter(id=delivery.id).update(
            status="failed", error="smtp_not_configured", last_attempt_at=_now()
        )
        return False
    subject, text, html_body = _mail(report, dashboard, target.tenant_id, files)
    message = build_message(
        sender=settings.email_from,
        to=[email],
        subject=subject,
        text=text,
        html_body=html_body,
        attachments=[Attachment(f.filename, f.content, f.mime) for f in files],
    )
    error: str | None = None
    attempts = 0
    started = time.perf_counter()
    while attempts < EMAIL_TRIES:
        attempts += 1
        try:
            await send(SmtpConfig.parse(settings.smtp_url), message)
            error = None
            break
        except aiosmtplib.SMTPResponseException as exc:
            error = f"SMTP {exc.code}: {exc.message}"[:300]
            if exc.code >= 500:
                break
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            error = describe(exc)
    await Delivery.filter(id=delivery.id).update(
        status="succeeded" if error is None else "failed",
        error=error,
        attempts=attempts,
        duration_ms=int((time.perf_counter() - started) * 1000),
        last_attempt_at=_now(),
    )
    return error is None


async def _export(
    rt: QueryRuntime,
    report: Report,
    dashboard: Dashboard,
    environment: Environment,
    tenant: str | None,
) -> tuple[list[ExportFile], list[Any]]:
    tables = await widget_tables(rt, dashboard, report.environment_id, tenant)
    if report.format == "csv":
        return csv_files(tables), tables
    if tenant is None:
        raise ExportFailed("a pdf export needs a tenant")
    settings = rt.settings
    pdf = await pdf_file(
        chromium_path=settings.chromium_path,
        render_url=settings.render_url or settings.base_url,
        dashboard=dashboard,
        environment=environment,
        tenant_id=tenant,
        filename=f"{dashboard.id}.pdf",
    )
    return [pdf], tables


def webhook_body(
    report: Report, run: ReportRun, tenant: str | None, tables: list[Any], files: list[ExportFile]
) -> bytes:
    return msgspec.json.encode(
        {
            "type": "report.run",
            "tenant_id": tenant,
            "data": {
                "report": {
                    "id": report.id,
                    "name": report.name,
                    "dashboard_id": report.dashboard_id,
                    "format": report.format,
                },
                "run_id": run.id,
                "tenant_id": tenant,
                "files": [{"filename": f.filename, "bytes": len(f.content)} for f in files],
                "widgets": [
                    {
                        "id": t.id,
                        "title": t.title,
                        "kind": t.kind,
                        "columns": t.columns,
                        "rows": t.rows,
                    }
                    for t in tables
                ],
            },
        }
    )


async def execute_run(rt: QueryRuntime, jobs: JobQueue, run_id: int) -> ReportRun | None:
    run = await ReportRun.get_or_none(id=run_id)
    if run is None or run.status != "running" or run.finished_at is not None:
        return run
    started = time.perf_counter()
    outcome = RunOutcome()
    report = await Report.get_or_none(id=run.report_id)
    dashboard = (
        await Dashboard.get_or_none(id=report.dashboard_id, org_id=report.org_id)
        if report
        else None
    )
    environment = await Environment.get_or_none(id=report.environment_id) if report else None
    if report is None or dashboard is None or environment is None:
        outcome.errors.append("the report's dashboard no longer exists")
    elif not dashboard.is_published:
        outcome.errors.append("the dashboard is not published")
    else:
        for target in targets_of(report):
            try:
                files, tables = await _export(rt, report, dashboard, environment, target.tenant_id)
            except ExportFailed as exc:
                outcome.errors.append(str(exc))
                outcome.failed += 1
                continue
            except Exception as exc:  # an engine failure, a bad widget: recorded, not raised
                log.exception("report run %s: export failed", run.id)
                outcome.errors.append(f"export failed: {describe(exc)}")
                outcome.failed += 1
                continue
            outcome.exports += 1
            outcome.bytes += sum(len(f.content) for f in files)
            for email in target.emails:
                if await _email(rt.settings, run, report, dashboard, target, files, email):
                    outcome.delivered += 1
                else:
                    outcome.failed += 1
            if target.webhook:
                delivery = await webhooks.create_delivery(
                    org_id=report.org_id,
                    channel="webhook",
                    event_type="report.run",
                    target=target.webhook,
                    tenant_id=target.tenant_id,
                    payload=webhook_body(report, run, target.tenant_id, tables, files),
                    report_run_id=run.id,
                )
                await jobs.enqueue("deliver_webhook", str(delivery.id))
        failed_mail = await Delivery.filter(
            report_run_id=run.id, channel="email", status="failed"
        ).values_list("error", flat=True)
        if failed_mail:
            outcome.errors.extend(sorted({f"e-mail: {e}" for e in failed_mail if e}))
    if outcome.exports == 0 or (outcome.delivered == 0 and outcome.failed > 0):
        status = "failed"
    elif outcome.failed:
        status = "partial"
    else:
        status = "succeeded"
    finished = _now()
    await ReportRun.filter(id=run.id).update(
        status=status,
        bytes=outcome.bytes,
        error="; ".join(dict.fromkeys(outcome.errors))[:2000] or None,
        finished_at=finished,
        duration_ms=int((time.perf_counter() - started) * 1000),
    )
    if report is not None:
        await Report.filter(id=report.id).update(last_run_at=finished)
    return await ReportRun.get(id=run.id)
