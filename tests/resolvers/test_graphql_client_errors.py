"""GraphQL request errors are the client's: graphql-core's own message, a BAD_REQUEST code, no
ERROR log (issue 12: variable-coercion errors were masked as "Unexpected error.")."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import ClientFactory, register

CASES: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "missing ID!",
        "query($id: ID!) { alert(id: $id) { id } }",
        {},
        "Variable '$id' has invalid value: Expected a value of non-null type 'ID!' to be provided.",
    ),
    (
        "list for a String",
        "query($id: ID!) { alert(id: $id) { id } }",
        {"id": ["a", "b"]},
        "Variable '$id' has invalid value: ID cannot represent value: ['a', 'b']",
    ),
    (
        "unknown input field",
        "mutation($input: AlertRuleInput!) { createAlert(input: $input) { id } }",
        {"input": {"nmae": "x"}},
        "Variable '$input' has invalid value: Expected value of type 'AlertRuleInput' not to "
        "include unknown field 'nmae'. Did you mean 'name'? Found: {'nmae': 'x'}.",
    ),
]


@pytest.mark.parametrize(
    ("name", "query", "variables", "message"), CASES, ids=[c[0] for c in CASES]
)
async def test_coercion_errors_reach_the_client(
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    name: str,
    query: str,
    variables: dict[str, Any],
    message: str,
) -> None:
    client = await make_client()
    await register(client)
    caplog.set_level(logging.ERROR)
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status == 200
    body = await response.json()
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["message"] == message
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
