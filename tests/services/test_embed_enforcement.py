"""What an embed token reads, through the runtime's GraphQL API (``embed { dashboard,
widgetData }``), with tokens minted over REST: every permission allowed and denied, the filters,
tenant and org isolation, unpublished and hidden widgets.

The events (relative to now) of tenant ``acme`` in org Acme:

    a1  10 min ago  model gpt-4   plan pro   endpoint /chat   tokens 100
    a2  20 min ago  model gpt-4   plan free  endpoint /chat   tokens 300
    a3   2 h ago    model claude  plan pro   endpoint /embed  tokens  50
    a4   3 d ago    model claude  plan pro   endpoint /chat   tokens 700
    a5  20 d ago    model gpt-4   plan pro   endpoint /chat   tokens  10

Tenant ``globex`` of the same org has 7 calls 15 min ago, and tenant ``acme`` of another org 11:
no answer below may ever include them. Counts per period for acme: 1h 2, 24h 3, 7d 4, 30d 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emban.auth.embed_tokens import mint_embed_token
from emban.errors import BadRequest
from emban.models import Environment
from emban.services.embeds import EmbedFilters, parse_embed_filters
from tests.conftest import Client, ClientFactory, bearer, create_key
from tests.embed_scenario import EmbedOrg, embed_org, mint, set_plan
from tests.gql_client import data_of, error_of


def _widget(widget_id: str, kind: str, viz: str, x: int, **query: Any) -> dict[str, Any]:
    return {
        "id": widget_id,
        "kind": kind,
        "title": widget_id.replace("_", " ").title(),
        "query": {"event_name": "api.call", "metric": "count", "period": "24h", **query},
        "viz": {"type": viz},
        "layout": {"x": x, "y": 0, "w": 2, "h": 2},
    }


WIDGETS = [
    _widget("total", "metric", "number", 0),
    _widget("monthly", "metric", "number", 2, period="30d"),
    _widget("by_model", "breakdown", "bar", 4, group_by="model"),
    _widget("by_endpoint", "breakdown", "bar", 6, group_by="endpoint"),
    _widget("calls", "timeseries", "line", 8),
    _widget("internal", "metric", "number", 10, period="7d"),
    # The visible widget that measures ``tokens``, which is what makes ``numericRanges.tokens``
    # allowed to every session below (see test_embed_permission_matrix.py for the rule).
    {
        **_widget("tokens_used", "metric", "number", 0, metric="sum", numeric_prop="tokens"),
        "layout": {"x": 0, "y": 3, "w": 2, "h": 2},
    },
    {
        "id": "notes",
        "kind": "text",
        "title": "Notes",
        "text": "Numbers are **per workspace**.",
        "layout": {"x": 0, "y": 2, "w": 12, "h": 1},
    },
]

DASHBOARD = "{ embed { dashboard { id name widgets { id kind title viz layout text } } } }"
WIDGET_DATA = """
query Data($widgetId: ID!, $filters: EmbedFiltersInput, $drill: DrillInput) {
  embed {
    widgetData(widgetId: $widgetId, filters: $filters, drill: $drill) {
      data { bucket value group }
      meta { period granularity groupBy plannedBy sourceTable }
    }
  }
}
"""


@dataclass
class World:
    acme: EmbedOrg
    other: EmbedOrg  # another org, with its own tenant "acme"
    client: Client  # a browser: no cookie, only the embed token


def _event(tenant: str, ago: timedelta, model: str, plan: str, endpoint: str, tokens: float) -> Any:
    return {
        "tenant_id": tenant,
        "event_name": "api.call",
        "timestamp": (datetime.now(UTC) - ago).isoformat(),
        "string_props": {"model": model, "plan": plan, "endpoint": endpoint},
        "numeric_props": {"tokens": tokens},
    }


ACME_EVENTS = [
    _event("acme", timedelta(minutes=10), "gpt-4", "pro", "/chat", 100),
    _event("acme", timedelta(minutes=20), "gpt-4", "free", "/chat", 300),
    _event("acme", timedelta(hours=2), "claude", "pro", "/embed", 50),
    _event("acme", timedelta(days=3), "claude", "pro", "/chat", 700),
    _event("acme", timedelta(days=20), "gpt-4", "pro", "/chat", 10),
]


async def _send(client: Client, events: list[dict[str, Any]]) -> None:
    key = await create_key(client, "ingest")
    response = await client.post("/v1/events", json={"events": events}, headers=bearer(key))
    assert response.status == 200, await response.text()


@pytest.fixture
async def world(make_client: ClientFactory) -> World:
    acme = await embed_org(make_client, widgets=WIDGETS)
    other = await embed_org(
        make_client, email="owner@other.test", org_name="Other", widgets=WIDGETS
    )
    globex = _event("globex", timedelta(minutes=15), "gpt-4", "pro", "/chat", 1000)
    await _send(acme.client, [*ACME_EVENTS, *[globex] * 7])
    await _send(
        other.client, [_event("acme", timedelta(minutes=15), "gpt-4", "pro", "/chat", 1)] * 11
    )
    await set_plan(acme.org_id, "starter")  # advanced permissions allowed
    return World(acme, other, await make_client())


async def token_for(world: World, tenant: str = "acme", **permissions: Any) -> str:
    return await mint(world.acme.client, world.acme.dashboard_id, tenant, permissions=permissions)


async def result(
    world: World,
    token: str,
    widget: str,
    filters: dict[str, Any] | None = None,
    drill: dict[str, str] | None = None,
) -> dict[str, Any]:
    variables = {"widgetId": widget, "filters": filters, "drill": drill}
    data = await data_of(world.client, WIDGET_DATA, variables, headers=bearer(token))
    found: dict[str, Any] = data["embed"]["widgetData"]
    return found


async def values(
    world: World,
    token: str,
    widget: str,
    filters: dict[str, Any] | None = None,
    drill: dict[str, str] | None = None,
) -> list[tuple[str | None, float]]:
    found = await result(world, token, widget, filters, drill)
    return [(p["group"], p["value"]) for p in found["data"]]


async def total(
    world: World,
    token: str,
    filters: dict[str, Any] | None = None,
    *,
    widget: str = "total",
    drill: dict[str, str] | None = None,
) -> float:
    """A metric widget's current value (its second point is the previous period's)."""
    points = await values(world, token, widget, filters, drill)
    assert [group for group, _ in points] == ["current", "previous"]
    return points[0][1]


async def refusal(
    world: World,
    token: str,
    widget: str,
    filters: dict[str, Any] | None = None,
    drill: dict[str, str] | None = None,
) -> dict[str, Any]:
    variables = {"widgetId": widget, "filters": filters, "drill": drill}
    error = await error_of(world.client, WIDGET_DATA, variables, headers=bearer(token))
    extensions: dict[str, Any] = error["extensions"]
    return {"message": error["message"], **extensions}


def forbidden(message: str, field: str, reason: str = "embed_filter_forbidden") -> dict[str, Any]:
    return {"message": message, "code": "FORBIDDEN", "reason": reason, "field": field}


# --- the dashboard ------------------------------------------------------------------------------


async def test_dashboard_is_the_published_snapshot(world: World) -> None:
    token = await token_for(world)
    data = await data_of(world.client, DASHBOARD, headers=bearer(token))
    dashboard = data["embed"]["dashboard"]
    assert dashboard["id"] == world.acme.dashboard_id
    assert dashboard["name"] == "Usage"
    assert [w["id"] for w in dashboard["widgets"]] == [w["id"] for w in WIDGETS]
    assert dashboard["widgets"][0] == {
        "id": "total",
        "kind": "metric",
        "title": "Total",
        "viz": {"type": "number"},
        "layout": {"x": 0, "y": 0, "w": 2, "h": 2},
        "text": None,
    }
    assert dashboard["widgets"][-1]["text"] == "Numbers are **per workspace**."
    # The draft changes; the embed keeps the published snapshot until the next publish.
    client = world.acme.client
    renamed = await client.patch(
        f"/v1/dashboards/{world.acme.dashboard_id}", json={"name": "Draft name", "widgets": []}
    )
    assert renamed.status == 200
    data = await data_of(world.client, DASHBOARD, headers=bearer(token))
    assert (data["embed"]["dashboard"]["name"], len(data["embed"]["dashboard"]["widgets"])) == (
        "Usage",
        len(WIDGETS),
    )


async def test_unpublished_or_deleted_dashboard_is_not_published(world: World) -> None:
    token = await token_for(world)
    path = f"/v1/dashboards/{world.acme.dashboard_id}"
    not_published = {
        "message": "this dashboard is not published",
        "code": "NOT_FOUND",
        "reason": "dashboard_not_published",
    }
    assert (await world.acme.client.post(f"{path}/unpublish")).status == 204
    for query in (DASHBOARD, WIDGET_DATA):
        error = await error_of(world.client, query, {"widgetId": "total"}, headers=bearer(token))
        assert {"message": error["message"], **error["extensions"]} == not_published
    assert (await world.acme.client.post(f"{path}/publish")).status == 204
    assert await total(world, token) == 3
    assert (await world.acme.client.delete(path)).status == 204
    error = await error_of(world.client, DASHBOARD, headers=bearer(token))
    assert {"message": error["message"], **error["extensions"]} == not_published


async def test_metric_widget_has_current_and_previous(world: World) -> None:
    token = await token_for(world)
    assert await values(world, token, "total") == [("current", 3), ("previous", 0)]
    assert await values(world, token, "monthly") == [("current", 5), ("previous", 0)]


async def test_text_widget_has_an_empty_result(world: World) -> None:
    token = await token_for(world)
    assert await result(world, token, "notes") == {
        "data": [],
        "meta": {
            "period": "",
            "granularity": "",
            "groupBy": None,
            "plannedBy": "none",
            "sourceTable": "",
        },
    }


async def test_unknown_widget_is_404(world: World) -> None:
    token = await token_for(world)
    assert await refusal(world, token, "nope") == {
        "message": "widget not found in this dashboard",
        "code": "NOT_FOUND",
        "reason": "widget_not_found",
    }


async def test_embed_needs_an_embed_token(world: World) -> None:
    error = await error_of(world.acme.client, DASHBOARD)  # the owner's console session
    assert error["extensions"] == {"code": "FORBIDDEN", "reason": "embed_token_required"}
    error = await error_of(world.client, DASHBOARD)
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "unauthenticated"}


# --- filters --------------------------------------------------------------------------------


async def test_period_dimension_numeric_and_date_filters(world: World) -> None:
    token = await token_for(world)
    now = datetime.now(UTC)
    assert await total(world, token, {"period": "1h"}) == 2
    assert await total(world, token, {"period": "7d"}) == 4
    assert await total(world, token, {"period": "90d"}) == 5
    assert await total(world, token, {"dimensions": {"model": "gpt-4"}}) == 2
    assert await total(world, token, {"dimensions": {"model": "gpt-4", "plan": "pro"}}) == 1
    assert await total(world, token, {"dimensions": {"model": None}}) == 3  # null clears
    ranged = {"numericRanges": {"tokens": {"min": 60, "max": 300}}}
    assert await total(world, token, ranged) == 2
    assert await total(world, token, {"numericRanges": {"tokens": {"min": 300}}}) == 1
    assert await total(world, token, {"numericRanges": {"tokens": {"max": 50}}}) == 1
    window = {
        "timestamp": {
            "from": (now - timedelta(days=4)).isoformat(),
            "to": (now - timedelta(hours=1)).isoformat(),
        }
    }
    assert await values(world, token, "total", {"dateRanges": window}) == [
        ("current", 2),
        ("previous", 0),
    ]
    assert await total(world, token, {"dateRanges": window, "period": "1h"}) == 2
    by_model = await values(world, token, "by_model", {"period": "30d"})
    assert [(g, v) for g, v in by_model] == [("claude", 2), ("gpt-4", 3)]


async def test_a_changed_window_keeps_a_sensible_granularity(world: World) -> None:
    token = await token_for(world)
    own = await result(world, token, "calls")
    assert (own["meta"]["period"], own["meta"]["granularity"], len(own["data"])) == (
        "24h",
        "hour",
        25,
    )
    week = await result(world, token, "calls", {"period": "7d"})
    assert (week["meta"]["granularity"], sum(p["value"] for p in week["data"])) == ("hour", 4)
    quarter = await result(world, token, "calls", {"period": "90d"})  # 2,160 hours: days
    assert (quarter["meta"]["granularity"], sum(p["value"] for p in quarter["data"])) == ("day", 5)


BAD_FILTERS: list[tuple[dict[str, Any], str, str]] = [
    ({"period": "2d"}, "filters.period", "filters.period must be one of 1h, 24h, 7d, 30d, 90d"),
    (
        {"dimensions": ["model"]},
        "filters.dimensions",
        "filters.dimensions must be an object",
    ),
    (
        {"dimensions": {"model": 4}},
        "filters.dimensions.model",
        "filters.dimensions.model must be a string of at most 200 characters",
    ),
    (
        {"dimensions": {"a b": "x"}},
        "filters.dimensions.a b",
        "filters.dimensions.a b must be a property key of letters, digits and _ . : - / (max 64)",
    ),
    (
        {"numericRanges": {"tokens": {"min": "1"}}},
        "filters.numericRanges.tokens.min",
        "filters.numericRanges.tokens.min must be a number",
    ),
    (
        {"numericRanges": {"tokens": {"min": 5, "max": 1}}},
        "filters.numericRanges.tokens",
        "filters.numericRanges.tokens: min must not be above max",
    ),
    (
        {"numericRanges": {"tokens": {"above": 5}}},
        "filters.numericRanges.tokens.above",
        "filters.numericRanges.tokens.above: use min and max",
    ),
    (
        {"dateRanges": {"inserted_at": {"from": "2026-01-01", "to": "2026-01-02"}}},
        "filters.dateRanges.inserted_at",
        "filters.dateRanges.inserted_at: only timestamp can be ranged",
    ),
    (
        {"dateRanges": {"timestamp": {"from": "yesterday", "to": "2026-01-02"}}},
        "filters.dateRanges.timestamp.from",
        "filters.dateRanges.timestamp.from must be an ISO 8601 date-time",
    ),
    (
        {"dateRanges": {"timestamp": {"from": "2026-01-01"}}},
        "filters.dateRanges.timestamp.to",
        "filters.dateRanges.timestamp.to must be an ISO 8601 date-time",
    ),
    (
        {"dateRanges": {"timestamp": {"from": "2026-01-02", "to": "2026-01-01T00:00:00Z"}}},
        "filters.dateRanges.timestamp",
        "filters.dateRanges.timestamp: from must be before to",
    ),
    (
        {"dateRanges": {"timestamp": {"from": "2000-01-01", "to": "2026-01-01"}}},
        "filters.dateRanges.timestamp",
        "filters.dateRanges.timestamp: at most 3650 days",
    ),
]


async def test_bad_filters_are_400_naming_the_field(world: World) -> None:
    token = await token_for(world)
    for filters, field, message in BAD_FILTERS:
        assert await refusal(world, token, "total", filters) == {
            "message": message,
            "code": "BAD_REQUEST",
            "reason": "invalid_field",
            "field": field,
        }, filters


# --- permissions: each allowed and denied ---------------------------------------------------


async def test_locked_filters_are_anded_and_never_overridable(world: World) -> None:
    token = await token_for(world, locked_filters={"plan": "pro"})
    assert await total(world, token) == 2  # a1 and a3
    assert await total(world, token, {"dimensions": {"plan": "pro"}}) == 2  # the same value
    assert await total(world, token, {"dimensions": {"model": "gpt-4"}}) == 1
    assert await total(world, token, {"period": "30d"}) == 4
    assert await values(world, token, "by_model") == [("claude", 1), ("gpt-4", 1)]
    assert await refusal(world, token, "total", {"dimensions": {"plan": "free"}}) == forbidden(
        "plan is locked to 'pro' in this embed", "filters.dimensions.plan"
    )
    drilling = await token_for(world, locked_filters={"plan": "pro"}, allow_drill_down=True)
    assert await total(world, drilling, drill={"dimension": "plan", "value": "pro"}) == 2
    assert await refusal(
        world, drilling, "total", drill={"dimension": "plan", "value": "free"}
    ) == forbidden("plan is locked to 'pro' in this embed", "drill.dimension")


async def test_hidden_widgets_are_never_sent(world: World) -> None:
    token = await token_for(world, hidden_widgets=["internal", "notes"])
    data = await data_of(world.client, DASHBOARD, headers=bearer(token))
    assert [w["id"] for w in data["embed"]["dashboard"]["widgets"]] == [
        "total",
        "monthly",
        "by_model",
        "by_endpoint",
        "calls",
        "tokens_used",
    ]
    for hidden in ("internal", "notes"):
        assert (await refusal(world, token, hidden))["reason"] == "widget_not_found"
    assert await total(world, token) == 3
    visible = await token_for(world)
    assert await total(world, visible, widget="internal") == 4


async def test_allowed_dimensions_bound_filters_group_by_and_drill(world: World) -> None:
    token = await token_for(world, allowed_dimensions=["model"], allow_drill_down=True)
    assert await total(world, token, {"dimensions": {"model": "gpt-4"}}) == 2
    assert await values(world, token, "by_model") == [("claude", 1), ("gpt-4", 2)]
    assert await total(world, token, drill={"dimension": "model", "value": "claude"}) == 1
    assert await refusal(world, token, "total", {"dimensions": {"endpoint": "/chat"}}) == forbidden(
        "filtering by endpoint is not allowed in this embed", "filters.dimensions.endpoint"
    )
    assert await refusal(world, token, "by_endpoint") == forbidden(
        "this widget groups by endpoint, not allowed in this embed", "group_by"
    )
    assert await refusal(
        world, token, "total", drill={"dimension": "endpoint", "value": "/chat"}
    ) == forbidden("filtering by endpoint is not allowed in this embed", "drill.dimension")
    unrestricted = await token_for(world)
    assert await values(world, unrestricted, "by_endpoint") == [("/chat", 2), ("/embed", 1)]


async def test_allowed_periods_bound_the_period(world: World) -> None:
    token = await token_for(world, allowed_periods=["24h", "7d"])
    assert await total(world, token, {"period": "7d"}) == 4
    assert await refusal(world, token, "total", {"period": "30d"}) == forbidden(
        "period 30d is not allowed in this embed", "filters.period"
    )
    # A widget whose own period is not allowed shows the first allowed one.
    monthly = await result(world, token, "monthly")
    assert (monthly["meta"]["period"], monthly["data"][0]["value"]) == ("24h", 3)
    unrestricted = await token_for(world)
    assert await total(world, unrestricted, {"period": "30d"}) == 5


async def test_max_date_range_days_bounds_periods_and_date_ranges(world: World) -> None:
    token = await token_for(world, max_date_range_days=7)
    now = datetime.now(UTC)

    def days(n: float) -> dict[str, Any]:
        start = now - timedelta(days=n)
        return {"timestamp": {"from": start.isoformat(), "to": now.isoformat()}}

    assert await total(world, token, {"period": "7d"}) == 4
    assert await total(world, token, {"dateRanges": days(7)}) == 4
    assert await refusal(world, token, "total", {"period": "30d"}) == forbidden(
        "period 30d is not allowed in this embed", "filters.period"
    )
    assert await refusal(world, token, "total", {"dateRanges": days(7.01)}) == forbidden(
        "date ranges longer than 7 days are not allowed in this embed",
        "filters.dateRanges.timestamp",
    )
    # A widget whose own period is longer shows the longest period that fits.
    monthly = await result(world, token, "monthly")
    assert (monthly["meta"]["period"], monthly["data"][0]["value"]) == ("7d", 4)
    unrestricted = await token_for(world)
    assert await total(world, unrestricted, {"dateRanges": days(30)}) == 5


async def test_drill_down_needs_allow_drill_down(world: World) -> None:
    drill = {"dimension": "model", "value": "claude"}
    token = await token_for(world)
    assert await refusal(world, token, "total", drill=drill) == forbidden(
        "drill-down is not allowed in this embed", "drill", "embed_drill_forbidden"
    )
    allowed = await token_for(world, allow_drill_down=True)
    assert await total(world, allowed, drill=drill) == 1
    assert await values(world, allowed, "by_model", drill=drill) == [("claude", 1)]


# --- isolation ----------------------------------------------------------------------------------

# (filters, acme's total, globex's total): whatever acme's token sends, globex's 7 calls never
# show up in its numbers (and the other way round).
ATTEMPTS: list[tuple[dict[str, Any], int, int]] = [
    ({}, 3, 7),
    ({"period": "90d"}, 5, 7),
    ({"dimensions": {"tenant_id": "globex"}}, 0, 0),  # a string property: no event has one
    ({"dimensions": {"tenant": "globex"}}, 0, 0),
    ({"dimensions": {"model": "gpt-4"}}, 2, 7),
    ({"numericRanges": {"tokens": {"min": 999}}}, 0, 7),
    (
        {"dateRanges": {"timestamp": {"from": "2021-01-01T00:00:00Z", "to": "2030-01-01T00:00Z"}}},
        5,
        7,
    ),
]


async def test_a_tenant_never_sees_another_tenants_numbers(world: World) -> None:
    acme = await token_for(world)
    globex = await token_for(world, "globex")
    for filters, acme_total, globex_total in ATTEMPTS:
        assert (await total(world, acme, filters), await total(world, globex, filters)) == (
            acme_total,
            globex_total,
        ), filters
        breakdown = await values(world, acme, "by_model", filters)
        assert sum(value for _, value in breakdown) == acme_total, filters


async def test_a_token_reads_only_its_own_org(world: World) -> None:
    # The other org's token for its tenant "acme" sees its own 11 calls, not Acme's 3.
    other_token = await mint(world.other.client, world.other.dashboard_id, "acme")
    assert await total(world, other_token) == 11
    assert await total(world, await token_for(world)) == 3
    # A token signed by Acme's environment naming the other org's dashboard loads nothing.
    environment = await Environment.get(id=world.acme.environment_id)
    crafted = mint_embed_token(
        environment,
        tenant_id="acme",
        dashboard_id=world.other.dashboard_id,
        permissions={},
        expires_in=600,
    ).token
    error = await error_of(world.client, DASHBOARD, headers=bearer(crafted))
    assert error["extensions"]["reason"] == "dashboard_not_published"
    assert (await refusal(world, crafted, "total"))["reason"] == "dashboard_not_published"


def test_the_filters_payload_decodes_into_canonical_filters() -> None:
    parsed = parse_embed_filters(
        {
            "period": "7d",
            "dimensions": {"region": "eu", "model": "gpt-4", "plan": None},
            "numericRanges": {"tokens": {"min": 1, "max": 9.5}, "cost": {"max": 2}, "x": None},
            "dateRanges": {"timestamp": {"from": "2026-01-01", "to": "2026-01-02T12:00:00+02:00"}},
        }
    )
    assert parsed == EmbedFilters(
        period="7d",
        dimensions=(("model", "gpt-4"), ("region", "eu")),
        numeric_ranges=(("cost", None, 2.0), ("tokens", 1.0, 9.5)),
        date_range=(
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 2, 10, tzinfo=UTC),
        ),
    )
    assert parse_embed_filters(None) == EmbedFilters()
    with pytest.raises(BadRequest) as raised:
        parse_embed_filters({"numericRanges": {"tokens": {"min": True}}})
    assert raised.value.extra == {"field": "filters.numericRanges.tokens.min"}
