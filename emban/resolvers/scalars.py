"""Custom GraphQL scalars: ``Int64`` for counts and sums that outgrow GraphQL's 32-bit ``Int``.

GraphQL's ``Int`` is a signed 32-bit integer: an event count above 2,147,483,647 cannot be
serialized and the whole field fails. Counts, sums and sizes that grow with the data (events,
rows scanned, dataset rows and bytes, usage totals, discovery counts) are ``Int64``; counts bounded
by a cap (events accepted per request, rows an ad-hoc answer may return, widgets of a dashboard)
stay ``Int``, and fractional aggregates (averages, percentiles, metric values, timings) are
``Float``.

The choice, also in the scalar's SDL description and ``docs/decisions.md``: an ``Int64`` is
written as a plain JSON **number**, always. Not a string above 2^53 (as some ``BigInt`` scalars
do), because one field that is sometimes a number and sometimes a string is harder on every
client than the limit it avoids: clients that parse JSON numbers exactly (Python, Go, Java, a
BigInt-aware JSON parser in JavaScript) get every value exactly, and JavaScript's default
``JSON.parse`` is exact up to 2^53 - 1 (9,007,199,254,740,991), about nine quadrillion events,
beyond any count this service produces. As input it accepts an integer or a decimal string
(so a JavaScript client can send a value above 2^53 exactly); anything outside the signed
64-bit range is refused.
"""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from graphql import IntValueNode, StringValueNode, ValueNode
from strawberry.types.scalar import ScalarDefinition

Int64 = NewType("Int64", int)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

DESCRIPTION = (
    "A signed 64-bit integer (-2^63 .. 2^63-1) for counts and sums that may exceed Int's 32 "
    "bits. Always serialized as a JSON number (never a string): exact for JSON parsers that "
    "keep integers exact; JavaScript's JSON.parse is exact up to 2^53-1. As input, an integer "
    "or a decimal string."
)


def optional_int64(value: int | None) -> Int64 | None:
    """``value`` as an :data:`Int64` field value, ``None`` kept."""
    return None if value is None else Int64(value)


def _in_range(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"Int64 cannot represent {value}: outside the signed 64-bit range")
    return value


def serialize_int64(value: Any) -> int:
    """An ``int`` (not a bool, not a float) within the signed 64-bit range, as a JSON number."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Int64 cannot represent a non-integer value: {value!r}")
    return _in_range(int(value))


def parse_int64(value: Any) -> int:
    """A variable's value: a JSON integer or a decimal string."""
    if isinstance(value, bool):
        raise ValueError(f"Int64 cannot represent {value!r}")
    if isinstance(value, int):
        return _in_range(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return _in_range(int(value.strip()))
    raise ValueError(f"Int64 cannot represent {value!r}: send an integer or a decimal string")


def parse_int64_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> int:
    """An inline literal: ``123`` or ``"123"``."""
    if isinstance(node, IntValueNode | StringValueNode):
        return parse_int64(node.value if isinstance(node, StringValueNode) else int(node.value))
    raise ValueError("Int64 cannot represent a non-integer literal")


INT64_SCALAR: ScalarDefinition = strawberry.scalar(
    name="Int64",
    description=DESCRIPTION,
    serialize=serialize_int64,
    parse_value=parse_int64,
    parse_literal=parse_int64_literal,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {Int64: INT64_SCALAR}
"""The schema's ``StrawberryConfig.scalar_map``."""
