"""``/v1/discover``: thin handlers over the discovery service."""

from __future__ import annotations

from aiohttp import web

from emban.rest_compat import responses as out
from emban.rest_compat import shapes
from emban.rest_compat.http import runtime
from emban.rest_compat.route import caller, route
from emban.services import discovery


def event_json(e: discovery.DiscoveredEvent) -> out.DiscoveredEvent:
    return out.DiscoveredEvent(
        event_name=e.event_name,
        count=e.count,
        unique_users=e.unique_users,
        first_seen=shapes.iso(e.first_seen),
        last_seen=shapes.iso(e.last_seen),
        string_props=[
            out.StringProperty(
                key=p.key,
                count=p.count,
                distinct_values=p.distinct_values,
                top_values=[out.TopValue(value=v.value, count=v.count) for v in p.top_values],
            )
            for p in e.string_props
        ],
        numeric_props=[
            out.NumericProperty(key=p.key, count=p.count, min=p.min, avg=p.avg, max=p.max)
            for p in e.numeric_props
        ],
    )


@route(
    "GET",
    "/v1/discover",
    response=out.DiscoveredEvents,
    service=discovery.discover,
    tag="discovery",
)
async def discover(request: web.Request) -> out.DiscoveredEvents:
    """Event names of the caller's environment: counts, first/last seen, string property
    keys with top values, numeric property keys with min/avg/max."""
    found = await discovery.discover(runtime(request), actor=caller(request))
    return out.DiscoveredEvents(events=[event_json(e) for e in found])


@route(
    "POST",
    "/v1/discover/auto-create",
    response=out.AutoCreatedDashboard,
    status=201,
    service=discovery.auto_create,
    tag="discovery",
    errors=(400,),
    # The service scans ClickHouse first, then writes in a short transaction of its own.
    transaction=False,
)
async def auto_create(request: web.Request) -> out.AutoCreatedDashboard:
    """Create a draft dashboard from the discovered events (editor); 400 no_events."""
    created = await discovery.auto_create(runtime(request), actor=caller(request))
    return out.AutoCreatedDashboard(
        dashboard_id=created.dashboard.id,
        name=created.dashboard.name,
        widgets=created.widgets,
        events_found=created.events_found,
    )
