"""The widget config type on its own: decoding, normalizing, the wire/storage round trip, and
the type's own rules refused with a 400 naming the field (the HTTP matrix of every rule is in
test_dashboards.py)."""

from __future__ import annotations

from typing import Any

import pytest

from emban.analytics.query_spec import QuerySpec
from emban.errors import BadRequest
from emban.services.widget_config import (
    BreakdownWidget,
    Layout,
    TextWidget,
    Viz,
    WidgetQuery,
    decode_widget,
    decode_widgets,
    spec_of,
    stored_widgets,
    widgets_json,
)

BREAKDOWN: dict[str, Any] = {
    "id": "by_model",
    "kind": "breakdown",
    "title": "  By model ",
    "query": {
        "event_name": "api.call",
        "metric": "p95",
        "period": "7d",
        "group_by": "model",
        "filters": {"status": "ok", "region": "eu"},
        "numeric_prop": "latency_ms",
    },
    "viz": {"type": "donut", "unit": "ms"},
    "layout": {"x": 0, "y": 0, "w": 6, "h": 4, "extra": 1},
}
TEXT: dict[str, Any] = {
    "id": "notes",
    "kind": "text",
    "title": "About",
    "text": "**hi**",
    "viz": {"type": "number"},
    "layout": {"x": 6, "y": 0, "w": 6, "h": 1},
}


def test_a_config_decodes_into_its_kind_normalized() -> None:
    widget = decode_widget(BREAKDOWN)
    assert widget == BreakdownWidget(
        id="by_model",
        title="By model",
        layout=Layout(x=0, y=0, w=6, h=4),
        query=WidgetQuery(
            event_name="api.call",
            metric="p95",
            period="7d",
            granularity="day",
            group_by="model",
            filters={"region": "eu", "status": "ok"},
            numeric_prop="latency_ms",
        ),
        viz=Viz("donut", {"unit": "ms"}),
    )
    assert list(widget.query.filters) == ["region", "status"]  # sorted
    assert spec_of(widget, "acme") == QuerySpec(
        event_name="api.call",
        metric="p95",
        period="7d",
        granularity="day",
        tenant_id="acme",
        group_by="model",
        filters=(("region", "eu"), ("status", "ok")),
        numeric_prop="latency_ms",
    )


def test_the_wire_form_is_the_stored_form_and_decodes_to_the_same_widgets() -> None:
    widgets = decode_widgets([BREAKDOWN, TEXT])
    wire = widgets_json(widgets)
    assert wire == [
        {
            "id": "by_model",
            "kind": "breakdown",
            "title": "By model",
            "query": {
                "event_name": "api.call",
                "metric": "p95",
                "period": "7d",
                "granularity": "day",
                "group_by": "model",
                "filters": {"region": "eu", "status": "ok"},
                "numeric_prop": "latency_ms",
            },
            "viz": {"type": "donut", "unit": "ms"},
            "layout": {"x": 0, "y": 0, "w": 6, "h": 4},
        },
        {
            "id": "notes",
            "kind": "text",
            "title": "About",
            "text": "**hi**",
            "query": None,
            "viz": {"type": "text"},
            "layout": {"x": 6, "y": 0, "w": 6, "h": 1},
        },
    ]
    assert stored_widgets(wire) == widgets
    assert isinstance(widgets[1], TextWidget)


def test_a_count_metric_drops_numeric_prop_and_empty_choices_are_absent() -> None:
    widget = decode_widget(
        {
            **BREAKDOWN,
            "kind": "timeseries",
            "viz": {"type": "line"},
            "query": {
                "event_name": "e",
                "metric": "count",
                "period": "24h",
                "granularity": "",
                "group_by": "",
                "numeric_prop": "latency_ms",
            },
        }
    )
    assert widgets_json([widget])[0]["query"] == {
        "event_name": "e",
        "metric": "count",
        "period": "24h",
        "granularity": "hour",
    }


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"description": 5},
            "w.description",
            "w.description must be a string",
        ),
        (
            {"query": {**BREAKDOWN["query"], "group_by": None}},
            "w.query.group_by",
            "w.query.group_by is required for a breakdown",
        ),
        (
            {"viz": {"type": "line"}},
            "w.viz.type",
            "w.viz.type line does not fit a breakdown widget "
            "(use bar, stacked_bar, pie, donut, table)",
        ),
        (
            {"layout": {"x": 11, "y": 0, "w": 2, "h": 1}},
            "w.layout.w",
            "w.layout: x + w must be at most 12",
        ),
        (
            {"query": {**BREAKDOWN["query"], "filters": {"a": "x", "b": None}}},
            "w.query.filters.b",
            "w.query.filters.b must be a string",
        ),
        (
            {"query": {**BREAKDOWN["query"], "metric": None}},
            "w.query.metric",
            "w.query.metric is required",
        ),
    ],
)
def test_each_rule_of_the_type_names_the_field(
    change: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(BadRequest) as info:
        decode_widget({**BREAKDOWN, **change}, "w")
    assert (info.value.status, info.value.message, info.value.extra) == (
        400,
        message,
        {"field": field},
    )
