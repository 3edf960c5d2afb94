"""Report schedules: five-field cron expressions evaluated in an IANA time zone, DST-correct.

Cron fields are read in the schedule's local wall-clock time (``0 9 * * 1`` is 09:00 in the
report's zone, whatever its UTC offset that week). Around daylight-saving changes we follow Vixie
cron, what operators expect:

- a wall time that does not exist (spring forward: 02:30 in New York on the second Sunday of
  March) runs once, at the first instant after the gap (03:00 local);
- a wall time that happens twice (fall back: 01:30) runs once, at its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

_MAX_STEPS = 10_000


class BadSchedule(ValueError):
    """The message says what is wrong; the caller names the field."""


def parse_zone(name: str) -> ZoneInfo:
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise BadSchedule("is not an IANA time zone name (for example Europe/Paris)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise BadSchedule(f"unknown time zone {name!r}") from exc


def check_cron(expr: str) -> str:
    """The normalized expression (single spaces) if it is a valid five-field cron expression."""
    if not isinstance(expr, str) or len(expr) > 200:
        raise BadSchedule("must be a five-field cron expression such as '0 9 * * 1'")
    fields = expr.split()
    if len(fields) != 5:
        raise BadSchedule(
            f"must have 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    normalized = " ".join(fields)
    try:
        valid = croniter.is_valid(normalized)
    except (CroniterError, ValueError, TypeError, KeyError):
        valid = False
    if not valid:
        raise BadSchedule(f"{normalized!r} is not a valid cron expression")
    try:
        croniter(normalized, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterError, ValueError) as exc:
        raise BadSchedule(f"{normalized!r} never runs") from exc
    return normalized


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=zone, fold=0)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time: its first occurrence, or the end of its DST gap."""
    if _exists(wall, zone):
        return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    # In a gap: fold=1 reads it with the later offset (an instant before the change), fold=0
    # with the earlier one (after it). The change lies between; find it to the minute.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    before = low.astimezone(zone).utcoffset()
    step = low
    while step < high and step.astimezone(zone).utcoffset() == before:
        step += timedelta(minutes=1)
    return step.replace(second=0, microsecond=0)


def next_run(expr: str, zone_name: str, after: datetime) -> datetime:
    """The first run strictly after ``after`` (aware), as an aware UTC datetime."""
    zone = parse_zone(zone_name)
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    wall = after.astimezone(zone).replace(tzinfo=None)
    # Start one hour back so a wall time repeated by a fall-back change is not skipped when
    # ``after`` lies in the second pass; results at or before ``after`` are passed over.
    it = croniter(check_cron(expr), wall - timedelta(hours=1))
    seen: set[datetime] = set()
    for _ in range(_MAX_STEPS):
        try:
            candidate: datetime = it.get_next(datetime)
        except CroniterError as exc:
            raise BadSchedule(f"{expr!r} never runs") from exc
        instant = _instant(candidate, zone)
        if instant > after and instant not in seen:
            return instant
        seen.add(instant)
    raise BadSchedule(f"{expr!r} never runs")
