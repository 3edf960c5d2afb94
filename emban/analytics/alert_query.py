"""The one engine query an alert rule costs per evaluation.

A rule compares a widget's metric over ``[now - lookback, now)``; ``delta`` also needs the
previous window of the same length. Both windows come from one scan of raw events over
``[now - 2 * lookback, now)`` with ``-If`` aggregates, and a ``per_tenant`` rule adds
``GROUP BY tenant_id``, so a rule costs one query however many tenants it watches.

Values travel as parameters (byte-exact, see ``store.param_text``); identifiers are constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from emban.analytics.planner import QuerySpec, Scope
from emban.analytics.tables import EVENTS

_HAS_PROP = "mapContains(numeric_props, {prop:String})"
_VALUE = "numeric_props[{prop:String}]"
# The widget metric restricted to a window condition ``{c}``.
_WINDOW_METRIC = {
    "count": "countIf({c})",
    "count_unique": "uniqExactIf(user_id, user_id != '' AND {c})",
    "count_unique_approx": "uniqCombined64If(user_id, user_id != '' AND {c})",
    "sum": f"sumIf({_VALUE}, {_HAS_PROP} AND {{c}})",
    "avg": f"avgIf({_VALUE}, {_HAS_PROP} AND {{c}})",
    "p95": f"quantileExactIf(0.95)({_VALUE}, {_HAS_PROP} AND {{c}})",
    "p99": f"quantileExactIf(0.99)({_VALUE}, {_HAS_PROP} AND {{c}})",
}
_CURRENT = "timestamp >= {cur:DateTime64(3, 'UTC')}"
_PREVIOUS = "timestamp < {cur:DateTime64(3, 'UTC')}"


@dataclass(frozen=True)
class AlertQuery:
    sql: str
    params: dict[str, Any]
    per_tenant: bool


@dataclass(frozen=True)
class WindowValues:
    """One row of the answer: ``current``/``previous`` are None where the metric has no value
    (an average of no events), ``matching`` counts the current window's matching events."""

    tenant_id: str | None
    current: float | None
    previous: float | None
    matching: int


def _dt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def plan_alert(
    spec: QuerySpec,
    scope: Scope,
    *,
    now: datetime,
    lookback: timedelta,
    tenant_id: str | None,
    per_tenant: bool,
) -> AlertQuery:
    current_start = now - lookback
    params: dict[str, Any] = {
        "org": scope.org_id,
        "env": scope.environment_id,
        "event": spec.event_name,
        "from": _dt(current_start - lookback),
        "cur": _dt(current_start),
        "to": _dt(now),
    }
    where = [
        "org_id = {org:String}",
        "environment_id = {env:String}",
        "event_name = {event:String}",
        "timestamp >= {from:DateTime64(3, 'UTC')}",
        "timestamp < {to:DateTime64(3, 'UTC')}",
    ]
    if tenant_id is not None:
        where.append("tenant_id = {tenant:String}")
        params["tenant"] = tenant_id
    if spec.numeric_prop is not None:
        params["prop"] = spec.numeric_prop
    for index, (key, value) in enumerate(spec.filters):
        where.append(f"string_props[{{fk{index}:String}}] = {{fv{index}:String}}")
        params[f"fk{index}"] = key
        params[f"fv{index}"] = value
    template = _WINDOW_METRIC[spec.metric]
    select = [
        "tenant_id AS t" if per_tenant else "'' AS t",
        template.replace("{c}", _CURRENT) + " AS cur",
        template.replace("{c}", _PREVIOUS) + " AS prev",
        f"countIf({_CURRENT}) AS n",
    ]
    sql = f"SELECT {', '.join(select)} FROM {EVENTS} WHERE {' AND '.join(where)}"
    if per_tenant:
        sql += " GROUP BY t ORDER BY t"
    return AlertQuery(sql=sql, params=params, per_tenant=per_tenant)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def read_rows(query: AlertQuery, rows: list[list[Any]]) -> list[WindowValues]:
    return [
        WindowValues(
            tenant_id=str(row[0]) if query.per_tenant else None,
            current=_number(row[1]),
            previous=_number(row[2]),
            matching=int(row[3]),
        )
        for row in rows
    ]
