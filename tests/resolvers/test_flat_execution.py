"""resolvers/execution.py: flat objects (an analytics answer's points) are completed in one loop;
the answer — data and errors — must be exactly graphql-core's own, for every selection shape."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from emban.resolvers.execution import FlatObjectsExecutionContext, register_flat


@strawberry.type
class FlatProbePoint:
    bucket: str
    value: float
    group: str | None
    unit_name: str | None = None


@strawberry.type
class FlatProbeNested:
    point: FlatProbePoint


POINTS = [
    FlatProbePoint(bucket="2026-11-01T00:00:00Z", value=3, group=None),
    FlatProbePoint(bucket="2026-11-02T00:00:00Z", value=2.5, group="gpt-4o", unit_name="ms"),
    FlatProbePoint(bucket="2026-11-03T00:00:00Z", value=0, group="é"),
]


@strawberry.type
class Query:
    @strawberry.field
    def points(self, broken: bool = False) -> list[FlatProbePoint]:
        if broken:  # a null where the schema promises a value, and a value Float refuses
            return [
                FlatProbePoint(bucket=None, value=1, group=None),  # type: ignore[arg-type]
                FlatProbePoint(bucket="b", value="many", group=None),  # type: ignore[arg-type]
                *POINTS,
            ]
        return POINTS

    @strawberry.field
    def nested(self) -> FlatProbeNested:
        return FlatProbeNested(point=POINTS[1])


fast = strawberry.Schema(query=Query, execution_context_class=FlatObjectsExecutionContext)
register_flat(fast, FlatProbePoint)
plain = strawberry.Schema(
    query=Query, execution_context_class=StrawberryGraphQLCoreExecutionContext
)

QUERIES = [
    "{ points { bucket value group } }",
    "{ points { value } }",
    "{ points { __typename b: bucket v: value unitName group } }",
    "{ points { bucket bucket value } }",
    "query($s: Boolean!) { points { bucket value @skip(if: $s) group @include(if: $s) } }",
    "{ points { ...P } } fragment P on FlatProbePoint { value group }",
    "{ points { ... on FlatProbePoint { bucket } value } }",
    "{ nested { point { bucket unitName } } }",
    "{ points(broken: true) { bucket value group } }",
    "{ points(broken: true) { group } }",
]


def _answer(result: Any) -> Any:
    errors = [(e.message, e.path) for e in result.errors or []]
    return result.data, errors


@pytest.mark.parametrize("query", QUERIES)
async def test_flat_completion_answers_exactly_like_graphql_core(query: str) -> None:
    for skip in (True, False):
        variables = {"s": skip} if "$s" in query else None
        got = await fast.execute(query, variable_values=variables)
        expected = await plain.execute(query, variable_values=variables)
        assert _answer(got) == _answer(expected)


async def test_the_fast_path_answers_the_points(monkeypatch: pytest.MonkeyPatch) -> None:
    generic: list[str] = []
    real = StrawberryGraphQLCoreExecutionContext.complete_object_value

    def counting(self: Any, return_type: Any, *args: Any) -> Any:
        generic.append(return_type.name)
        return real(self, return_type, *args)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "complete_object_value", counting)
    result = await fast.execute("{ points { b: bucket value group __typename } }")
    assert generic == []  # no point went through graphql-core's per-field completion
    await plain.execute("{ points { value } }")
    assert generic == ["FlatProbePoint"] * 3
    assert result.errors is None
    assert result.data == {
        "points": [
            {
                "b": "2026-11-01T00:00:00Z",
                "value": 3.0,
                "group": None,
                "__typename": "FlatProbePoint",
            },
            {
                "b": "2026-11-02T00:00:00Z",
                "value": 2.5,
                "group": "gpt-4o",
                "__typename": "FlatProbePoint",
            },
            {
                "b": "2026-11-03T00:00:00Z",
                "value": 0.0,
                "group": "é",
                "__typename": "FlatProbePoint",
            },
        ]
    }
    assert type(result.data["points"][0]["value"]) is float


def test_only_plain_scalar_fields_qualify() -> None:
    with pytest.raises(TypeError, match=r"FlatProbeNested\.point is not a plain scalar field"):
        register_flat(fast, FlatProbeNested)
