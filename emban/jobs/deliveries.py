"""Delivery jobs: each webhook POST is a job of its own, retried with exponential backoff.

Retries (arq ``Retry``; the in-process runner honours the same exception): connection errors,
timeouts, 5xx, 408 and 429, ``MAX_ATTEMPTS`` attempts in all, waiting
``EMBAN_WEBHOOK_RETRY_BASE_SECONDS * 2^(attempt-1)`` between them. Every attempt sends the same
body and the same ``Emban-Delivery`` id, so a receiver can de-duplicate; a worker killed
mid-attempt runs the job again (at least once).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
import msgspec
from arq import Retry

from emban.jobs.metering import metered_job
from emban.models import Delivery
from emban.notify import webhooks as http
from emban.notify.email import SmtpConfig, build_message, escape, send
from emban.notify.ssrf import describe
from emban.services import webhooks

log = logging.getLogger("emban.deliveries")

MAX_ATTEMPTS = 5


def retry_delay(base: float, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return float(base * 2 ** (attempt - 1))


@metered_job
async def deliver_webhook(ctx: dict[str, Any], delivery_id: str) -> None:
    settings = ctx["settings"]
    delivery = await Delivery.get_or_none(id=int(delivery_id))
    if delivery is None or delivery.status != "pending" or delivery.channel != "webhook":
        return
    attempt = await http.post(
        delivery.target,
        bytes(delivery.payload or b"{}"),
        event_type=delivery.event_type,
        delivery_id=delivery.uid,
        secrets=await webhooks.signing_secrets(delivery.org_id),
        allow_hosts=settings.webhook_allow_hosts,
    )
    attempts = delivery.attempts + 1
    final = attempt.ok or not attempt.retryable or attempts >= MAX_ATTEMPTS
    status = "succeeded" if attempt.ok else ("failed" if final else "pending")
    await Delivery.filter(id=delivery.id).update(
        attempts=attempts,
        status=status,
        status_code=attempt.status_code,
        error=attempt.error,
        response_excerpt=attempt.excerpt,
        duration_ms=attempt.duration_ms,
        last_attempt_at=datetime.now(UTC),
    )
    if not final:
        delay = retry_delay(settings.webhook_retry_base_seconds, attempts)
        log.info(
            "webhook delivery %s attempt %d failed (%s); retrying in %.1f s",
            delivery.uid,
            attempts,
            attempt.error,
            delay,
        )
        raise Retry(defer=delay)


def _alert_mail(data: dict[str, Any], event_type: str) -> tuple[str, str, str]:
    """Subject, text and HTML of an alert e-mail (every user value escaped in the HTML)."""
    alert = data.get("alert", {})
    verdict = {"alert.fired": "Alert", "alert.resolved": "Resolved", "alert.error": "Alert error"}
    subject = f"[Emban] {verdict.get(event_type, 'Alert')}: {alert.get('name', '')}"
    lines = [
        str(data.get("message", "")),
        "",
        f"Tenant: {data.get('tenant_id') or 'all tenants'}",
        f"Dashboard: {alert.get('dashboard_id')}  Widget: {alert.get('widget_id')}",
        f"At: {data.get('at')}",
    ]
    text = "\n".join(lines) + "\n"
    html_body = (
        f"<h2>{escape(verdict.get(event_type, 'Alert'))}: {escape(alert.get('name', ''))}</h2>"
        f"<p>{escape(data.get('message', ''))}</p>"
        f"<p>Tenant: {escape(data.get('tenant_id') or 'all tenants')}<br>"
        f"Dashboard: {escape(alert.get('dashboard_id'))} &middot; "
        f"Widget: {escape(alert.get('widget_id'))}<br>At: {escape(data.get('at'))}</p>"
    )
    return subject, text, html_body


@metered_job
async def deliver_email(ctx: dict[str, Any], delivery_id: str) -> None:
    """One alert e-mail. SMTP 4xx answers and connection failures are retried like webhooks;
    a 5xx answer (address refused) is final. Without EMBAN_SMTP_URL: failed, smtp_not_configured."""
    settings = ctx["settings"]
    delivery = await Delivery.get_or_none(id=int(delivery_id))
    if delivery is None or delivery.status != "pending" or delivery.channel != "email":
        return
    now = datetime.now(UTC)
    if settings.smtp_url is None:
        await Delivery.filter(id=delivery.id).update(
            status="failed", error="smtp_not_configured", last_attempt_at=now
        )
        return
    envelope = msgspec.json.decode(bytes(delivery.payload or b"{}"))
    subject, text, html_body = _alert_mail(envelope.get("data", {}), delivery.event_type)
    message = build_message(
        sender=settings.email_from,
        to=[delivery.target],
        subject=subject,
        text=text,
        html_body=html_body,
    )
    started = time.perf_counter()
    error: str | None = None
    retryable = False
    try:
        await send(SmtpConfig.parse(settings.smtp_url), message)
    except aiosmtplib.SMTPResponseException as exc:
        error = f"SMTP {exc.code}: {exc.message}"[:300]
        retryable = 400 <= exc.code < 500
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        error = describe(exc)
        retryable = True
    attempts = delivery.attempts + 1
    final = error is None or not retryable or attempts >= MAX_ATTEMPTS
    await Delivery.filter(id=delivery.id).update(
        attempts=attempts,
        status="succeeded" if error is None else ("failed" if final else "pending"),
        error=error,
        duration_ms=int((time.perf_counter() - started) * 1000),
        last_attempt_at=now,
    )
    if not final:
        raise Retry(defer=retry_delay(settings.webhook_retry_base_seconds, attempts))
