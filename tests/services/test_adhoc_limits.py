"""Ad-hoc SQL cannot hurt other orgs (issue 8, defect 6): a per-org concurrency cap (429 with
Retry-After beyond it), a result cap in bytes as well as rows, and its own engine connections so
ingest acks, other orgs' queries and /healthz never wait behind it.

Ordering is asserted with events, not timings: the other requests complete while every ad-hoc
query is still pending (the engine's system.processes shows them running).
"""

from __future__ import annotations

import asyncio
from typing import Any

from emban.analytics.adhoc import DEFAULT_TIMEOUT_S, run_adhoc
from emban.analytics.chdb_store import ADHOC_POOL_SIZE, ChdbStore
from emban.analytics.guarded import OutsideTransactions
from emban.analytics.store import ResultTooLarge
from emban.errors import BadRequest
from emban.runtime import Runtime
from tests.conftest import Client, ClientFactory, bearer
from tests.rest_compat.test_adhoc_route import known_events
from tests.scenario import owner, send_events

SLEEP = "SELECT sleep(3) AS slept"  # ClickHouse's most per block; well under max_execution_time


async def _sleeping_queries(runtime: Runtime) -> int:
    result = await runtime.events.query(
        "SELECT count() FROM system.processes WHERE query LIKE 'SELECT sleep(3) AS slept%'"
    )
    return int(result.rows[0][0])


async def _eventually(check: Any, what: str, attempts: int = 400) -> None:
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never happened: {what}")


async def test_concurrency_cap_and_other_orgs_unaffected(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    assert runtime.settings.adhoc_max_concurrent_per_org == 2
    assert isinstance(runtime.events, OutsideTransactions)
    assert isinstance(runtime.events.inner, ChdbStore) and ADHOC_POOL_SIZE == 2
    acme, acme_reg = await owner(make_client)
    globex, globex_reg = await owner(make_client, "owner@globex.test", "Globex")
    initech, initech_reg = await owner(make_client, "owner@initech.test", "Initech")
    await send_events(initech, initech_reg["api_key"]["key"], known_events())
    acme_org, globex_org = acme_reg["org"]["id"], globex_reg["org"]["id"]

    async def run(client: Client) -> tuple[int, Any]:
        response = await client.post("/v1/query/adhoc", json={"sql": SLEEP})
        return response.status, await response.json()

    # Two orgs, two sleeping queries each: four, more than the main pool's three connections.
    tasks = [asyncio.create_task(run(c)) for c in (acme, acme, globex, globex)]

    async def all_admitted() -> bool:
        slots = runtime.adhoc_slots
        return slots.running(acme_org) == 2 and slots.running(globex_org) == 2

    await _eventually(all_admitted, "four ad-hoc queries admitted")

    # A third from the same org: refused at once, shaped like the other budgets' 429.
    third = await acme.post("/v1/query/adhoc", json={"sql": SLEEP})
    assert third.status == 429
    retry_after = int(third.headers["Retry-After"])
    assert 1 <= retry_after <= DEFAULT_TIMEOUT_S
    assert await third.json() == {
        "error": "This organization already runs 2 ad-hoc queries, the most at once "
        "(EMBAN_ADHOC_MAX_CONCURRENT_PER_ORG=2); retry when one has finished.",
        "code": "rate_limited",
        "retry_after": retry_after,
    }

    # The engine runs two of them (the ad-hoc pool), the other two wait for it, not for the main
    # pool: counting them is itself a query on the main pool.
    async def two_sleeping() -> bool:
        return await _sleeping_queries(runtime) == ADHOC_POOL_SIZE

    await _eventually(two_sleeping, "two ad-hoc queries sleeping in the engine")

    health = await initech.get("/healthz")
    assert health.status == 200
    assert await health.json() == {"status": "ok"}
    answer = await initech.get(
        "/v1/query",
        params={"event_name": "api.call", "metric": "count", "period": "24h", "tenant_id": "acme"},
        headers=bearer(initech_reg["api_key"]["key"]),
    )
    assert answer.status == 200, await answer.text()
    assert sum(point["value"] for point in (await answer.json())["data"]) == 2
    ingest = await initech.post(
        "/v1/events",
        json={"events": [{"tenant_id": "acme", "event_name": "late"}]},
        headers=bearer(initech_reg["api_key"]["key"]),
    )
    assert ingest.status == 200
    assert await ingest.json() == {"accepted": 1, "status": "ok"}
    assert [task.done() for task in tasks] == [False, False, False, False]

    results = await asyncio.gather(*tasks)
    assert [status for status, _ in results] == [200, 200, 200, 200]
    assert [body["rows"] for _, body in results] == [[[0]]] * 4
    assert runtime.adhoc_slots.running(acme_org) == 0
    # A slot is free again once a query ends.
    again = await acme.post("/v1/query/adhoc", json={"sql": "SELECT 1 AS one"})
    assert again.status == 200
    assert (await again.json())["rows"] == [[1]]


async def test_result_cap_in_bytes(make_client: ClientFactory, runtime: Runtime) -> None:
    cap = runtime.settings.adhoc_max_result_bytes
    assert cap == 16 * 1024 * 1024
    client, reg = await owner(make_client)
    await send_events(client, reg["api_key"]["key"], known_events())
    expected = {
        "error": f"The result is larger than the ad-hoc result cap of {cap} bytes "
        "(EMBAN_ADHOC_MAX_RESULT_BYTES); aggregate, select fewer columns or add a LIMIT.",
        "code": "adhoc_result_too_large",
    }
    for sql in (
        # 4 rows of 5 MB of real data: the engine's own max_result_bytes stops it
        "SELECT repeat(event_id, 5000000 DIV length(event_id)) AS big FROM events",
        # a constant column the engine undercounts: the answer's real size is checked after
        "SELECT repeat('xxxxx', 1000000) AS big FROM events",
        # few bytes per row, but 10,000 rows of 2 KB are over 16 MiB as JSON
        "SELECT arrayJoin(range(10000)) AS n, repeat('y', 2000) AS pad",
    ):
        response = await client.post("/v1/query/adhoc", json={"sql": sql})
        assert response.status == 400, (sql, await response.text())
        assert await response.json() == expected, sql
    # Under the cap: the answer arrives whole.
    fine = await client.post(
        "/v1/query/adhoc", json={"sql": "SELECT length(repeat('x', 1000000)) AS n FROM events"}
    )
    assert fine.status == 200
    assert (await fine.json())["rows"] == [[1_000_000]] * 4


async def test_byte_cap_is_checked_on_the_real_answer(runtime: Runtime) -> None:
    """The engine undercounts a constant column, so the store measures the answer itself."""
    await runtime.events.execute(
        "INSERT INTO events (org_id, environment_id, tenant_id, event_name, timestamp, event_id) "
        "SELECT 'org_c', 'env_c', 't', 'e', now(), toString(number) FROM numbers(20)"
    )
    sql = "SELECT repeat('x', 1000) AS big FROM events"
    try:
        await run_adhoc(
            runtime.events, org_id="org_c", environment_id="env_c", sql=sql, max_result_bytes=8000
        )
    except BadRequest as refused:
        assert refused.code == "adhoc_result_too_large"
        assert isinstance(refused.__cause__, ResultTooLarge)  # not the engine's own check
    else:
        raise AssertionError("a 20 kB answer passed an 8 kB cap")
    fits = await run_adhoc(
        runtime.events, org_id="org_c", environment_id="env_c", sql=sql, max_result_bytes=40_000
    )
    assert [len(row[0]) for row in fits.rows] == [1000] * 20
