"""Widget config as a type: a tagged union on ``kind`` (metric, timeseries, breakdown, table,
text), decoded once from the wire (REST body, GraphQL JSON, stored JSON) and passed typed to the
planner, the embeds and the live hub.

The wire shape is ``{id, kind, title, query, viz, layout}`` (+ ``text``, ``description``).
``query`` holds the fields of ``GET /v1/query`` except ``tenant_id`` (the embed session supplies
it), ``f_<dim>`` filters as a ``filters`` object. Field constraints are msgspec ``Meta``;
cross-field rules (a breakdown needs ``group_by``, the ``viz.type`` must fit the kind,
``x + w`` within the grid) live in the types' ``__post_init__``. Every error is a 400 naming the
field, e.g. ``widgets[2].query.metric`` (:func:`emban.wire.decode`, with the messages of
:data:`RULES`).

Storage keeps the wire shape (:func:`widget_json`), and reads decode it again
(:func:`stored_widgets`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, get_args

import msgspec
from msgspec import Meta
from msgspec.structs import force_setattr

from emban.analytics.query_spec import (
    GRANULARITIES,
    MAX_NAME,
    METRICS,
    NUMERIC_METRICS,
    PERIODS,
    Granularity,
    Metric,
    Period,
    QuerySpec,
    default_granularity,
    is_property_key,
)
from emban.errors import BadRequest
from emban.services.validation import require_storable
from emban.wire import FieldRule, Rules, decode

Kind = Literal["metric", "timeseries", "breakdown", "table", "text"]
VizType = Literal["number", "line", "area", "bar", "stacked_bar", "pie", "donut", "table"]
KINDS: tuple[str, ...] = get_args(Kind)
VIZ_TYPES: tuple[str, ...] = get_args(VizType)
# Which chart types make sense for which kind of widget.
VIZ_FOR_KIND: dict[str, tuple[str, ...]] = {
    "metric": ("number",),
    "timeseries": ("line", "area", "bar", "stacked_bar", "table"),
    "breakdown": ("bar", "stacked_bar", "pie", "donut", "table"),
    "table": ("table",),
}
GRID_COLUMNS = 12
MAX_HEIGHT = 48
MAX_ROW = 10_000
MAX_WIDGETS = 50
MAX_TEXT = 20_000
MAX_TITLE = 200
MAX_DESCRIPTION = 1_000
WIDGET_ID = r"^[A-Za-z0-9_\-]{1,64}$"
_KEY_RULE = " must be a property key of letters, digits and _ . : - / (max 64)"


# --- the types -------------------------------------------------------------------------------


class Viz:
    """How a query widget is drawn: a ``type`` and the display options the runtime understands
    (``unit``, ``stacked``, …), kept as given. Not a struct, which would drop or refuse the
    open-ended options: msgspec decodes it through :func:`_decode_hook`."""

    __slots__ = ("options", "type")

    def __init__(self, type: VizType, options: Mapping[str, object] | None = None) -> None:
        self.type: VizType = type
        self.options: Mapping[str, object] = dict(options or {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Viz) and (self.type, self.options) == (other.type, other.options)

    def __hash__(self) -> int:
        return hash(self.type)

    def __repr__(self) -> str:
        return f"Viz({self.type!r}, {dict(self.options)!r})"

    def wire(self) -> dict[str, object]:
        return {**self.options, "type": self.type}


class Layout(msgspec.Struct, frozen=True, kw_only=True):
    """The widget's place on the 12-column grid (other keys are dropped, as they always were)."""

    x: Annotated[int, Meta(ge=0, le=GRID_COLUMNS - 1)]
    y: Annotated[int, Meta(ge=0, le=MAX_ROW)]
    w: Annotated[int, Meta(ge=1, le=GRID_COLUMNS)]
    h: Annotated[int, Meta(ge=1, le=MAX_HEIGHT)]

    def __post_init__(self) -> None:
        if self.x + self.w > GRID_COLUMNS:
            raise FieldRule("w", f": x + w must be at most {GRID_COLUMNS}", named="")


class WidgetQuery(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A widget's query, normalized: the default granularity filled in, filters sorted by key,
    ``numeric_prop`` only for the metrics that read it, empty strings as absent."""

    event_name: str
    metric: Metric
    period: Period
    granularity: Granularity | Literal[""] | None = None
    group_by: str | None = None
    filters: dict[str, str] = {}
    numeric_prop: str | None = None

    def __post_init__(self) -> None:
        if not self.event_name:
            raise FieldRule("event_name", " is required")
        if len(self.event_name) > MAX_NAME:
            raise FieldRule("event_name", f" must be at most {MAX_NAME} characters")
        if not self.granularity:
            force_setattr(self, "granularity", default_granularity(self.period))
        group_by = self.group_by or None
        if group_by is not None:
            _check_key(group_by, "group_by", "group_by")
        force_setattr(self, "group_by", group_by)
        prop = self.numeric_prop or None
        if prop is None and self.metric in NUMERIC_METRICS:
            raise FieldRule("numeric_prop", " is required")
        if prop is not None:
            if len(prop) > MAX_NAME:
                raise FieldRule("numeric_prop", f" must be at most {MAX_NAME} characters")
            _check_key(prop, "numeric_prop", "numeric_prop")
        force_setattr(self, "numeric_prop", prop if self.metric in NUMERIC_METRICS else None)
        for key, value in sorted(self.filters.items()):
            _check_key(key, f"filters.{key}", f"filters.{key}")
            if len(value) > MAX_NAME:
                raise FieldRule(f"filters.{key}", f" must be at most {MAX_NAME} characters")
        force_setattr(self, "filters", dict(sorted(self.filters.items())))

    @property
    def time_granularity(self) -> Granularity:
        """The granularity (always set after decoding)."""
        return self.granularity or default_granularity(self.period)

    def wire(self) -> dict[str, object]:
        out: dict[str, object] = {
            "event_name": self.event_name,
            "metric": self.metric,
            "period": self.period,
            "granularity": self.time_granularity,
        }
        if self.group_by is not None:
            out["group_by"] = self.group_by
        if self.filters:
            out["filters"] = dict(self.filters)
        if self.numeric_prop is not None:
            out["numeric_prop"] = self.numeric_prop
        return out


def _check_key(value: str, field: str, named: str) -> None:
    if not is_property_key(value):
        raise FieldRule(field, _KEY_RULE, named=named)


class _Widget(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    id: Annotated[str, Meta(pattern=WIDGET_ID)]
    title: Annotated[str, Meta(max_length=MAX_TITLE)]
    layout: Layout
    description: str | None = None

    kind: ClassVar[Kind]

    def _check_common(self) -> None:
        title = self.title.strip()
        if not title:
            raise FieldRule("title", f" must be 1-{MAX_TITLE} characters")
        force_setattr(self, "title", title)
        if self.description is not None and len(self.description) > MAX_DESCRIPTION:
            force_setattr(self, "description", self.description[:MAX_DESCRIPTION])

    def _head(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "kind": self.kind, "title": self.title}
        if self.description is not None:
            out["description"] = self.description
        return out


class _QueryWidget(_Widget, frozen=True, kw_only=True):
    query: WidgetQuery
    viz: Viz
    # Accepted and dropped, as before: a builder switching a text widget's kind may leave it.
    text: str | None = None

    def __post_init__(self) -> None:
        self._check_common()
        fits = VIZ_FOR_KIND[self.kind]
        if self.viz.type not in fits:
            raise FieldRule(
                "viz.type",
                f" {self.viz.type} does not fit a {self.kind} widget (use {', '.join(fits)})",
            )
        force_setattr(self, "text", None)

    def wire(self) -> dict[str, object]:
        return {
            **self._head(),
            "query": self.query.wire(),
            "viz": self.viz.wire(),
            "layout": _layout_wire(self.layout),
        }


class MetricWidget(_QueryWidget, frozen=True, kw_only=True, tag="metric"):
    """One number for the period and the change against the period before."""

    kind: ClassVar[Kind] = "metric"


class TimeseriesWidget(_QueryWidget, frozen=True, kw_only=True, tag="timeseries"):
    """The metric per bucket."""

    kind: ClassVar[Kind] = "timeseries"


class BreakdownWidget(_QueryWidget, frozen=True, kw_only=True, tag="breakdown"):
    """The metric by a dimension (``query.group_by``) over the whole window."""

    kind: ClassVar[Kind] = "breakdown"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.query.group_by is None:
            raise FieldRule("query.group_by", " is required for a breakdown")


class TableWidget(_QueryWidget, frozen=True, kw_only=True, tag="table"):
    """The rows as a table."""

    kind: ClassVar[Kind] = "table"


class TextWidget(_Widget, frozen=True, kw_only=True, tag="text"):
    """Markdown; no query (its wire form says ``"query": null`` and ``"viz": {"type": "text"}``)."""

    text: Annotated[str, Meta(max_length=MAX_TEXT)]
    # Both accepted on input as before: ``query`` only when null, ``viz`` ignored.
    query: object = None
    viz: object = None

    kind: ClassVar[Kind] = "text"

    def __post_init__(self) -> None:
        self._check_common()
        if self.query is not None:
            raise FieldRule("query", ": text widgets have no query")
        force_setattr(self, "viz", None)

    def wire(self) -> dict[str, object]:
        return {
            **self._head(),
            "text": self.text,
            "query": None,
            "viz": {"type": "text"},
            "layout": _layout_wire(self.layout),
        }


QueryWidget = MetricWidget | TimeseriesWidget | BreakdownWidget | TableWidget
Widget = MetricWidget | TimeseriesWidget | BreakdownWidget | TableWidget | TextWidget


def _layout_wire(layout: Layout) -> dict[str, object]:
    return {"x": layout.x, "y": layout.y, "w": layout.w, "h": layout.h}


def widget_json(widget: Widget) -> dict[str, object]:
    """The wire (and storage) form of a widget."""
    return widget.wire()


def widgets_json(widgets: Sequence[Widget]) -> list[dict[str, object]]:
    return [w.wire() for w in widgets]


# --- decoding --------------------------------------------------------------------------------


def _decode_hook(kind: type, value: Any) -> Any:
    if kind is Viz:
        if not isinstance(value, dict):
            raise FieldRule("", " must be an object")
        viz_type = value.get("type")
        if viz_type not in VIZ_TYPES:
            raise FieldRule("type", f" must be one of {', '.join(VIZ_TYPES)}")
        return Viz(viz_type, {k: v for k, v in value.items() if k != "type"})
    if kind is object:  # a text widget's ignored ``viz`` (msgspec asks for untyped values too)
        return value
    raise NotImplementedError(kind)


# Messages of msgspec's own refusals, by the field's path inside a widget.
_IS_REQUIRED = {"missing": " is required", "type": " must be a string"}
RULES = Rules(
    messages={
        "": " must be an object",
        "id": " must be 1-64 letters, digits, _ or -",
        "kind": f" must be one of {', '.join(KINDS)}",
        "title": f" must be 1-{MAX_TITLE} characters",
        "description": " must be a string",
        "text": f" must be markdown of at most {MAX_TEXT} characters",
        "query": " must be an object",
        "viz": " must be an object",
        "layout": " must be an object",
        "layout.x": f" must be a whole number from 0 to {GRID_COLUMNS - 1}",
        "layout.y": f" must be a whole number from 0 to {MAX_ROW}",
        "layout.w": f" must be a whole number from 1 to {GRID_COLUMNS}",
        "layout.h": f" must be a whole number from 1 to {MAX_HEIGHT}",
        "query.event_name": _IS_REQUIRED,
        "query.metric": {
            "missing": " is required",
            "default": f" must be one of {', '.join(METRICS)}",
        },
        "query.period": {
            "missing": " is required",
            "default": f" must be one of {', '.join(PERIODS)}",
        },
        "query.granularity": f" must be one of {', '.join(GRANULARITIES)}",
        "query.group_by": " must be a string",
        "query.numeric_prop": " must be a string",
        "query.filters": " must be an object",
        "query.filters.*": " must be a string",
    },
    unknown={"": " is not a widget field", "query": " is not a query field"},
    maps={"query.filters": str},
)


def decode_widget(raw: object, field: str = "widget") -> Widget:
    """One widget config from the wire → its type; a 400 naming the field otherwise."""
    widget: Widget = decode(raw, Widget, field, RULES, dec_hook=_decode_hook)
    require_storable(widget.wire(), field)
    return widget


def decode_widgets(raw: object, field: str = "widgets") -> list[Widget]:
    """A list of widget configs (``None`` is none); ids unique; at most :data:`MAX_WIDGETS`."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest(f"{field} must be a list", field=field)
    if len(raw) > MAX_WIDGETS:
        raise BadRequest(f"{field}: at most {MAX_WIDGETS} widgets", field=field)
    widgets = [decode_widget(w, f"{field}[{i}]") for i, w in enumerate(raw)]
    seen: set[str] = set()
    for index, widget in enumerate(widgets):
        if widget.id in seen:
            raise BadRequest(
                f"{field}[{index}].id {widget.id!r} is used twice", field=f"{field}[{index}].id"
            )
        seen.add(widget.id)
    return widgets


def stored_widgets(stored: object) -> list[Widget]:
    """Widgets as stored (:func:`widgets_json` of decoded ones): decoded again."""
    return msgspec.convert(stored or [], list[Widget], strict=True, dec_hook=_decode_hook)


def stored_widget(stored: object) -> Widget:
    widget: Widget = msgspec.convert(stored, Widget, strict=True, dec_hook=_decode_hook)
    return widget


def spec_of(widget: QueryWidget, tenant_id: str | None) -> QuerySpec:
    """The query spec of a decoded widget, for one tenant (or all)."""
    query = widget.query
    return QuerySpec(
        event_name=query.event_name,
        metric=query.metric,
        period=query.period,
        granularity=query.time_granularity,
        tenant_id=tenant_id,
        group_by=query.group_by,
        filters=tuple(query.filters.items()),
        numeric_prop=query.numeric_prop,
    )
