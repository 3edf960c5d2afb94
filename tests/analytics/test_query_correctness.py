"""GET /v1/query on small hand-built data: exact values per bucket, meta, isolation, errors.

Events are placed at known offsets from the start of the current hour, so every bucket's value is
known in advance; ``stable_now`` waits out the last 90 s of an hour so a test never straddles one.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Client, ClientFactory, bearer, create_key, join_as
from tests.scenario import iso, owner_and_key, send_events, stable_now, stamp

EVENT = "api.call"
TENANT = "acme"
HOUR = timedelta(hours=1)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def monday(moment: datetime) -> datetime:
    day = floor_day(moment)
    return day - timedelta(days=day.weekday())


def month_start(moment: datetime) -> datetime:
    return floor_day(moment).replace(day=1)


def event(
    moment: datetime, tenant: str = TENANT, name: str = EVENT, **fields: Any
) -> dict[str, Any]:
    return {"tenant_id": tenant, "event_name": name, "timestamp": stamp(moment), **fields}


async def query(
    client: Client, key: str | None, expect: int = 200, **params: str
) -> dict[str, Any]:
    full = {"event_name": EVENT, "tenant_id": TENANT, "metric": "count", "period": "24h"}
    full.update(params)
    headers = bearer(key) if key else {}
    response = await client.get("/v1/query", params=full, headers=headers)
    assert response.status == expect, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def series(body: dict[str, Any]) -> list[tuple[str, int | float]]:
    assert all("group" not in p for p in body["data"])
    return [(p["bucket"], p["value"]) for p in body["data"]]


def hours(start: datetime, count: int) -> list[str]:
    return [iso(start + HOUR * i) for i in range(count)]


def check_meta(body: dict[str, Any], **expected: Any) -> None:
    meta = dict(body["meta"])
    rows_scanned = meta.pop("rows_scanned")
    query_time_ms = meta.pop("query_time_ms")
    assert type(rows_scanned) is int and rows_scanned >= 0
    assert type(query_time_ms) in (int, float) and query_time_ms >= 0
    assert meta == expected


# --- counts ------------------------------------------------------------------------------------


async def test_count_per_hour_with_zero_filled_buckets(make_client: ClientFactory) -> None:
    owner, key = await owner_and_key(make_client)
    now = await stable_now()
    h = floor_hour(now)
    await send_events(
        owner,
        key,
        [
            event(h - 24 * HOUR - timedelta(milliseconds=1)),  # one ms before the window
            event(h - 24 * HOUR),  # the window's first instant
            event(h - 24 * HOUR + timedelta(minutes=59)),
            event(h - 5 * HOUR),
            event(h - 5 * HOUR + timedelta(minutes=30)),
            event(h - HOUR + timedelta(minutes=5)),
            event(h - HOUR + timedelta(minutes=10)),
            event(h - timedelta(milliseconds=1)),  # the last instant of the previous hour
            event(h),  # the current hour
            event(h + HOUR + timedelta(minutes=1)),  # ahead of the window (accepted: < 24 h)
            event(h - 5 * HOUR, name="other.event"),
        ],
    )
    body = await query(owner, key)
    expected = dict.fromkeys(hours(h - 24 * HOUR, 25), 0)
    expected[iso(h - 24 * HOUR)] = 2
    expected[iso(h - 5 * HOUR)] = 2
    expected[iso(h - HOUR)] = 3
    expected[iso(h)] = 1
    assert series(body) == list(expected.items())
    check_meta(
        body,
        event_name=EVENT,
        metric="count",
        period="24h",
        granularity="hour",
        group_by=None,
        source_table="events_hourly_rollup",
        planned_by="hourly_rollup",
        rollup_granularity="hour",
    )

    one_hour = await query(owner, key, period="1h")
    assert series(one_hour) == [(iso(h - HOUR), 3), (iso(h), 1)]

    by_day = await query(owner, key, period="7d")
    days = [floor_day(now) - timedelta(days=7 - i) for i in range(8)]
    day_counts = dict.fromkeys([iso(d) for d in days], 0)
    for moment in (
        h - 24 * HOUR - timedelta(milliseconds=1),
        h - 24 * HOUR,
        h - 24 * HOUR + timedelta(minutes=59),
        h - 5 * HOUR,
        h - 5 * HOUR + timedelta(minutes=30),
        h - HOUR + timedelta(minutes=5),
        h - HOUR + timedelta(minutes=10),
        h - timedelta(milliseconds=1),
        h,
        h + HOUR + timedelta(minutes=1),
    ):
        if iso(floor_day(moment)) in day_counts:
            day_counts[iso(floor_day(moment))] += 1
    assert series(by_day) == list(day_counts.items())
    check_meta(
        by_day,
        event_name=EVENT,
        metric="count",
        period="7d",
        granularity="day",
        group_by=None,
        source_table="events_daily_rollup",
        planned_by="daily_rollup",
        rollup_granularity="day",
    )


async def test_empty_result_is_all_zero_buckets(make_client: ClientFactory) -> None:
    owner, key = await owner_and_key(make_client)
    now = await stable_now()
    body = await query(owner, key, period="24h")
    assert series(body) == [(b, 0) for b in hours(floor_hour(now) - 24 * HOUR, 25)]
    grouped = await query(owner, key, period="24h", group_by="model")
    assert grouped["data"] == []


async def test_count_unique_ignores_empty_user_ids(make_client: ClientFactory) -> None:
    owner, key = await owner_and_key(make_client)
    now = await stable_now()
    h = floor_hour(now)
    b1, b2 = h - 3 * HOUR, h - 2 * HOUR
    await send_events(
        owner,
        key,
        [
            event(b1 + timedelta(minutes=1), user_id="u1"),
            event(b1 + timedelta(minutes=2), user_id="u1"),
            event(b1 + timedelta(minutes=3), user_id="u2"),
            event(b1 + timedelta(minutes=4), user_id=""),
            event(b1 + timedelta(minutes=5)),
            event(b2 + timedelta(minutes=1), user_id="u1"),
            event(b2 + timedelta(minutes=2), user_id="u3"),
            event(b2 + timedelta(minutes=3), user_id="u4"),
            event(b2 + timedelta(minutes=4)),
            event(b2 + timedelta(minutes=5), user_id="u9", tenant="other"),
        ],
    )
    expected = dict.fromkeys(hours(h - 24 * HOUR, 25), 0)
    expected[iso(b1)] = 2
    expected[iso(b2)] = 3
    for metric in ("count_unique", "count_unique_approx"):
        body = await query(owner, key, metric=metric)
        assert series(body) == list(expected.items()), metric
        check_meta(
            body,
            event_name=EVENT,
            metric=metric,
            period="24h",
            granularity="hour",
            group_by=None,
            source_table="events_hourly_rollup",
            planned_by="hourly_rollup",
            rollup_granularity="hour",
        )
    # one day bucket (or two, straddling midnight): the users are distinct across the hours
    daily = await query(owner, key, metric="count_unique", period="24h", granularity="day")
    day_values = {
        iso(floor_day(b1)): {"u1", "u2"},
        iso(floor_day(b2)): {"u1", "u3", "u4"},
    }
    if floor_day(b1) == floor_day(b2):
        day_values = {iso(floor_day(b1)): {"u1", "u2", "u3", "u4"}}
    assert {b: v for b, v in series(daily) if v} == {b: len(v) for b, v in day_values.items()}
    assert daily["meta"]["planned_by"] == "daily_rollup"


# --- numeric metrics -------------------------------------------------------------------------

VALUES_A = [5, 1, 9, 20, 14, 3, 18, 7, 11, 2, 16, 13, 8, 19, 4, 12, 6, 17, 10, 15]  # 1..20
VALUES_B = [2 * i for i in range(1, 51)]  # 2, 4, ..., 100


async def test_sum_avg_p95_p99_on_a_numeric_property(make_client: ClientFactory) -> None:
    owner, key = await owner_and_key(make_client)
    now = await stable_now()
    h = floor_hour(now)
    bucket_a, bucket_b, bucket_c = h - 6 * HOUR, h - 4 * HOUR, h - 2 * HOUR
    shuffled_b = list(VALUES_B)
    random.Random(7).shuffle(shuffled_b)  # noqa: S311 - test data order
    events = [
        event(bucket_a + timedelta(minutes=i), numeric_props={"latency_ms": v, "tokens": 1000})
        for i, v in enumerate(VALUES_A)
    ]
    events += [  # in bucket A but without the property: ignored
        event(bucket_a + timedelta(minutes=30), numeric_props={"tokens": 5}),
        event(bucket_a + timedelta(minutes=31)),
    ]
    events += [
        event(bucket_b + timedelta(seconds=30 * i), numeric_props={"latency_ms": v})
        for i, v in enumerate(shuffled_b)
    ]
    # bucket C has events, none with the property: no point for any numeric metric
    events += [event(bucket_c + timedelta(minutes=1), numeric_props={"tokens": 3})]
    await send_events(owner, key, events)

    expected = {
        # quantileExact takes the element at floor(level * n) of the sorted values:
        # A (n=20): floor(0.95*20)=19 and floor(0.99*20)=19 → the 20th value, 20
        # B (n=50): floor(0.95*50)=47 → 96; floor(0.99*50)=49 → 100
        "sum": [(iso(bucket_a), 210.0), (iso(bucket_b), 2550.0)],
        "avg": [(iso(bucket_a), 10.5), (iso(bucket_b), 51.0)],
        "p95": [(iso(bucket_a), 20.0), (iso(bucket_b), 96.0)],
        "p99": [(iso(bucket_a), 20.0), (iso(bucket_b), 100.0)],
    }
    for metric, points in expected.items():
        body = await query(owner, key, metric=metric, numeric_prop="latency_ms")
        assert series(body) == points, metric
        check_meta(
            body,
            event_name=EVENT,
            metric=metric,
            period="24h",
            granularity="hour",
            group_by=None,
            source_table="events",
            planned_by="raw",
            rollup_granularity=None,
        )
        assert body["meta"]["rows_scanned"] > 0

    tokens = await query(owner, key, metric="sum", numeric_prop="tokens")
    assert series(tokens) == [(iso(bucket_a), 20_005.0), (iso(bucket_c), 3.0)]
    nobody = await query(owner, key, metric="avg", numeric_prop="missing_prop")
    assert nobody["data"] == []


async def test_numeric_metric_grouped(make_client: ClientFactory) -> None:
    owner, key = await owner_and_key(make_client)
    now = await stable_now()
    b = floor_hour(now) - 3 * HOUR
    events = [
        event(b + timedelta(minutes=i), string_props={"model": "gpt-4"}, numeric_props={"t": v})
        for i, v in enumerate([10, 20, 30, 40])
    ] + [
        event(b + timedelta(minutes=10), string_props={"model": "claude"}, numeric_props={"t": 7}),
        event(b + timedelta(minutes=11), numeric_props={"t": 1}),
    ]
    await send_events(owner, key, events)
    body = await query(owner, key, metric="avg", numeric_prop="t", group_by="model")
    assert body["data"] == [
        {"bucket": iso(b), "value": 1.0, "group": ""},
        {"bucket": iso(b), "value": 7.0, "group": "claude"},
        {"bucket": iso(b), "value": 25.0, "group": "gpt-4"},
    ]
    assert body["meta"]["group_by"] == "model"
    assert body["meta"]["planned_by"] == "raw"


# --- group_by and filters --------------------------------------------------------------------


async def test_group_by_lists_every_group_in_every_bucket(make_client: ClientFactory) -> None:
    owner, key = await owner_and_key(make_client)
    now = await stable_now()
    h = floor_hour(now)
    x, y = h - 7 * HOUR, h - HOUR

    def model_event(moment: datetime, model: str | None) -> dict[str, Any]:
        props = {"model": model} if model is not None else {"region": "eu"}
        return event(moment, string_props=props, user_id=f"user-{model}")

    await send_events(
        owner,
        key,
        [
            model_event(x, "gpt-4"),
            model_event(x + timedelta(minutes=1), "gpt-4"),
            model_event(x + timedelta(minutes=2), "gpt-4"),
            model_event(x + timedelta(minutes=3), "claude"),
            model_event(x + timedelta(minutes=4), "claude"),
            model_event(x + timedelta(minutes=5), None),
            model_event(y + timedelta(minutes=1), "gpt-4"),
        ],
    )
    body = await query(owner, key, group_by="model")
    expected: list[dict[str, Any]] = []
    for bucket in hours(h - 24 * HOUR, 25):
        counts = {"": 0, "claude": 0, "gpt-4": 0}
        if bucket == iso(x):
            counts = {"": 1, "claude": 2, "gpt-4": 3}
        elif bucket == iso(y):
            counts["gpt-4"] = 1
        expected += [{"bucket": bucket, "value": v, "group": g} for g, v in counts.items()]
    assert body["data"] == expected
    check_meta(
        body,
        event_name=EVENT,
        metric="count",
        period="24h",
        granularity="hour",
        group_by="model",
        source_table="events_hourly_dim_rollup",
        planned_by="hourly_rollup",
        rollup_granularity="hour",
    )
    # distinct users per group: exact from raw events (the dimension rollups keep HLL only)
    for metric, source in (
        ("count_unique", "events"),
        ("count_unique_approx", "events_hourly_dim_rollup"),
    ):
        unique = await query(owner, key, metric=metric, group_by="model")
        assert [p for p in unique["data"] if p["value"]] == [
            {"bucket": iso(x), "value": 1, "group": ""},
            {"bucket": iso(x), "value": 1, "group": "claude"},
            {"bucket": iso(x), "value": 1, "group": "gpt-4"},
            {"bucket": iso(y), "value": 1, "group": "gpt-4"},
        ], metric
        assert len(unique["data"]) == 75
        assert unique["meta"]["source_table"] == source
        filtered = await query(owner, key, metric=metric, f_model="gpt-4")
        assert [p for p in filtered["data"] if p["value"]] == [
            {"bucket": iso(x), "value": 1},
            {"bucket": iso(y), "value": 1},
        ]
    # filter and group by the same dimension: one group, still the dimension rollup
    same = await query(owner, key, group_by="model", f_model="claude")
    assert [p for p in same["data"] if p["value"]] == [
        {"bucket": iso(x), "value": 2, "group": "claude"}
    ]
    assert len(same["data"]) == 25
    assert same["meta"]["source_table"] == "events_hourly_dim_rollup"
    # grouped by a key outside the rollups: raw, same answer shape
    raw = await query(owner, key, group_by="region")
    assert [p for p in raw["data"] if p["value"]] == [
        {"bucket": iso(x), "value": 5, "group": ""},
        {"bucket": iso(x), "value": 1, "group": "eu"},
        {"bucket": iso(y), "value": 1, "group": ""},
    ]
    assert raw["meta"]["planned_by"] == "raw"


async def test_filters_are_anded(make_client: ClientFactory) -> None:
    owner, key = await owner_and_key(make_client)
    now = await stable_now()
    b = floor_hour(now) - 2 * HOUR
    combos = [
        ({"model": "gpt-4", "status": "success", "region": "eu"}, 2),
        ({"model": "gpt-4", "status": "success", "region": "us"}, 1),
        ({"model": "gpt-4", "status": "error", "region": "eu"}, 3),
        ({"model": "claude", "status": "success", "region": "eu"}, 4),
        ({"model": "gpt-4"}, 5),
    ]
    events = [
        event(b + timedelta(minutes=i, seconds=n), string_props=props)
        for i, (props, times) in enumerate(combos)
        for n in range(times)
    ]
    await send_events(owner, key, events)

    async def total(**filters: str) -> tuple[int, str]:
        body = await query(owner, key, **filters)
        assert len(body["data"]) == 25
        values = {p["bucket"]: p["value"] for p in body["data"] if p["value"]}
        assert set(values) <= {iso(b)}
        return sum(values.values()), body["meta"]["source_table"]

    assert await total() == (15, "events_hourly_rollup")
    assert await total(f_model="gpt-4") == (11, "events_hourly_dim_rollup")
    assert await total(f_status="success") == (7, "events_hourly_dim_rollup")
    assert await total(f_model="gpt-4", f_status="success") == (3, "events")
    assert await total(f_model="gpt-4", f_status="success", f_region="eu") == (2, "events")
    assert await total(f_model="claude", f_status="error") == (0, "events")
    assert await total(f_region="eu") == (9, "events")
    assert await total(f_model="mistral") == (0, "events_hourly_dim_rollup")
    # an empty value matches events without the key
    assert await total(f_status="") == (5, "events_hourly_dim_rollup")


async def test_a_repeated_filter_means_any_of(make_client: ClientFactory) -> None:
    """``f_model=a&f_model=b``: events whose model is a or b (an IN filter), both values counted,
    on the dimension rollups as on raw events; another repeated parameter is a 400 naming it."""
    owner, key = await owner_and_key(make_client)
    now = await stable_now()
    b = floor_hour(now) - 2 * HOUR
    combos = [
        ({"model": "gpt-4", "status": "success"}, 5),
        ({"model": "claude", "status": "success"}, 4),
        ({"model": "claude", "status": "error"}, 3),
        ({"model": "mistral", "status": "success"}, 2),
        ({"status": "success"}, 1),
    ]
    await send_events(
        owner,
        key,
        [
            event(b + timedelta(minutes=i, seconds=n), string_props=props, user_id=f"u{i}-{n}")
            for i, (props, times) in enumerate(combos)
            for n in range(times)
        ],
    )

    async def answer(*pairs: tuple[str, str], expect: int = 200) -> dict[str, Any]:
        base = [("event_name", EVENT), ("tenant_id", TENANT), ("period", "24h")]
        if not any(name == "metric" for name, _ in pairs):
            base.append(("metric", "count"))
        response = await owner.get("/v1/query", params=[*base, *pairs], headers=bearer(key))
        assert response.status == expect, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def total(*pairs: tuple[str, str]) -> tuple[int, str]:
        body = await answer(*pairs)
        return sum(p["value"] for p in body["data"]), body["meta"]["source_table"]

    both = (("f_model", "gpt-4"), ("f_model", "claude"))
    assert await total(("f_model", "gpt-4")) == (5, "events_hourly_dim_rollup")
    assert await total(("f_model", "claude")) == (7, "events_hourly_dim_rollup")
    assert await total(*both) == (12, "events_hourly_dim_rollup")
    assert await total(*both, ("f_model", "mistral")) == (14, "events_hourly_dim_rollup")
    assert await total(*both, ("f_model", "gpt-4")) == (12, "events_hourly_dim_rollup")
    assert await total(("f_model", "gpt-4"), ("f_model", "gpt-4")) == (
        5,
        "events_hourly_dim_rollup",
    )
    assert await total(("f_model", "gpt-4"), ("f_model", "llama")) == (
        5,
        "events_hourly_dim_rollup",
    )
    assert await total(*both, ("granularity", "day")) == (12, "events_daily_dim_rollup")
    assert await total(*both, ("metric", "count_unique")) == (12, "events")
    assert await total(*both, ("metric", "count_unique_approx")) == (
        12,
        "events_hourly_dim_rollup",
    )
    # ANDed with the other filters (raw events: two dimensions)
    assert await total(*both, ("f_status", "error")) == (3, "events")
    assert await total(*both, ("f_status", "success")) == (9, "events")
    # grouped by the filtered key: one group per value asked for
    grouped = await answer(*both, ("group_by", "model"))
    assert grouped["meta"]["source_table"] == "events_hourly_dim_rollup"
    assert [(p["group"], p["value"]) for p in grouped["data"] if p["value"]] == [
        ("claude", 7),
        ("gpt-4", 5),
    ]
    # grouped by another key: raw events, both values counted
    by_status = await answer(*both, ("group_by", "status"))
    assert by_status["meta"]["source_table"] == "events"
    assert [(p["group"], p["value"]) for p in by_status["data"] if p["value"]] == [
        ("error", 3),
        ("success", 9),
    ]
    # any other parameter given twice is refused, naming it
    for name, second in (("metric", "count_unique"), ("tenant_id", "globex"), ("period", "7d")):
        response = await owner.get(
            "/v1/query",
            params=[
                ("event_name", EVENT),
                ("tenant_id", TENANT),
                ("metric", "count"),
                ("period", "24h"),
                (name, second),
            ],
            headers=bearer(key),
        )
        assert response.status == 400
        assert await response.json() == {
            "error": f"{name} is given 2 times; give it once",
            "code": "invalid_field",
            "field": name,
        }
    too_many = [("f_model", f"m{n}") for n in range(51)]
    assert (await answer(*too_many, expect=400)) == {
        "error": "f_model: at most 50 values",
        "code": "invalid_field",
        "field": "f_model",
    }
    assert (await answer(("f_model", "a"), ("f_model", "v" * 201), expect=400)) == {
        "error": "f_model must be at most 200 characters",
        "code": "invalid_field",
        "field": "f_model",
    }


# --- week and month --------------------------------------------------------------------------


async def test_week_and_month_buckets(make_client: ClientFactory) -> None:
    owner, key = await owner_and_key(make_client)
    now = await stable_now()
    placed = [
        (now - timedelta(days=1), "u1"),
        (now - timedelta(days=2), "u2"),
        (now - timedelta(days=9), "u1"),
        (now - timedelta(days=16), "u3"),
        (now - timedelta(days=40), "u1"),
        (now - timedelta(days=41), "u4"),
        (now - timedelta(days=80), "u5"),
        (now - timedelta(days=95), "u6"),  # before the 90-day window
    ]
    await send_events(owner, key, [event(moment, user_id=user) for moment, user in placed])
    start = floor_day(now - timedelta(days=90))
    end = floor_day(now) + timedelta(days=1)
    inside = [(m, u) for m, u in placed if start <= m < end]
    assert len(inside) == 7

    cases = [("week", monday, timedelta(days=7)), ("month", month_start, None)]
    for granularity, bucket_of, step in cases:
        buckets: list[datetime] = []
        current = bucket_of(start)
        while current < end:
            buckets.append(current)
            if step is not None:
                current += step
            else:
                year, month = divmod(current.month, 12)
                current = current.replace(year=current.year + year, month=month + 1)
        counts = dict.fromkeys([iso(b) for b in buckets], 0)
        users: dict[str, set[str]] = {iso(b): set() for b in buckets}
        for moment, user in inside:
            counts[iso(bucket_of(moment))] += 1
            users[iso(bucket_of(moment))].add(user)

        body = await query(owner, key, period="90d", granularity=granularity)
        assert series(body) == list(counts.items()), granularity
        assert body["meta"]["source_table"] == "events_daily_rollup"
        assert body["meta"]["rollup_granularity"] == "day"

        for metric, source in (
            ("count_unique", "events"),
            ("count_unique_approx", "events_daily_rollup"),
        ):
            unique = await query(owner, key, period="90d", granularity=granularity, metric=metric)
            assert series(unique) == [(b, len(u)) for b, u in users.items()], metric
            assert unique["meta"]["source_table"] == source
        if granularity == "week":
            assert all(datetime.fromisoformat(b).weekday() == 0 for b in counts)
            assert len(counts) in (13, 14)
        else:
            assert all(b[8:] == "01T00:00:00Z" for b in counts)
            assert len(counts) in (3, 4)


# --- isolation ---------------------------------------------------------------------------------


async def test_tenant_isolation(make_client: ClientFactory) -> None:
    owner, key = await owner_and_key(make_client)
    now = await stable_now()
    b = floor_hour(now) - 2 * HOUR
    await send_events(
        owner,
        key,
        [event(b, tenant="a", user_id="x")] * 3 + [event(b, tenant="b", user_id="y")] * 5,
    )
    for tenant, count in (("a", 3), ("b", 5), ("c", 0), ("A", 0)):
        body = await query(owner, key, tenant_id=tenant)
        assert {p["bucket"]: p["value"] for p in body["data"] if p["value"]} == (
            {iso(b): count} if count else {}
        ), tenant
        raw = await query(owner, key, tenant_id=tenant, f_region="")
        assert sum(p["value"] for p in raw["data"]) == count
        assert raw["meta"]["planned_by"] == "raw"


async def test_org_isolation(make_client: ClientFactory) -> None:
    owner1, key1 = await owner_and_key(make_client)
    owner2, key2 = await owner_and_key(make_client, email="owner@globex.test", org="Globex")
    now = await stable_now()
    b = floor_hour(now) - HOUR
    await send_events(owner1, key1, [event(b, string_props={"model": "gpt-4"}, user_id="u")] * 4)
    for params in (
        {},
        {"metric": "count_unique"},
        {"f_model": "gpt-4"},
        {"group_by": "model"},
        {"f_region": ""},
        {"period": "90d", "granularity": "month"},
    ):
        mine = await query(owner1, key1, **params)
        theirs = await query(owner2, key2, **params)
        assert sum(p["value"] for p in mine["data"]) == (1 if "metric" in params else 4)
        assert all(p["value"] == 0 for p in theirs["data"])
        # the other org's console session sees nothing either
        session = await query(owner2, None, **params)
        assert all(p["value"] == 0 for p in session["data"])


async def test_environment_isolation(make_client: ClientFactory) -> None:
    owner, prod_key = await owner_and_key(make_client)
    response = await owner.post(
        "/v1/api-keys", json={"label": "dev", "scope": "admin", "environment": "development"}
    )
    assert response.status == 201, await response.text()
    dev_key = (await response.json())["key"]
    now = await stable_now()
    b = floor_hour(now) - HOUR
    await send_events(owner, dev_key, [event(b, user_id="d")] * 2)
    await send_events(owner, prod_key, [event(b, user_id="p")] * 3)
    for params in ({}, {"f_model": ""}, {"f_region": ""}, {"period": "7d"}):
        dev = await query(owner, dev_key, **params)
        prod = await query(owner, prod_key, **params)
        session = await query(owner, None, **params)  # the console works in production
        assert sum(p["value"] for p in dev["data"]) == 2, params
        assert sum(p["value"] for p in prod["data"]) == 3, params
        assert sum(p["value"] for p in session["data"]) == 3, params


async def test_console_roles_can_query(make_client: ClientFactory) -> None:
    owner, key = await owner_and_key(make_client)
    now = await stable_now()
    await send_events(owner, key, [event(floor_hour(now) - HOUR)])
    viewer, _ = await join_as(owner, make_client, "viewer")
    body = await query(viewer, None)
    assert sum(p["value"] for p in body["data"]) == 1


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"event_name": None}, "event_name", "event_name is required"),
        ({"tenant_id": None}, "tenant_id", "tenant_id is required"),
        ({"tenant_id": "t" * 201}, "tenant_id", "tenant_id must be at most 200 characters"),
        ({"metric": None}, "metric", "metric is required"),
        (
            {"metric": "median"},
            "metric",
            "metric must be one of count, count_unique, count_unique_approx, sum, avg, p95, p99",
        ),
        ({"period": None}, "period", "period is required"),
        ({"period": "2d"}, "period", "period must be one of 1h, 24h, 7d, 30d, 90d"),
        (
            {"granularity": "minute"},
            "granularity",
            "granularity must be one of hour, day, week, month",
        ),
        ({"metric": "p95"}, "numeric_prop", "numeric_prop is required"),
        (
            {"metric": "sum", "numeric_prop": "a b"},
            "numeric_prop",
            "numeric_prop must be a property key of letters, digits and _ . : - / (max 64)",
        ),
        (
            {"group_by": "model;"},
            "group_by",
            "group_by must be a property key of letters, digits and _ . : - / (max 64)",
        ),
        (
            {"f_bad key": "x"},
            "f_bad key",
            "f_bad key must be a property key of letters, digits and _ . : - / (max 64)",
        ),
        ({"f_model": "v" * 201}, "f_model", "f_model must be at most 200 characters"),
        ({"limit": "5"}, "limit", "unknown parameter limit"),
    ],
)
async def test_each_invalid_parameter_is_a_400_naming_it(
    make_client: ClientFactory, changes: dict[str, str | None], field: str, message: str
) -> None:
    owner, key = await owner_and_key(make_client)
    params = {"event_name": EVENT, "tenant_id": TENANT, "metric": "count", "period": "24h"}
    for name, value in changes.items():
        if value is None:
            params.pop(name)
        else:
            params[name] = value
    response = await owner.get("/v1/query", params=params, headers=bearer(key))
    assert response.status == 400
    assert await response.json() == {"error": message, "code": "invalid_field", "field": field}


async def test_query_without_auth_is_401(make_client: ClientFactory) -> None:
    client = await make_client()
    body = await query(client, None, expect=401)
    assert body == {"error": "authentication required", "code": "unauthenticated"}
    bad = await client.get(
        "/v1/query",
        params={"event_name": EVENT, "tenant_id": TENANT, "metric": "count", "period": "24h"},
        headers=bearer("emb_not_a_real_key"),
    )
    assert bad.status == 401


async def test_query_with_an_ingest_key_is_403(make_client: ClientFactory) -> None:
    owner, _ = await owner_and_key(make_client)
    ingest = await create_key(owner, "ingest")
    body = await query(owner, ingest, expect=403)
    assert body == {"error": "ingest keys can only send events", "code": "insufficient_scope"}
