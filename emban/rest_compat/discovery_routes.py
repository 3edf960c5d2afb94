"""``/v1/discover``: thin handlers over the discovery service."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emban.rest_compat import shapes
from emban.rest_compat.http import actor, json_response, runtime
from emban.rest_compat.route import RestRoute
from emban.services import discovery


def event_json(e: discovery.DiscoveredEvent) -> dict[str, Any]:
    return {
        "event_name": e.event_name,
        "count": e.count,
        "unique_users": e.unique_users,
        "first_seen": shapes.iso(e.first_seen),
        "last_seen": shapes.iso(e.last_seen),
        "string_props": [
            {
                "key": p.key,
                "count": p.count,
                "distinct_values": p.distinct_values,
                "top_values": [{"value": v.value, "count": v.count} for v in p.top_values],
            }
            for p in e.string_props
        ],
        "numeric_props": [
            {"key": p.key, "count": p.count, "min": p.min, "avg": p.avg, "max": p.max}
            for p in e.numeric_props
        ],
    }


async def discover(request: web.Request) -> web.StreamResponse:
    found = await discovery.discover(runtime(request), actor=await actor(request))
    return json_response({"events": [event_json(e) for e in found]})


async def auto_create(request: web.Request) -> web.StreamResponse:
    created = await discovery.auto_create(runtime(request), actor=await actor(request))
    return json_response(
        {
            "dashboard_id": created.dashboard.id,
            "name": created.dashboard.name,
            "widgets": created.widgets,
            "events_found": created.events_found,
        },
        status=201,
    )


DISCOVERY_ROUTES: tuple[RestRoute, ...] = (
    RestRoute(
        "GET",
        "/v1/discover",
        discover,
        "Event names of the caller's environment: counts, first/last seen, string property "
        "keys with top values, numeric property keys with min/avg/max.",
        200,
        None,
        "console",
        "discovery",
        (401, 403),
    ),
    RestRoute(
        "POST",
        "/v1/discover/auto-create",
        auto_create,
        "Create a draft dashboard from the discovered events (editor); 400 no_events.",
        201,
        None,
        "console",
        "discovery",
        (400, 401, 403),
        # The service scans ClickHouse first, then writes in a short transaction of its own.
        transaction=False,
    ),
)
