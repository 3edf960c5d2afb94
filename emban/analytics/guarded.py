"""The event store as services see it: refuses to run inside a metadata transaction.

Every store the app, the worker and the demo open is wrapped in :class:`OutsideTransactions`, so
an engine call made while a metadata transaction is open in the current task raises
:class:`emban.metadata.EngineIOInTransaction` instead of holding the transaction (on SQLite: every
other request's metadata query) for as long as the engine takes. Methods a store adds beyond the
protocol below are guarded too (``__getattr__``), so a new engine entry point cannot slip past.

Given a :class:`~emban.metrics.Metrics`, the same wrapper times every call by kind (``query``,
``background_query``, ``adhoc``, ``execute``, ``insert``, ``ping``, or a method's own name) and
counts the ones that raise: one place for both stores, and never labelled by SQL text.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

from emban.analytics.store import EventStore, QueryResult
from emban.metadata import refuse_inside_transaction
from emban.metrics import Metrics

BeforeRead = Callable[[str | None], Awaitable[object]]

# The org whose request is running (set once its caller is resolved): a read with no ``org``
# parameter (ad-hoc SQL pins the org in its text) waits for that org's rows only.
reading_org: ContextVar[str | None] = ContextVar("emban_reading_org", default=None)


class OutsideTransactions:
    """``before_read``: awaited before every query and statement with the org read (the ``org``
    parameter, else :data:`reading_org`; None: any) — the app's store waits there for the ingest
    drain of that org's rows acknowledged earlier (read-your-writes). Given ``metrics``, it times
    and counts its calls."""

    def __init__(
        self,
        inner: EventStore,
        metrics: Metrics | None = None,
        before_read: BeforeRead | None = None,
    ) -> None:
        self.inner = inner
        self._metrics = metrics
        self.before_read = before_read

    async def _ready(self, what: str, params: dict[str, Any] | None = None) -> None:
        refuse_inside_transaction(what)
        if self.before_read is not None:
            org = params.get("org") if params else None
            await self.before_read(org if isinstance(org, str) else reading_org.get())

    @contextlib.contextmanager
    def _timed(self, kind: str) -> Iterator[None]:
        if self._metrics is None:
            yield
            return
        started = time.perf_counter()
        try:
            yield
        except Exception:  # a cancelled call (the client went away) is not an engine error
            self._metrics.clickhouse_errors.labels(kind).inc()
            raise
        finally:
            self._metrics.clickhouse_duration.labels(kind).observe(time.perf_counter() - started)

    async def ping(self) -> None:
        refuse_inside_transaction("ClickHouse ping")
        with self._timed("ping"):
            await self.inner.ping()

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        await self._ready("ClickHouse statement", params)
        with self._timed("execute"):
            await self.inner.execute(sql, params)

    async def query(
        self, sql: str, params: dict[str, Any] | None = None, *, background: bool = False
    ) -> QueryResult:
        await self._ready("ClickHouse query", params)
        with self._timed("background_query" if background else "query"):
            return await self.inner.query(sql, params, background=background)

    async def query_adhoc(self, sql: str, *, max_result_bytes: int) -> QueryResult:
        await self._ready("ClickHouse ad-hoc query")
        with self._timed("adhoc"):
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
        with self._timed("insert"):
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
            with self._timed(name):
                return await attr(*args, **kwargs)

        return guarded


def guarded(
    store: EventStore, metrics: Metrics | None = None, before_read: BeforeRead | None = None
) -> EventStore:
    """``store`` wrapped so it refuses engine I/O inside a metadata transaction (and, given
    ``metrics``, times and counts its calls; awaits ``before_read`` before each read)."""
    return OutsideTransactions(store, metrics, before_read)
