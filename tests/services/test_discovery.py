"""Discovery: GET /v1/discover and POST /v1/discover/auto-create (REST and GraphQL), exact values
on ingested events, the org/environment scope, and the generated dashboard's widgets and layout.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from emban.models import AuditLog, Dashboard
from emban.runtime import Runtime
from emban.services.discovery import (
    DiscoveredEvent,
    NumericProperty,
    StringProperty,
    TopValue,
    plan_widgets,
)
from emban.services.widget_config import (
    BreakdownWidget,
    MetricWidget,
    TimeseriesWidget,
    decode_widgets,
    widgets_json,
)
from tests.conftest import Client, ClientFactory, bearer, join_as
from tests.gql_client import gql
from tests.scenario import owner_and_key, send_events, stamp

# Discovery reads the last 30 days (EMBAN_DISCOVERY_WINDOW_DAYS): the fixture is two days old.
BASE = (datetime.now(UTC) - timedelta(days=2)).replace(hour=9, minute=30, second=0, microsecond=0)


def ms_text(moment: datetime) -> str:
    """A first/last seen time as discovery prints it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


MINUTE = timedelta(minutes=1)
DASH_ID = re.compile(r"^dash_[a-z2-7]{20}$")
NO_EVENTS = {"error": "no events found in this environment: send events first", "code": "no_events"}


def call_event(
    i: int,
    model: str,
    status: str,
    region: str,
    latency: float,
    tokens: float | None,
    user: str | None,
    at: datetime,
    **strings: str,
) -> dict[str, Any]:
    numbers = {"latency_ms": latency}
    if tokens is not None:
        numbers["tokens"] = tokens
    event: dict[str, Any] = {
        "tenant_id": "acme" if i % 2 else "globex",
        "event_name": "api.call",
        "timestamp": stamp(at),
        "string_props": {"model": model, "status": status, "region": region, **strings},
        "numeric_props": numbers,
    }
    if user is not None:
        event["user_id"] = user
    return event


CALLS = [
    call_event(0, "gpt-4o", "success", "us", 100, 10, "u1", BASE),
    call_event(1, "gpt-4o", "success", "us", 200, 20, "u2", BASE + MINUTE),
    call_event(2, "gpt-4o", "error", "eu", 300, 30, "u1", BASE + 2 * MINUTE),
    call_event(3, "claude", "success", "eu", 400, 40, "u3", BASE + 3 * MINUTE),
    call_event(4, "claude", "success", "ap", 500, None, None, BASE + 4 * MINUTE),
    call_event(5, "llama", "success", "sa", 600, None, "u3", BASE + 5 * MINUTE),
    call_event(6, "mistral", "success", "af", 700, None, "u4", BASE + 6 * MINUTE),
    call_event(
        7,
        "qwen",
        "success",
        "oc",
        800,
        None,
        "u4",
        BASE + 7 * MINUTE + timedelta(milliseconds=250),
        endpoint="/chat",
    ),
]
SIGNUPS = [
    {
        "tenant_id": "acme",
        "event_name": "user.signup",
        "timestamp": stamp(BASE + timedelta(hours=hours)),
        "user_id": user,
        "string_props": {"plan": plan},
    }
    for hours, user, plan in ((1, "u5", "pro"), (2, "u6", "free"))
]

API_CALL = {
    "event_name": "api.call",
    "count": 8,
    "unique_users": 4,
    "first_seen": ms_text(BASE),
    "last_seen": ms_text(BASE + 7 * MINUTE + timedelta(milliseconds=250)),
    "string_props": [
        {
            "key": "model",
            "count": 8,
            "distinct_values": 5,
            "top_values": [
                {"value": "gpt-4o", "count": 3},
                {"value": "claude", "count": 2},
                {"value": "llama", "count": 1},
                {"value": "mistral", "count": 1},
                {"value": "qwen", "count": 1},
            ],
        },
        {
            # six regions: the top five, ties by value
            "key": "region",
            "count": 8,
            "distinct_values": 6,
            "top_values": [
                {"value": "eu", "count": 2},
                {"value": "us", "count": 2},
                {"value": "af", "count": 1},
                {"value": "ap", "count": 1},
                {"value": "oc", "count": 1},
            ],
        },
        {
            "key": "status",
            "count": 8,
            "distinct_values": 2,
            "top_values": [{"value": "success", "count": 7}, {"value": "error", "count": 1}],
        },
        {
            "key": "endpoint",
            "count": 1,
            "distinct_values": 1,
            "top_values": [{"value": "/chat", "count": 1}],
        },
    ],
    "numeric_props": [
        {"key": "latency_ms", "count": 8, "min": 100.0, "avg": 450.0, "max": 800.0},
        {"key": "tokens", "count": 4, "min": 10.0, "avg": 25.0, "max": 40.0},
    ],
}
USER_SIGNUP = {
    "event_name": "user.signup",
    "count": 2,
    "unique_users": 2,
    "first_seen": ms_text(BASE + timedelta(hours=1)),
    "last_seen": ms_text(BASE + timedelta(hours=2)),
    "string_props": [
        {
            "key": "plan",
            "count": 2,
            "distinct_values": 2,
            "top_values": [{"value": "free", "count": 1}, {"value": "pro", "count": 1}],
        }
    ],
    "numeric_props": [],
}


async def call(
    client: Client, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    response = await client.request(method, path, headers=headers)
    return response.status, await response.json()


async def with_neighbours(make_client: ClientFactory, owner: Client) -> None:
    """Events discovery must never show ``owner``: another org's, and the development
    environment's of the owner's own org."""
    other, other_key = await owner_and_key(make_client, "owner@globex.test")
    await send_events(other, other_key, [*CALLS[:3], {**SIGNUPS[0], "event_name": "secret.event"}])
    response = await owner.post(
        "/v1/api-keys", json={"label": "dev", "scope": "ingest", "environment": "development"}
    )
    assert response.status == 201
    development = (await response.json())["key"]
    await send_events(owner, development, [{**CALLS[0], "event_name": "dev.only"}, *CALLS[:2]])


DISCOVER_GQL = """{ discover { eventName count uniqueUsers firstSeen lastSeen
  stringProps { key count distinctValues topValues { value count } }
  numericProps { key count min avg max } } }"""


def camel(value: Any) -> Any:
    if isinstance(value, list):
        return [camel(v) for v in value]
    if isinstance(value, dict):
        return {
            re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): camel(v) for k, v in value.items()
        }
    return value


# --- GET /v1/discover ---------------------------------------------------------------------------


async def test_discover_lists_events_with_exact_counts_times_and_properties(
    make_client: ClientFactory,
) -> None:
    owner, key = await owner_and_key(make_client)
    assert await call(owner, "GET", "/v1/discover") == (200, {"events": []})
    await send_events(owner, key, [*SIGNUPS, *CALLS])
    await with_neighbours(make_client, owner)
    expected = {"events": [API_CALL, USER_SIGNUP]}
    assert await call(owner, "GET", "/v1/discover") == (200, expected)
    # The admin key of the same environment sees the same; a viewer may read it too.
    assert await call(owner, "GET", "/v1/discover", bearer(key)) == (200, expected)
    viewer, _ = await join_as(owner, make_client, "viewer")
    assert await call(viewer, "GET", "/v1/discover") == (200, expected)
    # GraphQL answers the same values.
    assert await gql(owner, DISCOVER_GQL) == {"data": {"discover": camel(expected["events"])}}


async def test_discover_and_auto_create_read_only_the_window(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner, key = await owner_and_key(make_client)
    old = datetime.now(UTC) - timedelta(days=31)
    outside = [
        {**CALLS[0], "event_name": "old.event", "timestamp": stamp(old)},
        {
            **CALLS[1],
            "timestamp": stamp(old),
            "string_props": {"model": "old-model", "old_key": "x"},
            "numeric_props": {"old_number": 1.0, "latency_ms": 99999.0},
        },
    ]
    await send_events(owner, key, [*SIGNUPS, *CALLS, *outside])
    # 30 days (the default): the events of 31 days ago count nowhere.
    assert await call(owner, "GET", "/v1/discover") == (200, {"events": [API_CALL, USER_SIGNUP]})
    default = runtime.settings
    try:
        # One day: the fixture (two days old) is outside too.
        runtime.settings = replace(default, discovery_window_days=1)
        assert await call(owner, "GET", "/v1/discover") == (200, {"events": []})
        assert await call(owner, "POST", "/v1/discover/auto-create") == (400, NO_EVENTS)
        # 40 days: everything.
        runtime.settings = replace(default, discovery_window_days=40)
        status, body = await call(owner, "GET", "/v1/discover")
        assert status == 200
        assert [(e["event_name"], e["count"]) for e in body["events"]] == [
            ("api.call", 9),
            ("user.signup", 2),
            ("old.event", 1),
        ]
    finally:
        runtime.settings = default


async def test_property_statistics_read_the_most_recent_hours(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    """With EMBAN_DISCOVERY_SAMPLE_ROWS=2 the two most recent hours (one sign-up each) are the
    sample: counts and times stay exact, api.call's properties (all in an older hour) are not
    read."""
    owner, key = await owner_and_key(make_client)
    await send_events(owner, key, [*SIGNUPS, *CALLS])
    default = runtime.settings
    try:
        runtime.settings = replace(default, discovery_sample_rows=2)
        sampled = {**API_CALL, "string_props": [], "numeric_props": []}
        assert await call(owner, "GET", "/v1/discover") == (
            200,
            {"events": [sampled, USER_SIGNUP]},
        )
        runtime.settings = replace(default, discovery_sample_rows=10)
        assert await call(owner, "GET", "/v1/discover") == (
            200,
            {"events": [API_CALL, USER_SIGNUP]},
        )
    finally:
        runtime.settings = default


async def test_discover_refuses_anonymous_and_ingest_keys(make_client: ClientFactory) -> None:
    owner, _ = await owner_and_key(make_client)
    ingest = await owner.post("/v1/api-keys", json={"label": "i", "scope": "ingest"})
    ingest_key = (await ingest.json())["key"]
    anonymous = await make_client()
    unauthenticated = {"error": "authentication required", "code": "unauthenticated"}
    scope = {"error": "ingest keys can only send events", "code": "insufficient_scope"}
    for method, path in (("GET", "/v1/discover"), ("POST", "/v1/discover/auto-create")):
        assert await call(anonymous, method, path) == (401, unauthenticated)
        assert await call(anonymous, method, path, bearer(ingest_key)) == (403, scope)
    assert await gql(anonymous, "{ discover { eventName } }") == {
        "data": None,
        "errors": [
            {
                "message": "authentication required",
                "locations": [{"line": 1, "column": 3}],
                "path": ["discover"],
                "extensions": {"code": "UNAUTHENTICATED", "reason": "unauthenticated"},
            }
        ],
    }


# --- POST /v1/discover/auto-create ----------------------------------------------------------------


def recent_calls(now: datetime) -> list[dict[str, Any]]:
    """Calls of the last hours: model and status vary, plan has one value (no breakdown),
    region is no rollup dimension; tokens and latency_ms are equally common (latency wins)."""
    events = []
    for i in range(6):
        event = call_event(
            i,
            ("gpt-4o", "claude")[i % 2],
            ("success", "error")[i // 5],
            "us",
            100.0 * (i + 1),
            5.0,
            f"u{i % 3}",
            now - timedelta(minutes=10 * i + 1),
            plan="pro",
        )
        events.append(event)
    signup = {
        "tenant_id": "acme",
        "event_name": "user.signup",
        "timestamp": stamp(now - timedelta(hours=2)),
    }
    return [*events, signup]


def auto_widget(
    widget_id: str, kind: str, title: str, viz: str, layout: tuple[int, int, int, int], **query: str
) -> dict[str, Any]:
    x, y, w, h = layout
    return {
        "id": widget_id,
        "kind": kind,
        "title": title,
        "query": {"period": "24h", "granularity": "hour", "metric": "count", **query},
        "viz": {"type": viz},
        "layout": {"x": x, "y": y, "w": w, "h": h},
    }


AUTO_WIDGETS = [
    auto_widget(
        "total_api_call", "metric", "Total api.call", "number", (0, 0, 6, 2), event_name="api.call"
    ),
    auto_widget(
        "users_api_call",
        "metric",
        "Unique users (api.call)",
        "number",
        (6, 0, 6, 2),
        event_name="api.call",
        metric="count_unique",
    ),
    auto_widget(
        "count_api_call",
        "timeseries",
        "api.call per hour",
        "line",
        (0, 2, 6, 4),
        event_name="api.call",
    ),
    auto_widget(
        "count_user_signup",
        "timeseries",
        "user.signup per hour",
        "line",
        (6, 2, 6, 4),
        event_name="user.signup",
    ),
    auto_widget(
        "api_call_by_model",
        "breakdown",
        "api.call by model",
        "bar",
        (0, 6, 6, 4),
        event_name="api.call",
        group_by="model",
    ),
    auto_widget(
        "api_call_by_status",
        "breakdown",
        "api.call by status",
        "bar",
        (6, 6, 6, 4),
        event_name="api.call",
        group_by="status",
    ),
    auto_widget(
        "p95_api_call_latency_ms",
        "timeseries",
        "p95 latency_ms (api.call)",
        "line",
        (0, 10, 12, 4),
        event_name="api.call",
        metric="p95",
        numeric_prop="latency_ms",
    ),
]


def overlaps(widgets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    cells: dict[tuple[int, int], str] = {}
    clashes = []
    for widget in widgets:
        layout = widget["layout"]
        assert layout["x"] + layout["w"] <= 12
        for x in range(layout["x"], layout["x"] + layout["w"]):
            for y in range(layout["y"], layout["y"] + layout["h"]):
                if (x, y) in cells:
                    clashes.append((cells[(x, y)], widget["id"]))
                cells[(x, y)] = widget["id"]
    return clashes


async def test_auto_create_builds_a_draft_dashboard_from_the_events(
    make_client: ClientFactory,
) -> None:
    owner, key = await owner_and_key(make_client)
    await send_events(owner, key, recent_calls(datetime.now(UTC)))
    await with_neighbours(make_client, owner)
    editor, _ = await join_as(owner, make_client, "editor")
    status, created = await call(editor, "POST", "/v1/discover/auto-create")
    assert status == 201, created
    dashboard_id = created["dashboard_id"]
    assert DASH_ID.match(dashboard_id)
    assert created == {
        "dashboard_id": dashboard_id,
        "name": "Auto-generated Dashboard",
        "widgets": 7,
        "events_found": 2,
    }
    status, dashboard = await call(owner, "GET", f"/v1/dashboards/{dashboard_id}")
    assert status == 200
    assert (dashboard["name"], dashboard["description"]) == (
        "Auto-generated Dashboard",
        "Generated from 2 discovered event type(s).",
    )
    assert (dashboard["is_published"], dashboard["published"]) == (False, None)
    assert dashboard["widgets"] == AUTO_WIDGETS
    assert overlaps(dashboard["widgets"]) == []
    rows = await AuditLog.filter(resource_id=dashboard_id).values_list("action", "metadata")
    assert rows == [("dashboard.create", {"name": "Auto-generated Dashboard"})]
    # Every widget evaluates: the p95 series has the latencies of the six calls' hours.
    for widget in dashboard["widgets"]:
        preview = await owner.post("/v1/widgets/preview/data", json={"widget": widget})
        assert preview.status == 200, (widget["id"], await preview.text())
    p95 = await owner.post("/v1/widgets/preview/data", json={"widget": AUTO_WIDGETS[-1]})
    assert sorted(p["value"] for p in (await p95.json())["data"])[-1] == 600.0
    by_model = await owner.post("/v1/widgets/preview/data", json={"widget": AUTO_WIDGETS[4]})
    assert [(p["group"], p["value"]) for p in (await by_model.json())["data"]] == [
        ("claude", 3),
        ("gpt-4o", 3),
    ]


async def test_auto_create_over_graphql_equals_rest(make_client: ClientFactory) -> None:
    owner, key = await owner_and_key(make_client)
    await send_events(owner, key, recent_calls(datetime.now(UTC)))
    body = await gql(
        owner, "mutation { autoCreateDashboard { dashboardId name widgets eventsFound } }"
    )
    created = body["data"]["autoCreateDashboard"]
    assert (created["name"], created["widgets"], created["eventsFound"]) == (
        "Auto-generated Dashboard",
        7,
        2,
    )
    stored = await Dashboard.get(id=created["dashboardId"])
    assert stored.draft == {"widgets": AUTO_WIDGETS}
    viewer, _ = await join_as(owner, make_client, "viewer")
    denied = await gql(viewer, "mutation { autoCreateDashboard { dashboardId } }")
    assert denied["data"] is None
    assert [e["extensions"] for e in denied["errors"]] == [
        {"code": "FORBIDDEN", "reason": "insufficient_role"}
    ]
    assert await Dashboard.all().count() == 1


async def test_auto_create_without_events_is_400_no_events(make_client: ClientFactory) -> None:
    owner, _ = await owner_and_key(make_client)
    assert await call(owner, "POST", "/v1/discover/auto-create") == (400, NO_EVENTS)
    # Events of another org or another environment are not this environment's.
    await with_neighbours(make_client, owner)
    assert await call(owner, "POST", "/v1/discover/auto-create") == (400, NO_EVENTS)
    viewer, _ = await join_as(owner, make_client, "viewer")
    assert await call(viewer, "POST", "/v1/discover/auto-create") == (
        403,
        {"error": "this action requires the editor role", "code": "insufficient_role"},
    )
    denied = await gql(owner, "mutation { autoCreateDashboard { dashboardId } }")
    assert [(e["message"], e["extensions"]) for e in denied["errors"]] == [
        (NO_EVENTS["error"], {"code": "BAD_REQUEST", "reason": "no_events"})
    ]
    assert await Dashboard.all().count() == 0
    assert await AuditLog.filter(action="dashboard.create").count() == 0


# --- the widget plan on its own -----------------------------------------------------------------

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def discovered(
    name: str,
    count: int,
    age: timedelta,
    strings: tuple[tuple[str, int, int], ...] = (),
    numbers: tuple[tuple[str, int], ...] = (),
    users: int = 0,
) -> DiscoveredEvent:
    return DiscoveredEvent(
        event_name=name,
        count=count,
        unique_users=users,
        first_seen=NOW - age,
        last_seen=NOW,
        string_props=[
            StringProperty(key, n, distinct, [TopValue("v", n)]) for key, n, distinct in strings
        ],
        numeric_props=[NumericProperty(key, n, 0.0, 1.0, 2.0) for key, n in numbers],
    )


def test_the_period_follows_the_age_of_the_main_event() -> None:
    for age, period, granularity in (
        (timedelta(hours=24), "24h", "hour"),
        (timedelta(hours=24, seconds=1), "7d", "day"),
        (timedelta(days=7), "7d", "day"),
        (timedelta(days=8), "30d", "day"),
        (timedelta(days=400), "30d", "day"),
    ):
        widgets = widgets_json(plan_widgets([discovered("e", 1, age)], NOW))
        assert {(w["query"]["period"], w["query"]["granularity"]) for w in widgets} == {
            (period, granularity)
        }
        assert widgets[1]["title"] == f"e per {granularity}"


def test_many_events_dimensions_and_odd_keys() -> None:
    events = [
        discovered(
            "api.call",
            100,
            timedelta(days=3),
            strings=(  # as discovery orders them: most common first, ties by key
                ("region", 100, 9),  # not a rollup dimension
                ("status", 100, 1),  # one value: no breakdown
                ("plan", 90, 2),
                ("source", 90, 3),
                ("model", 80, 4),
                ("endpoint", 70, 5),  # a fourth dimension: at most three breakdowns
            ),
            numbers=(("cost usd", 100), ("tokens", 100), ("duration", 50)),
        ),
        *[discovered(f"e{i}", 50 - i, timedelta(days=1)) for i in range(11)],
        discovered("api_call", 1, timedelta(days=1)),
    ]
    planned = plan_widgets(events, NOW)
    assert [type(w) for w in planned] == [
        MetricWidget,
        *[TimeseriesWidget] * 10,
        *[BreakdownWidget] * 3,
        TimeseriesWidget,
    ]
    widgets = widgets_json(planned)
    assert widgets_json(decode_widgets(widgets)) == widgets
    assert overlaps(widgets) == []
    ids = [w["id"] for w in widgets]
    assert ids == [
        "total_api_call",  # no users: no unique-users metric
        "count_api_call",
        *[f"count_e{i}" for i in range(9)],  # ten event charts at most
        "api_call_by_plan",
        "api_call_by_source",
        "api_call_by_model",
        "p95_api_call_duration",  # latency-like beats more common keys
    ]
    assert widgets[0]["layout"] == {"x": 0, "y": 0, "w": 12, "h": 2}
    assert [w["layout"] for w in widgets[-2:]] == [
        {"x": 0, "y": 2 + 6 * 4, "w": 6, "h": 4},
        {"x": 6, "y": 2 + 6 * 4, "w": 6, "h": 4},
    ]


def test_colliding_ids_get_a_suffix_and_unusable_keys_are_left_out() -> None:
    events = [
        discovered("a.b", 3, timedelta(hours=1), numbers=(("bad key", 3),)),
        discovered("a_b", 2, timedelta(hours=1)),
        discovered("x" * 200 + " way too long", 1, timedelta(hours=1)),
    ]
    planned = plan_widgets(events, NOW)
    assert [type(w) for w in planned] == [MetricWidget, TimeseriesWidget, TimeseriesWidget]
    widgets = widgets_json(planned)
    assert [w["id"] for w in widgets] == ["total_a_b", "count_a_b", "count_a_b_2"]
    assert widgets_json(decode_widgets(widgets)) == widgets
    assert [w["layout"] for w in widgets] == [
        {"x": 0, "y": 0, "w": 12, "h": 2},
        {"x": 0, "y": 2, "w": 6, "h": 4},
        {"x": 6, "y": 2, "w": 6, "h": 4},
    ]


def test_an_event_name_that_a_config_cannot_store_is_left_out() -> None:
    """Events may hold NUL (ClickHouse stores it), dashboard configs may not: the chart of such
    an event is left out, not the whole dashboard refused."""
    events = [
        discovered("ok", 3, timedelta(hours=1)),
        discovered("bad\x00name", 2, timedelta(hours=1)),
        discovered("fine", 1, timedelta(hours=1)),
    ]
    widgets = widgets_json(plan_widgets(events, NOW))
    assert [(w["id"], w["query"]["event_name"]) for w in widgets] == [
        ("total_ok", "ok"),
        ("count_ok", "ok"),
        ("count_fine", "fine"),
    ]
