"""Every permission x every way a viewer narrows or widens data (the table in
docs/embedding-api.md, "Permission x filter path"): one test per cell, each with what is allowed
(exact values) and what is refused (exact code, message and field), through GraphQL
``embed { widgetData }``; the numeric-range, date-range and dimension paths (and a lock) also
through ``embedLive``.

Tenant ``acme``'s events (relative to now), all ``api.call``, with their string properties
(model, region, segment) and numeric ones (latency_ms, revenue, tokens):

    e1  10 min ago  gpt-4   eu  enterprise  120   30  1000
    e2  30 min ago  claude  us  smb         480    5   200
    e3   3 h ago    gpt-4   us  smb          60   12    50
    e4   3 d ago    gpt-4   eu  enterprise  900  100   700
    e5  40 d ago    claude  eu  smb         300    7    10

Tenant ``globex`` has 4 events 15 min ago (gpt-4, eu, enterprise, latency_ms 1, revenue 1000,
tokens 1): no answer below may include them. acme's counts: 1h 2, 24h 3, 7d 4, 30d 4, 90d 5.

The dashboard (all 24h): ``calls`` (count), ``latency`` (avg latency_ms), ``by_model`` and
``by_region`` (breakdowns), ``revenue`` (sum revenue) and ``enterprise`` (count where segment =
enterprise), which the HIDE sessions hide, and a text widget. ``tokens`` is measured by no widget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from emban.errors import Forbidden
from emban.services import embeds
from emban.services.widget_config import decode_widgets
from tests.conftest import Client, ClientFactory, bearer
from tests.embed_scenario import embed_org, mint, set_plan
from tests.gql_client import gql
from tests.live_client import close, initial, open_live
from tests.services.test_embed_enforcement import _send


def _widget(widget_id: str, kind: str, viz: str, y: int, **query: Any) -> dict[str, Any]:
    return {
        "id": widget_id,
        "kind": kind,
        "title": widget_id.title(),
        "query": {"event_name": "api.call", "metric": "count", "period": "24h", **query},
        "viz": {"type": viz},
        "layout": {"x": 0, "y": y, "w": 6, "h": 2},
    }


WIDGETS: list[dict[str, Any]] = [
    _widget("calls", "metric", "number", 0),
    _widget("latency", "metric", "number", 2, metric="avg", numeric_prop="latency_ms"),
    _widget("by_model", "breakdown", "bar", 4, group_by="model"),
    _widget("by_region", "breakdown", "bar", 6, group_by="region"),
    _widget("revenue", "metric", "number", 8, metric="sum", numeric_prop="revenue"),
    _widget("enterprise", "metric", "number", 10, filters={"segment": "enterprise"}),
    {
        "id": "notes",
        "kind": "text",
        "title": "Notes",
        "text": "Per workspace.",
        "layout": {"x": 0, "y": 12, "w": 12, "h": 1},
    },
]
HIDE = {"hidden_widgets": ["revenue", "enterprise"]}


def _event(
    tenant: str, ago: timedelta, model: str, region: str, segment: str, **nums: float
) -> Any:
    return {
        "tenant_id": tenant,
        "event_name": "api.call",
        "timestamp": (datetime.now(UTC) - ago).isoformat(),
        "string_props": {"model": model, "region": region, "segment": segment},
        "numeric_props": nums,
    }


def _events() -> list[dict[str, Any]]:
    minutes, hours, days = (
        (lambda n: timedelta(minutes=n)),
        (lambda n: timedelta(hours=n)),
        (lambda n: timedelta(days=n)),
    )
    return [
        _event(
            "acme",
            minutes(10),
            "gpt-4",
            "eu",
            "enterprise",
            latency_ms=120,
            revenue=30,
            tokens=1000,
        ),
        _event("acme", minutes(30), "claude", "us", "smb", latency_ms=480, revenue=5, tokens=200),
        _event("acme", hours(3), "gpt-4", "us", "smb", latency_ms=60, revenue=12, tokens=50),
        _event(
            "acme", days(3), "gpt-4", "eu", "enterprise", latency_ms=900, revenue=100, tokens=700
        ),
        _event("acme", days(40), "claude", "eu", "smb", latency_ms=300, revenue=7, tokens=10),
        *[
            _event(
                "globex",
                minutes(15),
                "gpt-4",
                "eu",
                "enterprise",
                latency_ms=1,
                revenue=1000,
                tokens=1,
            )
            for _ in range(4)
        ],
    ]


@dataclass
class World:
    owner: Client
    dashboard_id: str
    browser: Client  # no cookie: only the embed token


@pytest.fixture
async def world(make_client: ClientFactory) -> World:
    org = await embed_org(make_client, widgets=WIDGETS)
    await _send(org.client, _events())
    await set_plan(org.org_id, "starter")  # advanced permissions allowed
    return World(org.client, org.dashboard_id, await make_client())


WIDGET_DATA = """
query Data($widgetId: ID!, $filters: EmbedFiltersInput, $drill: DrillInput) {
  embed {
    widgetData(widgetId: $widgetId, filters: $filters, drill: $drill) {
      data { value group }
    }
  }
}
"""


# --- what a check expects ---------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """A refusal: GraphQL ``extensions`` and message, exactly."""

    message: str
    field: str
    reason: str = "embed_filter_forbidden"
    code: str = "FORBIDDEN"

    def body(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "code": self.code,
            "reason": self.reason,
            "field": self.field,
        }


HIDDEN = {
    "message": "widget not found in this dashboard",
    "code": "NOT_FOUND",
    "reason": "widget_not_found",
}
Answer = float | list[tuple[str, float]] | Refused | dict[str, Any]
# Filters may depend on the time the check runs (date ranges): a callable gets "now".
Filters = dict[str, Any] | Callable[[datetime], dict[str, Any]] | None


@dataclass(frozen=True)
class Check:
    widget: str
    filters: Filters
    expected: Answer
    drill: dict[str, str] | None = None


@dataclass(frozen=True)
class Cell:
    permission: str
    path: str
    permissions: dict[str, Any]
    allowed: list[Check]
    denied: list[Check] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.permission}-{self.path}"


def window(start_ago: timedelta, end_ago: timedelta) -> Callable[[datetime], dict[str, Any]]:
    """``dateRanges`` from ``now - start_ago`` to ``now - end_ago`` (negative: the future)."""

    def at(now: datetime) -> dict[str, Any]:
        return {
            "dateRanges": {
                "timestamp": {
                    "from": (now - start_ago).isoformat(),
                    "to": (now - end_ago).isoformat(),
                }
            }
        }

    return at


H, D, M = timedelta(hours=1), timedelta(days=1), timedelta(minutes=1)
NOW = timedelta(0)
DRILL = {"allow_drill_down": True}


def dims(**values: str) -> dict[str, Any]:
    return {"dimensions": values}


def ranged(prop: str, low: float | None = None, high: float | None = None) -> dict[str, Any]:
    bounds = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
    return {"numericRanges": {prop: bounds}}


def drill(dimension: str, value: str) -> dict[str, str]:
    return {"dimension": dimension, "value": value}


def no_dim(key: str, name: str = "") -> Refused:
    return Refused(
        f"filtering by {key} is not allowed in this embed", name or f"filters.dimensions.{key}"
    )


def no_range(key: str) -> Refused:
    return Refused(
        f"numeric ranges on {key} are not allowed in this embed", f"filters.numericRanges.{key}"
    )


def outside(words: str, end: str) -> Refused:
    return Refused(
        f"date ranges must lie within {words} in this embed", f"filters.dateRanges.timestamp.{end}"
    )


LAST_24H = "the last 24h (the longest allowed period)"
PERIODS_1H_24H = {"allowed_periods": ["1h", "24h"]}
MAX_7 = {"max_date_range_days": 7}
BY_MODEL_24H = [("claude", 1.0), ("gpt-4", 2.0)]

# --- the table ----------------------------------------------------------------------------------

CELLS: list[Cell] = [
    # tenant scoping: every path reads the token's tenant only; nothing names another tenant.
    Cell("tenant", "period", {}, [Check("calls", {"period": "90d"}, 5)]),
    Cell(
        "tenant",
        "dimensions",
        {},
        [Check("calls", dims(model="gpt-4"), 2)],
        [Check("calls", dims(tenant_id="globex"), 0), Check("calls", dims(tenant="globex"), 0)],
    ),
    Cell("tenant", "numericRanges", {}, [Check("calls", ranged("latency_ms", 0), 3)]),
    Cell("tenant", "dateRanges", {}, [Check("calls", window(100 * D, NOW), 5)]),
    Cell("tenant", "drill", DRILL, [Check("calls", None, 2, drill("model", "gpt-4"))]),
    Cell("tenant", "group_by", {}, [Check("by_model", None, BY_MODEL_24H)]),
    # locked_filters: ANDed on every path; another value is refused wherever it is named.
    Cell(
        "locked_filters",
        "period",
        {"locked_filters": {"region": "eu"}},
        [Check("calls", {"period": "7d"}, 2), Check("calls", {"period": "90d"}, 3)],
    ),
    Cell(
        "locked_filters",
        "dimensions",
        {"locked_filters": {"region": "eu"}},
        [Check("calls", dims(region="eu"), 1), Check("calls", dims(model="claude"), 0)],
        [
            Check(
                "calls",
                dims(region="us"),
                Refused("region is locked to 'eu' in this embed", "filters.dimensions.region"),
            )
        ],
    ),
    Cell(
        "locked_filters",
        "numericRanges",
        {"locked_filters": {"region": "eu"}},
        [
            Check("calls", ranged("latency_ms", 0), 1),
            Check("latency", ranged("latency_ms", 0), 120),
        ],
    ),
    Cell(
        "locked_filters",
        "dateRanges",
        {"locked_filters": {"region": "eu"}},
        [Check("calls", window(100 * D, NOW), 3)],
    ),
    Cell(
        "locked_filters",
        "drill",
        {"locked_filters": {"region": "eu"}, **DRILL},
        [Check("calls", None, 1, drill("region", "eu"))],
        [
            Check(
                "calls",
                None,
                Refused("region is locked to 'eu' in this embed", "drill.dimension"),
                drill("region", "us"),
            )
        ],
    ),
    Cell(
        "locked_filters",
        "group_by",
        {"locked_filters": {"region": "eu"}},
        [Check("by_region", None, [("eu", 1.0)]), Check("by_model", None, [("gpt-4", 1.0)])],
    ),
    # hidden_widgets: never listed or read, and nothing only they use becomes measurable.
    Cell(
        "hidden_widgets",
        "widget",
        HIDE,
        [Check("calls", None, 3), Check("latency", None, 220)],
        [Check("revenue", None, HIDDEN), Check("enterprise", None, HIDDEN)],
    ),
    Cell("hidden_widgets", "period", HIDE, [Check("calls", {"period": "7d"}, 4)]),
    Cell(
        "hidden_widgets",
        "dimensions",
        HIDE,
        [Check("calls", dims(model="claude"), 1)],
        # segment is used only by the hidden "enterprise" widget: filtering by it would rebuild it
        [Check("calls", dims(segment="enterprise"), no_dim("segment"))],
    ),
    Cell(
        "hidden_widgets",
        "numericRanges",
        HIDE,
        [Check("calls", ranged("latency_ms", high=200), 2)],
        # defect 2: bisecting revenue on a visible count widget recovers the hidden sum
        [
            Check("calls", ranged("revenue", 20), no_range("revenue")),
            Check("calls", ranged("revenue", 0, 10), no_range("revenue")),
            Check("by_model", ranged("revenue", 20), no_range("revenue")),
            Check("notes", ranged("revenue", 20), no_range("revenue")),
        ],
    ),
    Cell(
        "hidden_widgets",
        "numericRanges-explicit",
        {**HIDE, "allowed_dimensions": ["model", "revenue", "segment"]},
        [Check("calls", dims(model="gpt-4"), 2)],
        # hidden wins even over an explicit grant: nothing only a hidden widget uses is measurable
        [
            Check("calls", ranged("revenue", 20), no_range("revenue")),
            Check("calls", dims(segment="smb"), no_dim("segment")),
        ],
    ),
    Cell("hidden_widgets", "dateRanges", HIDE, [Check("calls", window(100 * D, NOW), 5)]),
    Cell(
        "hidden_widgets",
        "drill",
        {**HIDE, **DRILL},
        [Check("calls", None, 1, drill("model", "claude"))],
        [Check("calls", None, no_dim("segment", "drill.dimension"), drill("segment", "smb"))],
    ),
    Cell(
        "hidden_widgets",
        "group_by",
        {"hidden_widgets": ["by_region"]},
        [Check("by_model", None, BY_MODEL_24H)],
        # region is used only by the hidden breakdown now
        [
            Check("by_region", None, HIDDEN),
            Check("calls", dims(region="eu"), no_dim("region")),
        ],
    ),
    # Without hidden widgets the same paths are open (the visible "revenue" widget measures it).
    Cell(
        "no_permissions",
        "numericRanges",
        {},
        [
            Check("calls", ranged("revenue", 20), 1),
            Check("calls", ranged("latency_ms", 100, 500), 2),
            Check("revenue", ranged("revenue", high=10), 5),
        ],
        # tokens is measured by no widget: a range on it would measure a property nobody shows
        [
            Check("calls", ranged("tokens", 100), no_range("tokens")),
            Check("notes", ranged("tokens", 100), no_range("tokens")),
        ],
    ),
    Cell(
        "no_permissions",
        "dimensions",
        {},
        [Check("calls", dims(segment="enterprise"), 1), Check("calls", dims(region="us"), 2)],
    ),
    # allowed_dimensions: bounds dimensions, drill and group_by, and grants numeric ranges.
    Cell(
        "allowed_dimensions",
        "period",
        {"allowed_dimensions": ["model"]},
        [Check("calls", {"period": "7d"}, 4)],
    ),
    Cell(
        "allowed_dimensions",
        "dimensions",
        {"allowed_dimensions": ["model"]},
        [Check("calls", dims(model="gpt-4"), 2)],
        [
            Check("calls", dims(region="eu"), no_dim("region")),
            Check("calls", dims(model="gpt-4", segment="smb"), no_dim("segment")),
        ],
    ),
    Cell(
        "allowed_dimensions",
        "numericRanges",
        {"allowed_dimensions": ["model", "tokens"]},
        [
            Check("calls", ranged("tokens", 100), 2),  # granted explicitly
            Check("calls", ranged("latency_ms", high=100), 1),  # measured by a visible widget
        ],
        [Check("calls", ranged("price", 1), no_range("price"))],
    ),
    Cell(
        "allowed_dimensions",
        "numericRanges-unlisted",
        {"allowed_dimensions": ["model"]},
        [Check("calls", ranged("revenue", 20), 1)],
        [Check("calls", ranged("tokens", 100), no_range("tokens"))],
    ),
    Cell(
        "allowed_dimensions",
        "dateRanges",
        {"allowed_dimensions": ["model"]},
        [Check("calls", window(100 * D, NOW), 5)],
    ),
    Cell(
        "allowed_dimensions",
        "drill",
        {"allowed_dimensions": ["model"], **DRILL},
        [Check("calls", None, 1, drill("model", "claude"))],
        [Check("calls", None, no_dim("region", "drill.dimension"), drill("region", "eu"))],
    ),
    Cell(
        "allowed_dimensions",
        "group_by",
        {"allowed_dimensions": ["model"]},
        [Check("by_model", None, BY_MODEL_24H)],
        [
            Check(
                "by_region",
                None,
                Refused("this widget groups by region, not allowed in this embed", "group_by"),
            )
        ],
    ),
    # allowed_periods: bounds the period and, measured back from now, every date range.
    Cell(
        "allowed_periods",
        "period",
        PERIODS_1H_24H,
        [Check("calls", {"period": "1h"}, 2), Check("calls", {"period": "24h"}, 3)],
        [
            Check(
                "calls",
                {"period": "7d"},
                Refused("period 7d is not allowed in this embed", "filters.period"),
            )
        ],
    ),
    Cell(
        "allowed_periods",
        "dateRanges",
        PERIODS_1H_24H,
        [Check("calls", window(23 * H, NOW), 3), Check("calls", window(2 * H, 20 * M), 1)],
        # defect 3: a session limited to 24h read ten years through dateRanges
        [
            Check("calls", window(3000 * D, NOW), outside(LAST_24H, "from")),
            Check("calls", window(3 * D + H, 3 * D), outside(LAST_24H, "from")),
            Check("calls", window(2 * H, -2 * D), outside(LAST_24H, "to")),
        ],
    ),
    Cell(
        "allowed_periods",
        "dateRanges-longest",
        {"allowed_periods": ["24h", "7d"]},
        [Check("calls", window(6 * D, NOW), 4)],
        [
            Check(
                "calls",
                window(40 * D, 39 * D),
                outside("the last 7d (the longest allowed period)", "from"),
            )
        ],
    ),
    Cell("allowed_periods", "dimensions", PERIODS_1H_24H, [Check("calls", dims(model="gpt-4"), 2)]),
    Cell(
        "allowed_periods",
        "numericRanges",
        PERIODS_1H_24H,
        [Check("calls", ranged("latency_ms", 100), 2)],
    ),
    Cell(
        "allowed_periods",
        "drill",
        {**PERIODS_1H_24H, **DRILL},
        [Check("calls", {"period": "1h"}, 1, drill("model", "gpt-4"))],
        [
            Check(
                "calls",
                {"period": "7d"},
                Refused("period 7d is not allowed in this embed", "filters.period"),
                drill("model", "gpt-4"),
            )
        ],
    ),
    Cell(
        "allowed_periods",
        "group_by",
        {"allowed_periods": ["7d"]},
        [
            Check("by_model", None, [("claude", 1.0), ("gpt-4", 3.0)])  # its own 24h is not allowed
        ],
    ),
    # max_date_range_days: bounds periods, the length of a date range and how far back it starts.
    Cell(
        "max_date_range_days",
        "period",
        MAX_7,
        [Check("calls", {"period": "7d"}, 4)],
        [
            Check(
                "calls",
                {"period": "30d"},
                Refused("period 30d is not allowed in this embed", "filters.period"),
            )
        ],
    ),
    Cell(
        "max_date_range_days",
        "dateRanges",
        MAX_7,
        [Check("calls", window(7 * D - M, NOW), 4), Check("calls", window(4 * D, 2 * D), 1)],
        [
            Check(
                "calls",
                window(8 * D, NOW),
                Refused(
                    "date ranges longer than 7 days are not allowed in this embed",
                    "filters.dateRanges.timestamp",
                ),
            ),
            Check("calls", window(30 * D, 29 * D), outside("the last 7 days", "from")),
            Check("calls", window(H, -2 * D), outside("the last 7 days", "to")),
        ],
    ),
    Cell("max_date_range_days", "dimensions", MAX_7, [Check("calls", dims(model="claude"), 1)]),
    Cell(
        "max_date_range_days",
        "numericRanges",
        MAX_7,
        [Check("calls", ranged("latency_ms", 100), 2)],
    ),
    Cell(
        "max_date_range_days",
        "drill",
        {**MAX_7, **DRILL},
        [Check("calls", window(4 * D, NOW), 3, drill("model", "gpt-4"))],
        [
            Check(
                "calls",
                window(30 * D, 29 * D),
                outside("the last 7 days", "from"),
                drill("model", "gpt-4"),
            )
        ],
    ),
    Cell(
        "max_date_range_days",
        "group_by",
        {"max_date_range_days": 10},
        [Check("by_model", {"period": "7d"}, [("claude", 1.0), ("gpt-4", 3.0)])],
    ),
    # allow_drill_down: gates drill, whatever else the request says.
    Cell(
        "allow_drill_down",
        "drill",
        DRILL,
        [
            Check("calls", None, 1, drill("model", "claude")),
            Check("by_model", None, [("claude", 1.0)], drill("model", "claude")),
        ],
    ),
    Cell(
        "allow_drill_down",
        "drill-off",
        {},
        [Check("calls", dims(model="claude"), 1)],
        [
            Check(
                "calls",
                None,
                Refused(
                    "drill-down is not allowed in this embed", "drill", "embed_drill_forbidden"
                ),
                drill("model", "claude"),
            )
        ],
    ),
]


async def answer(world: World, token: str, check: Check) -> Answer:
    filters = check.filters(datetime.now(UTC)) if callable(check.filters) else check.filters
    variables = {"widgetId": check.widget, "filters": filters, "drill": check.drill}
    body = await gql(world.browser, WIDGET_DATA, variables, headers=bearer(token))
    if "errors" in body:
        assert body["data"] is None and len(body["errors"]) == 1, body
        error = body["errors"][0]
        return {"message": error["message"], **error["extensions"]}
    points = body["data"]["embed"]["widgetData"]["data"]
    return _shape(points)


def _shape(points: list[dict[str, Any]]) -> Answer:
    """A metric widget's current value (an avg/sum of nothing has no previous point), or a
    breakdown's (group, value) pairs."""
    groups = [p["group"] for p in points]
    if groups in (["current", "previous"], ["current"]):
        return float(points[0]["value"])
    return [(p["group"], float(p["value"])) for p in points]


def expected(answer: Answer) -> Answer:
    if isinstance(answer, Refused):
        return answer.body()
    if isinstance(answer, int | float):
        return float(answer)
    return answer


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
async def test_permission_cell(world: World, cell: Cell) -> None:
    token = await mint(world.owner, world.dashboard_id, "acme", permissions=cell.permissions)
    for check in (*cell.allowed, *cell.denied):
        assert await answer(world, token, check) == expected(check.expected), check


def test_every_cell_is_in_the_table() -> None:
    """Each permission has a cell (allowed and denied where it can refuse) on each path."""
    paths = {"period", "dimensions", "numericRanges", "dateRanges", "drill", "group_by"}
    covered: dict[str, set[str]] = {}
    for cell in CELLS:
        covered.setdefault(cell.permission, set()).add(cell.path.split("-")[0])
    for permission in (
        "tenant",
        "locked_filters",
        "hidden_widgets",
        "allowed_dimensions",
        "allowed_periods",
        "max_date_range_days",
    ):
        assert paths <= covered[permission], (permission, paths - covered[permission])
    assert {c.id for c in CELLS if c.denied} >= {
        "locked_filters-dimensions",
        "locked_filters-drill",
        "hidden_widgets-dimensions",
        "hidden_widgets-numericRanges",
        "hidden_widgets-drill",
        "allowed_dimensions-dimensions",
        "allowed_dimensions-numericRanges",
        "allowed_dimensions-drill",
        "allowed_dimensions-group_by",
        "allowed_periods-period",
        "allowed_periods-dateRanges",
        "max_date_range_days-period",
        "max_date_range_days-dateRanges",
        "allow_drill_down-drill-off",
        "no_permissions-numericRanges",
    }


# --- the same cells through embedLive ---------------------------------------------------------


async def live_answer(server: TestServer, token: str, filters: Filters) -> Answer:
    """The subscription's refusal, or the ``calls`` widget's first value."""
    given = filters(datetime.now(UTC)) if callable(filters) else filters
    live = await open_live(server, token, given)
    try:
        message = await live.ws.receive_json(timeout=5)
        assert message["type"] == "next", message
        payload = message["payload"]
        if payload.get("errors"):
            assert payload["data"] is None and len(payload["errors"]) == 1, payload
            assert await live.ws.receive_json(timeout=3) == {"id": "1", "type": "complete"}
            error = payload["errors"][0]
            return {"message": error["message"], **error["extensions"]}
        config = payload["data"]["embedLive"]
        assert config["type"] == "config", config
        pending = {w["id"] for w in config["dashboard"]["widgets"]}
        data: dict[str, Any] = {}
        while pending:
            event = await live.next(within=5)
            assert event["type"] == "data", event
            pending.discard(event["widgetId"])
            data[event["widgetId"]] = event["data"]["data"]
        return _shape(data["calls"])
    finally:
        await close(live)


LIVE_CELLS: list[tuple[str, dict[str, Any], Filters, Answer]] = [
    ("hidden-numericRanges-allowed", HIDE, ranged("latency_ms", high=200), 2),
    ("hidden-numericRanges-denied", HIDE, ranged("revenue", 20), no_range("revenue")),
    ("default-numericRanges-denied", {}, ranged("tokens", 100), no_range("tokens")),
    ("periods-dateRanges-allowed", PERIODS_1H_24H, window(23 * H, NOW), 3),
    (
        "periods-dateRanges-denied",
        PERIODS_1H_24H,
        window(3000 * D, NOW),
        outside(LAST_24H, "from"),
    ),
    ("max-dateRanges-allowed", MAX_7, window(4 * D, 2 * D), 1),
    ("max-dateRanges-denied", MAX_7, window(30 * D, 29 * D), outside("the last 7 days", "from")),
    ("hidden-dimensions-allowed", HIDE, dims(model="claude"), 1),
    ("hidden-dimensions-denied", HIDE, dims(segment="enterprise"), no_dim("segment")),
    (
        "allowed_dimensions-allowed",
        {"allowed_dimensions": ["model", "region"]},
        dims(region="eu"),
        1,
    ),
    (
        "allowed_dimensions-denied",
        {"allowed_dimensions": ["model", "region"]},
        dims(segment="smb"),
        no_dim("segment"),
    ),
    ("locked-allowed", {"locked_filters": {"region": "eu"}}, dims(region="eu"), 1),
    (
        "locked-denied",
        {"locked_filters": {"region": "eu"}},
        dims(region="us"),
        Refused("region is locked to 'eu' in this embed", "filters.dimensions.region"),
    ),
    (
        "periods-period-denied",
        PERIODS_1H_24H,
        {"period": "7d"},
        Refused("period 7d is not allowed in this embed", "filters.period"),
    ),
]


@pytest.mark.parametrize(
    ("permissions", "filters", "want"),
    [case[1:] for case in LIVE_CELLS],
    ids=[case[0] for case in LIVE_CELLS],
)
async def test_live_cell(
    world: World,
    app_server: TestServer,
    permissions: dict[str, Any],
    filters: Filters,
    want: Answer,
) -> None:
    token = await mint(world.owner, world.dashboard_id, "acme", permissions=permissions)
    assert await live_answer(app_server, token, filters) == expected(want)


async def test_live_rechecks_the_filters_on_every_recompute(
    world: World, app_server: TestServer
) -> None:
    """Allowed when subscribing (the visible revenue widget measures revenue); once a publish
    removes that widget, every push refuses the range instead of measuring it."""
    token = await mint(world.owner, world.dashboard_id, "acme")
    live = await open_live(app_server, token, ranged("revenue", 20))
    try:
        state = await initial(live)
        assert [p["value"] for p in state["data"]["calls"]] == [1, 0]
        without = [w for w in WIDGETS if w["id"] != "revenue"]
        path = f"/v1/dashboards/{world.dashboard_id}"
        assert (await world.owner.patch(path, json={"widgets": without})).status == 200
        assert (await world.owner.post(f"{path}/publish")).status == 204
        config = await live.next(within=5)
        assert config["type"] == "config"
        assert [w["id"] for w in config["dashboard"]["widgets"]] == [w["id"] for w in without]
        errors = [await live.next(within=5) for _ in without]
        assert sorted((e["type"], e["widgetId"], e["message"]) for e in errors) == sorted(
            ("error", w["id"], "numeric ranges on revenue are not allowed in this embed")
            for w in without
        )
    finally:
        await close(live)


# --- the rules as pure functions (fixed clock) ------------------------------------------------


def test_exposure_counts_what_visible_widgets_read_and_protects_what_only_hidden_ones_use() -> None:
    widgets = [
        _widget("revenue", "metric", "number", 0, metric="sum", numeric_prop="revenue"),
        _widget("by_plan_total", "metric", "number", 2, group_by="plan"),  # metrics ignore it
        _widget("by_plan", "breakdown", "bar", 4, group_by="plan", filters={"segment": "smb"}),
        _widget("latency", "metric", "number", 6, metric="avg", numeric_prop="latency_ms"),
        _widget("by_model", "breakdown", "bar", 8, group_by="model"),
        _widget("models", "breakdown", "bar", 10, group_by="model"),
        WIDGETS[-1],  # text
    ]
    hidden = {"by_plan", "latency", "models"}
    typed = decode_widgets(widgets)
    assert embeds.exposure_of(typed, hidden) == embeds.Exposure(
        numeric=frozenset({"revenue"}),
        hidden_only=frozenset({"plan", "segment", "latency_ms"}),  # model: by_model shows it
    )
    assert embeds.exposure_of(typed, set()) == embeds.Exposure(
        numeric=frozenset({"revenue", "latency_ms"}), hidden_only=frozenset()
    )


CLOCK = datetime(2026, 3, 29, 10, 35, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("permissions", "bounds"),
    [
        (embeds.EmbedPermissions(), []),
        (
            embeds.EmbedPermissions(allowed_periods=("1h", "24h")),
            [
                (
                    "the last 24h (the longest allowed period)",
                    datetime(2026, 3, 28, 10, tzinfo=UTC),
                    datetime(2026, 3, 29, 11, tzinfo=UTC),
                )
            ],
        ),
        (
            embeds.EmbedPermissions(allowed_periods=("24h", "7d"), max_date_range_days=10),
            [
                (
                    "the last 7d (the longest allowed period)",
                    datetime(2026, 3, 22, tzinfo=UTC),
                    datetime(2026, 3, 30, tzinfo=UTC),
                ),
                (
                    "the last 10 days",
                    datetime(2026, 3, 19, 10, tzinfo=UTC),
                    datetime(2026, 3, 29, 11, tzinfo=UTC),
                ),
            ],
        ),
    ],
)
def test_date_range_bounds_are_the_windows_the_periods_show(
    permissions: embeds.EmbedPermissions, bounds: list[tuple[str, datetime, datetime]]
) -> None:
    assert embeds.date_range_bounds(permissions, CLOCK) == bounds


@pytest.mark.parametrize(
    ("start", "end", "refused_field"),
    [
        (datetime(2026, 3, 28, 10, tzinfo=UTC), datetime(2026, 3, 29, 11, tzinfo=UTC), None),
        (
            datetime(2026, 3, 28, 9, 59, 59, 999999, tzinfo=UTC),
            datetime(2026, 3, 29, 10, tzinfo=UTC),
            "filters.dateRanges.timestamp.from",
        ),
        (
            datetime(2026, 3, 29, 9, tzinfo=UTC),
            datetime(2026, 3, 29, 11, 0, 0, 1, tzinfo=UTC),
            "filters.dateRanges.timestamp.to",
        ),
    ],
)
def test_date_range_edges(start: datetime, end: datetime, refused_field: str | None) -> None:
    permissions = embeds.EmbedPermissions(allowed_periods=("24h",))
    filters = embeds.EmbedFilters(date_range=(start, end))
    if refused_field is None:
        embeds.check_embed_filters(filters, permissions, embeds.Exposure(), now=CLOCK)
        return
    with pytest.raises(Forbidden) as refused:
        embeds.check_embed_filters(filters, permissions, embeds.Exposure(), now=CLOCK)
    assert (refused.value.code, refused.value.message, refused.value.extra) == (
        "embed_filter_forbidden",
        "date ranges must lie within the last 24h (the longest allowed period) in this embed",
        {"field": refused_field},
    )
