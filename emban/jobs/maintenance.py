"""Housekeeping jobs: idempotent, safe to run twice, take no objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from emban.jobs.metering import metered_job
from emban.models import Invite, UserSession


@metered_job
async def purge_expired(ctx: dict[str, Any]) -> dict[str, int]:
    """Delete expired console sessions and expired, unaccepted invites."""
    now = datetime.now(UTC)
    sessions = await UserSession.filter(expires_at__lte=now).delete()
    invites = await Invite.filter(accepted_at__isnull=True, expires_at__lte=now).delete()
    return {"sessions": sessions, "invites": invites}
