"""Discovery: what the caller's environment holds, and a dashboard generated from it.

``discover`` lists event names (count, distinct users, first/last seen) with their string
property keys (top values) and numeric property keys (min/avg/max). ``auto_create`` turns that
into a draft dashboard through :func:`emban.services.dashboards.create_dashboard`, its widgets
planned as the typed configs of :mod:`emban.services.widget_config`:

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from emban.analytics import discovery as engine
from emban.analytics.background import deferrable
from emban.analytics.query_spec import Metric, Period, Scope, default_granularity
from emban.analytics.tables import ROLLUP_DIMENSIONS
from emban.auth.principal import Principal
from emban.error_codes import QueryErrorCode
from emban.errors import BadRequest
from emban.models import Dashboard
from emban.runtime import Runtime
from emban.services import dashboards
from emban.services.access import requires
from emban.services.boundary import transaction
from emban.services.widget_config import (
    GRID_COLUMNS,
    BreakdownWidget,
    Layout,
    MetricWidget,
    QueryWidget,
    TimeseriesWidget,
    Viz,
    VizType,
    Widget,
    WidgetQuery,
    decode_widget,
    widget_json,
    widgets_json,
)
from emban.wire import FieldRule

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
    """:func:`_scan_engine` on the low-priority threads (``deferrable``): a scan of an org's
    recent events is console work, and an org that loops over auto-create must not take the
    cores from other orgs' embeds and acks. A recent scan of the environment is reused until its
    events change (services/discovery_cache.py); the caller's acknowledged events are waited for
    first, so a reused scan never misses them."""
    await rt.ingest.visible(org=scope.org_id, readable=True)

    async def scan() -> list[DiscoveredEvent]:
        with deferrable():
            return await _scan_engine(rt, scope)

    settings = rt.settings
    params = (settings.discovery_window_days, settings.discovery_sample_rows)
    return await rt.discovery.get((scope.org_id, scope.environment_id), params, scan)


async def _scan_engine(rt: Runtime, scope: Scope) -> list[DiscoveredEvent]:
    """The bounded scan: events of the last ``discovery_window_days``; their properties from
    about the ``discovery_sample_rows`` most recent of them (see analytics/discovery.py)."""
    since = datetime.now(UTC) - timedelta(days=rt.settings.discovery_window_days)
    stats = await engine.event_stats(rt.events, scope, since)
    names = [s.event_name for s in stats]
    sample = since
    if names:
        sample = await engine.sample_start(
            rt.events, scope, since, rt.settings.discovery_sample_rows
        )
    strings: dict[str, list[StringProperty]] = {name: [] for name in names}
    for found in await engine.string_key_stats(rt.events, scope, names, sample):
        strings[found.event_name].append(
            StringProperty(
                found.key,
                found.count,
                found.distinct_values,
                [TopValue(value, count) for value, count in found.top_values],
            )
        )
    numbers: dict[str, list[NumericProperty]] = {name: [] for name in names}
    for key in await engine.numeric_key_stats(rt.events, scope, names, sample):
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


def _period(first_seen: datetime, now: datetime) -> Period:
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


# Where a widget sits until :func:`_lay_out` places it.
_UNPLACED = Layout(x=0, y=0, w=1, h=1)


def plan_widgets(events: list[DiscoveredEvent], now: datetime) -> list[Widget]:
    """The auto-created dashboard's widgets for ``events`` (most frequent first)."""
    main = events[0]
    period = _period(main.first_seen, now)
    granularity = default_granularity(period)
    new_id = _Ids()

    def widget(
        kind: Callable[..., QueryWidget],
        ident: str,
        title: str,
        viz: VizType,
        event_name: str,
        metric: Metric = "count",
        *,
        group_by: str | None = None,
        numeric_prop: str | None = None,
    ) -> Widget | None:
        """The widget, or ``None`` when it breaks a widget rule: keys or names the query
        validator refuses are left out of the dashboard rather than failing it. Constructing
        checks the cross-field rules; the field constraints and the storable-text rule (event
        names may hold NUL, configs may not) are checked on decoding, so the widget is decoded
        from its wire form once, as the dashboard will store it."""
        try:
            query = WidgetQuery(
                event_name=event_name,
                metric=metric,
                period=period,
                granularity=granularity,
                group_by=group_by,
                numeric_prop=numeric_prop,
            )
            built = kind(id=ident, title=_title(title), query=query, viz=Viz(viz), layout=_UNPLACED)
            return decode_widget(widget_json(built))
        except (FieldRule, BadRequest):
            return None

    name = main.event_name
    metrics = [widget(MetricWidget, new_id("total", name), f"Total {name}", "number", name)]
    if main.unique_users:
        metrics.append(
            widget(
                MetricWidget,
                new_id("users", name),
                f"Unique users ({name})",
                "number",
                name,
                "count_unique",
            )
        )
    charts = [
        widget(
            TimeseriesWidget,
            new_id("count", event.event_name),
            f"{event.event_name} per {granularity}",
            "line",
            event.event_name,
        )
        for event in events[:MAX_EVENT_CHARTS]
    ]
    dimensions = [
        p.key for p in main.string_props if p.key in ROLLUP_DIMENSIONS and p.distinct_values > 1
    ]
    charts += [
        widget(
            BreakdownWidget,
            new_id(name, "by", dimension),
            f"{name} by {dimension}",
            "bar",
            name,
            group_by=dimension,
        )
        for dimension in dimensions[:MAX_BREAKDOWNS]
    ]
    numeric = _main_numeric(main)
    if numeric is not None:
        charts.append(
            widget(
                TimeseriesWidget,
                new_id("p95", name, numeric.key),
                f"p95 {numeric.key} ({name})",
                "line",
                name,
                "p95",
                numeric_prop=numeric.key,
            )
        )
    return _lay_out([w for w in metrics if w is not None], [w for w in charts if w is not None])


def _lay_out(metrics: list[Widget], charts: list[Widget]) -> list[Widget]:
    """Metrics share the first row; charts go two per row, a lone last one full width."""
    placed: list[Widget] = []
    y = 0
    if metrics:
        width = GRID_COLUMNS // len(metrics)
        for index, widget in enumerate(metrics):
            layout = Layout(x=index * width, y=0, w=width, h=METRIC_HEIGHT)
            placed.append(msgspec.structs.replace(widget, layout=layout))
        y = METRIC_HEIGHT
    per_row = GRID_COLUMNS // CHART_WIDTH
    for index, widget in enumerate(charts):
        row, column = divmod(index, per_row)
        alone = column == 0 and index == len(charts) - 1
        layout = Layout(
            x=column * CHART_WIDTH,
            y=y + row * CHART_HEIGHT,
            w=GRID_COLUMNS if alone else CHART_WIDTH,
            h=CHART_HEIGHT,
        )
        placed.append(msgspec.structs.replace(widget, layout=layout))
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
            widgets=widgets_json(widgets),
            description=f"Generated from {len(events)} discovered event type(s).",
        )
    return AutoCreated(dashboard, len(widgets), len(events))
