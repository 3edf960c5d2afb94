"""The event store as services see it: refuses to run inside a metadata transaction.

Every store the app, the worker and the demo open is wrapped in :class:`OutsideTransactions`, so
an engine call made while a metadata transaction is open in the current task raises
:class:`emban.metadata.EngineIOInTransaction` instead of holding the transaction (on SQLite: every
other request's metadata query) for as long as the engine takes. Methods a store adds beyond the
protocol below are guarded too (``__getattr__``), so a new engine entry point cannot slip past.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from emban.analytics.store import EventStore, QueryResult
from emban.metadata import refuse_inside_transaction

BeforeRead = Callable[[], Awaitable[object]]


class OutsideTransactions:
    """``before_read``: awaited before every query and statement (the app's store waits there for
    the ingest drain of what was acknowledged earlier: read-your-writes)."""

    def __init__(self, inner: EventStore, before_read: BeforeRead | None = None) -> None:
        self.inner = inner
        self.before_read = before_read

    async def _ready(self, what: str) -> None:
        refuse_inside_transaction(what)
        if self.before_read is not None:
            await self.before_read()

    async def ping(self) -> None:
        refuse_inside_transaction("ClickHouse ping")
        await self.inner.ping()

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        await self._ready("ClickHouse statement")
        await self.inner.execute(sql, params)

    async def query(
        self, sql: str, params: dict[str, Any] | None = None, *, background: bool = False
    ) -> QueryResult:
        await self._ready("ClickHouse query")
        return await self.inner.query(sql, params, background=background)

    async def query_adhoc(self, sql: str, *, max_result_bytes: int) -> QueryResult:
        await self._ready("ClickHouse ad-hoc query")
        return await self.inner.query_adhoc(sql, max_result_bytes=max_result_bytes)

    async def insert_json(
        self,
        table: str,
        columns: list[str],
        payload: bytes,
        fmt: str = "JSONEachRow",
        *,
        token: str | None = None,
    ) -> None:
        refuse_inside_transaction("ClickHouse insert")
        await self.inner.insert_json(table, columns, payload, fmt, token=token)

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            refuse_inside_transaction(f"ClickHouse {name}")
            return await attr(*args, **kwargs)

        return guarded


def guarded(store: EventStore, before_read: BeforeRead | None = None) -> EventStore:
    """``store`` wrapped so it refuses engine I/O inside a metadata transaction (and awaits
    ``before_read`` before each read)."""
    return OutsideTransactions(store, before_read)
