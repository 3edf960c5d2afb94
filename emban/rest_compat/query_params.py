"""The ``GET /v1/query`` query-string convention: named parameters plus ``f_<key>=value``
filters, validated into a :class:`~emban.analytics.query_spec.QuerySpec`."""

from __future__ import annotations

from collections.abc import Mapping

from emban.analytics.query_spec import QuerySpec, build_spec
from emban.errors import BadRequest


def spec_from_params(params: Mapping[str, str]) -> QuerySpec:
    """``GET /v1/query`` parameters → spec (``f_<dim>=value`` filters, ANDed)."""
    known = {
        "event_name",
        "tenant_id",
        "metric",
        "period",
        "granularity",
        "group_by",
        "numeric_prop",
    }
    filters: dict[str, object] = {}
    for name, value in params.items():
        if name.startswith("f_") and len(name) > 2:
            filters[name[2:]] = value
        elif name not in known:
            raise BadRequest(f"unknown parameter {name}", field=name)
    return build_spec(
        event_name=params.get("event_name"),
        metric=params.get("metric"),
        period=params.get("period"),
        granularity=params.get("granularity"),
        tenant_id=params.get("tenant_id"),
        group_by=params.get("group_by"),
        filters=filters,
        numeric_prop=params.get("numeric_prop"),
    )
