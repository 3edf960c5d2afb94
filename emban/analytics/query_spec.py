"""The query spec: what one analytics query asks for, and its validation.

:func:`build_spec` validates ``GET /v1/query`` parameters (through
:mod:`emban.rest_compat.query_params`), GraphQL query inputs and widget query configs alike;
every error is a 400 naming the field. The planner (:mod:`emban.analytics.planner`) takes a
valid :class:`QuerySpec` and a :class:`Scope`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from emban.errors import BadRequest

Metric = Literal["count", "count_unique", "count_unique_approx", "sum", "avg", "p95", "p99"]
Period = Literal["1h", "24h", "7d", "30d", "90d"]
Granularity = Literal["hour", "day", "week", "month"]

METRICS: tuple[str, ...] = get_args(Metric)
PERIODS: tuple[str, ...] = get_args(Period)
GRANULARITIES: tuple[str, ...] = get_args(Granularity)
NUMERIC_METRICS = frozenset({"sum", "avg", "p95", "p99"})
COUNT_METRICS = frozenset({"count", "count_unique", "count_unique_approx"})

PERIOD_LENGTH: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
MAX_NAME = 200
MAX_ANY_OF = 50  # values of one "any of" filter
_KEY = re.compile(r"^[A-Za-z0-9_.:\-/]{1,64}$")


@dataclass(frozen=True)
class Scope:
    """Whose rows a query may read: always one org and one environment."""

    org_id: str
    environment_id: str


@dataclass(frozen=True)
class QuerySpec:
    event_name: str
    metric: Metric
    period: Period
    granularity: Granularity
    tenant_id: str | None = None
    group_by: str | None = None
    filters: tuple[tuple[str, str], ...] = ()
    numeric_prop: str | None = None
    # Embed filters: numeric property ranges (key, min, max; inclusive, None = open), an explicit
    # [from, to) window instead of the period, and one total for the whole window (metric
    # widgets). Each of the first two sends the query to raw events.
    numeric_ranges: tuple[tuple[str, float | None, float | None], ...] = ()
    date_range: tuple[datetime, datetime] | None = None
    total: bool = False
    # 1 = the period before the current one (metric widgets' "change vs previous period").
    periods_back: int = 0
    # "Any of" filters, ANDed with ``filters``: the key's value is one of the values (at least
    # two, sorted; a repeated ``f_<key>`` of ``GET /v1/query``). Kept apart from ``filters`` so
    # that two filters on one key keep meaning "both" (an embed lock ANDed to a widget filter).
    any_of: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def dimensions(self) -> frozenset[str]:
        dims = {key for key, _ in self.filters} | {key for key, _ in self.any_of}
        if self.group_by is not None:
            dims.add(self.group_by)
        return frozenset(dims)


def default_granularity(period: str) -> Granularity:
    return "hour" if period in ("1h", "24h") else "day"


def _name(value: object, param: str, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise BadRequest(f"{param} is required", field=param)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{param} must be a string", field=param)
    if len(value) > MAX_NAME:
        raise BadRequest(f"{param} must be at most {MAX_NAME} characters", field=param)
    return value


def _key(value: str, param: str) -> str:
    if not _KEY.match(value):
        raise BadRequest(
            f"{param} must be a property key of letters, digits and _ . : - / (max 64)",
            field=param,
        )
    return value


def is_property_key(value: str) -> bool:
    """Letters, digits and _ . : - /, 1 to 64 of them."""
    return _KEY.match(value) is not None


def property_key(value: str, param: str) -> str:
    """A string or numeric property key (letters, digits and _ . : - /, at most 64), else 400."""
    return _key(value, param)


def build_spec(
    *,
    event_name: object,
    metric: object,
    period: object,
    granularity: object = None,
    tenant_id: object = None,
    tenant_required: bool = True,
    group_by: object = None,
    filters: Mapping[str, object] | None = None,
    any_of: Mapping[str, Sequence[object]] | None = None,
    numeric_prop: object = None,
    field_prefix: str = "",
) -> QuerySpec:
    """Validate query fields into a spec; every error is a 400 naming the field.

    The same function validates ``GET /v1/query`` parameters and widget query configs.
    ``any_of`` (``/v1/query`` only) maps a key to the values it may take; one distinct value is
    an ordinary filter.
    """
    p = field_prefix
    event = _name(event_name, f"{p}event_name", required=True)
    tenant = _name(tenant_id, f"{p}tenant_id", required=tenant_required)
    if metric is None or metric == "":
        raise BadRequest(f"{p}metric is required", field=f"{p}metric")
    if metric not in METRICS:
        raise BadRequest(f"{p}metric must be one of {', '.join(METRICS)}", field=f"{p}metric")
    if period is None or period == "":
        raise BadRequest(f"{p}period is required", field=f"{p}period")
    if period not in PERIODS:
        raise BadRequest(f"{p}period must be one of {', '.join(PERIODS)}", field=f"{p}period")
    if granularity is None or granularity == "":
        gran: str = default_granularity(str(period))
    elif granularity not in GRANULARITIES:
        raise BadRequest(
            f"{p}granularity must be one of {', '.join(GRANULARITIES)}", field=f"{p}granularity"
        )
    else:
        gran = str(granularity)
    group = _name(group_by, f"{p}group_by", required=False)
    if group is not None:
        _key(group, f"{p}group_by")
    prop = _name(numeric_prop, f"{p}numeric_prop", required=metric in NUMERIC_METRICS)
    if prop is not None:
        _key(prop, f"{p}numeric_prop")
    pairs: list[tuple[str, str]] = []
    for key, value in sorted((filters or {}).items()):
        name = f"{p}f_{key}" if not p else f"{p}filters.{key}"
        _key(key, name)
        pairs.append((key, _filter_value(value, name)))
    choices: list[tuple[str, tuple[str, ...]]] = []
    for key, values in sorted((any_of or {}).items()):
        name = f"{p}f_{key}" if not p else f"{p}filters.{key}"
        _key(key, name)
        if key in (filters or {}):
            raise BadRequest(f"{name} is given twice", field=name)
        distinct = sorted({_filter_value(value, name) for value in values})
        if not distinct:
            raise BadRequest(f"{name} needs a value", field=name)
        if len(distinct) > MAX_ANY_OF:
            raise BadRequest(f"{name}: at most {MAX_ANY_OF} values", field=name)
        if len(distinct) == 1:
            pairs.append((key, distinct[0]))
        else:
            choices.append((key, tuple(distinct)))
    pairs.sort()
    return QuerySpec(
        event_name=str(event),
        metric=metric,  # type: ignore[arg-type]
        period=period,  # type: ignore[arg-type]
        granularity=gran,  # type: ignore[arg-type]
        tenant_id=tenant,
        group_by=group,
        filters=tuple(pairs),
        numeric_prop=prop if metric in NUMERIC_METRICS else None,
        any_of=tuple(choices),
    )


def _filter_value(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", field=name)
    if len(value) > MAX_NAME:
        raise BadRequest(f"{name} must be at most {MAX_NAME} characters", field=name)
    return value
