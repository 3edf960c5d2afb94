"""Run in a subprocess by ``test_no_engine_io_in_transactions.py``: the embedded defaults (SQLite
metadata, chDB) with one engine call held open, and other orgs' requests made meanwhile.

On SQLite an open metadata transaction blocks every other metadata query (one connection), so an
engine call made inside one stalls every org's credential lookup. The gate below holds the first
matching engine call until the probe has tried the other org's requests; each outcome is printed
as one JSON line (``"timeout"`` when a request could not finish while the call was held).

Usage: ``python -m tests.sqlite_probe DATA_DIR``
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from emban.analytics.store import EventStore, QueryResult
from emban.app import create_app
from emban.runtime import RUNTIME_KEY
from emban.settings import Settings

PASSWORD = "correct-horse-1"
# A request that cannot finish within this while the engine call is held is reported as blocked.
BLOCKED_AFTER = 20.0


class Gate:
    """Wraps a store: the first statement containing ``marker`` waits until ``release``."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner
        self.cluster = inner.cluster
        self.marker: str | None = None
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def _hold(self, sql: str) -> None:
        if self.marker is not None and self.marker in sql:
            self.marker = None
            self.entered.set()
            await self.release.wait()

    def arm(self, marker: str) -> None:
        self.marker = marker
        self.entered.clear()
        self.release.clear()

    async def ping(self) -> None:
        await self.inner.ping()

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        await self._hold(sql)
        await self.inner.execute(sql, params)

    async def query(
        self, sql: str, params: dict[str, Any] | None = None, *, background: bool = False
    ) -> QueryResult:
        await self._hold(sql)
        return await self.inner.query(sql, params)

    async def insert_json(
        self, table: str, columns: list[str], payload: bytes, fmt: str = "JSONEachRow"
    ) -> None:
        await self.inner.insert_json(table, columns, payload, fmt)

    async def close(self) -> None:
        await self.inner.close()


async def bounded(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await asyncio.wait_for(call(), BLOCKED_AFTER)
    except TimeoutError:
        return "timeout"


async def status(response: Awaitable[aiohttp.ClientResponse]) -> int:
    return (await response).status


async def main(data_dir: Path) -> dict[str, Any]:
    settings = Settings(data_dir=data_dir, secret_key=secrets.token_urlsafe(40))
    app = create_app(settings)
    server = TestServer(app)
    await server.start_server()
    rt = app[RUNTIME_KEY]
    gate = Gate(rt.events)
    rt.events = gate
    jobs = getattr(rt, "jobs", None)
    if jobs is not None and hasattr(jobs, "ctx"):
        jobs.ctx["events"] = gate
    base = str(server.make_url("/"))
    out: dict[str, Any] = {}
    sessions = [
        aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True))
        for _ in range(3)
    ]
    owner_a, owner_b, other = sessions
    try:
        regs = []
        for client, name in ((owner_a, "a"), (owner_b, "b")):
            response = await client.post(
                "/v1/auth/register",
                json={
                    "email": f"owner@{name}.test",
                    "password": PASSWORD,
                    "name": "Owner",
                    "org_name": name.upper(),
                },
            )
            assert response.status == 201, await response.text()
            regs.append(await response.json())
        key_a, key_b = (reg["api_key"]["key"] for reg in regs)
        for key, count in ((key_a, 3), (key_b, 2)):
            response = await other.post(
                "/v1/events",
                json={"events": [{"tenant_id": "t", "event_name": "x"}] * count},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert response.status == 200, await response.text()
        b_auth = {"Authorization": f"Bearer {key_b}"}

        # 1. auto-create: the discovery scan is held; org B's requests run meanwhile.
        gate.arm("uniqExactIf(user_id, user_id != '')")
        created = asyncio.create_task(status(owner_a.post("/v1/discover/auto-create")))
        await asyncio.wait_for(gate.entered.wait(), 60)
        out["auto_create_b_me"] = await bounded(
            lambda: status(other.get("/v1/auth/me", headers=b_auth))
        )
        out["auto_create_b_dashboards"] = await bounded(
            lambda: status(other.get("/v1/dashboards", headers=b_auth))
        )
        gate.release.set()
        out["auto_create"] = await created

        # 2. org delete: the ALTER TABLE … DELETE is held; the 204 and org B's requests come first.
        gate.arm("ALTER TABLE")
        out["delete"] = await bounded(lambda: status(owner_a.delete("/v1/settings/org")))
        await asyncio.wait_for(gate.entered.wait(), 60)
        out["delete_b_me"] = await bounded(lambda: status(other.get("/v1/auth/me", headers=b_auth)))
        gate.release.set()
        if jobs is not None and hasattr(jobs, "drain"):
            await jobs.drain()
        result = await gate.inner.query(
            "SELECT org_id, toUInt32(count()) FROM events GROUP BY org_id ORDER BY org_id"
        )
        names = {regs[0]["org"]["id"]: "a", regs[1]["org"]["id"]: "b"}
        out["events_after_delete"] = {names[row[0]]: int(row[1]) for row in result.rows}
    finally:
        gate.release.set()
        for session in sessions:
            await session.close()
        await server.close()
    return out


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))))
