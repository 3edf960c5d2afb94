"""Counts above 2^31 through GraphQL: the ``Int64`` scalar (GraphQL's ``Int`` is 32-bit)."""

from __future__ import annotations

import dataclasses

import pytest
import strawberry
from graphql import IntValueNode, StringValueNode
from strawberry.schema.config import StrawberryConfig

from emban.auth.principal import Principal
from emban.resolvers.scalars import (
    INT64_MAX,
    INT64_MIN,
    SCALAR_MAP,
    Int64,
    parse_int64,
    parse_int64_literal,
    serialize_int64,
)
from emban.runtime import Runtime
from emban.services import usage
from tests.conftest import ClientFactory, register
from tests.gql_client import data_of

BIG = 3_000_000_000  # above Int's 2,147,483,647


def test_serialize_is_a_json_number_within_64_bits() -> None:
    assert serialize_int64(BIG) == BIG
    assert type(serialize_int64(BIG)) is int
    assert serialize_int64(INT64_MAX) == 2**63 - 1
    assert serialize_int64(INT64_MIN) == -(2**63)
    with pytest.raises(ValueError, match="outside the signed 64-bit range"):
        serialize_int64(2**63)
    with pytest.raises(TypeError):
        serialize_int64(True)
    with pytest.raises(TypeError):
        serialize_int64(1.5)


def test_parse_takes_integers_and_decimal_strings() -> None:
    assert parse_int64(BIG) == BIG
    assert parse_int64("9007199254740993") == 2**53 + 1  # exact above JavaScript's 2^53
    assert parse_int64("-42") == -42
    for bad in ("12a", "1.5", "", True, 1.0, None):
        with pytest.raises(ValueError):
            parse_int64(bad)
    with pytest.raises(ValueError, match="outside"):
        parse_int64(str(2**63))
    assert parse_int64_literal(IntValueNode(value="3000000000")) == BIG
    assert parse_int64_literal(StringValueNode(value="3000000000")) == BIG


@strawberry.type
class IntQuery:
    @strawberry.field
    def total(self) -> int:
        return BIG


@strawberry.type
class Int64Query:
    @strawberry.field
    def total(self) -> Int64:
        return Int64(BIG)

    @strawberry.field
    def echo(self, value: Int64) -> Int64:
        return value


def _schema(query: type) -> strawberry.Schema:
    return strawberry.Schema(query=query, config=StrawberryConfig(scalar_map=SCALAR_MAP))


def test_a_resolver_returning_three_billion() -> None:
    # What Int does with it: the field fails.
    as_int = _schema(IntQuery).execute_sync("{ total }")
    assert as_int.data is None
    assert as_int.errors is not None
    assert "Int cannot represent non 32-bit signed integer value: 3000000000" in str(
        as_int.errors[0]
    )
    # Int64 carries it, and round-trips inputs as numbers and strings.
    as_int64 = _schema(Int64Query).execute_sync(
        '{ total a: echo(value: 3000000000) b: echo(value: "9007199254740993") }'
    )
    assert as_int64.errors is None
    assert as_int64.data == {"total": BIG, "a": BIG, "b": 2**53 + 1}
    refused = _schema(Int64Query).execute_sync('{ echo(value: "1e3") }')
    assert refused.errors is not None


async def test_usage_counts_above_two_to_the_31_through_the_app(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = usage.get_usage

    async def huge(rt: Runtime, *, actor: Principal, period: str | None) -> usage.Usage:
        found = await real(rt, actor=actor, period=period)
        return dataclasses.replace(
            found, events_total=BIG, events_this_month=BIG + 1, queries_total=2**40
        )

    monkeypatch.setattr(usage, "get_usage", huge)
    owner = await make_client()
    await register(owner)
    data = await data_of(owner, "{ usage { eventsTotal eventsThisMonth queriesTotal } }")
    assert data == {
        "usage": {"eventsTotal": BIG, "eventsThisMonth": BIG + 1, "queriesTotal": 2**40}
    }
