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

from emban.analytics.query_spec import QuerySpec, Scope
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


@dataclass(frozen=True)
class Probe:
    """What one rule asks of the engine; rules asking the same thing share a probe."""

    metric: str
    numeric_prop: str | None
    filters: tuple[tuple[str, str], ...]
    lookback: timedelta
    tenant_id: str | None
    per_tenant: bool

    @classmethod
    def of(
        cls, spec: QuerySpec, *, lookback: timedelta, tenant_id: str | None, per_tenant: bool
    ) -> Probe:
        return cls(spec.metric, spec.numeric_prop, spec.filters, lookback, tenant_id, per_tenant)


# Probes answered by one scan: every aggregate holds state per tenant, and exact quantiles
# keep their values, so a batch stays narrow.
BATCH_SIZE = 16


def plan_batch(probes: list[Probe], scope: Scope, event_name: str, *, now: datetime) -> AlertQuery:
    """One scan answering several probes of one (org, environment, event): per tenant and for
    the whole scope at once (``GROUPING SETS``), each probe's aggregates restricted to its own
    windows, filters and tenant with ``-If`` conditions."""
    params: dict[str, Any] = {
        "org": scope.org_id,
        "env": scope.environment_id,
        "event": event_name,
        "from": _dt(now - 2 * max(p.lookback for p in probes)),
        "to": _dt(now),
    }
    select = ["grouping(tenant_id) AS g", "tenant_id AS t"]
    for i, probe in enumerate(probes):
        start = now - probe.lookback
        params[f"p{i}_from"] = _dt(start - probe.lookback)
        params[f"p{i}_cur"] = _dt(start)
        base = [f"timestamp >= {{p{i}_from:DateTime64(3, 'UTC')}}"]
        if probe.tenant_id is not None:
            base.append(f"tenant_id = {{p{i}_tenant:String}}")
            params[f"p{i}_tenant"] = probe.tenant_id
        for j, (key, value) in enumerate(probe.filters):
            base.append(f"string_props[{{p{i}_fk{j}:String}}] = {{p{i}_fv{j}:String}}")
            params[f"p{i}_fk{j}"] = key
            params[f"p{i}_fv{j}"] = value
        if probe.numeric_prop is not None:
            params[f"p{i}_prop"] = probe.numeric_prop
        within = " AND ".join(base)
        current = f"{within} AND timestamp >= {{p{i}_cur:DateTime64(3, 'UTC')}}"
        previous = f"{within} AND timestamp < {{p{i}_cur:DateTime64(3, 'UTC')}}"
        template = _WINDOW_METRIC[probe.metric].replace("{prop:String}", f"{{p{i}_prop:String}}")
        select += [
            template.replace("{c}", current),
            template.replace("{c}", previous),
            f"countIf({current})",
            f"countIf({within})",
        ]
    where = [
        "org_id = {org:String}",
        "environment_id = {env:String}",
        "event_name = {event:String}",
        "timestamp >= {from:DateTime64(3, 'UTC')}",
        "timestamp < {to:DateTime64(3, 'UTC')}",
    ]
    sql = (
        f"SELECT {', '.join(select)} FROM {EVENTS} WHERE {' AND '.join(where)} "
        "GROUP BY GROUPING SETS ((tenant_id), ()) ORDER BY g, t"
    )
    return AlertQuery(sql=sql, params=params, per_tenant=True)


def _window_values(tenant: str | None, row: list[Any], at: int) -> WindowValues:
    return WindowValues(tenant, _number(row[at]), _number(row[at + 1]), int(row[at + 2]))


def read_batch(probes: list[Probe], rows: list[list[Any]]) -> list[list[WindowValues]]:
    """Each probe's rows, as :func:`read_rows` gives them for the probe's own query."""
    total = next((row for row in rows if int(row[0]) == 1), None)
    answers: list[list[WindowValues]] = []
    for i, probe in enumerate(probes):
        at = 2 + 4 * i
        if probe.per_tenant:
            answers.append(
                [
                    _window_values(str(row[1]), row, at)
                    for row in rows
                    if int(row[0]) == 0 and int(row[at + 3]) > 0
                ]
            )
        elif total is None:
            answers.append([WindowValues(None, None, None, 0)])
        else:
            answers.append([_window_values(None, total, at)])
    return answers
