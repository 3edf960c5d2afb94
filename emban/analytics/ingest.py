"""Group-committed ingest: concurrent requests share one ClickHouse insert.

Each request hands its validated rows to the process's :class:`IngestWriter` and waits. The writer
takes everything queued, drops events whose ``event_id`` was seen in the last day (and duplicates
inside the batch), inserts the rest with one INSERT (``fsync_after_insert``), records the ids, and
only then answers every waiting request. A failed insert fails every request of that batch; none
of them is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec

from emban.analytics.store import EventStore
from emban.analytics.tables import EVENT_IDS, EVENTS
from emban.metadata import refuse_inside_transaction

log = logging.getLogger("emban.ingest")

EVENT_COLUMNS = [
    "org_id",
    "environment_id",
    "tenant_id",
    "event_name",
    "timestamp",
    "event_id",
    "user_id",
    "string_props",
    "numeric_props",
    "is_sample",
]
COMPACT = "JSONCompactEachRow"
MAX_BATCH_ROWS = 200_000
MAX_LINGER = 0.02  # seconds


class EventRow(msgspec.Struct, array_like=True):
    """One events row; encodes as a JSON array in ``EVENT_COLUMNS`` order (JSONCompactEachRow)."""

    org_id: str
    environment_id: str
    tenant_id: str
    event_name: str
    timestamp: str  # "YYYY-MM-DD HH:MM:SS.mmm" in UTC
    event_id: str
    user_id: str
    string_props: dict[str, str]
    numeric_props: dict[str, float]
    is_sample: int = 0


@dataclass(frozen=True)
class Touched:
    """What a flush changed, for live refresh: (org, environment, tenant, event_name)."""

    keys: frozenset[tuple[str, str, str, str]]
    stored: dict[str, int] = field(default_factory=dict)


FlushListener = Callable[[Touched], Awaitable[None]]
# Called with {org_id: rows newly stored} after a flush is durable and before any ack.
StoredHook = Callable[[dict[str, int]], Awaitable[None]]


@dataclass
class _Pending:
    rows: list[EventRow]
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class IngestWriter:
    def __init__(self, store: EventStore, on_stored: StoredHook | None = None) -> None:
        self._store = store
        self._on_stored = on_stored
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.listeners: list[FlushListener] = []
        self.flushes = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="emban-ingest-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, rows: list[EventRow]) -> int:
        """Queue rows and wait until they are durable; returns how many were new."""
        # The insert runs in the writer's task, so the store's own guard cannot see the caller's
        # transaction: waiting for it inside one is the same stall.
        refuse_inside_transaction("waiting for an ingest flush")
        self.start()
        pending = _Pending(rows)
        await self._queue.put(pending)
        return await pending.done

    async def _run(self) -> None:
        last_flush = 0.0
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].rows)
            # Linger briefly when flushes are slow (under load): clients whose acks just came
            # back are about to send again, and one bigger insert beats several small ones.
            deadline = time.perf_counter() + min(MAX_LINGER, last_flush / 4)
            while size < MAX_BATCH_ROWS:
                if self._queue.empty():
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    await asyncio.sleep(min(remaining, 0.002))
                    continue
                item = self._queue.get_nowait()
                batch.append(item)
                size += len(item.rows)
            started = time.perf_counter()
            try:
                new_counts, touched = await self._flush(batch)
                if self._on_stored is not None:
                    await self._record(touched.stored)
            except Exception as exc:
                log.exception("ingest flush of %d rows failed", size)
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)
                continue
            last_flush = time.perf_counter() - started
            log.debug(
                "flushed %d rows from %d requests in %.1f ms", size, len(batch), last_flush * 1000
            )
            for item, count in zip(batch, new_counts, strict=True):
                if not item.done.done():
                    item.done.set_result(count)
            self.flushes += 1
            if touched.keys:
                for listener in self.listeners:
                    try:
                        await listener(touched)
                    except Exception:
                        log.exception("flush listener failed")

    async def _record(self, stored: dict[str, int]) -> None:
        """Usage accounting once per flush; the rows are durable, so a failure here is logged,
        not turned into a failed ingest (which the client would retry)."""
        assert self._on_stored is not None
        try:
            await self._on_stored(stored)
        except Exception:
            log.exception("recording usage for %s failed", stored)

    async def _flush(self, batch: list[_Pending]) -> tuple[list[int], Touched]:
        by_scope: dict[tuple[str, str], set[str]] = {}
        for item in batch:
            for row in item.rows:
                by_scope.setdefault((row.org_id, row.environment_id), set()).add(row.event_id)
        seen: set[tuple[str, str, str]] = set()
        for (org, env), ids in by_scope.items():
            result = await self._store.query(
                f"SELECT event_id FROM {EVENT_IDS} WHERE org_id = {{org:String}} "
                "AND environment_id = {env:String} AND event_id IN {ids:Array(String)} "
                "AND seen_at > now() - INTERVAL 1 DAY",
                {"org": org, "env": env, "ids": sorted(ids)},
            )
            seen.update((org, env, str(row[0])) for row in result.rows)
        fresh: list[EventRow] = []
        counts: list[int] = []
        for item in batch:
            count = 0
            for row in item.rows:
                key = (row.org_id, row.environment_id, row.event_id)
                if key in seen:
                    continue
                seen.add(key)
                fresh.append(row)
                count += 1
            counts.append(count)
        if fresh:
            encode = msgspec.json.Encoder().encode
            payload = b"\n".join([encode(row) for row in fresh])
            ids_payload = b"\n".join(
                [encode((r.org_id, r.environment_id, r.event_id)) for r in fresh]
            )
            # Two tables, two pooled connections, in parallel: both must land before any ack.
            await asyncio.gather(
                self._store.insert_json(EVENTS, EVENT_COLUMNS, payload, COMPACT),
                self._store.insert_json(
                    EVENT_IDS, ["org_id", "environment_id", "event_id"], ids_payload, COMPACT
                ),
            )
        touched = frozenset((r.org_id, r.environment_id, r.tenant_id, r.event_name) for r in fresh)
        stored: dict[str, int] = {}
        for row in fresh:
            stored[row.org_id] = stored.get(row.org_id, 0) + 1
        return counts, Touched(touched, stored)
