"""GraphQL discovery: the ``discover`` query and the ``autoCreateDashboard`` mutation."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from emban.resolvers.context import GqlInfo, OwnTransaction, ctx
from emban.resolvers.scalars import Int64
from emban.services import discovery


@strawberry.type
class TopValue:
    value: str
    count: Int64


@strawberry.type
class StringProperty:
    key: str
    count: Int64
    distinct_values: Int64
    top_values: list[TopValue]


@strawberry.type
class NumericProperty:
    key: str
    count: Int64
    min: float
    avg: float
    max: float


@strawberry.type
class DiscoveredEvent:
    event_name: str
    count: Int64
    unique_users: Int64
    first_seen: str
    last_seen: str
    string_props: list[StringProperty]
    numeric_props: list[NumericProperty]

    @classmethod
    def of(cls, e: discovery.DiscoveredEvent) -> DiscoveredEvent:
        return cls(
            event_name=e.event_name,
            count=Int64(e.count),
            unique_users=Int64(e.unique_users),
            first_seen=_iso_ms(e.first_seen),
            last_seen=_iso_ms(e.last_seen),
            string_props=[
                StringProperty(
                    key=p.key,
                    count=Int64(p.count),
                    distinct_values=Int64(p.distinct_values),
                    top_values=[
                        TopValue(value=v.value, count=Int64(v.count)) for v in p.top_values
                    ],
                )
                for p in e.string_props
            ],
            numeric_props=[
                NumericProperty(key=p.key, count=Int64(p.count), min=p.min, avg=p.avg, max=p.max)
                for p in e.numeric_props
            ],
        )


def _iso_ms(moment: datetime) -> str:
    """The same text as REST (``2026-11-26T10:00:00.123Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@strawberry.type
class AutoCreatedDashboard:
    dashboard_id: strawberry.ID
    name: str
    widgets: int
    events_found: int


@strawberry.type
class DiscoveryQueries:
    @strawberry.field(
        description="Event names of the caller's environment with their property keys "
        "(same as GET /v1/discover)."
    )
    async def discover(self, info: GqlInfo) -> list[DiscoveredEvent]:
        context = ctx(info)
        found = await discovery.discover(context.runtime, actor=context.actor())
        return [DiscoveredEvent.of(e) for e in found]


@strawberry.type
class DiscoveryMutations:
    @strawberry.mutation(
        description="Create a draft dashboard from the discovered events (editor; same as "
        "POST /v1/discover/auto-create).",
        extensions=[
            OwnTransaction("the service scans ClickHouse first, then writes in its own transaction")
        ],
    )
    async def auto_create_dashboard(self, info: GqlInfo) -> AutoCreatedDashboard:
        context = ctx(info)
        created = await discovery.auto_create(context.runtime, actor=context.actor())
        return AutoCreatedDashboard(
            dashboard_id=strawberry.ID(created.dashboard.id),
            name=created.dashboard.name,
            widgets=created.widgets,
            events_found=created.events_found,
        )
