"""Usage (events ingested and queries run per day) and onboarding progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from emban.analytics import catalog
from emban.analytics.query_spec import PERIOD_LENGTH, PERIODS
from emban.auth.principal import Principal
from emban.errors import BadRequest
from emban.models import ApiKey, Org, UsageDaily
from emban.runtime import Runtime
from emban.services import billing
from emban.services.access import requires
from emban.services.events import events_this_month
from emban.services.scope import in_org


@dataclass(frozen=True)
class UsageDay:
    day: date
    events: int
    queries: int


@dataclass(frozen=True)
class Usage:
    period: str
    days: list[UsageDay]
    events_total: int
    queries_total: int
    events_this_month: int
    events_limit: int | None
    plan: str


@requires("viewer")
async def get_usage(rt: Runtime, *, actor: Principal, period: str | None) -> Usage:
    """Per-day counts for the period (every day listed, zeros included), plus the plan limit."""
    period = period or "30d"
    if period not in PERIODS:
        raise BadRequest(f"period must be one of {', '.join(PERIODS)}", field="period")
    await rt.usage.flush()  # include this process's buffered query counts
    # and the events acknowledged so far (counted once drained)
    await rt.ingest.visible(org=actor.org_id)
    today = datetime.now(UTC).date()
    first = (datetime.now(UTC) - PERIOD_LENGTH[period]).date()
    rows = {
        row.day: row
        for row in await in_org(UsageDaily, actor).filter(day__gte=first, day__lte=today)
    }
    days: list[UsageDay] = []
    current = first
    while current <= today:
        row = rows.get(current)
        days.append(UsageDay(current, row.events if row else 0, row.queries if row else 0))
        current += timedelta(days=1)
    org = await Org.get(id=actor.org_id)
    return Usage(
        period=period,
        days=days,
        events_total=sum(d.events for d in days),
        queries_total=sum(d.queries for d in days),
        events_this_month=await events_this_month(org.id, today),
        events_limit=billing.plan_of(org).events_per_month,
        plan=org.plan,
    )


@dataclass(frozen=True)
class Onboarding:
    sample_only: bool
    real_events: int
    sample_events: int
    has_ingest_key: bool
    steps: dict[str, bool]


@requires("viewer")
async def onboarding_status(rt: Runtime, *, actor: Principal) -> Onboarding:
    """``sample_only`` while the org has no real events (demo sample data does not count)."""
    real, sample = await catalog.sample_counts(rt.events, actor.org_id)
    has_ingest_key = await in_org(ApiKey, actor).filter(scope="ingest").exists()
    return Onboarding(
        sample_only=real == 0,
        real_events=real,
        sample_events=sample,
        has_ingest_key=has_ingest_key,
        steps={"create_ingest_key": has_ingest_key, "send_first_event": real > 0},
    )
