"""POST /v1/events: auth, validation (every bad event listed, nothing stored), size limits, gzip,
de-duplication by event_id, group commit, the monthly plan limit, server-side defaults."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emban.analytics.ingest import EventRow
from emban.analytics.wal_ingest import BULK_ROWS, WalIngestWriter
from emban.models import UsageDaily
from emban.resolvers.analytics import EventInput
from emban.rest_compat import bodies
from emban.runtime import Runtime
from emban.services.events import (
    OFF_LOOP_BODY_BYTES,
    IngestEvent,
    decode_events,
    decode_events_json,
    event_rows,
)
from tests.conftest import Client, ClientFactory, bearer, create_key, register

EVENT = "api.call"
TENANT = "acme"


async def setup_org(
    make_client: ClientFactory, email: str = "owner@acme.test", org: str = "Acme"
) -> tuple[Client, str, str]:
    """(owner client with a console session, admin key, org id)."""
    owner = await make_client()
    reg = await register(owner, email=email, org_name=org)
    return owner, reg["api_key"]["key"], reg["org"]["id"]


def ev(**fields: Any) -> dict[str, Any]:
    return {"tenant_id": TENANT, "event_name": EVENT, **fields}


async def post(client: Client, key: str | None, body: Any) -> tuple[int, Any]:
    headers = bearer(key) if key else {}
    response = await client.post("/v1/events", json=body, headers=headers)
    return response.status, await response.json()


async def stored(runtime: Runtime, org_id: str, table: str = "events") -> int:
    result = await runtime.events.query(
        f"SELECT count() FROM {table} WHERE org_id = {{org:String}}",  # noqa: S608 - fixed names
        {"org": org_id},
    )
    return int(result.rows[0][0])


async def rollup_count(runtime: Runtime, org_id: str) -> tuple[int, int]:
    """Events counted by the hourly and daily rollups of this org."""
    out = []
    for table in ("events_hourly_rollup", "events_daily_rollup"):
        result = await runtime.events.query(
            f"SELECT sum(events) FROM {table} WHERE org_id = {{org:String}}",  # noqa: S608
            {"org": org_id},
        )
        out.append(int(result.rows[0][0]))
    return out[0], out[1]


async def total(client: Client, key: str, **params: str) -> tuple[int, str]:
    full = {"event_name": EVENT, "tenant_id": TENANT, "metric": "count", "period": "24h"}
    full.update(params)
    response = await client.get("/v1/query", params=full, headers=bearer(key))
    assert response.status == 200, await response.text()
    body = await response.json()
    return sum(p["value"] for p in body["data"]), body["meta"]["planned_by"]


# --- auth --------------------------------------------------------------------------------------


async def test_admin_and_ingest_keys_can_send_events(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner, admin, org_id = await setup_org(make_client)
    ingest = await create_key(owner, "ingest")
    assert await post(owner, admin, {"events": [ev(), ev(user_id="u1")]}) == (
        200,
        {"accepted": 2, "status": "ok"},
    )
    assert await post(owner, ingest, {"events": [ev(), ev(), ev()]}) == (
        200,
        {"accepted": 3, "status": "ok"},
    )
    assert await stored(runtime, org_id) == 5
    assert await total(owner, admin) == (5, "hourly_rollup")


async def test_console_session_cannot_send_events(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner, _, org_id = await setup_org(make_client)
    assert await post(owner, None, {"events": [ev()]}) == (
        403,
        {"error": "events are sent with an admin or ingest API key", "code": "insufficient_scope"},
    )
    assert await stored(runtime, org_id) == 0


async def test_no_auth_is_401(make_client: ClientFactory, runtime: Runtime) -> None:
    client = await make_client()
    assert await post(client, None, {"events": [ev()]}) == (
        401,
        {"error": "authentication required", "code": "unauthenticated"},
    )
    status, _ = await post(client, "emb_not_a_key", {"events": [ev()]})
    assert status == 401
    result = await runtime.events.query("SELECT count() FROM events")
    assert int(result.rows[0][0]) == 0


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("padding", [0, 2_000])
async def test_invalid_events_are_each_listed_and_nothing_is_stored(
    make_client: ClientFactory, runtime: Runtime, padding: int
) -> None:
    """Also for a body over 64 KiB (``padding`` valid events after the bad ones), which a worker
    process decodes first: it refuses the body and the server lists the same errors."""
    owner, key, org_id = await setup_org(make_client)
    now = datetime.now(UTC)
    events: list[Any] = [
        ev(user_id="fine"),  # 0: valid, but the request fails as a whole
        {"event_name": EVENT},  # 1
        ev(event_name=""),  # 2
        ev(event_name="e" * 201),  # 3
        ev(timestamp="yesterday"),  # 4
        ev(timestamp=(now + timedelta(hours=25)).isoformat()),  # 5
        ev(string_props={"model": 4, "plan": "pro"}),  # 6
        ev(numeric_props={"a": "NaN", "b": True, "c": "12", "d": "Infinity", "ok": 1.5}),  # 7
        ev(colour="red"),  # 8
        ev(tenant_id="   ", event_name=None),  # 9
        ev(timestamp=(now + timedelta(hours=23)).isoformat()),  # 10: valid (within 24 h)
        "not an object",  # 11
        ev(string_props=["model"], numeric_props=3),  # 12
        ev(user_id=42, event_id="x" * 201),  # 13
        ev(timestamp="1969-12-31T23:59:59Z"),  # 14
    ]
    events += [ev(user_id=f"padding-{i}") for i in range(padding)]
    assert (len(json.dumps({"events": events})) > OFF_LOOP_BODY_BYTES) == bool(padding)
    status, body = await post(owner, key, {"events": events})
    assert status == 400
    timestamp_message = "must be ISO 8601 and at most 24 h in the future"
    number_message = "value must be a finite number"
    expected_errors = [
        {"index": 1, "field": "tenant_id", "message": "required non-empty string"},
        {"index": 2, "field": "event_name", "message": "required non-empty string"},
        {"index": 3, "field": "event_name", "message": "at most 200 characters"},
        {"index": 4, "field": "timestamp", "message": timestamp_message},
        {"index": 5, "field": "timestamp", "message": timestamp_message},
        {"index": 6, "field": "string_props.model", "message": "value must be a string"},
        {"index": 7, "field": "numeric_props.a", "message": number_message},
        {"index": 7, "field": "numeric_props.b", "message": number_message},
        {"index": 7, "field": "numeric_props.c", "message": number_message},
        {"index": 7, "field": "numeric_props.d", "message": number_message},
        {"index": 8, "field": "colour", "message": "unknown field"},
        {"index": 9, "field": "tenant_id", "message": "required non-empty string"},
        {"index": 9, "field": "event_name", "message": "required non-empty string"},
        {"index": 11, "field": "event", "message": "must be an object"},
        {
            "index": 12,
            "field": "string_props",
            "message": "must be an object of at most 200 strings",
        },
        {
            "index": 12,
            "field": "numeric_props",
            "message": "must be an object of at most 200 numbers",
        },
        {
            "index": 13,
            "field": "event_id",
            "message": "must be a string of at most 200 characters",
        },
        {"index": 13, "field": "user_id", "message": "must be a string of at most 200 characters"},
        {"index": 14, "field": "timestamp", "message": timestamp_message},
    ]
    assert body == {
        "error": f"{len(expected_errors)} invalid event field(s); nothing was stored",
        "code": "invalid_events",
        "errors": expected_errors,
    }
    assert await stored(runtime, org_id) == 0
    assert await stored(runtime, org_id, "event_ids") == 0
    assert await rollup_count(runtime, org_id) == (0, 0)
    await runtime.ingest.visible()  # usage counts drained rows
    usage = await UsageDaily.filter(org_id=org_id).values_list("events", flat=True)
    assert list(usage) == []


async def test_error_list_is_capped_but_the_total_is_reported(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner, key, org_id = await setup_org(make_client)
    status, body = await post(owner, key, {"events": [{"event_name": EVENT}] * 150})
    assert status == 400
    assert body["error"] == "150 invalid event field(s); nothing was stored"
    assert body["errors"] == [
        {"index": i, "field": "tenant_id", "message": "required non-empty string"}
        for i in range(100)
    ]
    assert await stored(runtime, org_id) == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, 'body must be {"events": [...]}'),
        ([ev()], 'body must be {"events": [...]}'),
        ({"events": {"0": ev()}}, 'body must be {"events": [...]}'),
        ({"events": []}, "events must not be empty"),
    ],
)
async def test_body_shape_errors(
    make_client: ClientFactory, runtime: Runtime, body: Any, message: str
) -> None:
    owner, key, org_id = await setup_org(make_client)
    assert await post(owner, key, body) == (
        400,
        {"error": message, "code": "invalid_field", "field": "events"},
    )
    assert await stored(runtime, org_id) == 0


async def test_malformed_json_and_out_of_range_numbers_are_400(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner, key, org_id = await setup_org(make_client)
    # Unreadable JSON is the body's fault; a number no float holds is its event's (issue 12:
    # reported with the event's index and field, not as a bare invalid_json).
    out_of_range = [
        {"index": 0, "field": "numeric_props.x", "message": "value must be a finite number"}
    ]
    for text, code, errors in (
        (b'{"events": [', "invalid_json", None),
        (
            b'{"events": [{"tenant_id": "a", "event_name": "e", "numeric_props": {"x": NaN}}]}',
            "invalid_events",
            out_of_range,
        ),
        (
            b'{"events": [{"tenant_id": "a", "event_name": "e", "numeric_props": {"x": 1e999}}]}',
            "invalid_events",
            out_of_range,
        ),
    ):
        response = await owner.post(
            "/v1/events",
            data=text,
            headers={**bearer(key), "Content-Type": "application/json"},
        )
        assert response.status == 400
        answer = await response.json()
        assert (answer["code"], answer.get("errors")) == (code, errors)
    assert await stored(runtime, org_id) == 0


# --- size limits -------------------------------------------------------------------------------


async def test_ten_thousand_events_are_accepted_and_one_more_is_413(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner, key, org_id = await setup_org(make_client)
    assert await post(owner, key, {"events": [ev()] * 10_001}) == (
        413,
        {"error": "at most 10000 events per request (got 10001)", "code": "payload_too_large"},
    )
    assert await stored(runtime, org_id) == 0
    assert await post(owner, key, {"events": [ev()] * 10_000}) == (
        200,
        {"accepted": 10_000, "status": "ok"},
    )
    assert await stored(runtime, org_id) == 10_000


async def test_a_body_over_10_mib_is_413(make_client: ClientFactory, runtime: Runtime) -> None:
    owner, key, org_id = await setup_org(make_client)
    limit = 10 * 1024 * 1024
    event = ev(string_props={"blob": ""})
    skeleton = json.dumps({"events": [event]}).encode()
    padding = limit + 1 - len(skeleton)
    event["string_props"]["blob"] = "x" * padding
    body = json.dumps({"events": [event]}).encode()
    assert len(body) == limit + 1
    response = await owner.post(
        "/v1/events", data=body, headers={**bearer(key), "Content-Type": "application/json"}
    )
    assert response.status == 413
    assert await response.json() == {
        "error": "request body is larger than 10485760 bytes",
        "code": "payload_too_large",
    }
    assert await stored(runtime, org_id) == 0


async def test_a_gzip_body_is_accepted(make_client: ClientFactory, runtime: Runtime) -> None:
    owner, key, org_id = await setup_org(make_client)
    events = [ev(user_id=f"u{i}", string_props={"model": "gpt-4"}) for i in range(50)]
    body = gzip.compress(json.dumps({"events": events}).encode())
    response = await owner.post(
        "/v1/events",
        data=body,
        headers={**bearer(key), "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status == 200, await response.text()
    assert await response.json() == {"accepted": 50, "status": "ok"}
    assert await stored(runtime, org_id) == 50
    assert await total(owner, key, metric="count_unique", f_model="gpt-4") == (50, "raw")
    assert await total(owner, key, metric="count_unique_approx", f_model="gpt-4") == (
        50,
        "hourly_rollup",
    )


async def test_a_gzip_body_over_10_mib_once_decompressed_is_413(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner, key, org_id = await setup_org(make_client)
    event = ev(string_props={"blob": "y" * (11 * 1024 * 1024)})
    body = gzip.compress(json.dumps({"events": [event]}).encode())
    assert len(body) < 1024 * 1024
    response = await owner.post(
        "/v1/events",
        data=body,
        headers={**bearer(key), "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status == 413
    assert (await response.json())["code"] == "payload_too_large"
    assert await stored(runtime, org_id) == 0


# --- de-duplication ----------------------------------------------------------------------------


async def test_resending_event_ids_never_changes_a_result(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner, key, org_id = await setup_org(make_client)
    now = datetime.now(UTC)
    events = [
        ev(event_id=f"evt-{i}", user_id=f"u{i}", timestamp=(now - timedelta(hours=i)).isoformat())
        for i in range(4)
    ]

    async def results() -> list[tuple[int, str]]:
        return [
            await total(owner, key),  # hourly rollup
            await total(owner, key, period="7d"),  # daily rollup
            await total(owner, key, f_region=""),  # raw
            await total(owner, key, metric="count_unique", granularity="day"),
            await total(owner, key, group_by="model"),
        ]

    assert await post(owner, key, {"events": events}) == (200, {"accepted": 4, "status": "ok"})
    first = await results()
    assert first == [
        (4, "hourly_rollup"),
        (4, "daily_rollup"),
        (4, "raw"),
        (4, "daily_rollup"),
        (4, "hourly_rollup"),
    ]
    # the same request again, then a request repeating ids inside itself
    assert await post(owner, key, {"events": events}) == (200, {"accepted": 4, "status": "ok"})
    repeated = [events[0], events[0], events[1], ev(event_id="evt-new"), ev(event_id="evt-new")]
    assert await post(owner, key, {"events": repeated}) == (200, {"accepted": 5, "status": "ok"})
    assert await stored(runtime, org_id) == 5
    assert await rollup_count(runtime, org_id) == (5, 5)
    after = await results()
    assert after == [(5, p) for _, p in first[:3]] + [(4, "daily_rollup"), (5, "hourly_rollup")]
    # the usage counter (which the monthly limit reads) counts each event once
    await runtime.ingest.visible()  # usage counts drained rows
    usage = await UsageDaily.filter(org_id=org_id).values_list("events", flat=True)
    assert list(usage) == [5]


async def test_the_same_event_id_in_another_org_is_another_event(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner1, key1, org1 = await setup_org(make_client)
    owner2, key2, org2 = await setup_org(make_client, "owner@globex.test", "Globex")
    assert (await post(owner1, key1, {"events": [ev(event_id="shared")]}))[0] == 200
    assert (await post(owner2, key2, {"events": [ev(event_id="shared")]}))[0] == 200
    assert await stored(runtime, org1) == 1
    assert await stored(runtime, org2) == 1


# --- group commit ------------------------------------------------------------------------------


async def test_concurrent_requests_are_group_committed(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner, key, org_id = await setup_org(make_client)
    clients = [await make_client() for _ in range(20)]
    before = runtime.ingest.flushes

    async def one(index: int) -> tuple[int, Any]:
        body = {"events": [ev(user_id=f"r{index}", event_id=f"{index}-{n}") for n in range(25)]}
        return await post(clients[index], key, body)

    answers = await asyncio.gather(*(one(i) for i in range(20)))
    flushes = runtime.ingest.flushes - before
    assert answers == [(200, {"accepted": 25, "status": "ok"})] * 20
    assert 0 < flushes < 20
    assert await stored(runtime, org_id) == 500
    assert await total(owner, key) == (500, "hourly_rollup")
    assert await total(owner, key, metric="count_unique") == (20, "hourly_rollup")
    await runtime.ingest.visible()  # usage counts drained rows
    usage = await UsageDaily.filter(org_id=org_id).values_list("events", flat=True)
    assert list(usage) == [500]


# --- the monthly plan limit --------------------------------------------------------------------


async def today_stable() -> datetime:
    """Now, not in the last 10 s of a UTC day (the usage row is per day)."""
    now = datetime.now(UTC)
    left = 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
    if left < 10:
        await asyncio.sleep(left + 1)
        now = datetime.now(UTC)
    return now


async def test_monthly_events_limit_is_402(make_client: ClientFactory, runtime: Runtime) -> None:
    owner, key, org_id = await setup_org(make_client)
    today = (await today_stable()).date()
    await UsageDaily.create(org_id=org_id, day=today, events=99_995)
    assert await post(owner, key, {"events": [ev()] * 10}) == (
        402,
        {
            "error": "monthly events limit reached for this plan",
            "code": "events_limit",
            "plan": "free",
            "upgrade_to": "starter",
            "limit": 100_000,
            "used": 99_995,
        },
    )
    assert await stored(runtime, org_id) == 0
    # exactly up to the limit is fine; one more is not
    assert await post(owner, key, {"events": [ev()] * 5}) == (200, {"accepted": 5, "status": "ok"})
    assert await stored(runtime, org_id) == 5
    status, body = await post(owner, key, {"events": [ev()]})
    assert (status, body["code"], body["used"]) == (402, "events_limit", 100_000)
    assert await stored(runtime, org_id) == 5


async def test_the_usage_lookup_runs_only_for_a_plan_with_a_monthly_limit(
    make_client: ClientFactory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unlimited plan's request makes no usage query (on the embedded defaults every query
    shares one SQLite connection); a limited plan's request still checks its cap."""
    from emban.models import Org
    from emban.services import events as events_service

    owner, key, org_id = await setup_org(make_client)
    lookups: list[str] = []
    real = events_service.events_this_month

    async def counted(org: str, day: Any) -> int:
        lookups.append(org)
        return await real(org, day)

    monkeypatch.setattr(events_service, "events_this_month", counted)
    assert await post(owner, key, {"events": [ev()] * 3}) == (200, {"accepted": 3, "status": "ok"})
    assert lookups == [org_id]
    await Org.filter(id=org_id).update(plan="enterprise")
    assert await post(owner, key, {"events": [ev()] * 3}) == (200, {"accepted": 3, "status": "ok"})
    assert lookups == [org_id]
    assert await stored(runtime, org_id) == 6


async def test_the_cap_counts_only_newly_stored_events(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    """A resend of stored event ids at the cap is accepted (nothing new is stored); a batch
    with one new id among them is refused, counted as one event."""
    owner, key, org_id = await setup_org(make_client)
    today = (await today_stable()).date()
    await UsageDaily.create(org_id=org_id, day=today, events=99_995)
    first = [ev(event_id=f"e{n}") for n in range(5)]
    assert await post(owner, key, {"events": first}) == (200, {"accepted": 5, "status": "ok"})
    await runtime.ingest.visible()  # usage counts drained rows
    usage = await UsageDaily.filter(org_id=org_id).values_list("events", flat=True)
    assert list(usage) == [100_000]
    # At the cap: the same five again (a client retrying a lost answer) pass, store nothing.
    assert await post(owner, key, {"events": first}) == (200, {"accepted": 5, "status": "ok"})
    assert await stored(runtime, org_id) == 5
    # A new id among the old ones is one event over the cap.
    status, body = await post(owner, key, {"events": [*first, ev(event_id="e5")]})
    assert (status, body) == (
        402,
        {
            "error": "monthly events limit reached for this plan",
            "code": "events_limit",
            "plan": "free",
            "upgrade_to": "starter",
            "limit": 100_000,
            "used": 100_000,
        },
    )
    # Two copies of one new id inside a batch count once.
    await UsageDaily.filter(org_id=org_id).update(events=99_999)
    twice = [ev(event_id="e6"), ev(event_id="e6")]
    assert await post(owner, key, {"events": [*first, *twice]}) == (
        200,
        {"accepted": 7, "status": "ok"},
    )
    assert await stored(runtime, org_id) == 6


async def test_earlier_days_of_the_month_count_and_last_month_does_not(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner, key, org_id = await setup_org(make_client)
    today = (await today_stable()).date()
    first = today.replace(day=1)
    await UsageDaily.create(org_id=org_id, day=first - timedelta(days=1), events=100_000)
    assert (await post(owner, key, {"events": [ev()]}))[0] == 200
    if first != today:
        await UsageDaily.create(org_id=org_id, day=first, events=99_999)
    else:
        await UsageDaily.filter(org_id=org_id, day=today).update(events=100_000)
    status, body = await post(owner, key, {"events": [ev()]})
    assert (status, body["used"]) == (402, 100_000)
    assert await stored(runtime, org_id) == 1


# --- defaults ----------------------------------------------------------------------------------


async def test_timestamp_defaults_to_server_time_and_event_ids_are_generated(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner, key, org_id = await setup_org(make_client)
    before = datetime.now(UTC)
    assert await post(owner, key, {"events": [ev(user_id=f"u{i}") for i in range(5)]}) == (
        200,
        {"accepted": 5, "status": "ok"},
    )
    after = datetime.now(UTC)
    result = await runtime.events.query(
        "SELECT event_id, toUnixTimestamp64Milli(timestamp), user_id, tenant_id, event_name "
        "FROM events WHERE org_id = {org:String} ORDER BY user_id",
        {"org": org_id},
    )
    assert len(result.rows) == 5
    ids = [row[0] for row in result.rows]
    assert len(set(ids)) == 5
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    stamps = {int(row[1]) for row in result.rows}
    assert len(stamps) == 1  # one server time for the whole request
    stamp = stamps.pop()
    assert int(before.timestamp() * 1000) - 1 <= stamp <= int(after.timestamp() * 1000)
    assert [row[2:] for row in result.rows] == [[f"u{i}", TENANT, EVENT] for i in range(5)]


async def test_explicit_fields_are_stored_as_sent(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    owner, key, org_id = await setup_org(make_client)
    sent = ev(
        event_id="my-id-1",
        user_id="user-42",
        timestamp="2026-01-02T03:04:05.678+02:00",
        string_props={"model": "gpt-4", "quote": "o'neil"},
        numeric_props={"tokens": 123.4, "n": 7},
    )
    assert (await post(owner, key, {"events": [sent]}))[0] == 200
    result = await runtime.events.query(
        "SELECT event_id, user_id, toString(timestamp), string_props, numeric_props "
        "FROM events WHERE org_id = {org:String}",
        {"org": org_id},
    )
    assert result.rows == [
        [
            "my-id-1",
            "user-42",
            "2026-01-02 01:04:05.678",
            {"model": "gpt-4", "quote": "o'neil"},
            {"n": 7, "tokens": 123.4},
        ]
    ]


@pytest.mark.parametrize("count", [1, 2, 10_000])
def test_generated_event_ids_are_distinct_128_bit_hex(count: int) -> None:
    from emban.services.events import generated_event_ids

    ids = list(generated_event_ids(count))
    assert len(ids) == count == len(set(ids))
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


# --- the one declaration of the ingest event ---------------------------------------------------


def test_the_graphql_input_has_the_fields_of_the_one_ingest_event() -> None:
    """GraphQL's ``EventInput`` is the schema's spelling of :class:`IngestEvent` (the SDL needs
    its own input type); it may not drift from it."""
    graphql_fields = [f.name for f in EventInput.__strawberry_definition__.fields]
    assert graphql_fields == list(IngestEvent.__struct_fields__)
    assert bodies.IngestEvent is IngestEvent


def test_both_decoders_give_the_same_typed_events() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    raw = {
        "events": [
            ev(timestamp="2026-03-01T11:00:00Z", string_props={"m": "x"}),
            ev(numeric_props={"n": 2}, string_props={}),
        ]
    }
    fast = decode_events_json(json.dumps(raw).encode(), now)
    listed = decode_events(raw, now)
    assert fast == listed
    assert fast.events == [
        IngestEvent(
            tenant_id=TENANT,
            event_name=EVENT,
            timestamp="2026-03-01T11:00:00Z",
            string_props={"m": "x"},
        ),
        IngestEvent(tenant_id=TENANT, event_name=EVENT, numeric_props={"n": 2.0}, string_props={}),
    ]
    rows = event_rows(fast, org_id="org_1", environment_id="env_1")
    assert [(r.timestamp, r.numeric_props, r.user_id) for r in rows] == [
        ("2026-03-01 11:00:00.000", {}, ""),
        ("2026-03-01 12:00:00.000", {"n": 2.0}, ""),
    ]
    assert all(len(r.event_id) == 32 for r in rows)


# --- backpressure (the WAL's bounded backlog) ----------------------------------------------------


class HeldEngine:
    """The engine with every events INSERT held until ``release`` (a drain that cannot keep up)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def query(self, sql: str, params: Any = None, *, background: bool = False) -> Any:
        return await self.inner.query(sql, params, background=background)

    async def insert_json(self, table: str, *args: Any, **kwargs: Any) -> None:
        if table == "events":
            self.held.set()
            await self.release.wait()
        await self.inner.insert_json(table, *args, **kwargs)


async def test_past_the_backlog_bound_ingest_answers_503_with_retry_after(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    """Acknowledged bytes not yet in the engine reach EMBAN_INGEST_BACKLOG_BYTES: the next batch
    is refused, 503 ``ingest_backlog`` with ``Retry-After``, and nothing of it is stored; once
    the drain catches up, ingest is accepted again."""
    owner, key, org_id = await setup_org(make_client)
    writer: Any = runtime.ingest
    assert await writer.visible() is True
    engine, limit = writer._store, writer.backlog_limit
    held = HeldEngine(engine)
    writer._store, writer.backlog_limit = held, 1
    try:
        assert await post(owner, key, {"events": [ev(event_id="a")]}) == (
            200,
            {"accepted": 1, "status": "ok"},
        )
        await held.held.wait()
        response = await owner.post(
            "/v1/events", json={"events": [ev(event_id="b")]}, headers=bearer(key)
        )
        body = await response.json()
        assert (response.status, response.headers.get("Retry-After")) == (503, "1")
        assert body == {
            "error": "ingest is behind: the write-ahead log holds more events than the engine "
            "has taken (193 of 1 bytes); retry after the Retry-After seconds",
            "code": "ingest_backlog",
            "request_id": response.headers["X-Request-Id"],  # a 5xx body carries it
        }
    finally:
        held.release.set()
        assert await writer.visible() is True
        writer._store, writer.backlog_limit = engine, limit
    assert await post(owner, key, {"events": [ev(event_id="c")]}) == (
        200,
        {"accepted": 1, "status": "ok"},
    )
    assert await stored(runtime, org_id) == 2


async def test_a_read_does_not_wait_for_another_orgs_backlog(
    make_client: ClientFactory, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """Read-your-writes is per org: while another org's bulk drain is held in the engine, an
    ad-hoc read of this org (no ``org`` parameter: the caller's org decides) answers with this
    org's acknowledged event."""
    owner, key, _ = await setup_org(make_client)
    status, _ = await post(owner, key, {"events": [ev()]})
    assert status == 200
    writer = runtime.ingest
    assert isinstance(writer, WalIngestWriter)
    engine = writer._store
    held, release = asyncio.Event(), asyncio.Event()

    class Held:
        def __getattr__(self, name: str) -> Any:
            return getattr(engine, name)

        async def insert_json(self, table: str, *args: Any, token: str | None = None) -> None:
            if table == "events" and (token or "").startswith(writer.bulk.wal.id):
                held.set()
                await release.wait()
            await engine.insert_json(table, *args, token=token)

    other = [
        EventRow("org_other", "env", "t", "e", "2026-11-01 10:00:00.000", f"o-{n}", "", {}, {})
        for n in range(BULK_ROWS)
    ]
    writer._store = Held()  # type: ignore[assignment]
    try:
        assert await writer.submit(other) == BULK_ROWS  # the bulk lane
        await asyncio.wait_for(held.wait(), timeout=30)
        with caplog.at_level(logging.WARNING, logger="emban.ingest"):
            response = await owner.post(
                "/v1/query/adhoc", json={"sql": "SELECT count() FROM events"}, headers=bearer(key)
            )
        # A read that waited for the held drain would have given up after 10 s and said so.
        assert [r.message for r in caplog.records if "caught up" in r.message] == []
        assert response.status == 200, await response.text()
        assert [[int(n) for n in row] for row in (await response.json())["rows"]] == [[1]]
        assert writer.bulk.drained_below <= writer.bulk.acked_seq  # the other org: still held
    finally:
        release.set()
        writer._store = engine
    assert await writer.visible(org="org_other") is True
