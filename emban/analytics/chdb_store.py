"""chDB, the in-process ClickHouse: one data directory owned by this process, queries off the loop.

chDB releases the GIL while a query runs, and one connection runs one query at a time, so a small
pool of connections to the same path runs queries in parallel on worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import chdb
import msgspec

from emban.analytics.store import ClickHouseError, QueryResult, param_text

_POOL_SIZE = 3
# Materialized views (the rollups) run in parallel threads instead of one after the other.
INSERT_SETTINGS = "SETTINGS parallel_view_processing = 1"


class _JsonCompact(msgspec.Struct):
    meta: list[dict[str, str]]
    data: list[list[Any]]
    statistics: dict[str, float] = {}


class ChdbStore:
    def __init__(self, path: Path, pool_size: int = _POOL_SIZE) -> None:
        self.path = path
        self._pool_size = pool_size
        self._pool: asyncio.Queue[Any] | None = None
        self._all: list[Any] = []

    async def _connections(self) -> asyncio.Queue[Any]:
        if self._pool is None:
            self.path.mkdir(parents=True, exist_ok=True)
            pool: asyncio.Queue[Any] = asyncio.Queue()
            for _ in range(self._pool_size):
                conn = await asyncio.to_thread(chdb.connect, str(self.path))
                self._all.append(conn)
                pool.put_nowait(conn)
            self._pool = pool
        return self._pool

    async def _run(self, sql: str, fmt: str, params: dict[str, Any] | None) -> Any:
        pool = await self._connections()
        conn = await pool.get()
        try:
            return await asyncio.to_thread(_query, conn, sql, fmt, params)
        finally:
            pool.put_nowait(conn)

    async def ping(self) -> None:
        await self._run("SELECT 1", "CSV", None)

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        await self._run(sql, "CSV", params)

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> QueryResult:
        raw = await self._run(sql, "JSONCompact", params)
        payload = bytes(raw.bytes())
        if not payload:
            return QueryResult(columns=[], rows=[])
        decoded = msgspec.json.decode(payload, type=_JsonCompact)
        return QueryResult(
            columns=[(col["name"], col["type"]) for col in decoded.meta],
            rows=decoded.data,
            rows_read=int(raw.rows_read()),
            elapsed_ms=float(raw.elapsed()) * 1000.0,
        )

    async def insert_json(
        self, table: str, columns: list[str], payload: bytes, fmt: str = "JSONEachRow"
    ) -> None:
        pool = await self._connections()
        conn = await pool.get()
        try:
            await asyncio.to_thread(_insert, conn, table, columns, payload, fmt)
        finally:
            pool.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._all:
            await asyncio.to_thread(conn.close)
        self._all.clear()
        self._pool = None


def _insert(conn: Any, table: str, columns: list[str], payload: bytes, fmt: str) -> None:
    try:
        inserter = conn.send_insert(
            f"INSERT INTO {table} ({', '.join(columns)}) {INSERT_SETTINGS}",
            fmt,
        )
        inserter.append(payload)
        inserter.finish()
    except Exception as exc:
        raise ClickHouseError(str(exc)) from exc


def _query(conn: Any, sql: str, fmt: str, params: dict[str, Any] | None) -> Any:
    try:
        if params:
            return conn.query(sql, fmt, params={k: param_text(v) for k, v in params.items()})
        return conn.query(sql, fmt)
    except Exception as exc:  # chDB raises its own ChdbError (a RuntimeError subclass)
        _drain(conn)
        raise ClickHouseError(str(exc)) from exc


def _drain(conn: Any) -> None:
    """A query that fails after output started leaves that output on the connection, and chDB
    prepends it to the next result; one successful query clears it before reuse."""
    with contextlib.suppress(Exception):  # best effort; a real problem shows on next use
        conn.query("SELECT 1", "Null")
