"""Isolation fuzz (issue 8, deliverable 8): random requests against known rows, exact answers.

Three orgs of twenty tenants each get events with known properties (the per-tenant rows are kept
here); the tenants of different orgs share tenant id strings on purpose, and several ids are
hostile (``\\x76ictim`` next to ``victim``, a trailing backslash, ``\\N``, quotes, tabs,
newlines, braces, Unicode). Each org publishes the same dashboard. A seeded generator then
makes requests:

- embed sessions with random permissions (``locked_filters``, ``hidden_widgets``,
  ``allowed_dimensions``, ``allowed_periods``, ``max_date_range_days``, ``allow_drill_down``)
  minted through ``POST /v1/embed-sessions`` for a random (org, tenant);
- ``embed.widgetData`` over GraphQL/HTTP with random filters (period, dimensions,
  numericRanges, dateRanges) and drills on a random widget;
- ``GET /v1/query`` with an admin key (or a key/token that must be refused), random tenant,
  event, metric, period, granularity, group_by and ``f_`` filters;
- ``embedLive`` over graphql-transport-ws for a subset: the initial state of every visible widget.

For every answer the oracle computes the exact expected points from the known rows (filtering
in Python) and the test asserts equality: an answer that counts one foreign row differs. For a
refusal it asserts the exact status and error code. The permission rules the oracle applies are
in ONE function, :func:`embed_outcome` (see its docstring to adjust them).

``EMBAN_FUZZ_REQUESTS`` (default 400, the CI sample) sets the number of requests and
``EMBAN_FUZZ_SEED`` the seed (printed on failure); ``make fuzz`` runs 10,000.
"""

from __future__ import annotations

import asyncio
import functools
import json
import operator
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import Client, ClientFactory, bearer, create_key, register
from tests.embed_scenario import set_plan

REQUESTS = int(os.environ.get("EMBAN_FUZZ_REQUESTS", "400"))
SEED = int(os.environ.get("EMBAN_FUZZ_SEED", "20261129"))
MAX_REPORTED = 30  # failures described in full; the rest are counted by kind
PER_KIND = 4

# --- the data ---------------------------------------------------------------------------------

# Shared by the orgs (each takes 20, the hostile ones always): equal strings in different orgs
# must never see each other's rows, and no string may read another one's rows in the same org.
HOSTILE_TENANTS = [
    "victim",
    "\\x76ictim",  # the 9 characters backslash x 7 6 i c t i m
    "trailing\\",
    "\\N",
    "tab\\there",  # backslash t
    "tab\there",  # a real tab
    "new\nline",
    "it's",
    'say "hi"',
    "{tenant:String}",
    "back\\\\slash",
    "ünïcødé テナント 🚀",
]
PLAIN_TENANTS = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
    "soylent",
    "%s%d",
    " spaced ",
    "NULL",
    "0",
    "a/b;c--",
    "x" * 200,
]
TENANTS_PER_ORG = 20
ORG_PLANS = ("starter", "starter", "free")  # the free org cannot mint advanced permissions

PLAN_VALUES = ["pro", "free", "team's", "ent\\"]
MODEL_VALUES = ["gpt-4", "gpt\\x2d4", "claude", "mistral\tsmall"]
ENDPOINT_VALUES = ["/chat", "/embed"]
DIMENSIONS = {"plan": PLAN_VALUES, "model": MODEL_VALUES, "endpoint": ENDPOINT_VALUES}
HOSTILE_EVENT = "sig\\x6eup"  # a widget reads this name; the plain "signup" must not count
EVENT_NAMES = ["api.call", "purchase", "page.view", "signup", HOSTILE_EVENT]
NUMERIC_PROPS = ["tokens", "revenue", "latency"]  # latency: no event has it

PERIODS = ("1h", "24h", "7d", "30d", "90d")
PERIOD_LENGTH = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
GRANULARITIES = ("hour", "day", "week", "month")
BUCKET = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
}
MAX_BUCKETS = 1_000  # an embed's changed window coarsens its granularity past this
MAX_RANGE_DAYS = 3_650
_KEY = re.compile(r"^[A-Za-z0-9_.:\-/]{1,64}$")


def _widget(widget_id: str, kind: str, viz: str, x: int, y: int, **query: Any) -> dict[str, Any]:
    return {
        "id": widget_id,
        "kind": kind,
        "title": widget_id.replace("_", " ").title(),
        "query": query,
        "viz": {"type": viz},
        "layout": {"x": x, "y": y, "w": 3, "h": 2},
    }


WIDGETS: list[dict[str, Any]] = [
    _widget("total", "metric", "number", 0, 0, event_name="api.call", metric="count", period="30d"),
    _widget(
        "daily", "timeseries", "line", 3, 0, event_name="api.call", metric="count", period="7d"
    ),
    _widget(
        "by_model",
        "breakdown",
        "bar",
        6,
        0,
        event_name="api.call",
        metric="count",
        period="30d",
        group_by="model",
    ),
    _widget(
        "plan_hourly",
        "timeseries",
        "stacked_bar",
        9,
        0,
        event_name="api.call",
        metric="count",
        period="24h",
        group_by="plan",
    ),
    _widget(
        "tokens",
        "timeseries",
        "line",
        0,
        2,
        event_name="api.call",
        metric="sum",
        period="30d",
        numeric_prop="tokens",
    ),
    _widget(
        "revenue",
        "metric",
        "number",
        3,
        2,
        event_name="purchase",
        metric="sum",
        period="90d",
        numeric_prop="revenue",
    ),
    _widget(
        "pro_calls",
        "metric",
        "number",
        6,
        2,
        event_name="api.call",
        metric="count",
        period="7d",
        filters={"plan": "pro"},
    ),
    _widget(
        "signups", "metric", "number", 9, 2, event_name=HOSTILE_EVENT, metric="count", period="90d"
    ),
    {
        "id": "notes",
        "kind": "text",
        "title": "Notes",
        "text": "Per workspace.",
        "layout": {"x": 0, "y": 4, "w": 12, "h": 1},
    },
]
WIDGET_BY_ID = {w["id"]: w for w in WIDGETS}
DATA_WIDGETS = [w["id"] for w in WIDGETS if w["kind"] != "text"]


def default_granularity(period: str) -> str:
    return "hour" if period in ("1h", "24h") else "day"


@dataclass(frozen=True)
class Row:
    tenant: str
    event: str
    at: datetime
    strings: dict[str, str]
    numbers: dict[str, float]


@dataclass
class FuzzOrg:
    index: int
    owner: Client
    org_id: str
    dashboard_id: str
    plan: str
    admin_keys: list[str]
    ingest_key: str
    tenants: list[str]
    rows: dict[str, list[Row]]  # by tenant: every row of this org


def _moment(rng: random.Random, now: datetime) -> datetime:
    """Spread over ~60 days, with enough recent rows for the short periods; whole ms."""
    horizon = rng.choice(
        [timedelta(hours=1), timedelta(hours=24), timedelta(days=7), timedelta(days=60)]
    )
    ago = timedelta(milliseconds=rng.randrange(1_000, int(horizon.total_seconds() * 1000)))
    moment = now - ago
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _rows_for(rng: random.Random, tenant: str, count: int, now: datetime) -> list[Row]:
    rows: list[Row] = []
    for _ in range(count):
        event = rng.choices(EVENT_NAMES, weights=[8, 3, 1, 1, 1])[0]
        strings = {key: rng.choice(values) for key, values in DIMENSIONS.items()}
        numbers: dict[str, float] = {}
        if event == "purchase":
            numbers["revenue"] = float(rng.randint(1, 500))
        if event != "page.view" and rng.random() < 0.85:
            numbers["tokens"] = float(rng.randint(1, 2_000))
        rows.append(Row(tenant, event, _moment(rng, now), strings, numbers))
    return rows


def _event_json(row: Row) -> dict[str, Any]:
    return {
        "tenant_id": row.tenant,
        "event_name": row.event,
        "timestamp": row.at.isoformat(),
        "string_props": row.strings,
        "numeric_props": row.numbers,
    }


async def _make_org(
    make_client: ClientFactory, rng: random.Random, index: int, now: datetime
) -> FuzzOrg:
    owner = await make_client()
    reg = await register(owner, email=f"owner{index}@fuzz.test", org_name=f"Fuzz {index}")
    org_id = reg["org"]["id"]
    plan = ORG_PLANS[index]
    await set_plan(org_id, plan)
    created = await owner.post("/v1/dashboards", json={"name": "Usage", "widgets": WIDGETS})
    assert created.status == 201, await created.text()
    dashboard_id = (await created.json())["id"]
    published = await owner.post(f"/v1/dashboards/{dashboard_id}/publish")
    assert published.status == 204, await published.text()
    admin_keys = [reg["api_key"]["key"], await create_key(owner, "admin", "fuzz")]
    ingest_key = await create_key(owner, "ingest", "fuzz-ingest")
    others = rng.sample(PLAIN_TENANTS, TENANTS_PER_ORG - len(HOSTILE_TENANTS))
    tenants = [*HOSTILE_TENANTS, *others]
    rows: dict[str, list[Row]] = {}
    for position, tenant in enumerate(tenants):
        count = 0 if position == len(tenants) - 1 else rng.randint(1, 40)  # one empty tenant
        rows[tenant] = _rows_for(rng, tenant, count, now)
    events = [_event_json(row) for found in rows.values() for row in found]
    sent = await owner.post("/v1/events", json={"events": events}, headers=bearer(ingest_key))
    assert sent.status == 200, await sent.text()
    assert (await sent.json())["accepted"] == len(events)
    return FuzzOrg(index, owner, org_id, dashboard_id, plan, admin_keys, ingest_key, tenants, rows)


# --- the oracle: what a request reads, or how it is refused ----------------------------------


@dataclass(frozen=True)
class Refusal:
    """The expected refusal: any one of ``options`` (status, code) is right. When several rules
    refuse one request, which one is checked first is not part of the contract."""

    options: frozenset[tuple[int, str]]
    rules: tuple[str, ...] = ()  # which permission rules refuse (named in failure reports)

    @classmethod
    def of(cls, status: int, *codes: str, rules: tuple[str, ...] = ()) -> Refusal:
        return cls(frozenset((status, code) for code in codes), rules)

    def __or__(self, other: Refusal) -> Refusal:
        return Refusal(self.options | other.options, self.rules + other.rules)

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(code for _, code in self.options)

    @property
    def label(self) -> str:
        return " or ".join(f"{status} {code}" for status, code in sorted(self.options))

    def accepts(self, status: int | None, code: str | None) -> bool:
        return (status, code) in self.options


@dataclass(frozen=True)
class Read:
    """What an allowed data request reads, in the oracle's own terms."""

    kind: str  # metric | breakdown | timeseries | text (text: no data)
    tenant: str = ""
    event: str = ""
    metric: str = "count"
    numeric_prop: str | None = None
    filters: frozenset[tuple[str, str]] = frozenset()
    numeric_ranges: tuple[tuple[str, float | None, float | None], ...] = ()
    period: str = "24h"
    granularity: str = "hour"
    date_range: tuple[datetime, datetime] | None = None
    group_by: str | None = None


Outcome = Refusal | Read


@dataclass(frozen=True)
class Permissions:
    allow_drill_down: bool = False
    locked_filters: dict[str, str] = field(default_factory=dict)
    hidden_widgets: tuple[str, ...] = ()
    allowed_dimensions: tuple[str, ...] = ()
    allowed_periods: tuple[str, ...] = ()
    max_date_range_days: int | None = None

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.allow_drill_down:
            out["allow_drill_down"] = True
        if self.locked_filters:
            out["locked_filters"] = dict(self.locked_filters)
        if self.hidden_widgets:
            out["hidden_widgets"] = list(self.hidden_widgets)
        if self.allowed_dimensions:
            out["allowed_dimensions"] = list(self.allowed_dimensions)
        if self.allowed_periods:
            out["allowed_periods"] = list(self.allowed_periods)
        if self.max_date_range_days is not None:
            out["max_date_range_days"] = self.max_date_range_days
        return out

    @property
    def advanced(self) -> bool:
        return bool(
            self.allow_drill_down
            or self.allowed_dimensions
            or self.allowed_periods
            or self.max_date_range_days is not None
        )

    def allows_period(self, period: str) -> bool:
        if self.allowed_periods and period not in self.allowed_periods:
            return False
        days = self.max_date_range_days
        return days is None or PERIOD_LENGTH[period] <= timedelta(days=days)

    def visible(self) -> list[dict[str, Any]]:
        return [w for w in WIDGETS if w["id"] not in self.hidden_widgets]


FILTER_FORBIDDEN = "embed_filter_forbidden"
DRILL_FORBIDDEN = "embed_drill_forbidden"
INVALID = Refusal.of(400, "invalid_field")
NUMERIC_WIDGET_METRICS = frozenset({"sum", "avg", "p95", "p99"})


def hidden_only_keys(permissions: Permissions) -> set[str]:
    """Property keys only hidden widgets name (numeric property, filter keys, group-by): never
    filterable, rangeable or drillable. A visible widget exposes only what it reads (a metric
    ignores its group_by, a count its numeric_prop)."""
    hidden: set[str] = set()
    shown: set[str] = set()
    for widget in WIDGETS:
        if widget["kind"] == "text":
            continue
        query = widget["query"]
        keys = set(query.get("filters") or {})
        prop = query.get("numeric_prop")
        if widget["id"] in permissions.hidden_widgets:
            hidden |= keys | {k for k in (query.get("group_by"), prop) if k}
        else:
            group_by = query.get("group_by") if widget["kind"] != "metric" else None
            measured = prop if query["metric"] in NUMERIC_WIDGET_METRICS else None
            shown |= keys | {k for k in (group_by, measured) if k}
    return hidden - shown


def date_range_windows(permissions: Permissions, now: datetime) -> list[tuple[datetime, datetime]]:
    """Where a date range must lie: the window the longest allowed period shows now (whole hours
    for 1h/24h, whole UTC days otherwise), and the last ``max_date_range_days`` days measured
    from the start of the current hour to its end."""
    windows: list[tuple[datetime, datetime]] = []
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if permissions.allowed_periods:
        longest = max(permissions.allowed_periods, key=lambda p: PERIOD_LENGTH[p])
        hourly = longest in ("1h", "24h")
        start = _floor(now - PERIOD_LENGTH[longest], hourly)
        end = _floor(now, hourly) + (timedelta(hours=1) if hourly else timedelta(days=1))
        windows.append((start, end))
    if permissions.max_date_range_days is not None:
        days = permissions.max_date_range_days
        windows.append((hour - timedelta(days=days), hour + timedelta(hours=1)))
    return windows


def mint_outcome(org: FuzzOrg, permissions: Permissions) -> Refusal | None:
    """``POST /v1/embed-sessions``: 400 when a listed period is longer than the max range (the
    fallback period must be usable), then 402 for advanced permissions on the free plan."""
    if any(not permissions.allows_period(p) for p in permissions.allowed_periods):
        return INVALID
    if permissions.advanced and org.plan == "free":
        return Refusal.of(402, "advanced_embed_permissions")
    return None


def _parse_filters(raw: dict[str, Any]) -> Refusal | None:
    """The 400s of the filter payload's shape (the generator makes only these invalid ones)."""
    period = raw.get("period")
    if period is not None and period not in PERIODS:
        return INVALID
    for key in raw.get("dimensions") or {}:
        if not _KEY.match(key):
            return INVALID
    for bounds in (raw.get("numericRanges") or {}).values():
        if bounds is None:
            continue
        low, high = bounds.get("min"), bounds.get("max")
        if low is not None and high is not None and low > high:
            return INVALID
    for bounds in (raw.get("dateRanges") or {}).values():
        if bounds is None:
            continue
        start, end = _date(bounds["from"]), _date(bounds["to"])
        if start >= end or end - start > timedelta(days=MAX_RANGE_DAYS):
            return INVALID
    return None


def _date(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _coarsened(index: int, span: timedelta) -> str:
    while index < len(GRANULARITIES) - 1 and span / BUCKET[GRANULARITIES[index]] > MAX_BUCKETS:
        index += 1
    return GRANULARITIES[index]


def embed_outcome(
    permissions: Permissions,
    tenant: str,
    widget_id: str,
    raw_filters: dict[str, Any],
    drill: dict[str, str] | None,
    now: datetime,
) -> Outcome:
    """THE permission rules (issue 8, "Every permission bounds every filter path"), applied to
    one widget of one embed session. Adjust here, and only here, if the contract moves.

    In order: the filter payload's shape (400 ``invalid_field``); a hidden or unknown widget
    (404 ``widget_not_found``); a text widget has no data; then every rule that refuses the
    request adds a 403 code:

    - ``period``: in ``allowed_periods`` (when listed) and not longer than
      ``max_date_range_days``; without one the widget shows its own period if allowed, else the
      first allowed one, else the longest that fits;
    - ``dimensions`` / drill dimension: a locked key only with its locked value (a no-op), any
      other key only if ``allowed_dimensions`` is empty or lists it, and never a key only hidden
      widgets use;
    - ``numericRanges``: only on a numeric property a *visible* widget measures, or one the
      session lists in ``allowed_dimensions`` — never one only a hidden widget uses (defect 2);
    - ``dateRanges``: not longer than the longest allowed period (when periods are listed) nor
      ``max_date_range_days``, and inside their windows (defect 3);
    - drill: needs ``allow_drill_down`` (``embed_drill_forbidden``);
    - a widget's own ``group_by`` (not metrics) must be allowed or locked.
    """
    malformed = _parse_filters(raw_filters)
    if malformed is not None:
        return malformed
    widget = WIDGET_BY_ID.get(widget_id)
    if widget is None or widget_id in permissions.hidden_widgets:
        return Refusal.of(404, "widget_not_found")
    if widget["kind"] == "text":
        return Read(kind="text")
    query = widget["query"]
    refusing: dict[str, str] = {}  # rule -> code
    locked = permissions.locked_filters
    allowed = permissions.allowed_dimensions

    hidden_only = hidden_only_keys(permissions)

    def dimension_allowed(key: str, value: str) -> bool:
        if key in locked:
            return value == locked[key]
        return (not allowed or key in allowed) and key not in hidden_only

    own_period = query["period"]
    requested = raw_filters.get("period")
    if requested is not None:
        if not permissions.allows_period(requested):
            refusing["period"] = FILTER_FORBIDDEN
        period = requested
    elif permissions.allows_period(own_period):
        period = own_period
    elif permissions.allowed_periods:
        period = permissions.allowed_periods[0]
    else:
        period = [p for p in PERIODS if permissions.allows_period(p)][-1]

    date_range: tuple[datetime, datetime] | None = None
    for bounds in (raw_filters.get("dateRanges") or {}).values():
        if bounds is not None:
            date_range = (_date(bounds["from"]), _date(bounds["to"]))
    if date_range is not None:
        span = date_range[1] - date_range[0]
        if permissions.allowed_periods:
            longest = max(PERIOD_LENGTH[p] for p in permissions.allowed_periods)
            if span > longest:
                refusing["dateRanges"] = FILTER_FORBIDDEN
        days = permissions.max_date_range_days
        if days is not None and span > timedelta(days=days):
            refusing["dateRanges"] = FILTER_FORBIDDEN
        for start, end in date_range_windows(permissions, now):
            if date_range[0] < start or date_range[1] > end:
                refusing["dateRanges"] = FILTER_FORBIDDEN

    pairs: set[tuple[str, str]] = set((query.get("filters") or {}).items())
    for key, value in (raw_filters.get("dimensions") or {}).items():
        if value is None:
            continue
        if not dimension_allowed(key, value):
            refusing["dimensions"] = FILTER_FORBIDDEN
        pairs.add((key, value))
    pairs |= set(locked.items())

    visible_props = {
        w["query"]["numeric_prop"]
        for w in permissions.visible()
        if w["kind"] != "text" and w["query"]["metric"] in NUMERIC_WIDGET_METRICS
    }
    ranges: list[tuple[str, float | None, float | None]] = []
    for key, bounds in (raw_filters.get("numericRanges") or {}).items():
        if bounds is None or (bounds.get("min") is None and bounds.get("max") is None):
            continue
        if key not in visible_props and (key not in allowed or key in hidden_only):
            refusing["numericRanges"] = FILTER_FORBIDDEN
        ranges.append((key, bounds.get("min"), bounds.get("max")))

    if drill is not None:
        if not permissions.allow_drill_down:
            refusing["drill"] = DRILL_FORBIDDEN
        elif not dimension_allowed(drill["dimension"], drill["value"]):
            refusing["drill"] = FILTER_FORBIDDEN
        pairs.add((drill["dimension"], drill["value"]))

    group_by = query.get("group_by")
    if (
        widget["kind"] != "metric"
        and group_by is not None
        and allowed
        and group_by not in allowed
        and group_by not in locked
    ):
        refusing["group_by"] = FILTER_FORBIDDEN
    if refusing:
        return Refusal.of(403, *sorted(set(refusing.values())), rules=tuple(sorted(refusing)))

    own_granularity = query.get("granularity") or default_granularity(own_period)
    index = GRANULARITIES.index(own_granularity)
    if date_range is not None:
        granularity = _coarsened(index, date_range[1] - date_range[0])
    elif period != own_period:
        index = min(index, GRANULARITIES.index(default_granularity(period)))
        granularity = _coarsened(index, PERIOD_LENGTH[period])
    else:
        granularity = own_granularity
    return Read(
        kind=widget["kind"],
        tenant=tenant,
        event=query["event_name"],
        metric=query["metric"],
        numeric_prop=query.get("numeric_prop"),
        filters=frozenset(pairs),
        numeric_ranges=tuple(sorted(ranges)),
        period=period,
        granularity=granularity,
        date_range=date_range,
        group_by=None if widget["kind"] == "metric" else group_by,
    )


# --- the oracle: the exact points a read answers -----------------------------------------------

Point = tuple[str, str | None, float]


def _floor(moment: datetime, to_hour: bool) -> datetime:
    if to_hour:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _bucket_start(moment: datetime, granularity: str) -> datetime:
    if granularity == "hour":
        return _floor(moment, True)
    day = _floor(moment, False)
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def _buckets(start: datetime, end: datetime, granularity: str) -> list[datetime]:
    out: list[datetime] = []
    current = _bucket_start(start, granularity)
    while current < end:
        out.append(current)
        if granularity == "month":
            year, month = divmod(current.month, 12)
            current = current.replace(year=current.year + year, month=month + 1)
        else:
            current += BUCKET[granularity]
    return out


def _window(read: Read, now: datetime) -> tuple[datetime, datetime]:
    """[start, end): the date range to the second, or the period aligned to hours/days."""
    if read.date_range is not None:
        start, end = read.date_range
        return start.replace(microsecond=0), end.replace(microsecond=0)
    hourly = read.granularity == "hour"
    unit = timedelta(hours=1) if hourly else timedelta(days=1)
    return _floor(now - PERIOD_LENGTH[read.period], hourly), _floor(now, hourly) + unit


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _selected(rows: list[Row], read: Read, start: datetime, end: datetime) -> list[Row]:
    out = []
    for row in rows:
        if row.tenant != read.tenant or row.event != read.event:
            continue
        if not start <= row.at < end:
            continue
        if any(row.strings.get(key, "") != value for key, value in read.filters):
            continue
        if read.numeric_prop is not None and read.numeric_prop not in row.numbers:
            continue
        if any(
            key not in row.numbers
            or (low is not None and row.numbers[key] < low)
            or (high is not None and row.numbers[key] > high)
            for key, low, high in read.numeric_ranges
        ):
            continue
        out.append(row)
    return out


def _value(rows: list[Row], read: Read) -> float:
    if read.metric == "count":
        return len(rows)
    assert read.metric == "sum" and read.numeric_prop is not None
    return sum(row.numbers[read.numeric_prop] for row in rows)


def _total(rows: list[Row], read: Read, start: datetime, end: datetime) -> float | None:
    chosen = _selected(rows, read, start, end)
    if not chosen and read.metric != "count":
        return None  # a sum over no row has no point
    return _value(chosen, read)


def expected_points(org: FuzzOrg, read: Read, now: datetime) -> list[Point]:
    """What the service must answer for ``read`` at ``now``, from this org's rows only."""
    if read.kind == "text":
        return []
    rows = org.rows.get(read.tenant, [])
    start, end = _window(read, now)
    if read.kind == "metric":
        out: list[Point] = []
        shift = end - start
        for label, (low, high) in (("current", (start, end)), ("previous", (start - shift, start))):
            value = _total(rows, read, low, high)
            if value is not None:
                out.append((_iso(low), label, value))
        return out
    chosen = _selected(rows, read, start, end)
    if read.kind == "breakdown":
        assert read.group_by is not None
        totals: dict[str, list[Row]] = {}
        for row in chosen:
            totals.setdefault(row.strings.get(read.group_by, ""), []).append(row)
        return [(_iso(start), group, _value(totals[group], read)) for group in sorted(totals)]
    cells: dict[tuple[str | None, datetime], list[Row]] = {}
    for row in chosen:
        group = row.strings.get(read.group_by, "") if read.group_by else None
        cells.setdefault((group, _bucket_start(row.at, read.granularity)), []).append(row)
    groups: list[str | None] = sorted({g for g, _ in cells}, key=lambda g: g or "")
    if read.group_by is None:
        groups = [None]
    points: list[Point] = []
    for bucket in _buckets(start, end, read.granularity):
        for group in groups:
            found = cells.get((group, bucket))
            if found is not None:
                points.append((_iso(bucket), group, _value(found, read)))
            elif read.metric == "count":
                points.append((_iso(bucket), group, 0))
    return points


def rest_outcome(org: FuzzOrg, params: dict[str, str], credential: str) -> Outcome:
    """``GET /v1/query``: admin keys read any tenant of their own org, unrestricted."""
    refusals: list[Refusal] = []
    if credential == "ingest":
        refusals.append(Refusal.of(403, "insufficient_scope"))
    if credential == "embed":
        refusals.append(Refusal.of(403, "insufficient_role"))  # embed principals have no role
    if any(name.startswith("f_") and not _KEY.match(name[2:]) for name in params):
        refusals.append(INVALID)
    metric = params["metric"]
    if metric == "sum" and "numeric_prop" not in params:
        refusals.append(INVALID)
    if refusals:
        # today the parameters are parsed before the role is checked: either refusal is right
        return functools.reduce(operator.or_, refusals)
    period = params["period"]
    granularity = params.get("granularity") or default_granularity(period)
    return Read(
        kind="timeseries",
        tenant=params["tenant_id"],
        event=params["event_name"],
        metric=metric,
        numeric_prop=params.get("numeric_prop") if metric == "sum" else None,
        filters=frozenset((k[2:], v) for k, v in params.items() if k.startswith("f_")),
        period=period,
        granularity=granularity,
        group_by=params.get("group_by"),
    )


# --- the generator ----------------------------------------------------------------------------


def random_permissions(rng: random.Random, org: FuzzOrg) -> Permissions:
    locked: dict[str, str] = {}
    if rng.random() < 0.3:
        locked["plan"] = rng.choice(PLAN_VALUES)
    if rng.random() < 0.1:
        locked["model"] = rng.choice(MODEL_VALUES)
    hidden: list[str] = []
    if rng.random() < 0.4:
        hidden.append("revenue")
    if rng.random() < 0.2:
        hidden.append(rng.choice([w["id"] for w in WIDGETS]))
    advanced = org.plan != "free" or rng.random() < 0.15
    if not advanced:
        return Permissions(locked_filters=locked, hidden_widgets=tuple(dict.fromkeys(hidden)))
    pool = ["plan", "model", "endpoint", "tokens", "revenue"]
    dimensions = rng.sample(pool, rng.randint(1, 3)) if rng.random() < 0.4 else []
    periods = rng.sample(PERIODS, rng.randint(1, 3)) if rng.random() < 0.35 else []
    days = rng.choice([1, 7, 30, 60, 90, 365]) if rng.random() < 0.3 else None
    return Permissions(
        allow_drill_down=rng.random() < 0.5,
        locked_filters=locked,
        hidden_widgets=tuple(dict.fromkeys(hidden)),
        allowed_dimensions=tuple(dimensions),
        allowed_periods=tuple(periods),
        max_date_range_days=days,
    )


def random_filters(rng: random.Random, permissions: Permissions, now: datetime) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    roll = rng.random()
    if roll < 0.02:
        raw["period"] = "2d"  # invalid
    elif roll < 0.5:
        choices = list(permissions.allowed_periods) if rng.random() < 0.5 else []
        raw["period"] = rng.choice(choices or list(PERIODS))
    if rng.random() < 0.4:
        dims: dict[str, Any] = {}
        for key in rng.sample(list(DIMENSIONS), rng.randint(1, 2)):
            if key in permissions.locked_filters and rng.random() < 0.5:
                dims[key] = permissions.locked_filters[key]
            else:
                dims[key] = rng.choice([*DIMENSIONS[key], "nobody", None])
        if rng.random() < 0.02:
            dims["bad key!"] = "x"  # invalid
        raw["dimensions"] = dims
    if rng.random() < 0.3:
        key = rng.choice(NUMERIC_PROPS)
        low = rng.choice([None, 0, 50, 100, 250, 1_000])
        high = rng.choice([None, 100, 300, 500, 1_500])
        if rng.random() < 0.03:
            low, high = 900, 10  # invalid
        raw["numericRanges"] = {key: {"min": low, "max": high}}
    if rng.random() < 0.25:
        span = rng.choice(
            [
                timedelta(hours=1),
                timedelta(hours=12),
                timedelta(hours=24),
                timedelta(days=3),
                timedelta(days=7),
                timedelta(days=30),
                timedelta(days=45),
                timedelta(days=90),
                timedelta(days=400),
            ]
        )
        end = now + timedelta(minutes=5) - timedelta(minutes=rng.choice([0, 0, 90, 60 * 24 * 5]))
        end = end.replace(microsecond=0)
        start = end - span
        if rng.random() < 0.03:
            start, end = end, start  # invalid
        raw["dateRanges"] = {"timestamp": {"from": start.isoformat(), "to": end.isoformat()}}
    return raw


def random_drill(rng: random.Random, permissions: Permissions) -> dict[str, str] | None:
    if rng.random() >= 0.2:
        return None
    dimension = rng.choice(["plan", "model", "endpoint"])
    if dimension in permissions.locked_filters and rng.random() < 0.5:
        return {"dimension": dimension, "value": permissions.locked_filters[dimension]}
    return {"dimension": dimension, "value": rng.choice(DIMENSIONS[dimension])}


def random_rest_params(rng: random.Random, tenants: list[str]) -> dict[str, str]:
    params = {
        "tenant_id": rng.choice(tenants),
        "event_name": rng.choice([*EVENT_NAMES, "nothing.here"]),
        "period": rng.choice(PERIODS),
    }
    if rng.random() < 0.7:
        params["metric"] = "count"
    else:
        params["metric"] = "sum"
        if rng.random() > 0.03:  # else invalid: sum needs numeric_prop
            params["numeric_prop"] = rng.choice(NUMERIC_PROPS)
    if rng.random() < 0.4:
        allowed = GRANULARITIES if params["period"] != "90d" else GRANULARITIES[1:]
        params["granularity"] = rng.choice(allowed)
    if rng.random() < 0.4:
        params["group_by"] = rng.choice(["plan", "model", "endpoint"])
    for key in rng.sample(list(DIMENSIONS), rng.choice([0, 0, 1, 2])):
        params[f"f_{key}"] = rng.choice([*DIMENSIONS[key], "nobody"])
    if rng.random() < 0.02:
        params["f_bad key"] = "x"  # invalid
    return params


# --- the client side: budgets, channels -------------------------------------------------------


class Pacer:
    """Client-side token bucket a little under the server's request budget for one credential
    (embed session 20/s burst 60, admin key 100/s burst 300), so the fuzz never meets a 429 it
    did not ask for, whatever the run's speed. It only waits; it asserts nothing."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    async def take(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            await asyncio.sleep((1 - self.tokens) / self.rate)
            self.tokens = 1
            self.stamp = time.monotonic()
        self.tokens -= 1


EMBED_PACE = (15.0, 40.0)
KEY_PACE = (80.0, 200.0)
SESSION_USES = 25  # then a fresh session (each one also stays under its burst)
GQL_CATEGORY = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    402: "PLAN_LIMIT",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    429: "RATE_LIMITED",
}

WIDGET_DATA = """
query Data($widgetId: ID!, $filters: EmbedFiltersInput, $drill: DrillInput) {
  embed { widgetData(widgetId: $widgetId, filters: $filters, drill: $drill) {
    data { bucket value group } } }
}
"""
LIVE = """
subscription Live($filters: EmbedFiltersInput) {
  embedLive(filters: $filters) {
    type widgetId message
    dashboard { id widgets { id } }
    data { data { bucket value group } }
  }
}
"""


@dataclass
class Session:
    org: FuzzOrg
    tenant: str
    permissions: Permissions
    token: str
    pacer: Pacer
    uses: int = 0


@dataclass
class Answer:
    """A data answer as points, or a refusal as (status, code)."""

    points: list[Point] | None = None
    status: int | None = None
    code: str | None = None
    detail: str = ""


def _points(data: list[dict[str, Any]]) -> list[Point]:
    return [(p["bucket"], p.get("group"), p["value"]) for p in data]


def _gql_refusal(errors: list[dict[str, Any]]) -> Answer:
    error = errors[0]
    extensions = error.get("extensions") or {}
    status = {v: k for k, v in GQL_CATEGORY.items()}.get(str(extensions.get("code")), 0)
    return Answer(status=status, code=extensions.get("reason"), detail=json.dumps(errors)[:400])


@dataclass
class Fuzz:
    rng: random.Random
    server: TestServer
    browser: Client  # no cookies: only embed tokens
    orgs: list[FuzzOrg]
    key_pacers: dict[str, Pacer] = field(default_factory=dict)
    sessions: list[Session] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    escaped_failures: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)

    def fail(self, kind: str, text: str, *request: Any) -> None:
        # Tagged when a string of the request holds a character ClickHouse's escaped parameter
        # format reads specially (backslash, tab, newline, NUL): unescaped parameters (defect 1)
        # explain those; an untagged failure is another defect (or an oracle bug): listed first.
        escaped = _escape_chars(request)
        if escaped:
            kind += " (escape chars)"
        self.kinds[kind] += 1
        if self.kinds[kind] <= PER_KIND:  # a few of every kind, not 25 of the commonest
            found = self.escaped_failures if escaped else self.failures
            found.append(f"[{kind}] {text}")

    async def paced(self, key: str) -> None:
        pacer = self.key_pacers.setdefault(key, Pacer(*KEY_PACE))
        await pacer.take()

    # --- one request of each kind ------------------------------------------------------------

    async def mint(self) -> None:
        org = self.rng.choice(self.orgs)
        tenant = self.rng.choice(org.tenants)
        permissions = random_permissions(self.rng, org)
        key = self.rng.choice(org.admin_keys)
        await self.paced(key)
        response = await self.browser.post(
            "/v1/embed-sessions",
            json={
                "tenant_id": tenant,
                "dashboard_id": org.dashboard_id,
                "permissions": permissions.payload(),
            },
            headers=bearer(key),
        )
        body = await response.json()
        expected = mint_outcome(org, permissions)
        what = f"mint org={org.index} tenant={tenant!r} permissions={permissions.payload()}"
        self.stats["mint"] += 1
        if expected is not None:
            self.stats["mint refused"] += 1
            if not expected.accepts(response.status, body.get("code")):
                self.fail(
                    "mint",
                    f"{what}: expected {expected.label}, got {response.status} {body}",
                    tenant,
                )
            return
        if response.status != 201:
            self.fail("mint", f"{what}: expected 201, got {response.status} {body}", tenant)
            return
        self.sessions.append(Session(org, tenant, permissions, body["token"], Pacer(*EMBED_PACE)))
        if len(self.sessions) > 8:
            self.sessions.pop(0)

    async def widget_data(self, session: Session) -> None:
        widget_id = self.rng.choice([*DATA_WIDGETS, "notes", "missing"])
        filters = random_filters(self.rng, session.permissions, datetime.now(UTC))
        drill = random_drill(self.rng, session.permissions)
        if widget_id == "notes" and (filters or drill):
            filters, drill = {}, None  # a text widget has no data to filter
        await session.pacer.take()
        session.uses += 1
        before = datetime.now(UTC)
        response = await self.browser.post(
            "/graphql",
            json={
                "query": WIDGET_DATA,
                "variables": {"widgetId": widget_id, "filters": filters, "drill": drill},
            },
            headers=bearer(session.token),
        )
        after = datetime.now(UTC)
        body = await response.json()
        if response.status != 200:
            answer = Answer(status=response.status, detail=str(body)[:400])
        elif body.get("errors"):
            answer = _gql_refusal(body["errors"])
        else:
            answer = Answer(points=_points(body["data"]["embed"]["widgetData"]["data"]))
        outcomes = [
            embed_outcome(session.permissions, session.tenant, widget_id, filters, drill, moment)
            for moment in (before, after)
        ]
        what = (
            f"widgetData org={session.org.index} tenant={session.tenant!r} "
            f"permissions={session.permissions.payload()} widget={widget_id} "
            f"filters={filters} drill={drill}"
        )
        request = (session.tenant, session.permissions.payload(), filters, drill)
        event = (WIDGET_BY_ID.get(widget_id) or {}).get("query") or {}
        self.check("graphql", session.org, outcomes, (before, after), answer, what, request, event)

    async def rest_query(self) -> None:
        org = self.rng.choice(self.orgs)
        everyone = [t for o in self.orgs for t in o.tenants]
        params = random_rest_params(self.rng, list(dict.fromkeys(everyone)))
        roll = self.rng.random()
        if roll < 0.03:
            credential, key = "ingest", org.ingest_key
        elif roll < 0.05 and self.sessions:
            credential, key = "embed", self.sessions[0].token
        else:
            credential, key = "admin", self.rng.choice(org.admin_keys)
        await self.paced(key)
        before = datetime.now(UTC)
        response = await self.browser.get("/v1/query", params=params, headers=bearer(key))
        after = datetime.now(UTC)
        body = await response.json()
        if response.status == 200:
            answer = Answer(points=_points(body["data"]))
        else:
            answer = Answer(status=response.status, code=body.get("code"), detail=str(body)[:400])
        outcome = rest_outcome(org, params, credential)
        what = f"GET /v1/query org={org.index} as={credential} params={params}"
        self.check("rest", org, [outcome, outcome], (before, after), answer, what, params)

    async def live(self, session: Session) -> None:
        filters = random_filters(self.rng, session.permissions, datetime.now(UTC))
        await session.pacer.take()
        session.uses += 1
        before = datetime.now(UTC)
        answer = await self._live_answer(session.token, filters)
        after = datetime.now(UTC)
        permissions = session.permissions
        visible = [w["id"] for w in permissions.visible()]
        what = (
            f"embedLive org={session.org.index} tenant={session.tenant!r} "
            f"permissions={permissions.payload()} filters={filters}"
        )
        self.stats["live"] += 1
        request = (session.tenant, permissions.payload(), filters)
        per_widget = {
            widget_id: [
                embed_outcome(permissions, session.tenant, widget_id, filters, None, moment)
                for moment in (before, after)
            ]
            for widget_id in visible
        }
        parse_refusal = _parse_filters(filters)
        if "error" in answer:
            # A subscription-level refusal is right for a malformed payload, or when a rule
            # refuses at least one widget (then its code must be one of theirs).
            refused_codes = {
                code
                for outcomes in per_widget.values()
                for outcome in outcomes[:1]
                if isinstance(outcome, Refusal)
                for code in outcome.codes
            }
            code = answer["error"]
            if not (code in refused_codes or (parse_refusal and code in parse_refusal.codes)):
                self.fail(
                    "live subscription",
                    f"{what}: subscription refused with {code!r}: {answer}",
                    request,
                )
            else:
                self.stats["live refused"] += 1
            return
        if parse_refusal is not None:
            self.fail(
                "live subscription",
                f"{what}: expected a 400 refusal, got {str(answer)[:400]}",
                request,
            )
            return
        if answer.get("config") != visible:
            self.fail(
                "live config",
                f"{what}: config lists {answer.get('config')}, expected {visible}",
                request,
            )
            return
        events: dict[str, dict[str, Any]] = answer["events"]
        for widget_id, outcomes in per_widget.items():
            asked = (*request, WIDGET_BY_ID[widget_id].get("query"))
            event = events.get(widget_id)
            if event is None:
                self.fail("live missing", f"{what}: no initial event for {widget_id}", request)
                continue
            if isinstance(outcomes[0], Refusal):
                if event["type"] != "error":
                    self.fail(
                        f"live refusal by {'+'.join(outcomes[0].rules)}",
                        f"{what} widget={widget_id}: expected a refusal, got {str(event)[:300]}",
                        asked,
                    )
                continue
            if event["type"] != "data":
                self.fail(
                    "live refused",
                    f"{what} widget={widget_id}: expected data, got {str(event)[:300]}",
                    asked,
                )
                continue
            got = _points(event["data"]["data"])
            expected = [
                expected_points(session.org, outcome, moment)
                for outcome, moment in zip(outcomes, (before, after), strict=True)
                if isinstance(outcome, Read)
            ]
            if got not in expected:
                self.fail(
                    "live values",
                    f"{what} widget={widget_id}: {_difference(expected[0], got)}",
                    asked,
                )

    async def _live_answer(self, token: str, filters: dict[str, Any]) -> dict[str, Any]:
        """The initial state of a live embed: config widget ids and one event per widget, or
        ``{"error": code}`` for a refused subscription, ``{"closed": code}`` for a closed one."""
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(
                self.server.make_url("/graphql"), protocols=["graphql-transport-ws"]
            ) as ws,
        ):
            await ws.send_json({"type": "connection_init", "payload": {"token": token}})
            ack = await ws.receive(timeout=10)
            if ack.type != aiohttp.WSMsgType.TEXT:
                return _closed(ws, ack)
            await ws.send_json(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": LIVE, "variables": {"filters": filters}},
                }
            )
            config: list[str] | None = None
            events: dict[str, dict[str, Any]] = {}
            while config is None or len(events) < len(config):
                message = await ws.receive(timeout=15)
                if message.type != aiohttp.WSMsgType.TEXT:
                    return _closed(ws, message)
                body = json.loads(message.data)
                if body["type"] == "error":
                    reason = (body["payload"][0].get("extensions") or {}).get("reason")
                    return {"error": reason, "raw": body}
                if body["type"] == "complete":
                    return {"error": "complete", "raw": body}
                if body["type"] != "next":
                    continue
                if body["payload"].get("errors"):
                    return _live_errors(body["payload"]["errors"])
                event = body["payload"]["data"]["embedLive"]
                if event["type"] == "config":
                    config = [w["id"] for w in event["dashboard"]["widgets"]]
                elif event.get("widgetId") is not None:
                    events[event["widgetId"]] = event
                else:
                    return {"error": event["type"], "raw": event}
            await ws.send_json({"id": "1", "type": "complete"})
            return {"config": config, "events": events}

    # --- the comparison ----------------------------------------------------------------------

    def check(
        self,
        channel: str,
        org: FuzzOrg,
        outcomes: list[Outcome],
        moments: tuple[datetime, datetime],
        answer: Answer,
        what: str,
        *request: Any,
    ) -> None:
        """The answer must be the oracle's at the moment before or after the request (a
        period's window moves on the hour; both ends are computed)."""
        self.stats[channel] += 1
        expected = outcomes[0]
        if isinstance(expected, Refusal):
            self.stats[f"{channel} refused {min(expected.options)[0]}"] += 1
            if not expected.accepts(answer.status, answer.code):
                got = answer.points if answer.points is not None else (answer.status, answer.code)
                self.fail(
                    f"{channel} refusal by {'+'.join(expected.rules) or 'shape'}",
                    f"{what}: expected {expected.label}, got {got} {answer.detail}",
                    request,
                )
            return
        if answer.points is None:
            self.fail(
                f"{channel} refused",
                f"{what}: expected data, got {answer.status} {answer.code} {answer.detail}",
                request,
            )
            return
        candidates = [
            expected_points(org, outcome, moment)
            for outcome, moment in zip(outcomes, moments, strict=True)
            if isinstance(outcome, Read)
        ]
        if answer.points not in candidates:
            self.fail(
                f"{channel} values",
                f"{what}: {_difference(candidates[0], answer.points)}",
                request,
            )


def _escape_chars(value: Any) -> bool:
    if isinstance(value, str):
        return any(c in value for c in "\\\t\n\r\0")
    if isinstance(value, dict):
        return any(_escape_chars(k) or _escape_chars(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_escape_chars(v) for v in value)
    return False


def _difference(expected: list[Point], got: list[Point]) -> str:
    """Short: the totals and the first point that differs (answers can have 2,000 points)."""
    first = next(
        (i for i, pair in enumerate(zip(expected, got, strict=False)) if pair[0] != pair[1]),
        min(len(expected), len(got)),
    )
    return (
        f"expected {len(expected)} points (sum {sum(p[2] for p in expected)}), got {len(got)} "
        f"(sum {sum(p[2] for p in got)}); first difference at {first}: expected "
        f"{expected[first : first + 2]}, got {got[first : first + 2]}"
    )


def _closed(ws: aiohttp.ClientWebSocketResponse, message: aiohttp.WSMessage) -> dict[str, Any]:
    """A socket the server closed: its close reason is the refusal's code when it gives one."""
    reason = message.extra if isinstance(message.extra, str) and message.extra else None
    return {"error": reason or f"closed {ws.close_code}", "raw": str(message)}


def _live_errors(errors: list[dict[str, Any]]) -> dict[str, Any]:
    reason = (errors[0].get("extensions") or {}).get("reason")
    return {"error": reason, "raw": errors}


async def test_isolation_fuzz(make_client: ClientFactory, app_server: TestServer) -> None:
    rng = random.Random(SEED)  # noqa: S311  (a reproducible sample, not a secret)
    now = datetime.now(UTC)
    orgs = [await _make_org(make_client, rng, index, now) for index in range(len(ORG_PLANS))]
    fuzz = Fuzz(rng, app_server, await make_client(), orgs)
    started = time.monotonic()
    done = 0
    while done < REQUESTS:
        roll = rng.random()
        fresh = [s for s in fuzz.sessions if s.uses < SESSION_USES]
        fuzz.sessions = fresh
        if roll < 0.12 or not fresh:
            await fuzz.mint()
        elif roll < 0.35:
            await fuzz.rest_query()
        elif roll < 0.45:
            await fuzz.live(rng.choice(fresh))
        else:
            await fuzz.widget_data(rng.choice(fresh))
        done += 1
    elapsed = time.monotonic() - started
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(fuzz.stats.items()))
    print(f"\nisolation fuzz: seed {SEED}, {done} requests in {elapsed:.1f} s ({summary})")
    if fuzz.kinds:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(fuzz.kinds.items()))
        details = "\n".join([*fuzz.failures, *fuzz.escaped_failures][:MAX_REPORTED])
        pytest.fail(
            f"isolation fuzz (EMBAN_FUZZ_SEED={SEED}, EMBAN_FUZZ_REQUESTS={REQUESTS}) found "
            f"{sum(fuzz.kinds.values())} wrong answers ({kinds}):\n{details}",
            pytrace=False,
        )
