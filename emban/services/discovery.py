"""Discovery: what the caller's environment holds, and a dashboard generated from it.

``discover`` lists event names (count, distinct users, first/last seen) with their string
property keys (top values) and numeric property keys (min/avg/max). ``auto_create`` turns that
into a draft dashboard through :func:`emban.services.dashboards.create_dashboard`:

- one metric widget with the total count of the main (most frequent) event, and one with its
  unique users when events carry user ids;
- a count timeseries per event (the 10 most frequent);
- breakdowns of the main event by the most common rollup dimensions (model, endpoint, status,
  plan, source) that occur in the data with at least two values (at most 3);
- the p95 over time of the main event's main numeric property (a latency/duration-like key if
  there is one, else the most common key).

Period: 24h (hourly) when the main event was first seen within the last day, 7d when within a
week, else 30d (daily). Layout: the metrics share the first row; charts are 6 columns wide, two
per row, a lone last chart takes the whole row: no two widgets overlap on the 12-column grid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from emban.analytics import discovery as engine
from emban.analytics.query_spec import Scope, default_granularity
from emban.analytics.tables import ROLLUP_DIMENSIONS
from emban.auth.principal import Principal
from emban.error_codes import QueryErrorCode
from emban.errors import BadRequest
from emban.models import Dashboard
from emban.runtime import Runtime
from emban.services import dashboards
from emban.services.access import requires
from emban.services.boundary import transaction
from emban.services.widget_config import GRID_COLUMNS, decode_widget

AUTO_NAME = "Auto-generated Dashboard"
MAX_EVENT_CHARTS = 10
MAX_BREAKDOWNS = 3
METRIC_HEIGHT = 2
CHART_WIDTH = 6
CHART_HEIGHT = 4
_LATENCY_LIKE = re.compile(r"latency|duration|elapsed|response_time|_ms$", re.IGNORECASE)
_NOT_ID = re.compile(r"[^A-Za-z0-9_\-]+")


@dataclass(frozen=True)
class TopValue:
    value: str
    count: int


@dataclass(frozen=True)
class StringProperty:
    key: str
    count: int
    distinct_values: int
    top_values: list[TopValue]


@dataclass(frozen=True)
class NumericProperty:
    key: str
    count: int
    min: float
    avg: float
    max: float


@dataclass(frozen=True)
class DiscoveredEvent:
    event_name: str
    count: int
    unique_users: int
    first_seen: datetime
    last_seen: datetime
    string_props: list[StringProperty]  # most frequent key first (ties by key)
    numeric_props: list[NumericProperty]  # most frequent key first (ties by key)


@dataclass(frozen=True)
class AutoCreated:
    dashboard: Dashboard
    widgets: int
    events_found: int


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def _scan(rt: Runtime, scope: Scope) -> list[DiscoveredEvent]:
    stats = await engine.event_stats(rt.events, scope)
    names = [s.event_name for s in stats]
    strings: dict[str, list[StringProperty]] = {name: [] for name in names}
    for found in await engine.string_key_stats(rt.events, scope, names):
        strings[found.event_name].append(
            StringProperty(
                found.key,
                found.count,
                found.distinct_values,
                [TopValue(value, count) for value, count in found.top_values],
            )
        )
    numbers: dict[str, list[NumericProperty]] = {name: [] for name in names}
    for key in await engine.numeric_key_stats(rt.events, scope, names):
        numbers[key.event_name].append(
            NumericProperty(key.key, key.count, key.min, key.avg, key.max)
        )
    return [
        DiscoveredEvent(
            event_name=s.event_name,
            count=s.count,
            unique_users=s.unique_users,
            first_seen=_moment(s.first_seen_ms),
            last_seen=_moment(s.last_seen_ms),
            string_props=sorted(strings[s.event_name], key=lambda p: (-p.count, p.key)),
            numeric_props=sorted(numbers[s.event_name], key=lambda p: (-p.count, p.key)),
        )
        for s in stats
    ]


@requires("viewer")
async def discover(rt: Runtime, *, actor: Principal) -> list[DiscoveredEvent]:
    """``GET /v1/discover``: the events of the caller's environment (viewer)."""
    return await _scan(rt, Scope(actor.org_id, actor.environment_id))


def _period(first_seen: datetime, now: datetime) -> str:
    age = now - first_seen
    if age <= timedelta(hours=24):
        return "24h"
    if age <= timedelta(days=7):
        return "7d"
    return "30d"


def _main_numeric(event: DiscoveredEvent) -> NumericProperty | None:
    """A latency/duration-like key if the event has one (the most common of them), else the
    most common key."""
    if not event.numeric_props:
        return None
    latency = [p for p in event.numeric_props if _LATENCY_LIKE.search(p.key)]
    return (latency or event.numeric_props)[0]


def _title(text: str) -> str:
    return text[:200].strip()


def _valid(widget: dict[str, Any]) -> bool:
    """Whether the widget passes the widget rules (keys or names the query validator refuses
    are left out of the dashboard rather than failing it)."""
    try:
        decode_widget(widget)
    except BadRequest:
        return False
    return True


class _Ids:
    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, *parts: str) -> str:
        base = _NOT_ID.sub("_", "_".join(parts)).strip("_")[:56] or "widget"
        ident, n = base, 1
        while ident in self.used:
            n += 1
            ident = f"{base}_{n}"
        self.used.add(ident)
        return ident


def plan_widgets(events: list[DiscoveredEvent], now: datetime) -> list[dict[str, Any]]:
    """The auto-created dashboard's widgets for ``events`` (most frequent first)."""
    main = events[0]
    period = _period(main.first_seen, now)
    granularity = default_granularity(period)
    new_id = _Ids()

    def query(event_name: str, metric: str = "count", **extra: str) -> dict[str, Any]:
        return {
            "event_name": event_name,
            "metric": metric,
            "period": period,
            "granularity": granularity,
            **extra,
        }

    metrics = [
        {
            "id": new_id("total", main.event_name),
            "kind": "metric",
            "title": _title(f"Total {main.event_name}"),
            "query": query(main.event_name),
            "viz": {"type": "number"},
        }
    ]
    if main.unique_users:
        metrics.append(
            {
                "id": new_id("users", main.event_name),
                "kind": "metric",
                "title": _title(f"Unique users ({main.event_name})"),
                "query": query(main.event_name, "count_unique"),
                "viz": {"type": "number"},
            }
        )
    charts = [
        {
            "id": new_id("count", event.event_name),
            "kind": "timeseries",
            "title": _title(f"{event.event_name} per {granularity}"),
            "query": query(event.event_name),
            "viz": {"type": "line"},
        }
        for event in events[:MAX_EVENT_CHARTS]
    ]
    dimensions = [
        p.key for p in main.string_props if p.key in ROLLUP_DIMENSIONS and p.distinct_values > 1
    ]
    charts += [
        {
            "id": new_id(main.event_name, "by", dimension),
            "kind": "breakdown",
            "title": _title(f"{main.event_name} by {dimension}"),
            "query": query(main.event_name, group_by=dimension),
            "viz": {"type": "bar"},
        }
        for dimension in dimensions[:MAX_BREAKDOWNS]
    ]
    numeric = _main_numeric(main)
    if numeric is not None:
        charts.append(
            {
                "id": new_id("p95", main.event_name, numeric.key),
                "kind": "timeseries",
                "title": _title(f"p95 {numeric.key} ({main.event_name})"),
                "query": query(main.event_name, "p95", numeric_prop=numeric.key),
                "viz": {"type": "line"},
            }
        )
    return _lay_out(
        [w for w in metrics if _valid({**w, "layout": _SOME})],
        [w for w in charts if _valid({**w, "layout": _SOME})],
    )


_SOME = {"x": 0, "y": 0, "w": 1, "h": 1}


def _lay_out(metrics: list[dict[str, Any]], charts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Metrics share the first row; charts go two per row, a lone last one full width."""
    placed: list[dict[str, Any]] = []
    y = 0
    if metrics:
        width = GRID_COLUMNS // len(metrics)
        for index, widget in enumerate(metrics):
            layout = {"x": index * width, "y": 0, "w": width, "h": METRIC_HEIGHT}
            placed.append({**widget, "layout": layout})
        y = METRIC_HEIGHT
    per_row = GRID_COLUMNS // CHART_WIDTH
    for index, widget in enumerate(charts):
        row, column = divmod(index, per_row)
        alone = column == 0 and index == len(charts) - 1
        layout = {
            "x": column * CHART_WIDTH,
            "y": y + row * CHART_HEIGHT,
            "w": GRID_COLUMNS if alone else CHART_WIDTH,
            "h": CHART_HEIGHT,
        }
        placed.append({**widget, "layout": layout})
    return placed


@requires("editor")
async def auto_create(rt: Runtime, *, actor: Principal) -> AutoCreated:
    """``POST /v1/discover/auto-create`` (editor): a draft dashboard over the discovered events;
    400 ``no_events`` when the environment has none.

    Its edges open no transaction: the ClickHouse scan runs first, with no metadata transaction
    open (on SQLite one would block every other request for as long as the scan takes), and only
    the dashboard is written, in a short transaction of its own.
    """
    events = await _scan(rt, Scope(actor.org_id, actor.environment_id))
    if not events:
        raise BadRequest(
            "no events found in this environment: send events first", code=QueryErrorCode.no_events
        )
    widgets = plan_widgets(events, datetime.now(UTC))
    async with transaction():
        dashboard = await dashboards.create_dashboard(
            actor=actor,
            name=AUTO_NAME,
            widgets=widgets,
            description=f"Generated from {len(events)} discovered event type(s).",
        )
    return AutoCreated(dashboard, len(widgets), len(events))
