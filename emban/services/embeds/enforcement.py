"""Where an embed session's permissions are enforced: every filter, drill and widget query a
viewer asks for is checked here (the table: docs/embedding-api.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from emban.analytics.planner import window
from emban.analytics.query_spec import (
    GRANULARITIES,
    MAX_NAME,
    NUMERIC_METRICS,
    PERIOD_LENGTH,
    PERIODS,
    QuerySpec,
    default_granularity,
    property_key,
)
from emban.auth.principal import EmbedGrant
from emban.error_codes import EmbedErrorCode
from emban.errors import BadRequest, Forbidden
from emban.services.embeds.filters import Drill, EmbedFilters
from emban.services.embeds.permissions import EmbedPermissions
from emban.services.widget_config import (
    MetricWidget,
    QueryWidget,
    TextWidget,
    Widget,
    spec_of,
)

MAX_BUCKETS = 1_000  # a changed window keeps the widget's granularity up to this many buckets
_BUCKET = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
}


@dataclass(frozen=True)
class Exposure:
    """What the published dashboard lets a session measure beyond its own widgets.

    ``numeric``: the numeric properties its visible widgets measure (``numeric_prop`` of a
    sum/avg/p95/p99 widget); a viewer may range those, since their values are shown anyway.
    ``hidden_only``: property keys (numeric property, filter keys, group-by) that only hidden
    widgets use. Those are never filterable, rangeable or drillable, whatever the other
    permissions say: bisecting ``numericRanges.revenue`` on a visible count widget (or filtering
    it by a hidden widget's filter) would otherwise rebuild the hidden widget's numbers.

    The empty value allows no numeric range and protects no key: it is only right for a
    dashboard without query widgets.
    """

    numeric: frozenset[str] = frozenset()
    hidden_only: frozenset[str] = frozenset()


def exposure_of(widgets: Sequence[Widget], hidden: frozenset[str] | set[str]) -> Exposure:
    """The :class:`Exposure` of a dashboard's widgets (every one, hidden ones included)."""
    numeric: set[str] = set()
    visible_keys: set[str] = set()
    hidden_keys: set[str] = set()
    for widget in widgets:
        if isinstance(widget, TextWidget):
            continue
        # A hidden widget protects every key it names; a visible one exposes only what it
        # really reads (a metric ignores group_by; a count has no numeric_prop).
        query = widget.query
        filters = set(query.filters)
        group_by = query.group_by
        named = query.numeric_prop
        prop = named if query.metric in NUMERIC_METRICS else None
        if widget.id in hidden:
            hidden_keys |= filters | {k for k in (group_by, named) if k}
        else:
            shown_group = group_by if not isinstance(widget, MetricWidget) else None
            visible_keys |= filters | {k for k in (shown_group, prop) if k}
            if prop:
                numeric.add(prop)
    return Exposure(frozenset(numeric), frozenset(hidden_keys - visible_keys))


def _forbidden(
    message: str, name: str, code: EmbedErrorCode = EmbedErrorCode.embed_filter_forbidden
) -> Forbidden:
    return Forbidden(message, code=code, field=name)


def _period(own: str, requested: str | None, permissions: EmbedPermissions) -> str:
    if requested is not None:
        if not permissions.allows_period(requested):
            raise _forbidden(f"period {requested} is not allowed in this embed", "filters.period")
        return requested
    if permissions.allows_period(own):
        return own
    if permissions.allowed_periods:
        return permissions.allowed_periods[0]
    return [p for p in PERIODS if permissions.allows_period(p)][-1]  # 24h always fits a day


def _granularity(own: str, period: str, span: timedelta, *, aligned: bool) -> str:
    """The widget's granularity for a changed window: not coarser than the period's default
    (a day-bucketed widget asked for 24h answers hourly), coarsened past :data:`MAX_BUCKETS`."""
    index = GRANULARITIES.index(own)
    if aligned:
        index = min(index, GRANULARITIES.index(default_granularity(period)))
    while index < len(GRANULARITIES) - 1 and span / _BUCKET[GRANULARITIES[index]] > MAX_BUCKETS:
        index += 1
    return GRANULARITIES[index]


def _check_dimension(
    key: str, value: str, permissions: EmbedPermissions, exposure: Exposure, name: str
) -> None:
    locked = permissions.locked_filters
    if key in locked:
        if value != locked[key]:
            raise _forbidden(f"{key} is locked to {locked[key]!r} in this embed", name)
        return  # the same value as the lock adds nothing
    # One message for every refused key: saying "a hidden widget uses it" would itself tell the
    # viewer which keys the hidden widgets use.
    if (permissions.allowed_dimensions and key not in permissions.allowed_dimensions) or (
        key in exposure.hidden_only
    ):
        raise _forbidden(f"filtering by {key} is not allowed in this embed", name)


def _check_numeric_range(
    key: str, permissions: EmbedPermissions, exposure: Exposure, name: str
) -> None:
    """A range on a numeric property measures its values (bisecting it recovers each one), so it
    is allowed only on what the session already sees measured or was explicitly granted."""
    shown = key in exposure.numeric
    granted = key in permissions.allowed_dimensions and key not in exposure.hidden_only
    if not (shown or granted):
        raise _forbidden(f"numeric ranges on {key} are not allowed in this embed", name)


def _period_window(period: str, now: datetime) -> tuple[datetime, datetime]:
    """The [start, end) a period shows at its default granularity (the planner's window)."""
    probe = QuerySpec(
        event_name="-",
        metric="count",
        period=period,  # type: ignore[arg-type]  # one of PERIODS
        granularity=default_granularity(period),
    )
    return window(probe, now)


def date_range_bounds(
    permissions: EmbedPermissions, now: datetime
) -> list[tuple[str, datetime, datetime]]:
    """Each window a date range must lie in, with the words the refusal uses.

    ``allowed_periods``: the window of the longest allowed period, measured back from now as the
    period itself would show it (whole hours for 1h/24h, whole days otherwise).
    ``max_date_range_days``: the last that many days, measured back from the start of the current
    hour to its end (so a client clock a few seconds behind still fits); the length is bounded
    separately.
    """
    bounds: list[tuple[str, datetime, datetime]] = []
    if permissions.allowed_periods:
        longest = max(permissions.allowed_periods, key=lambda p: PERIOD_LENGTH[p])
        start, end = _period_window(longest, now)
        bounds.append((f"the last {longest} (the longest allowed period)", start, end))
    if permissions.max_date_range_days is not None:
        days = permissions.max_date_range_days
        hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        bounds.append(
            (
                f"the last {days} days",
                hour - timedelta(days=days),
                hour + timedelta(hours=1),
            )
        )
    return bounds


def check_embed_filters(
    filters: EmbedFilters,
    permissions: EmbedPermissions,
    exposure: Exposure,
    drill: Drill | None = None,
    *,
    now: datetime | None = None,
) -> None:
    """Every permission against every way the viewer narrows or widens the data (the table in
    docs/embedding-api.md): period, dimensions, numeric ranges, date ranges and drill. 403
    ``embed_filter_forbidden`` / ``embed_drill_forbidden`` naming the field.

    Used by GraphQL ``embed.widgetData`` and by ``embedLive`` (when it subscribes and on every
    recompute), through :func:`embed_spec`; the widget's own ``group_by`` is checked there.
    """
    if filters.period is not None and not permissions.allows_period(filters.period):
        raise _forbidden(f"period {filters.period} is not allowed in this embed", "filters.period")
    for key, value in filters.dimensions:
        _check_dimension(key, value, permissions, exposure, f"filters.dimensions.{key}")
    for key, _, _ in filters.numeric_ranges:
        _check_numeric_range(key, permissions, exposure, f"filters.numericRanges.{key}")
    if filters.date_range is not None:
        start, end = filters.date_range
        name = "filters.dateRanges.timestamp"
        limit = permissions.max_date_range_days
        if limit is not None and end - start > timedelta(days=limit):
            raise _forbidden(
                f"date ranges longer than {limit} days are not allowed in this embed", name
            )
        for words, earliest, latest in date_range_bounds(permissions, now or datetime.now(UTC)):
            outside = f"{name}.from" if start < earliest else f"{name}.to" if end > latest else None
            if outside is not None:
                raise _forbidden(f"date ranges must lie within {words} in this embed", outside)
    if drill is not None:
        if not permissions.allow_drill_down:
            raise _forbidden(
                "drill-down is not allowed in this embed",
                "drill",
                EmbedErrorCode.embed_drill_forbidden,
            )
        property_key(drill.dimension, "drill.dimension")
        value = drill.value
        if len(value) > MAX_NAME:
            raise BadRequest(
                f"drill.value must be a string of at most {MAX_NAME} characters",
                field="drill.value",
            )
        _check_dimension(drill.dimension, value, permissions, exposure, "drill.dimension")


def embed_spec(
    widget: QueryWidget,
    grant: EmbedGrant,
    filters: EmbedFilters,
    drill: Drill | None = None,
    *,
    exposure: Exposure,
    now: datetime | None = None,
) -> QuerySpec:
    """The query one (visible, non-text) widget runs for this grant and these filters.

    Every permission is enforced here (:func:`check_embed_filters`, then the widget's own
    ``group_by``); the tenant is the grant's whatever the filters say. ``exposure`` is the
    published dashboard's (:attr:`EmbedDashboard.exposure`).
    """
    permissions = grant.permissions
    check_embed_filters(filters, permissions, exposure, drill, now=now)
    base = spec_of(widget, grant.tenant_id)
    period = _period(base.period, filters.period, permissions)
    pairs = {*base.filters, *filters.dimensions, *permissions.locked_filters.items()}
    if drill is not None:
        pairs.add((drill.dimension, drill.value))
    group_by = base.group_by
    if (
        not isinstance(widget, MetricWidget)
        and group_by is not None
        and permissions.allowed_dimensions
        and group_by not in permissions.allowed_dimensions
        and group_by not in permissions.locked_filters
    ):
        raise _forbidden(f"this widget groups by {group_by}, not allowed in this embed", "group_by")
    granularity: str = base.granularity
    if filters.date_range is not None:
        span = filters.date_range[1] - filters.date_range[0]
        granularity = _granularity(granularity, period, span, aligned=False)
    elif period != base.period:
        granularity = _granularity(granularity, period, PERIOD_LENGTH[period], aligned=True)
    return replace(
        base,
        period=period,  # type: ignore[arg-type]  # one of PERIODS
        granularity=granularity,  # type: ignore[arg-type]  # one of GRANULARITIES
        filters=tuple(sorted(pairs)),
        numeric_ranges=filters.numeric_ranges,
        date_range=filters.date_range,
    )
