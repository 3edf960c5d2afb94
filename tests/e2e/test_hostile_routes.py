"""The hostile-body battery over every route (issue 12 item 1): every ``@route`` of the registry
(so a new route is covered without editing this file), the Paddle webhook with a valid signature
over each hostile body, and every GraphQL mutation with hostile variables.

Each request must answer below 500; a REST refusal carries a ``code`` (and a ``field`` when a field
of an otherwise valid JSON object was made bad); no ERROR record is logged; a refused body writes
nothing (no audit row, no event, no new row in the route's table).

One fresh org per route (written straight into the tables, as the role matrix does), all in a few
tests: the per-test truncation would cost more than the requests. The battery is bounded: the full
list of bodies goes to routes that read one, a short list to the others.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestServer
from graphql import (
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLType,
)

from emban.analytics.tables import EVENTS
from emban.auth.rate_limit import MemoryLimiter, MemoryRequestBudgets
from emban.models import (
    AlertRule,
    ApiKey,
    AuditLog,
    BillingEvent,
    Dashboard,
    Invite,
    Membership,
    Org,
    Report,
    SavedQuery,
    Widget,
)
from emban.resolvers.schema import schema
from emban.rest_compat.route import RestRoute, registered
from emban.rest_compat.routes import ROUTES
from emban.runtime import Runtime
from emban.wire import malformed_json
from tests.conftest import ClientFactory
from tests.paddle_server import PaddleStandIn, signed
from tests.rest_compat.test_rest_matrix import SESSION_ONLY, World, _body, _url, seed_world

DEPTH = 5000
DEEP = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
MIB = 1024 * 1024

# Bodies that are not a valid request to any route: (name, bytes, content type).
BODIES: list[tuple[str, bytes, str]] = [
    ("malformed", b'{"a": 1,, }', "application/json"),
    ("truncated", b'{"name": "x", "a": [1, 2', "application/json"),
    ("array", b"[1, 2]", "application/json"),
    ("string", b'"hello"', "application/json"),
    ("number", b"42", "application/json"),
    ("negative-zero", b"-0", "application/json"),
    ("null", b"null", "application/json"),
    ("deep-object", DEEP, "application/json"),
    ("deep-array", b"[" * DEPTH + b"]" * DEPTH, "application/json"),
    ("bad-utf8", b'{"name": "\xff\xfe"}', "application/json"),
    ("bad-utf8-key", b'{"\xc3\x28": 1}', "application/json"),
    ("bom", b'\xef\xbb\xbf{"name": "x"}', "application/json"),
    ("huge-int", b'{"n": ' + b"9" * 5000 + b"}", "application/json"),
    ("inf", b'{"n": 1e999}', "application/json"),
    ("nan-literal", b'{"n": NaN}', "application/json"),
    ("nul", b'{"name": "a\\u0000b"}', "application/json"),
    ("lone-surrogate", b'{"name": "\\ud800"}', "application/json"),
    ("empty", b"", "application/json"),
    ("whitespace", b"  \n ", "application/json"),
    ("wrong-content-type", b"name=x&scope=admin", "application/x-www-form-urlencoded"),
    ("text-plain-json", b'{"zz_unknown": 1}', "text/plain"),
    ("one-mib-plus-one", b'{"name": "' + b"x" * (MIB + 1 - 12) + b'"}', "application/json"),
]
# Routes that read no body get these (the body must simply not matter).
SHORT = {"malformed", "deep-object", "bad-utf8", "one-mib-plus-one", "empty"}

# Hostile values put in place of each field of a route's known-good body.
HUGE_INT = int("9" * 400)
OUT_OF_RANGE_DATES = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-23:59",
    "2026-13-01T00:00:00Z",
]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def _wrong_values(value: Any) -> Iterator[tuple[str, Any]]:
    """Values that are never valid for a field whose valid value is ``value``."""
    if isinstance(value, str):
        yield "number-for-string", 12345
        yield "huge-int-for-string", HUGE_INT
        yield "huge-string", "x" * 300_000
    elif isinstance(value, bool | int | float):
        yield "string-for-number", "12"
        yield "huge-int", HUGE_INT
        yield "object-for-number", {"a": 1}
    else:
        yield "string-for-object", "text"
        yield "number-for-object", 7
    yield "deep", _nested(200)


def _field_mutations(good: dict[str, Any]) -> Iterator[tuple[str, str, bytes]]:
    """(name, field, body): ``good`` with one field made bad (or one unknown field added)."""
    for field, value in good.items():
        for kind, bad in _wrong_values(value):
            yield f"{field}:{kind}", field, msgspec.json.encode({**good, field: bad})
        # 1e999 is not JSON msgspec can write: splice it in as text.
        yield (
            f"{field}:1e999",
            field,
            msgspec.json.encode({**good, field: 0.5}).replace(b"0.5", b"1e999", 1),
        )
    yield "unknown-field", "zz_unknown", msgspec.json.encode({**good, "zz_unknown": 1})


# Documented exceptions: fields a route ignores (a standalone widget's id is assigned by the
# server), and bodies a route accepts (no body at all revokes every session: the empty body).
IGNORED_FIELDS = {("POST", "/v1/widgets"): {"id"}}
ACCEPTED = {("POST", "/v1/embed-sessions/revoke"): {"empty"}}


def _auth(route: RestRoute, world: World) -> dict[str, str]:
    """How each route is called: public ones without credentials, ingest and /me with an admin
    API key, owner-only and session-only routes with the owner's cookie session, the other
    console routes with an admin API key."""
    if route.auth == "public":
        return {}
    if route.auth == "any":
        return world.headers["admin_key"]
    if route.role == "owner" or (route.method, route.path) in SESSION_ONLY:
        return world.headers["owner"]
    return world.headers["admin_key"]


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


# The tables the create routes write (besides the audit log and the events).
CREATED = (AlertRule, ApiKey, Dashboard, Invite, Report, SavedQuery, Widget, Membership)


async def _effects(runtime: Runtime, world: World) -> tuple[int, ...]:
    """The org's audit rows, events and rows of each created kind."""
    audit = await AuditLog.filter(org_id=world.org_id).count()
    rows = [await model.filter(org_id=world.org_id).count() for model in CREATED]
    result = await runtime.events.query(
        f"SELECT count() FROM {EVENTS} WHERE org_id = {{org:String}}",  # noqa: S608 - a constant
        {"org": world.org_id},
    )
    return audit, int(result.rows[0][0]), *rows


def test_the_battery_enumerates_every_mounted_route(app_server: TestServer) -> None:
    """The battery walks ``ROUTES``; every route the app mounts is in it, or is one of the few
    outside the declarations, each covered here or by a test named beside it."""
    mounted = {
        (resource_route.method, resource_route.resource.canonical)
        for resource_route in app_server.app.router.routes()
        if resource_route.resource is not None and resource_route.method != "HEAD"
    }
    declared = {(r.method, r.path) for r in ROUTES}
    assert len(ROUTES) == len(registered()) == len(declared) == 75
    assert mounted - declared == {
        ("*", "/graphql"),  # the GraphQL tests below
        ("POST", "/webhooks/paddle"),  # test_the_paddle_webhook_refuses_signed_hostile_bodies
        *PAGES,  # test_pages_refuse_hostile_paths_and_query_strings
    }
    assert declared <= mounted
    with_body = [r for r in ROUTES if r.body is not None]
    assert len(with_body) == 25  # they get the full battery and the field mutations


@pytest.mark.parametrize("half", [0, 1], ids=["first-half", "second-half"])
async def test_every_route_refuses_hostile_bodies_without_a_5xx(
    make_client: ClientFactory,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    billing_on: PaddleStandIn,
    half: int,
) -> None:
    caplog.set_level(logging.ERROR)
    # Deletions last within each half, so the others find their targets.
    routes = sorted(ROUTES[half::2], key=lambda r: r.method == "DELETE")
    problems: list[str] = []
    for n, route in enumerate(routes):
        world = await seed_world(f"-{half}-{n}")
        runtime.budgets = MemoryRequestBudgets()
        client = await make_client()
        key = (route.method, route.path)
        url = _url(route.path, world)
        headers = _auth(route, world)
        before = await _effects(runtime, world)
        reads_body = route.body is not None
        for name, body, content_type in BODIES:
            if (not reads_body and name not in SHORT) or name in ACCEPTED.get(key, ()):
                continue
            # Sign-up, login and invite acceptance count every attempt before they read the
            # body: a fresh counter per body, or the battery would be answered 429.
            runtime.limiter = MemoryLimiter()
            response = await client.request(
                route.method, url, data=body, headers={**headers, "Content-Type": content_type}
            )
            label = f"{route.method} {route.path} [{name}]"
            if response.status >= 500:
                problems.append(f"{label}: {response.status} {await response.text()}")
            elif reads_body:
                answer = await response.json()
                if response.status not in (400, 413) or not isinstance(answer.get("code"), str):
                    problems.append(f"{label}: {response.status} {answer}")
        good = _body(key, world)
        if isinstance(good, dict) and key in IGNORED_FIELDS:
            good = {k: v for k, v in good.items() if k not in IGNORED_FIELDS[key]}
        if reads_body and isinstance(good, dict):
            for name, field, body in _field_mutations(good):
                runtime.limiter = MemoryLimiter()
                response = await client.request(
                    route.method,
                    url,
                    data=body,
                    headers={**headers, "Content-Type": "application/json"},
                )
                label = f"{route.method} {route.path} [{name}]"
                answer = await response.json() if response.status != 204 else {}
                if name.endswith(":huge-string"):
                    # A type-correct value: each route answers it its own way (401 for a login,
                    # 404 for an id no row has, 400 adhoc_rejected past the SQL length cap).
                    if not (400 <= response.status < 500 and isinstance(answer.get("code"), str)):
                        problems.append(f"{label}: {response.status} {answer}")
                    continue
                if response.status != 400:
                    problems.append(f"{label}: {response.status} {answer}")
                    continue
                # The field named is the one made bad, within the route's own naming (widget
                # routes name ``widget.title``).
                named = answer.get("field")
                if not isinstance(answer.get("code"), str) or not (
                    isinstance(named, str) and field in re.split(r"[.\[\]]", named)
                ):
                    problems.append(f"{label}: no code or field {field!r}: {answer}")
        if reads_body:
            # A refused body writes nothing: no audit row, no event.
            after = await _effects(runtime, world)
            if after != before:
                problems.append(f"{route.method} {route.path}: wrote {before} -> {after}")
    assert problems == [], "\n".join(problems)
    assert _errors(caplog) == []


# Hostile query strings (raw, percent-encoded as sent) for the routes that read one.
QUERY_STRINGS: list[tuple[str, str]] = [
    ("repeated", "period=7d&period=30d"),
    ("huge-int", "period=" + "9" * 400 + "d"),
    ("negative", "period=-1d"),
    ("invalid-date", "period=2026-13-45"),
    ("nul", "period=7d%00"),
    ("bad-percent-utf8", "period=%ff%fe"),
    ("bad-percent", "period=%zz"),
    ("unknown", "zz_unknown=1"),
    ("empty-value", "period="),
    # Under aiohttp's 8190-byte request line (a longer line is refused by its parser: 400).
    ("huge-string", "period=" + "x" * 7000),
    ("bad-utf8-name", "%ff=1"),
    ("tenant-nul", "tenant_id=a%00b"),
    ("tenant-bad-utf8", "tenant_id=%c3%28"),
    ("tenant-huge", "tenant_id=" + "t" * 7000),
    ("tenant-repeated", "tenant_id=a&tenant_id=b"),
]
QUERY_ROUTE_QUERIES: list[tuple[str, str]] = [
    ("query-huge-filter", "event_name=x&tenant_id=t&metric=count&period=7d&f_a=" + "y" * 7000),
    ("query-repeated-metric", "event_name=x&tenant_id=t&metric=count&metric=sum&period=7d"),
    ("query-bad-granularity", "event_name=x&tenant_id=t&metric=count&period=7d&granularity=%00"),
    (
        "query-date-period",
        "event_name=x&tenant_id=t&metric=count&period=0001-01-01T00:00:00%2B01:00",
    ),
    ("query-nul-event", "event_name=%00&tenant_id=t&metric=count&period=7d"),
    ("query-bad-utf8-tenant", "event_name=x&tenant_id=%ff&metric=count&period=7d"),
    (
        "query-huge-numeric-prop",
        "event_name=x&tenant_id=t&metric=sum&period=7d&numeric_prop=" + "9" * 400,
    ),
]


async def test_get_routes_refuse_hostile_query_strings_without_a_5xx(
    make_client: ClientFactory,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    billing_on: PaddleStandIn,
) -> None:
    caplog.set_level(logging.ERROR)
    world = await seed_world()
    # The demo embed URL reads ?tenant_id= once a demo dashboard exists.
    await Org.filter(id=world.org_id).update(is_demo=True)
    await Dashboard.filter(id=world.dashboard_id).update(is_demo=True)
    client = await make_client()
    problems: list[str] = []
    gets = [r for r in ROUTES if r.method == "GET"]
    for route in gets:
        runtime.budgets = MemoryRequestBudgets()
        base = _url(route.path, world).split("?")[0]
        queries = QUERY_STRINGS + (QUERY_ROUTE_QUERIES if route.path == "/v1/query" else [])
        for name, query in queries:
            response = await client.get(f"{base}?{query}", headers=_auth(route, world))
            if response.status >= 500:
                problems.append(f"GET {route.path} [{name}]: {await response.text()}")
            elif response.status >= 400:
                answer = await response.json()
                if not isinstance(answer.get("code"), str):
                    problems.append(f"GET {route.path} [{name}]: {answer}")
    assert problems == []
    assert _errors(caplog) == []


PAGES = {
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("GET", "/embed/{dashboard_id}"),
    ("GET", "/static/embed/{path}"),
    ("GET", "/demo"),
    ("GET", "/metrics"),
}
HOSTILE_PATHS = [
    "/embed/%00",
    "/embed/%ff%fe",
    "/embed/" + "d" * 7000,
    "/embed/{dashboard}?token=%00",
    "/embed/{dashboard}?token=" + "a.b.c" * 1000,
    "/embed/{dashboard}?token=a&token=b",
    "/static/embed/..%2f..%2f..%2fetc%2fpasswd",
    "/static/embed/%2e%2e/%2e%2e/pyproject.toml",
    "/static/embed/%00.js",
    "/static/embed/%ff.js",
    "/demo?tenant_id=%00",
    "/demo?tenant_id=%ff",
    "/healthz?x=%00",
    "/openapi.json?x=%ff",
    "/metrics?x=%00",
    "/metrics?name[]=%ff&name[]=" + "m" * 7000,
]


async def test_pages_refuse_hostile_paths_and_query_strings(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The mounted GETs outside the registry: the embed page, its static files, the demo page,
    /healthz, /openapi.json and /metrics."""
    caplog.set_level(logging.ERROR)
    world = await seed_world()
    client = await make_client()
    problems = []
    for path in HOSTILE_PATHS:
        response = await client.get(path.replace("{dashboard}", world.dashboard_id))
        body = await response.read()
        if response.status >= 500 or (path.startswith("/static/") and b"[project]" in body):
            problems.append(f"{path[:80]}: {response.status} {body[:200]!r}")
    assert problems == []
    assert _errors(caplog) == []


async def test_the_paddle_webhook_refuses_signed_hostile_bodies(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture, billing_on: PaddleStandIn
) -> None:
    """The webhook authenticates by signature: each hostile body is signed, so it reaches the
    parser behind the check."""
    caplog.set_level(logging.ERROR)
    client = await make_client()
    problems: list[str] = []
    for name, body, content_type in BODIES:
        headers = {**signed(body), "Content-Type": content_type}
        response = await client.post("/webhooks/paddle", data=body, headers=headers)
        answer = await response.json()
        if response.status not in (400, 413) or not isinstance(answer.get("code"), str):
            problems.append(f"[{name}]: {response.status} {answer}")
    assert problems == []
    assert await BillingEvent.all().count() == 0
    assert _errors(caplog) == []


# --- GraphQL ---------------------------------------------------------------------------------


def _named(kind: GraphQLType) -> GraphQLType:
    while isinstance(kind, GraphQLNonNull | GraphQLList):
        kind = kind.of_type
    return kind


def _root_fields(operation: str) -> list[tuple[str, str]]:
    """(name, document) of every root field of ``operation`` (query or mutation) that takes
    arguments: its arguments as variables, ``__typename`` (or the scalar) selected."""
    root = schema._schema.mutation_type if operation == "mutation" else schema._schema.query_type
    assert root is not None
    documents = []
    for name, field in root.fields.items():
        if not field.args:
            continue
        variables = ", ".join(f"${arg}: {kind.type}" for arg, kind in field.args.items())
        arguments = ", ".join(f"{arg}: ${arg}" for arg in field.args)
        selection = "" if isinstance(_named(field.type), GraphQLScalarType) else " { __typename }"
        head = f"{operation} Hostile({variables})"
        call = f"{name}({arguments})" if arguments else name
        documents.append((name, f"{head} {{ {call}{selection} }}"))
    return documents


def _hostile_variable_values(kind: GraphQLType) -> Iterator[tuple[str, bytes]]:
    """Raw JSON texts put in a variable of type ``kind``."""
    yield "deep", b'{"a":' * 3000 + b"1" + b"}" * 3000
    yield "huge-int", b"9" * 400
    yield "inf", b"1e999"
    yield "nan", b"NaN"
    yield "negative-zero", b"-0"
    yield "null", b"null"
    yield "wrong-type-bool", b"true"
    yield "wrong-type-list", b"[1, [2, [3]]]"
    yield "bad-utf8", b'"\xff\xfe"'
    yield "huge-string", b'"' + b"x" * 200_000 + b'"'
    for date in OUT_OF_RANGE_DATES:
        yield f"date {date}", msgspec.json.encode(date)
    if isinstance(_named(kind), GraphQLInputObjectType):
        yield "unknown-field", b'{"zz_unknown": 1}'


@pytest.mark.parametrize("operation", ["mutation", "query"])
async def test_every_root_field_answers_hostile_variables_without_a_5xx(
    make_client: ClientFactory,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    billing_on: PaddleStandIn,
    operation: str,
) -> None:
    """Every mutation, and every query field with arguments, as an admin API key."""
    caplog.set_level(logging.ERROR)
    world = await seed_world()
    client = await make_client()
    headers = {**world.headers["admin_key"], "Content-Type": "application/json"}
    root = schema._schema.mutation_type if operation == "mutation" else schema._schema.query_type
    assert isinstance(root, GraphQLObjectType)
    problems: list[str] = []
    sent = 0
    for name, document in _root_fields(operation):
        runtime.budgets = MemoryRequestBudgets()
        args = root.fields[name].args
        # Every variable gets the hostile value at once: graphql-core coerces each and reports
        # every refusal, and one request per (field, kind) keeps the battery bounded.
        kinds: dict[str, dict[str, bytes]] = {}
        for arg, definition in args.items():
            for kind, raw in _hostile_variable_values(definition.type):
                kinds.setdefault(kind, {})[arg] = raw
        for kind, values in kinds.items():
            variables = b", ".join(
                msgspec.json.encode(arg) + b": " + values.get(arg, b'"x"') for arg in args
            )
            body = (
                b'{"query": '
                + msgspec.json.encode(document)
                + b', "variables": {'
                + variables
                + b"}}"
            )
            response = await client.post("/graphql", data=body, headers=headers)
            sent += 1
            text = await response.text()
            if response.status >= 500 or "Unexpected error" in text:
                problems.append(f"{name} [{kind}]: {response.status} {text[:300]}")
    assert sent > 100
    assert problems == [], "\n".join(problems)
    assert _errors(caplog) == []


HOSTILE_FILTERS: list[tuple[str, Any]] = [
    *[
        (f"date {date}", {"dateRanges": {"timestamp": {"from": date, "to": date}}})
        for date in OUT_OF_RANGE_DATES
    ],
    ("date-reversed", {"dateRanges": {"timestamp": {"from": "2026-02-01", "to": "2026-01-01"}}}),
    ("date-number", {"dateRanges": {"timestamp": {"from": HUGE_INT}}}),
    ("date-nul", {"dateRanges": {"timestamp": {"from": "2026-01-01\u0000"}}}),
    ("date-list", {"dateRanges": {"timestamp": ["2026-01-01"]}}),
    ("date-unknown-column", {"dateRanges": {"zz": {"from": "2026-01-01"}}}),
    ("date-not-object", {"dateRanges": 5}),
    ("range-huge", {"numericRanges": {"tokens": {"min": HUGE_INT}}}),
    ("range-string", {"numericRanges": {"tokens": {"min": "1"}}}),
    ("range-not-object", {"numericRanges": {"tokens": 5}}),
    ("range-unknown-bound", {"numericRanges": {"tokens": {"zz": 1}}}),
    ("range-long-name", {"numericRanges": {"t" * 10_000: {"min": 1}}}),
    ("range-deep", {"numericRanges": _nested(500)}),
    ("dimension-nul", {"dimensions": {"model": "\u0000"}}),
    ("dimension-huge", {"dimensions": {"model": "x" * 200_000}}),
    ("dimension-number", {"dimensions": {"model": HUGE_INT}}),
    ("dimension-list", {"dimensions": {"model": [[1]]}}),
    ("dimension-object", {"dimensions": {"model": {"a": 1}}}),
    ("dimension-bad-key", {"dimensions": {"\u0000": "x"}}),
    ("dimension-deep", {"dimensions": _nested(500)}),
    ("period-huge", {"period": "9" * 400 + "d"}),
    ("period-nul", {"period": "7d\u0000"}),
    ("unknown-field", {"zz": 1}),
    ("not-object", "x"),
]
HOSTILE_DRILLS: list[tuple[str, Any]] = [
    ("drill-nul", {"dimension": "\u0000", "value": "x"}),
    ("drill-huge", {"dimension": "model", "value": "x" * 200_000}),
    ("drill-number", {"dimension": HUGE_INT, "value": "x"}),
    ("drill-missing", {"dimension": "model"}),
]
VALID = {"dimension-nul"}
WIDGET_DATA = (
    "query Hostile($w: ID!, $f: EmbedFiltersInput, $d: DrillInput) "
    "{ embed { widgetData(widgetId: $w, filters: $f, drill: $d) { __typename } } }"
)


async def test_embed_widget_data_answers_hostile_filters_without_a_5xx(
    make_client: ClientFactory,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The embed token's query, whose filters are JSON (they reach the service unchecked by
    GraphQL): out-of-range dates, huge numbers, NUL, deep nesting, wrong shapes."""
    caplog.set_level(logging.ERROR)
    world = await seed_world()
    client = await make_client()
    minted = await client.post(
        "/v1/embed-sessions",
        json={"tenant_id": "acme", "dashboard_id": world.dashboard_id},
        headers=world.headers["admin_key"],
    )
    assert minted.status == 201, await minted.text()
    embed = {"Authorization": f"Bearer {(await minted.json())['token']}"}
    problems: list[str] = []
    cases = [(name, {"f": value}) for name, value in HOSTILE_FILTERS]
    cases += [(name, {"d": value}) for name, value in HOSTILE_DRILLS]
    cases += [("widget-nul", {"w": "calls\u0000"}), ("widget-huge", {"w": "w" * 200_000})]
    for name, variables in cases:
        runtime.limiter = MemoryLimiter()
        body = {"query": WIDGET_DATA, "variables": {"w": "calls", **variables}}
        response = await client.post("/graphql", json=body, headers=embed)
        text = await response.text()
        answer = await response.json() if response.status < 500 else {}
        errors = answer.get("errors") or []
        # A NUL is a value ClickHouse stores and compares: filtering on it is a valid question.
        if response.status >= 500 or "Unexpected error" in text or not (errors or name in VALID):
            problems.append(f"[{name}]: {response.status} {text[:300]}")
    assert problems == [], "\n".join(problems)
    assert _errors(caplog) == []


@pytest.mark.parametrize(
    "timestamp",
    [
        *OUT_OF_RANGE_DATES,
        "2026-02-30T00:00:00Z",
        "-0001-01-01T00:00:00Z",
        "2026-01-01T25:00:00Z",
        "\u0000",
        12345,
        99999999999999999,
    ],
)
async def test_an_out_of_range_timestamp_names_its_event_and_field(
    make_client: ClientFactory,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    timestamp: object,
) -> None:
    world = await seed_world()
    client = await make_client()
    caplog.set_level(logging.ERROR)
    body = {
        "events": [
            {"tenant_id": "t", "event_name": "e"},
            {"tenant_id": "t", "event_name": "e", "timestamp": timestamp},
        ]
    }
    response = await client.post("/v1/events", json=body, headers=world.headers["admin_key"])
    assert response.status == 400
    assert await response.json() == {
        "error": "1 invalid event field(s); nothing was stored",
        "code": "invalid_events",
        "errors": [
            {
                "index": 1,
                "field": "timestamp",
                "message": "must be ISO 8601 and at most 24 h in the future",
            }
        ],
    }
    assert (await _effects(runtime, world))[:2] == (0, 0)
    assert _errors(caplog) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": [1, {"b": 1e999}]}', {"field": "a[1].b", "code": "invalid_field"}),
        (b'{"x": -' + b"9" * 5000 + b"}", {"field": "x", "code": "invalid_field"}),
        (b'{"x": 1e999, "y": ', {"code": "invalid_json"}),  # not JSON either: no field
    ],
)
def test_a_number_out_of_range_is_named_by_its_path(body: bytes, expected: dict[str, str]) -> None:
    with pytest.raises(msgspec.DecodeError) as refused:
        msgspec.json.decode(body)
    answer = malformed_json(refused.value, body).body()
    assert {k: answer[k] for k in expected} == expected
    assert ("field" in answer) == ("field" in expected)
