"""Widget config: ``{id, kind, title, query, viz, layout}``, validated on every write.

``query`` is validated by the same code as ``GET /v1/query`` (``query_spec.build_spec``) without
``tenant_id`` (the embed session supplies it); ``f_<dim>`` filters are a ``filters`` object.
Every error is a 400 naming the field, e.g. ``widgets[2].query.metric``.
"""

from __future__ import annotations

import re
from typing import Any

from emban.analytics.query_spec import QuerySpec, build_spec
from emban.errors import BadRequest
from emban.services.validation import require_storable

KINDS = ("metric", "timeseries", "breakdown", "table", "text")
VIZ_TYPES = ("number", "line", "area", "bar", "stacked_bar", "pie", "donut", "table")
# Which chart types make sense for which kind of widget.
VIZ_FOR_KIND: dict[str, tuple[str, ...]] = {
    "metric": ("number",),
    "timeseries": ("line", "area", "bar", "stacked_bar", "table"),
    "breakdown": ("bar", "stacked_bar", "pie", "donut", "table"),
    "table": ("table",),
}
GRID_COLUMNS = 12
MAX_HEIGHT = 48
MAX_WIDGETS = 50
MAX_TEXT = 20_000
_WIDGET_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_QUERY_FIELDS = {
    "event_name",
    "metric",
    "period",
    "granularity",
    "group_by",
    "filters",
    "numeric_prop",
}
_WIDGET_FIELDS = {"id", "kind", "title", "query", "viz", "layout", "text", "description"}


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{field} must be an object", field=field)
    return value


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{field} must be a whole number from {low} to {high}", field=field)
    return value


def validate_query(raw: Any, field: str) -> tuple[dict[str, Any], QuerySpec]:
    query = _object(raw, field)
    for key in query:
        if key not in _QUERY_FIELDS:
            raise BadRequest(f"{field}.{key} is not a query field", field=f"{field}.{key}")
    filters = query.get("filters") or {}
    _object(filters, f"{field}.filters")
    spec = build_spec(
        event_name=query.get("event_name"),
        metric=query.get("metric"),
        period=query.get("period"),
        granularity=query.get("granularity"),
        tenant_required=False,
        group_by=query.get("group_by"),
        filters=filters,
        numeric_prop=query.get("numeric_prop"),
        field_prefix=f"{field}.",
    )
    clean: dict[str, Any] = {
        "event_name": spec.event_name,
        "metric": spec.metric,
        "period": spec.period,
        "granularity": spec.granularity,
    }
    if spec.group_by is not None:
        clean["group_by"] = spec.group_by
    if spec.filters:
        clean["filters"] = dict(spec.filters)
    if spec.numeric_prop is not None:
        clean["numeric_prop"] = spec.numeric_prop
    return clean, spec


def validate_widget(raw: Any, field: str = "widget") -> dict[str, Any]:
    """One widget config → its normalized form (unknown fields refused)."""
    widget = _object(raw, field)
    for key in widget:
        if key not in _WIDGET_FIELDS:
            raise BadRequest(f"{field}.{key} is not a widget field", field=f"{field}.{key}")
    widget_id = widget.get("id")
    if not isinstance(widget_id, str) or not _WIDGET_ID.match(widget_id):
        raise BadRequest(f"{field}.id must be 1-64 letters, digits, _ or -", field=f"{field}.id")
    kind = widget.get("kind")
    if kind not in KINDS:
        raise BadRequest(f"{field}.kind must be one of {', '.join(KINDS)}", field=f"{field}.kind")
    title = widget.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise BadRequest(f"{field}.title must be 1-200 characters", field=f"{field}.title")
    clean: dict[str, Any] = {"id": widget_id, "kind": kind, "title": title.strip()}
    if isinstance(widget.get("description"), str):
        clean["description"] = widget["description"][:1000]
    if kind == "text":
        text = widget.get("text")
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise BadRequest(
                f"{field}.text must be markdown of at most {MAX_TEXT} characters",
                field=f"{field}.text",
            )
        if widget.get("query") is not None:
            raise BadRequest(f"{field}.query: text widgets have no query", field=f"{field}.query")
        clean["text"] = text
        clean["query"] = None
        clean["viz"] = {"type": "text"}
    else:
        query, spec = validate_query(widget.get("query"), f"{field}.query")
        if kind == "breakdown" and spec.group_by is None:
            raise BadRequest(
                f"{field}.query.group_by is required for a breakdown",
                field=f"{field}.query.group_by",
            )
        clean["query"] = query
        viz = dict(_object(widget.get("viz"), f"{field}.viz"))
        viz_type = viz.get("type")
        if viz_type not in VIZ_TYPES:
            raise BadRequest(
                f"{field}.viz.type must be one of {', '.join(VIZ_TYPES)}",
                field=f"{field}.viz.type",
            )
        if viz_type not in VIZ_FOR_KIND[kind]:
            raise BadRequest(
                f"{field}.viz.type {viz_type} does not fit a {kind} widget "
                f"(use {', '.join(VIZ_FOR_KIND[kind])})",
                field=f"{field}.viz.type",
            )
        clean["viz"] = viz
    layout = _object(widget.get("layout"), f"{field}.layout")
    x = _int(layout.get("x"), f"{field}.layout.x", 0, GRID_COLUMNS - 1)
    w = _int(layout.get("w"), f"{field}.layout.w", 1, GRID_COLUMNS)
    if x + w > GRID_COLUMNS:
        raise BadRequest(
            f"{field}.layout: x + w must be at most {GRID_COLUMNS}", field=f"{field}.layout.w"
        )
    y = _int(layout.get("y"), f"{field}.layout.y", 0, 10_000)
    h = _int(layout.get("h"), f"{field}.layout.h", 1, MAX_HEIGHT)
    clean["layout"] = {"x": x, "y": y, "w": w, "h": h}
    require_storable(clean, field)
    return clean


def validate_widgets(raw: Any, field: str = "widgets") -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest(f"{field} must be a list", field=field)
    if len(raw) > MAX_WIDGETS:
        raise BadRequest(f"{field}: at most {MAX_WIDGETS} widgets", field=field)
    widgets = [validate_widget(w, f"{field}[{i}]") for i, w in enumerate(raw)]
    seen: set[str] = set()
    for index, widget in enumerate(widgets):
        if widget["id"] in seen:
            raise BadRequest(
                f"{field}[{index}].id {widget['id']!r} is used twice", field=f"{field}[{index}].id"
            )
        seen.add(widget["id"])
    return widgets


def spec_of(widget: dict[str, Any], tenant_id: str | None) -> QuerySpec:
    """The query spec of a stored (already validated) widget, for one tenant (or all)."""
    query = widget["query"]
    return build_spec(
        event_name=query["event_name"],
        metric=query["metric"],
        period=query["period"],
        granularity=query.get("granularity"),
        tenant_id=tenant_id,
        tenant_required=False,
        group_by=query.get("group_by"),
        filters=query.get("filters") or {},
        numeric_prop=query.get("numeric_prop"),
    )
