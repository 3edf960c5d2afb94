"""Reading a client's ISO 8601 timestamp: one place, so no caller forgets a failure mode."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_moment(value: str) -> datetime | None:
    """The moment ``value`` names, in UTC (a value without an offset is UTC), or None when it is
    not an ISO 8601 date-time or leaves the representable range once moved to UTC
    (``0001-01-01T00:00:00+01:00`` is a valid ISO string, and a year-0 moment in UTC)."""
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
