"""The browser runtime's filters (``setFilters``) and drill-downs, parsed into types; every
error a 400 naming the field."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from emban.analytics.query_spec import PERIODS, property_key
from emban.errors import BadRequest
from emban.services.embeds.permissions import MAX_ITEMS, MAX_RANGE_DAYS, _object, _string

_FILTER_KEYS = ("period", "dimensions", "numericRanges", "dateRanges")
_RANGE_KEYS = ("min", "max")
_DATE_KEYS = ("from", "to")


@dataclass(frozen=True)
class EmbedFilters:
    """The spec's ``setFilters`` payload, validated and in canonical (sorted) order."""

    period: str | None = None
    dimensions: tuple[tuple[str, str], ...] = ()
    numeric_ranges: tuple[tuple[str, float | None, float | None], ...] = ()
    date_range: tuple[datetime, datetime] | None = None

    @property
    def cohort_key(self) -> str:
        """Canonical JSON: equal filters give equal keys (live cohorts share one query)."""
        return json.dumps(
            [
                self.period,
                self.dimensions,
                self.numeric_ranges,
                [moment.isoformat() for moment in self.date_range] if self.date_range else None,
            ],
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class Drill:
    """A drill-down: one more dimension filter (needs ``allow_drill_down``)."""

    dimension: str
    value: str


def _bound(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{name} must be a number", field=name)
    return float(value)


def _moment(value: Any, name: str) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise BadRequest(f"{name} must be an ISO 8601 date-time", field=name)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date-time", field=name) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _sized(value: Any, name: str) -> dict[str, Any]:
    found = _object(value, name)
    if len(found) > MAX_ITEMS:
        raise BadRequest(f"{name}: at most {MAX_ITEMS} entries", field=name)
    return found


def parse_embed_filters(raw: Any) -> EmbedFilters:
    """``{period, dimensions: {dim: value}, numericRanges: {prop: {min?, max?}},
    dateRanges: {"timestamp": {"from", "to"}}}`` → :class:`EmbedFilters`; 400 naming the field.

    A ``null`` dimension value, date range or a range without bounds constrains nothing (the
    runtime clears a filter that way).
    """
    if raw is None:
        return EmbedFilters()
    given = _object(raw, "filters")
    for key in given:
        if key not in _FILTER_KEYS:
            raise BadRequest(
                f"filters.{key} is not a filter (use {', '.join(_FILTER_KEYS)})",
                field=f"filters.{key}",
            )
    period = given.get("period")
    if period is not None and period not in PERIODS:
        raise BadRequest(
            f"filters.period must be one of {', '.join(PERIODS)}", field="filters.period"
        )
    dimensions: list[tuple[str, str]] = []
    for key, value in _sized(given.get("dimensions") or {}, "filters.dimensions").items():
        name = f"filters.dimensions.{key}"
        property_key(key, name)
        if value is not None:
            dimensions.append((key, _string(value, name)))
    ranges: list[tuple[str, float | None, float | None]] = []
    for key, bounds in _sized(given.get("numericRanges") or {}, "filters.numericRanges").items():
        name = f"filters.numericRanges.{key}"
        property_key(key, name)
        if bounds is None:
            continue
        for bound in _object(bounds, name):
            if bound not in _RANGE_KEYS:
                raise BadRequest(f"{name}.{bound}: use min and max", field=f"{name}.{bound}")
        low = _bound(bounds.get("min"), f"{name}.min")
        high = _bound(bounds.get("max"), f"{name}.max")
        if low is not None and high is not None and low > high:
            raise BadRequest(f"{name}: min must not be above max", field=name)
        if low is not None or high is not None:
            ranges.append((key, low, high))
    date_range: tuple[datetime, datetime] | None = None
    for key, bounds in _object(given.get("dateRanges") or {}, "filters.dateRanges").items():
        name = f"filters.dateRanges.{key}"
        if key != "timestamp":
            raise BadRequest(f"{name}: only timestamp can be ranged", field=name)
        if bounds is None:
            continue
        for bound in _object(bounds, name):
            if bound not in _DATE_KEYS:
                raise BadRequest(f"{name}.{bound}: use from and to", field=f"{name}.{bound}")
        start = _moment(bounds.get("from"), f"{name}.from")
        end = _moment(bounds.get("to"), f"{name}.to")
        if start >= end:
            raise BadRequest(f"{name}: from must be before to", field=name)
        if end - start > timedelta(days=MAX_RANGE_DAYS):
            raise BadRequest(f"{name}: at most {MAX_RANGE_DAYS} days", field=name)
        date_range = (start, end)
    return EmbedFilters(
        period=period,
        dimensions=tuple(sorted(dimensions)),
        numeric_ranges=tuple(sorted(ranges, key=lambda r: r[0])),
        date_range=date_range,
    )
