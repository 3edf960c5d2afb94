"""Malformed bodies get a 4xx with a code, never a 500 (issue 12's defects, as a class): deep
nesting, invalid UTF-8, JSON that is not an object, huge integers, on REST and /graphql."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import ClientFactory, bearer, register

DEEP = b'{"a":' * 5000 + b"1" + b"}" * 5000
BODIES: list[tuple[str, bytes]] = [
    ("deep", DEEP),
    ("deep-array", b"[" * 5000 + b"]" * 5000),
    ("bad-utf8", b'{"name": "\xff\xfe"}'),
    ("bad-utf8-key", b'{"\xc3\x28": 1}'),
    ("null", b"null"),
    ("number", b"42"),
    ("string", b'"hello"'),
    ("array", b"[]"),
    ("empty", b""),
    ("truncated", b'{"a": '),
    ("huge-int", b'{"n": ' + b"9" * 5000 + b"}"),
    ("huge-float", b'{"n": 1e99999}'),
    ("nul", b'{"name": "a\\u0000b"}'),
]
ROUTES = [
    ("POST", "/v1/events"),
    ("POST", "/v1/dashboards"),
    ("POST", "/v1/alerts"),
    ("POST", "/v1/reports"),
    ("POST", "/v1/api-keys"),
    ("PATCH", "/v1/settings/org"),
    ("POST", "/v1/query/adhoc"),
    ("POST", "/v1/auth/login"),
]
GRAPHQL_BODIES: list[tuple[str, bytes]] = [
    *BODIES,
    (
        "huge-variable",
        b'{"query": "query($n: Int) { me { role } }", "variables": {"n": ' + b"9" * 5000 + b"}}",
    ),
    ("variables-not-object", b'{"query": "{ me { role } }", "variables": 5}'),
    ("query-not-string", b'{"query": 5}'),
    ("deep-variables", b'{"query": "{ me { role } }", "variables": ' + DEEP + b"}"),
]


@pytest.mark.parametrize(("name", "body"), BODIES, ids=[n for n, _ in BODIES])
async def test_rest_routes_answer_4xx(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture, name: str, body: bytes
) -> None:
    client = await make_client()
    key = (await register(client))["api_key"]["key"]
    caplog.set_level(logging.ERROR)
    for method, path in ROUTES:
        response = await client.request(
            method, path, data=body, headers={**bearer(key), "Content-Type": "application/json"}
        )
        assert 400 <= response.status < 500, (name, method, path, await response.text())
        answer = await response.json()
        assert isinstance(answer.get("code"), str), (name, path, answer)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize(("name", "body"), GRAPHQL_BODIES, ids=[n for n, _ in GRAPHQL_BODIES])
async def test_graphql_answers_4xx_or_errors(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture, name: str, body: bytes
) -> None:
    client = await make_client()
    await register(client)
    caplog.set_level(logging.ERROR)
    response = await client.post(
        "/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status < 500, (name, await response.text())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize(
    "number", [b"1e999", b"-1e999", b"9" * 400, b"-" + b"9" * 400, b"1e308", b"0.5"]
)
async def test_an_out_of_range_number_names_its_event_and_field(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture, number: bytes
) -> None:
    client = await make_client()
    key = (await register(client))["api_key"]["key"]
    body = (
        b'{"events": [{"tenant_id": "t", "event_name": "e"}, '
        b'{"tenant_id": "t", "event_name": "e", "numeric_props": {"x": ' + number + b"}}]}"
    )
    caplog.set_level(logging.ERROR)
    response = await client.post(
        "/v1/events", data=body, headers={**bearer(key), "Content-Type": "application/json"}
    )
    if number in (b"1e308", b"0.5"):
        assert response.status in (200, 202), await response.text()
    else:
        assert response.status == 400
        answer = await response.json()
        assert (answer["code"], answer["errors"]) == (
            "invalid_events",
            [{"index": 1, "field": "numeric_props.x", "message": "value must be a finite number"}],
        )
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
