"""Defect 8: no ClickHouse call (or wait for an engine connection) inside a metadata transaction.

The store every service sees refuses engine I/O while a transaction is open in the task, so every
route test (``test_rest_matrix.py`` runs each route as each principal) doubles as a check that
no route does it. The SQLite test shows what the rule buys: while an auto-create scan or an org's
event deletion waits on the engine, another org's requests complete.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from emban.analytics.guarded import OutsideTransactions
from emban.jobs.inprocess import InProcessJobs
from emban.jobs.org_data import purge_org_events
from emban.jobs.queue import ArqJobs, job_queue
from emban.metadata import EngineIOInTransaction
from emban.models import Org
from emban.runtime import Runtime
from emban.services.boundary import after_commit, transaction
from emban.settings import Settings
from tests.conftest import REDIS_URL, ClientFactory, bearer, register
from tests.probes import run_probe


async def test_the_store_refuses_engine_io_inside_a_transaction(runtime: Runtime) -> None:
    assert isinstance(runtime.events, OutsideTransactions)
    assert (await runtime.events.query("SELECT 1")).rows == [[1]]
    ran_after_commit: list[list[list[Any]]] = []

    async def after() -> None:
        ran_after_commit.append((await runtime.events.query("SELECT 2")).rows)

    async with transaction():
        for call in (
            lambda: runtime.events.query("SELECT 1"),
            lambda: runtime.events.execute("SELECT 1"),
            lambda: runtime.events.insert_json("events", ["org_id"], b""),
            runtime.events.ping,
        ):
            with pytest.raises(EngineIOInTransaction, match="inside a metadata transaction"):
                await call()
        after_commit(after)
    # After the commit the engine is fine again, including in after-commit work.
    assert ran_after_commit == [[[2]]]
    assert (await runtime.events.query("SELECT 3")).rows == [[3]]


async def test_methods_beyond_the_protocol_are_guarded_too(runtime: Runtime) -> None:
    class Extra:
        async def query_more(self) -> str:
            return "ran"

        label = "plain attribute"

    store = OutsideTransactions(Extra())  # type: ignore[arg-type]
    assert await store.query_more() == "ran"
    assert store.label == "plain attribute"
    async with transaction():
        with pytest.raises(EngineIOInTransaction, match="ClickHouse query_more"):
            await store.query_more()


async def test_waiting_for_an_ingest_flush_inside_a_transaction_is_refused(
    runtime: Runtime,
) -> None:
    async with transaction():
        with pytest.raises(EngineIOInTransaction, match="ingest"):
            await runtime.ingest.submit([])


def test_other_orgs_are_served_while_engine_work_waits_on_sqlite(tmp_path: Path) -> None:
    outcome = run_probe("tests.sqlite_probe", tmp_path / "data", timeout=300)
    assert outcome == {
        # auto-create's scan is held: org B's credentialed requests still complete
        "auto_create_b_me": 200,
        "auto_create_b_dashboards": 200,
        "auto_create": 201,
        # org delete answers before its events are deleted, and B is served while they are
        "delete": 204,
        "delete_b_me": 200,
        "events_after_delete": {"b": 2},
    }


# --- the org-events job --------------------------------------------------------------------------


async def _count(runtime: Runtime, org_id: str) -> int:
    result = await runtime.events.query(
        "SELECT count() FROM events WHERE org_id = {o:String}", {"o": org_id}
    )
    return int(result.rows[0][0])


async def test_purge_org_events_refuses_an_org_that_exists_and_is_idempotent(
    make_client: ClientFactory, runtime: Runtime
) -> None:
    client = await make_client()
    reg = await register(client)
    org_id = reg["org"]["id"]
    response = await client.post(
        "/v1/events",
        json={"events": [{"tenant_id": "t", "event_name": "x"}] * 2},
        headers=bearer(reg["api_key"]["key"]),
    )
    assert response.status == 200
    ctx = {"events": runtime.events}
    assert await purge_org_events(ctx, org_id) == "org exists"
    assert await _count(runtime, org_id) == 2
    await Org.filter(id=org_id).delete()
    assert await purge_org_events(ctx, org_id) == "deleted"
    assert await _count(runtime, org_id) == 0
    assert await purge_org_events(ctx, org_id) == "deleted"  # safe to run twice


async def test_engine_jobs_go_to_arq_only_when_a_worker_can_open_the_engine() -> None:
    local = InProcessJobs()
    redis = Redis.from_url(REDIS_URL)
    try:
        plain = Settings(secret_key="x" * 32)
        chdb_with_redis = Settings(secret_key="x" * 32, redis_url=REDIS_URL)
        server = Settings(
            secret_key="x" * 32, redis_url=REDIS_URL, clickhouse_url="http://ch:8123/db"
        )
        assert job_queue(plain, None, local) is local
        # chDB's directory belongs to the serving process: its engine jobs stay in-process.
        assert job_queue(chdb_with_redis, redis, local) is local
        arq = job_queue(server, redis, local)
        assert isinstance(arq, ArqJobs)
        org_id = f"org_test_{secrets.token_hex(4)}"
        await arq.enqueue("purge_org_events", org_id)
        await arq.enqueue("purge_org_events", org_id)  # pending already: not queued twice
        pool = ArqRedis(pool_or_conn=redis.connection_pool)
        jobs = [j for j in await pool.queued_jobs() if j.args == (org_id,)]
        assert [(j.function, j.args, j.job_id) for j in jobs] == [
            ("purge_org_events", (org_id,), f"purge_org_events:{org_id}")
        ]
        await redis.delete(f"arq:job:purge_org_events:{org_id}")
        await redis.zrem("arq:queue", f"purge_org_events:{org_id}")
    finally:
        await redis.aclose()
