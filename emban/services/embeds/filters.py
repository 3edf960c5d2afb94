"""The browser runtime's filters (``setFilters``) and drill-downs, as types.

The payload ``{period, dimensions: {dim: value}, numericRanges: {prop: {min?, max?}},
dateRanges: {"timestamp": {"from", "to"}}}`` is decoded by msgspec into :class:`FiltersPayload`
(constraints in the types, every refusal a 400 naming the field: :data:`RULES`), then into the
canonical :class:`EmbedFilters` the enforcement and the live cohorts use.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from emban.analytics.query_spec import MAX_NAME, PERIODS, Period, is_property_key
from emban.auth.embed_permissions import KEY_RULE, MAX_ITEMS, MAX_RANGE_DAYS
from emban.timestamps import utc_moment
from emban.wire import FieldRule, Rules, decode

MAX_MOMENT = 64  # characters of an ISO 8601 date-time
DateRangeKey = Literal["timestamp"]


class EmbedFilters(msgspec.Struct, frozen=True, kw_only=True):
    """The spec's ``setFilters`` payload, validated and in canonical (sorted) order."""

    period: Period | None = None
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


class Drill(msgspec.Struct, frozen=True):
    """A drill-down: one more dimension filter (needs ``allow_drill_down``)."""

    dimension: str
    value: str


# --- the wire payload -------------------------------------------------------------------------


class NumericRange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``{min?, max?}``, inclusive; no bound: open."""

    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        for name in ("min", "max"):
            bound = getattr(self, name)
            if bound is not None and not math.isfinite(bound):
                raise FieldRule(name, " must be a number")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise FieldRule("", ": min must not be above max")


class DateRange(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename={"start": "from", "end": "to"}
):
    """``{"from", "to"}``: ISO 8601 date-times (a date alone is its midnight; no zone: UTC)."""

    start: Annotated[str, Meta(max_length=MAX_MOMENT)]
    end: Annotated[str, Meta(max_length=MAX_MOMENT)]

    def __post_init__(self) -> None:
        start, end = self.window
        if start >= end:
            raise FieldRule("", ": from must be before to")
        if end - start > timedelta(days=MAX_RANGE_DAYS):
            raise FieldRule("", f": at most {MAX_RANGE_DAYS} days")

    @property
    def window(self) -> tuple[datetime, datetime]:
        return _moment(self.start, "from"), _moment(self.end, "to")


def _moment(value: str, name: str) -> datetime:
    moment = utc_moment(value)
    if moment is None:
        raise FieldRule(name, " must be an ISO 8601 date-time")
    return moment


Value = Annotated[str, Meta(max_length=MAX_NAME)]


class FiltersPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the runtime sends. A ``null`` dimension value, date range or a range without bounds
    constrains nothing (the runtime clears a filter that way)."""

    period: Period | None = None
    dimensions: Annotated[dict[str, Value | None], Meta(max_length=MAX_ITEMS)] | None = None
    numericRanges: Annotated[dict[str, NumericRange | None], Meta(max_length=MAX_ITEMS)] | None = (
        None
    )
    dateRanges: dict[str, DateRange | None] | None = None

    def __post_init__(self) -> None:
        for key in self.dimensions or {}:
            if not is_property_key(key):
                raise FieldRule(f"dimensions.{key}", KEY_RULE)
        for key in self.numericRanges or {}:
            if not is_property_key(key):
                raise FieldRule(f"numericRanges.{key}", KEY_RULE)
        for key in self.dateRanges or {}:
            if key != "timestamp":
                raise FieldRule(f"dateRanges.{key}", ": only timestamp can be ranged")

    def filters(self) -> EmbedFilters:
        ranges = [
            (key, bounds.min, bounds.max)
            for key, bounds in (self.numericRanges or {}).items()
            if bounds is not None and (bounds.min is not None or bounds.max is not None)
        ]
        timestamp = (self.dateRanges or {}).get("timestamp")
        return EmbedFilters(
            period=self.period,
            dimensions=tuple(
                sorted((k, v) for k, v in (self.dimensions or {}).items() if v is not None)
            ),
            numeric_ranges=tuple(sorted(ranges, key=lambda r: r[0])),
            date_range=timestamp.window if timestamp is not None else None,
        )


_OBJECT = " must be an object"
RULES = Rules(
    messages={
        "": _OBJECT,
        "period": f" must be one of {', '.join(PERIODS)}",
        "dimensions": {"default": f": at most {MAX_ITEMS} entries", "type": _OBJECT},
        "dimensions.*": f" must be a string of at most {MAX_NAME} characters",
        "numericRanges": {"default": f": at most {MAX_ITEMS} entries", "type": _OBJECT},
        "numericRanges.*": _OBJECT,
        "numericRanges.*.min": " must be a number",
        "numericRanges.*.max": " must be a number",
        "dateRanges": _OBJECT,
        "dateRanges.*": _OBJECT,
        "dateRanges.*.from": " must be an ISO 8601 date-time",
        "dateRanges.*.to": " must be an ISO 8601 date-time",
    },
    unknown={
        "": " is not a filter (use period, dimensions, numericRanges, dateRanges)",
        "numericRanges.*": ": use min and max",
        "dateRanges.*": ": use from and to",
    },
    maps={
        "dimensions": Value | None,
        "numericRanges": NumericRange | None,
        "dateRanges": DateRange | None,
    },
)


def parse_embed_filters(raw: object) -> EmbedFilters:
    """The runtime's filters payload → :class:`EmbedFilters`; 400 naming the field."""
    if raw is None:
        return EmbedFilters()
    payload: FiltersPayload = decode(raw, FiltersPayload, "filters", RULES)
    return payload.filters()
