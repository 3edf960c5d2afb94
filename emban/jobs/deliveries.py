"""Delivery jobs: each webhook POST is a job of its own, retried with exponential backoff.

Retries (arq ``Retry``; the in-process runner honours the same exception): connection errors,
timeouts, 5xx, 408 and 429, ``MAX_ATTEMPTS`` attempts in all, waiting
``EMBAN_WEBHOOK_RETRY_BASE_SECONDS * 2^(attempt-1)`` between them. Every attempt sends the same
body and the same ``Emban-Delivery`` id, so a receiver can de-duplicate; a worker killed
mid-attempt runs the job again (at least once).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from arq import Retry

from emban.models import Delivery
from emban.notify import webhooks as http
from emban.services import webhooks

log = logging.getLogger("emban.deliveries")

MAX_ATTEMPTS = 5


def retry_delay(base: float, attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return float(base * 2 ** (attempt - 1))


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
