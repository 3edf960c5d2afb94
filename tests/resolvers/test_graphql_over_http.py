"""GraphQL over HTTP: the graphql-http conformance audit (npm ``graphql-http``, ``serverAudits``)
run by node against the test server, and the ``application/graphql-response+json`` media type
it checks (Accept negotiation and that media type's status codes)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from emban.resolvers.media_types import negotiate
from tests.conftest import ClientFactory, register

EMBED = Path(__file__).resolve().parents[2] / "static" / "embed"
AUDIT = EMBED / "scripts" / "graphql-audit.mjs"
GRAPHQL_RESPONSE = "application/graphql-response+json"


async def test_graphql_http_audit_passes_with_no_warnings(app_server: TestServer) -> None:
    if not (EMBED / "node_modules" / "graphql-http").is_dir():
        pytest.fail("static/embed/node_modules is missing: run `make install`")
    process = await asyncio.create_subprocess_exec(
        "node",
        str(AUDIT),
        str(app_server.make_url("/graphql")),
        cwd=EMBED,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert err == b"", err.decode()
    report: dict[str, Any] = json.loads(out)
    assert report["problems"] == [], json.dumps(report["problems"], indent=1)
    assert (report["warn"], report["error"]) == (0, 0)
    assert report["ok"] > 50  # every audit ran (graphql-http 1.22.4 has 61)
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("text/html", "application/json"),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, application/json", "application/json"),
        (f"{GRAPHQL_RESPONSE};q=0, */*", "application/json"),
        ("Application/GraphQL-Response+JSON; charset=utf-8", GRAPHQL_RESPONSE),
    ],
)
def test_accept_negotiation(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


async def post(
    client: aiohttp.ClientSession, query: str, accept: str, variables: Any = None
) -> tuple[int, str, dict[str, Any]]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"Accept": accept}
    )
    body: dict[str, Any] = await response.json(content_type=None)
    return response.status, response.content_type, body


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ plans { name ", None),  # does not parse
        ("{ plans { nope } }", None),  # does not validate
        ("query Q($p: String!) { usage(period: $p) { plan } }", {"p": 7}),  # does not coerce
    ],
)
async def test_request_errors_by_media_type(
    make_client: ClientFactory, query: str, variables: Any
) -> None:
    client = await make_client()
    status, media, body = await post(client, query, GRAPHQL_RESPONSE, variables)
    assert (status, media) == (400, GRAPHQL_RESPONSE)
    assert "data" not in body
    assert len(body["errors"]) == 1 and "path" not in body["errors"][0]
    # application/json keeps its 200 and the null data entry (existing clients see no change).
    status, media, body = await post(client, query, "application/json", variables)
    assert (status, media) == (200, "application/json")
    assert body["data"] is None and len(body["errors"]) == 1


async def test_field_errors_and_success_stay_200_in_both_media_types(
    make_client: ClientFactory,
) -> None:
    client = await make_client()
    for accept in (GRAPHQL_RESPONSE, "application/json"):
        # No caller: the resolver refuses (a field error, with a path): execution started.
        status, media, body = await post(client, "{ me { role } }", accept)
        assert (status, media) == (200, accept)
        assert body["data"] is None
        assert body["errors"][0]["path"] == ["me"]
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await register(client)
    status, media, body = await post(client, "{ me { role } }", GRAPHQL_RESPONSE)
    assert (status, media, body) == (
        200,
        GRAPHQL_RESPONSE,
        {"data": {"me": {"role": "owner"}}},
    )
