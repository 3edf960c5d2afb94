"""chDB, the in-process ClickHouse: one data directory owned by this process, queries off the loop.

chDB releases the GIL while a query runs, and one connection runs one query at a time, so a small
pool of connections to the same path runs queries in parallel on worker threads.

Ad-hoc SQL gets its own small pool (``query_adhoc``): a slow ad-hoc query (``sleep``, a big
scan) holds one of those connections, never one of the main pool that ingest acks, embed reads
and ``/healthz`` wait for. Inserts get theirs too (``insert_json``): two concurrent flushes of a
burst each insert into two tables at once, which would otherwise hold every main connection and
make embed reads and ``/healthz`` queue behind one org's ingest. Results are decoded on the
worker thread too, so a large answer does not hold the event loop while msgspec builds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chdb
import msgspec

from emban.analytics.background import (
    in_background,
    is_deferrable,
    lower_engine_background_threads,
)
from emban.analytics.store import (
    ClickHouseError,
    QueryResult,
    ResultTooLarge,
    insert_dedup,
    param_text,
)

_POOL_SIZE = 3
ADHOC_POOL_SIZE = 2
INSERT_POOL_SIZE = 4  # MAX_CONCURRENT_FLUSHES x (events + event ids)
DEFERRED_POOL_SIZE = 2  # background and deferrable reads
# A bigger insert (a burst's flush) runs on a low-priority thread (analytics/background.py).
BACKGROUND_INSERT_BYTES = 256 * 1024
# Materialized views (the rollups) run in parallel threads instead of one after the other.
INSERT_SETTINGS = "SETTINGS parallel_view_processing = 1"
# A background insert runs its views in its own (low-priority) thread, one after the other.
# ``os_thread_priority``: the engine's threads working for it run at this nice value (the
# engine applies it per query, to every thread it uses, with CAP_SYS_NICE; without, it is a
# no-op), so a burst's inserts and deferrable reads leave the cores to requests.
BACKGROUND_NICE_SETTING = "os_thread_priority = 10"
LOWER_MERGES_EVERY = 5.0  # seconds between looks for the engine's new merge threads
BACKGROUND_INSERT_SETTINGS = (
    f"SETTINGS parallel_view_processing = 0, max_threads = 1, {BACKGROUND_NICE_SETTING}"
)


class _JsonCompact(msgspec.Struct):
    meta: list[dict[str, str]]
    data: list[list[Any]]
    statistics: dict[str, float] = {}


class ChdbStore:
    def __init__(
        self, path: Path, pool_size: int = _POOL_SIZE, adhoc_pool_size: int = ADHOC_POOL_SIZE
    ) -> None:
        self.path = path
        self.cluster: str | None = None  # embedded: one node
        self._pool_size = pool_size
        self._adhoc_pool_size = adhoc_pool_size
        self._pool: asyncio.Queue[Any] | None = None
        self._adhoc_pool: asyncio.Queue[Any] | None = None
        self._insert_pool: asyncio.Queue[Any] | None = None
        self._deferred_pool: asyncio.Queue[Any] | None = None
        self._opening = asyncio.Lock()
        self._all: list[Any] = []
        self._merges_lowered_at = 0.0

    async def _open(self, size: int) -> asyncio.Queue[Any]:
        pool: asyncio.Queue[Any] = asyncio.Queue()
        for _ in range(size):
            conn = await asyncio.to_thread(chdb.connect, str(self.path))
            self._all.append(conn)
            pool.put_nowait(conn)
        return pool

    async def _connections(self) -> asyncio.Queue[Any]:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self.path.mkdir(parents=True, exist_ok=True)
                    self._pool = await self._open(self._pool_size)
        return self._pool

    async def _adhoc_connections(self) -> asyncio.Queue[Any]:
        await self._connections()  # the main pool first: it creates the data directory
        if self._adhoc_pool is None:
            async with self._opening:
                if self._adhoc_pool is None:
                    self._adhoc_pool = await self._open(self._adhoc_pool_size)
        return self._adhoc_pool

    async def _insert_connections(self) -> asyncio.Queue[Any]:
        await self._connections()
        if self._insert_pool is None:
            async with self._opening:
                if self._insert_pool is None:
                    self._insert_pool = await self._open(INSERT_POOL_SIZE)
        return self._insert_pool

    async def _deferred_connections(self) -> asyncio.Queue[Any]:
        await self._connections()
        if self._deferred_pool is None:
            async with self._opening:
                if self._deferred_pool is None:
                    self._deferred_pool = await self._open(DEFERRED_POOL_SIZE)
        return self._deferred_pool

    async def ping(self) -> None:
        await self.execute("SELECT 1")

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        await _on_connection(await self._connections(), _query, sql, "CSV", params)

    async def query(
        self, sql: str, params: dict[str, Any] | None = None, *, background: bool = False
    ) -> QueryResult:
        # Work that may wait (a burst's id lookups, live refreshes, discovery scans) has its own
        # connections, so it never holds one a request or /healthz is waiting for.
        deferred = background or is_deferrable()
        pool = await (self._deferred_connections() if deferred else self._connections())
        if deferred and "SETTINGS" not in sql.upper():
            sql += f" SETTINGS {BACKGROUND_NICE_SETTING}"
        result: QueryResult = await _on_connection(
            pool, _query_result, sql, params, None, background=deferred
        )
        return result

    async def query_adhoc(self, sql: str, *, max_result_bytes: int) -> QueryResult:
        result: QueryResult = await _on_connection(
            await self._adhoc_connections(),
            _query_result,
            sql,
            None,
            max_result_bytes,
            background=True,
        )
        return result

    async def insert_json(
        self,
        table: str,
        columns: list[str],
        payload: bytes,
        fmt: str = "JSONEachRow",
        *,
        token: str | None = None,
    ) -> None:
        background = len(payload) > BACKGROUND_INSERT_BYTES
        if background and time.monotonic() - self._merges_lowered_at > LOWER_MERGES_EVERY:
            # Big inserts make merges; the threads doing them are lowered once they exist.
            self._merges_lowered_at = time.monotonic()
            await in_background(lower_engine_background_threads)
        settings = BACKGROUND_INSERT_SETTINGS if background else INSERT_SETTINGS
        settings += "".join(f", {k} = '{v}'" for k, v in insert_dedup(token).items())
        await _on_connection(
            await self._insert_connections(),
            _insert,
            table,
            columns,
            payload,
            fmt,
            settings,
            background=background,
        )

    async def close(self) -> None:
        for conn in self._all:
            await asyncio.to_thread(conn.close)
        self._all.clear()
        self._pool = None
        self._adhoc_pool = None
        self._insert_pool = None
        self._deferred_pool = None


async def _on_connection(
    pool: asyncio.Queue[Any], work: Callable[..., Any], *args: Any, background: bool = False
) -> Any:
    """Run ``work(conn, *args)`` on a worker thread with a connection of ``pool``. The connection
    goes back only when the thread is done with it, even if the caller is cancelled meanwhile
    (a cancelled await does not stop the thread, and one connection runs one query at a time)."""
    conn = await pool.get()
    try:
        thread = in_background if background else asyncio.to_thread
        running = asyncio.ensure_future(thread(work, conn, *args))
    except BaseException:
        pool.put_nowait(conn)
        raise

    def release(done: asyncio.Future[Any]) -> None:
        pool.put_nowait(conn)
        if not done.cancelled():
            done.exception()  # retrieved here too, so an abandoned failure is not logged as lost

    running.add_done_callback(release)
    return await asyncio.shield(running)


def _insert(
    conn: Any, table: str, columns: list[str], payload: bytes, fmt: str, settings: str
) -> None:
    try:
        inserter = conn.send_insert(
            f"INSERT INTO {table} ({', '.join(columns)}) {settings}",
            fmt,
        )
        inserter.append(payload)
        inserter.finish()
    except Exception as exc:
        raise ClickHouseError(str(exc)) from exc


def _query_result(
    conn: Any, sql: str, params: dict[str, Any] | None, max_bytes: int | None
) -> QueryResult:
    """Run and decode on the worker thread; an answer over ``max_bytes`` is never decoded."""
    raw = _query(conn, sql, "JSONCompact", params)
    payload = bytes(raw.bytes())
    if max_bytes is not None and len(payload) > max_bytes:
        raise ResultTooLarge(len(payload), max_bytes)
    if not payload:
        return QueryResult(columns=[], rows=[])
    decoded = msgspec.json.decode(payload, type=_JsonCompact)
    return QueryResult(
        columns=[(col["name"], col["type"]) for col in decoded.meta],
        rows=decoded.data,
        rows_read=int(raw.rows_read()),
        elapsed_ms=float(raw.elapsed()) * 1000.0,
    )


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
