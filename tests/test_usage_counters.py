"""``add_usage``: the one upsert behind both ``usage_daily`` counters (ingest's events, the
query recorder's queries)."""

from __future__ import annotations

import asyncio
from datetime import date

from aiohttp.test_utils import TestServer

from emban.models import Org, UsageDaily
from emban.usage import UsageRecorder, add_usage

DAY = date(2026, 11, 29)


async def _row(org_id: str, day: date = DAY) -> tuple[int, int] | None:
    rows = await UsageDaily.filter(org_id=org_id, day=day).values_list("events", "queries")
    assert len(rows) <= 1
    return (int(rows[0][0]), int(rows[0][1])) if rows else None


async def test_add_usage_creates_then_increments_each_counter(app_server: TestServer) -> None:
    org = await Org.create(id="org_counters", name="Counters")
    await add_usage(org.id, DAY, events=3)
    assert await _row(org.id) == (3, 0)
    await add_usage(org.id, DAY, queries=2)
    assert await _row(org.id) == (3, 2)
    await add_usage(org.id, DAY, events=4, queries=1)
    assert await _row(org.id) == (7, 3)
    await add_usage(org.id, date(2026, 11, 30), queries=5)
    assert await _row(org.id, date(2026, 11, 30)) == (0, 5)
    assert await _row(org.id) == (7, 3)


async def test_add_usage_of_nothing_writes_no_row(app_server: TestServer) -> None:
    org = await Org.create(id="org_nothing", name="Nothing")
    await add_usage(org.id, DAY)
    await add_usage(org.id, DAY, events=0, queries=0)
    assert await _row(org.id) is None


async def test_add_usage_for_a_deleted_org_writes_no_row(app_server: TestServer) -> None:
    await add_usage("org_gone", DAY, events=5)
    await add_usage("org_gone", DAY, queries=5)
    assert await UsageDaily.filter(org_id="org_gone").count() == 0


async def test_concurrent_first_adds_make_one_row_with_every_count(
    app_server: TestServer,
) -> None:
    org = await Org.create(id="org_race", name="Race")
    await asyncio.gather(*(add_usage(org.id, DAY, events=1, queries=2) for _ in range(8)))
    assert await _row(org.id) == (8, 16)


async def test_the_query_recorder_flushes_through_the_same_upsert(
    app_server: TestServer,
) -> None:
    org = await Org.create(id="org_recorder", name="Recorder")
    recorder = UsageRecorder()
    for _ in range(3):
        recorder.count_query(org.id)
    recorder.count_query("org_gone")
    await recorder.flush()
    rows = await UsageDaily.filter(org_id=org.id).values_list("events", "queries")
    assert [(int(e), int(q)) for e, q in rows] == [(0, 3)]
    await recorder.flush()  # nothing pending: nothing added
    rows = await UsageDaily.filter(org_id=org.id).values_list("events", "queries")
    assert [(int(e), int(q)) for e, q in rows] == [(0, 3)]
