"""``GET /metrics`` on the session app: exact counts after REST, GraphQL, ingest, live and job
activity (as differences between two scrapes: the app is shared by the whole run), the access
rules on mocked peers, request ids on every kind of response, and request ids in 5xx bodies.

The served process (a real ``emban serve`` with a token and JSON logs) is in
``tests/e2e/test_observability_serve.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from emban.jobs.maintenance import purge_expired
from emban.jobs.metering import metered_job
from emban.logs import JsonFormatter, RequestIdFilter
from emban.metrics import MAX_OPERATION_NAMES, Metrics
from emban.metrics_http import metrics_handler, metrics_middleware
from emban.request_ids import accepted_request_id
from emban.runtime import Runtime
from emban.services import audit
from tests.conftest import ClientFactory, bearer, create_key, jobs_done, register
from tests.live_client import close, initial, open_live, setup

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
HEX16 = re.compile(r"[0-9a-f]{16}")


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


async def scrape(server: TestServer) -> Samples:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        response = await http.get(server.make_url("/metrics"))
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return parse(await response.text())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples) -> Callable[..., float]:
    def of(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    return of


async def eventually(condition: Callable[[], Any], within: float = 5.0) -> None:
    """Wait for a state change that happens after the client's call returned (a socket's
    server-side close); the check itself is exact."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_rest_graphql_ingest_and_clickhouse_are_counted(
    make_client: ClientFactory, app_server: TestServer, runtime: Runtime
) -> None:
    owner = await make_client()
    await register(owner)
    ingest = await create_key(owner, "ingest")
    before = await scrape(app_server)

    first = [{"tenant_id": "acme", "event_name": "api.call", "event_id": f"e{i}"} for i in (1, 2)]
    second = [{"tenant_id": "acme", "event_name": "api.call", "event_id": f"e{i}"} for i in (2, 3)]
    for events in (first, second):  # one after the other: two WAL drains (flushes)
        sent = await owner.post("/v1/events", json={"events": events}, headers=bearer(ingest))
        assert sent.status == 200
        assert await runtime.ingest.visible()  # drained into the engine
    missing = await owner.get("/v1/dashboards/dash_aaaaaaaaaaaaaaaaaaaa")
    assert missing.status == 404
    assert (await owner.get("/no/such/path/123")).status == 404
    named = await owner.post("/graphql", json={"query": "query Who { me { user { email } } }"})
    assert (await named.json())["data"]["me"]["user"]["email"] == "owner@acme.test"
    anonymous = await owner.post("/graphql", json={"query": "{ plans { name } }"})
    assert anonymous.status == 200
    failed = await owner.post("/graphql", json={"query": "query Broken { nope }"})
    assert (await failed.json())["errors"]
    after = await scrape(app_server)
    d = delta(before, after)

    assert d("emban_http_requests_total", method="POST", route="/v1/events", status="200") == 2
    assert d("emban_http_request_duration_seconds_count", method="POST", route="/v1/events") == 2
    route = "/v1/dashboards/{id}"
    assert d("emban_http_requests_total", method="GET", route=route, status="404") == 1
    # Unmatched paths share one series; raw paths never become labels.
    assert d("emban_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert not any("/no/such" in str(labels) for _, labels in after)
    # Three GraphQL requests, all 200 (application/json answers a validation error with 200).
    assert d("emban_http_requests_total", method="POST", route="/graphql", status="200") == 3
    assert d("emban_graphql_operations_total", operation="Who", type="query", outcome="ok") == 1
    assert d("emban_graphql_operation_duration_seconds_count", operation="Who", type="query") == 1
    assert (
        d("emban_graphql_operations_total", operation="anonymous", type="query", outcome="ok") == 1
    )
    assert (
        d("emban_graphql_operations_total", operation="Broken", type="query", outcome="error") == 1
    )
    assert d("emban_ingest_rows_total", outcome="stored") == 3
    assert d("emban_ingest_rows_total", outcome="duplicate") == 1
    assert d("emban_ingest_rows_total", outcome="failed") == 0
    assert d("emban_ingest_flushes_total", outcome="ok") == 2
    assert d("emban_ingest_flush_duration_seconds_count") == 2
    assert value(after, "emban_ingest_queue_rows") == 0
    # Each flush: two inserts (events, event ids).
    assert d("emban_clickhouse_query_duration_seconds_count", kind="insert") == 4
    assert d("emban_clickhouse_errors_total", kind="insert") == 0


async def test_clickhouse_errors_are_counted_by_kind(
    app_server: TestServer, runtime: Runtime
) -> None:
    before = await scrape(app_server)
    with pytest.raises(Exception, match="Code: 47"):
        await runtime.events.query("SELEC nothing")
    await runtime.events.ping()
    d = delta(before, await scrape(app_server))
    assert d("emban_clickhouse_errors_total", kind="query") == 1
    assert d("emban_clickhouse_query_duration_seconds_count", kind="query") == 1
    assert d("emban_clickhouse_query_duration_seconds_count", kind="ping") == 1
    assert d("emban_clickhouse_errors_total", kind="ping") == 0


async def test_live_sockets_cohorts_and_pushes(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    owner, ingest, _, token = await setup(make_client)
    before = await scrape(app_server)
    live = await open_live(app_server, token)
    try:
        await initial(live)
        during = await scrape(app_server)
        assert value(during, "emban_live_sockets") == value(before, "emban_live_sockets") + 1
        assert value(during, "emban_live_cohorts") == value(before, "emban_live_cohorts") + 1
        assert value(during, "emban_live_viewers") == value(before, "emban_live_viewers") + 1
        events = [{"tenant_id": "acme", "event_name": "api.call"}] * 2
        sent = await owner.post("/v1/events", json={"events": events}, headers=bearer(ingest))
        assert sent.status == 200
        pushed = await live.next()
        assert (pushed["type"], pushed["widgetId"]) == ("data", "calls")
        d = delta(before, await scrape(app_server))
        # The initial snapshot is not a push; the refresh after the ingest is one, to one viewer.
        assert d("emban_live_pushes_total", type="data") == 1
        assert d("emban_live_pushes_total", type="config") == 0
    finally:
        await close(live)

    upgraded = {"method": "GET", "route": "/graphql", "status": "101"}
    live_op = {"operation": "Live", "type": "subscription"}

    async def gone() -> bool:
        now = await scrape(app_server)
        return (
            value(now, "emban_live_sockets") == value(before, "emban_live_sockets")
            and value(now, "emban_live_cohorts") == value(before, "emban_live_cohorts")
            # The upgrade is counted when the socket's handler returns, the subscription when
            # it ends.
            and delta(before, now)("emban_http_requests_total", **upgraded) == 1
            and delta(before, now)("emban_graphql_operations_total", outcome="ok", **live_op) == 1
        )

    await eventually(gone)
    d = delta(before, await scrape(app_server))
    assert d("emban_http_requests_total", **upgraded) == 1
    assert d("emban_graphql_operations_total", outcome="ok", **live_op) == 1
    assert d("emban_graphql_operation_duration_seconds_count", **live_op) == 0
    # Not timed: its duration would be the socket's lifetime.
    assert d("emban_http_request_duration_seconds_count", method="GET", route="/graphql") == 0


async def test_jobs_are_counted_in_process(app_server: TestServer, runtime: Runtime) -> None:
    before = await scrape(app_server)
    await runtime.jobs.enqueue("purge_expired")
    await jobs_done(runtime)
    d = delta(before, await scrape(app_server))
    assert d("emban_job_runs_total", job="purge_expired") == 1
    assert d("emban_job_failures_total", job="purge_expired") == 0
    assert d("emban_job_duration_seconds_count", job="purge_expired") == 1


async def test_metered_job_counts_failures_and_needs_metrics_in_ctx() -> None:
    metrics = Metrics()
    calls: list[str] = []

    @metered_job
    async def flaky(ctx: dict[str, Any], item: str) -> str:
        calls.append(item)
        if item == "bad":
            raise RuntimeError("boom")
        return item.upper()

    assert await flaky({"metrics": metrics}, "ok") == "OK"
    with pytest.raises(RuntimeError):
        await flaky({"metrics": metrics}, "bad")
    assert await flaky({}, "uncounted") == "UNCOUNTED"
    samples = parse(metrics.exposition().decode())
    assert value(samples, "emban_job_runs_total", job="flaky") == 2
    assert value(samples, "emban_job_failures_total", job="flaky") == 1
    assert value(samples, "emban_job_duration_seconds_count", job="flaky") == 2
    assert calls == ["ok", "bad", "uncounted"]
    # The decorated job keeps its name (arq registers it under it).
    assert purge_expired.__name__ == "purge_expired"


def test_operation_names_are_capped() -> None:
    metrics = Metrics()
    assert metrics.operation_label(None) == "anonymous"
    assert metrics.operation_label("") == "anonymous"
    assert metrics.operation_label("bad-name") == "other"
    assert metrics.operation_label("x" * 65) == "other"
    assert metrics.operation_label("other") == "other"
    names = [f"Op{i}" for i in range(MAX_OPERATION_NAMES)]
    assert [metrics.operation_label(n) for n in names] == names
    assert metrics.operation_label("OneTooMany") == "other"
    assert metrics.operation_label("Op7") == "Op7"


# --- access --------------------------------------------------------------------------------------


def _peer(host: str) -> mock.Mock:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (host, 40000) if name == "peername" else default
    )
    return transport


async def _ask(
    handler: Callable[[web.Request], Any], host: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = make_mocked_request("GET", "/metrics", headers=headers, transport=_peer(host))
    response = await handler(request)
    if response.status == 200:
        return 200, response.body.decode()
    return response.status, json.loads(response.body)


LOOPBACK_ONLY = {
    "error": "metrics are served to loopback clients only; set EMBAN_METRICS_TOKEN to scrape "
    "from elsewhere",
    "code": "forbidden",
}
TOKEN_REQUIRED = {
    "error": "GET /metrics requires Authorization: Bearer <EMBAN_METRICS_TOKEN>",
    "code": "unauthenticated",
}


async def test_without_a_token_only_loopback_peers_are_answered() -> None:
    import ipaddress

    metrics = Metrics()
    handler = metrics_handler(metrics, None, ())
    for host in ("127.0.0.1", "127.8.9.10", "::1"):
        status, body = await _ask(handler, host)
        assert status == 200
        assert "emban_ingest_queue_rows 0.0" in body
    for host in ("192.0.2.2", "10.0.0.1", "::ffff:10.0.0.1", "fd00::2"):
        assert await _ask(handler, host) == (403, LOOPBACK_ONLY)
    # X-Forwarded-For is not believed from an untrusted peer ...
    assert await _ask(handler, "10.0.0.1", {"X-Forwarded-For": "127.0.0.1"}) == (
        403,
        LOOPBACK_ONLY,
    )
    # ... and a trusted proxy's forwarded client decides, loopback or not.
    proxied = metrics_handler(metrics, None, (ipaddress.ip_network("10.0.0.0/8"),))
    assert (await _ask(proxied, "10.0.0.1", {"X-Forwarded-For": "127.0.0.1"}))[0] == 200
    assert await _ask(proxied, "10.0.0.1", {"X-Forwarded-For": "192.0.2.7"}) == (
        403,
        LOOPBACK_ONLY,
    )
    assert await _ask(proxied, "10.0.0.1") == (403, LOOPBACK_ONLY)


async def test_with_a_token_every_peer_needs_it() -> None:
    token = "t0k3n-" + "x" * 20
    handler = metrics_handler(Metrics(), token, ())
    assert (await _ask(handler, "192.0.2.2", {"Authorization": f"Bearer {token}"}))[0] == 200
    assert (await _ask(handler, "127.0.0.1", {"Authorization": f"bearer {token}"}))[0] == 200
    for headers in (
        None,  # loopback is no exemption once a token is set
        {"Authorization": f"Bearer {token}x"},
        {"Authorization": f"Basic {token}"},
        {"Authorization": "Bearer "},
        {"Authorization": token},
    ):
        assert await _ask(handler, "127.0.0.1", headers) == (401, TOKEN_REQUIRED)


# --- request ids ---------------------------------------------------------------------------------


def test_incoming_request_ids_are_kept_only_when_safe() -> None:
    assert accepted_request_id("lb-42.abc_DEF") == "lb-42.abc_DEF"
    assert accepted_request_id("a" * 64) == "a" * 64
    for unsafe in ("a" * 65, "has space", "new\nline", "semi;colon", "", "é", None):
        generated = accepted_request_id(unsafe)
        assert HEX16.fullmatch(generated), generated


async def test_every_response_carries_a_request_id(
    make_client: ClientFactory, app_server: TestServer
) -> None:
    client = await make_client()
    ok = await client.get("/healthz")
    assert HEX16.fullmatch(ok.headers["X-Request-Id"])
    echoed = await client.get("/healthz", headers={"X-Request-Id": "from-the-lb.7"})
    assert echoed.headers["X-Request-Id"] == "from-the-lb.7"
    replaced = await client.get("/healthz", headers={"X-Request-Id": "x" * 65})
    assert HEX16.fullmatch(replaced.headers["X-Request-Id"])
    unauthenticated = await client.get("/v1/auth/me")
    assert unauthenticated.status == 401
    assert HEX16.fullmatch(unauthenticated.headers["X-Request-Id"])
    assert "request_id" not in await unauthenticated.json()  # only 5xx bodies carry it
    not_allowed = await client.put("/healthz")
    assert not_allowed.status == 405
    assert HEX16.fullmatch(not_allowed.headers["X-Request-Id"])
    graphql = await client.post("/graphql", json={"query": "{ plans { name } }"})
    assert HEX16.fullmatch(graphql.headers["X-Request-Id"])
    embed = await client.get("/embed/dash_aaaaaaaaaaaaaaaaaaaa")
    assert HEX16.fullmatch(embed.headers["X-Request-Id"])
    metrics = await client.get("/metrics", headers={"X-Request-Id": "scrape-1"})
    assert metrics.headers["X-Request-Id"] == "scrape-1"
    ws = await client.ws_connect(
        "/graphql", protocols=["graphql-transport-ws"], headers={"X-Request-Id": "socket-1"}
    )
    try:
        assert ws._response.headers["X-Request-Id"] == "socket-1"
    finally:
        await ws.close()


async def test_a_rest_500_carries_the_request_id_of_its_log_line(
    make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = await make_client()
    await register(owner)

    async def failing_audit(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "record", failing_audit)
    with caplog.at_level(logging.ERROR, logger="emban.http"):
        response = await owner.post("/v1/api-keys", json={"label": "k", "scope": "ingest"})
    assert response.status == 500
    request_id = response.headers["X-Request-Id"]
    assert await response.json() == {
        "error": "internal error",
        "code": "internal_error",
        "request_id": request_id,
    }
    [record] = [r for r in caplog.records if r.name == "emban.http"]
    assert f"request_id={request_id}" in record.getMessage()
    # The JSON formatter prints it, with the traceback.
    RequestIdFilter().filter(record)  # caplog's handler has no filter; the id is the request's
    line = json.loads(JsonFormatter().format(record))
    assert line["logger"] == "emban.http"
    assert line["level"] == "ERROR"
    assert "RuntimeError: audit store unavailable" in line["exception"]


async def test_a_masked_graphql_error_carries_the_request_id(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_client()
    await register(owner)

    async def failing_audit(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "record", failing_audit)
    response = await owner.post(
        "/graphql",
        json={"query": 'mutation { createApiKey(label: "doomed", scope: "ingest") { key } }'},
        headers={"X-Request-Id": "gql-500"},
    )
    body = await response.json()
    assert response.headers["X-Request-Id"] == "gql-500"
    assert body["errors"] == [
        {
            "message": "Unexpected error.",
            "locations": [{"line": 1, "column": 12}],
            "path": ["createApiKey"],
            "extensions": {"request_id": "gql-500"},
        }
    ]


async def test_a_5xx_domain_error_carries_the_request_id(make_client: ClientFactory) -> None:
    """Billing without Paddle settings is a 503 (ServiceUnavailable) on both edges."""
    owner = await make_client()
    await register(owner)
    response = await owner.get("/v1/billing/checkout-config", headers={"X-Request-Id": "bill-1"})
    assert response.status == 503
    body = await response.json()
    assert body["request_id"] == "bill-1"
    assert body["code"] == "billing_not_configured"


async def test_a_cancelled_request_is_counted_as_499_under_its_route() -> None:
    """A handler cancelled mid-request (the client left, with handler cancellation on, or the
    server stopping) is counted as 499, not as a 500."""
    import aiohttp

    metrics = Metrics()

    async def cancelled(request: web.Request) -> web.Response:
        raise asyncio.CancelledError

    app = web.Application(middlewares=[metrics_middleware(metrics)])
    app.router.add_post("/v1/things/{id}", cancelled)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ServerDisconnectedError):
                # POST: aiohttp retries an idempotent request once on a disconnect
                await http.post(server.make_url("/v1/things/7"))
    finally:
        await server.close()
    samples = parse(metrics.exposition().decode())
    counted = {"method": "POST", "route": "/v1/things/{id}", "status": "499"}
    assert value(samples, "emban_http_requests_total", **counted) == 1
    timed = {"method": "POST", "route": "/v1/things/{id}"}
    assert value(samples, "emban_http_request_duration_seconds_count", **timed) == 1
