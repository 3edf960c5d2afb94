"""The ``GET /v1/query`` query-string convention: named parameters plus ``f_<key>=value``
filters, validated into a :class:`~emban.analytics.query_spec.QuerySpec`.

A repeated filter (``f_model=a&f_model=b``) means "any of" (the model is ``a`` or ``b``): an IN
filter on that key, ANDed with the other filters. Any other repeated parameter is a 400 naming
it (it has no "any of" meaning, and using one of the values silently would answer another
question than the one asked).
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import MultiMapping

from emban.analytics.query_spec import QuerySpec, build_spec
from emban.errors import BadRequest

KNOWN = frozenset(
    {
        "event_name",
        "tenant_id",
        "metric",
        "period",
        "granularity",
        "group_by",
        "numeric_prop",
    }
)


def spec_from_params(params: MultiMapping[str] | Mapping[str, str]) -> QuerySpec:
    """``GET /v1/query`` parameters → spec (``f_<key>=value`` filters, ANDed; a repeated
    ``f_<key>`` is one "any of" filter)."""
    given: dict[str, list[str]] = {}
    for name, value in params.items():
        given.setdefault(name, []).append(value)
    filters: dict[str, object] = {}
    any_of: dict[str, list[str]] = {}
    for name, values in given.items():
        if name.startswith("f_") and len(name) > 2:
            if len(values) == 1:
                filters[name[2:]] = values[0]
            else:
                any_of[name[2:]] = values
        elif name not in KNOWN:
            raise BadRequest(f"unknown parameter {name}", field=name)
        elif len(values) > 1:
            raise BadRequest(f"{name} is given {len(values)} times; give it once", field=name)

    def one(name: str) -> str | None:
        values = given.get(name)
        return values[0] if values else None

    return build_spec(
        event_name=one("event_name"),
        metric=one("metric"),
        period=one("period"),
        granularity=one("granularity"),
        tenant_id=one("tenant_id"),
        group_by=one("group_by"),
        filters=filters,
        any_of=any_of,
        numeric_prop=one("numeric_prop"),
    )
