"""Group-committed ingest: concurrent requests share one ClickHouse insert.

Each request hands its validated rows to the process's :class:`IngestWriter` and waits. The
writer takes what is queued (fairly between orgs, see :class:`IngestWriter`), drops events whose
``event_id`` was seen in the last day (and duplicates inside the batch), inserts the rest with one
INSERT (``fsync_after_insert``), records the ids, and only then answers every waiting request. A
failed insert fails every request of that batch; none of them is acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from emban.analytics.background import in_background
from emban.analytics.store import EventStore
from emban.analytics.tables import EVENT_IDS, EVENTS
from emban.background_tasks import OwnedTask, TaskSet
from emban.dependencies import dependency_failure
from emban.errors import Unavailable
from emban.metadata import refuse_inside_transaction
from emban.metrics import Metrics

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
MAX_BATCH_ROWS = 200_000  # rows in one flush, all orgs together
ORG_BATCH_ROWS = 20_000  # rows of one org in one flush (its first request is always taken whole)
# An org taking more rows than this flushes alone: small requests of other orgs never share (and
# wait for) a big insert. They share the other flush slot, which one org's backlog never holds.
SHARED_FLUSH_ROWS = 1_000
OFF_LOOP_ROWS = 2_000  # a flush this big builds its payloads on a background thread
MAX_CONCURRENT_FLUSHES = 2
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
    """Group commit, fair between orgs.

    Requests wait in one FIFO queue per org. A flush takes, org by org in round-robin order, up
    to ``ORG_BATCH_ROWS`` rows of each org that has work and no flush in flight (at least its
    oldest request, whole), up to ``MAX_BATCH_ROWS`` in all; an org served goes to the back of
    the round. An org that takes more than ``SHARED_FLUSH_ROWS`` flushes alone (skipped, keeping
    its place, when the flush already holds others), so a 1-event ack never waits for a burst's
    20,000-row insert. Up to ``MAX_CONCURRENT_FLUSHES`` flushes run at once, never two with the
    same org (de-duplication by ``event_id`` reads then writes per org). So one org's backlog
    takes one flush slot and bounded flushes, and another org's request starts in the next
    flush — in the free slot at once — instead of behind the whole backlog.
    """

    def __init__(
        self,
        store: EventStore,
        on_stored: StoredHook | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._on_stored = on_stored
        self._metrics = metrics
        self._usage_pending: dict[str, int] = {}  # usage not recorded yet (metadata down)
        self.queued_rows = 0  # rows submitted and not yet taken into a flush (a metrics gauge)
        # Per org, oldest first; dict order is the round-robin order (served orgs move last).
        self._pending: dict[str, deque[_Pending]] = {}
        self._in_flight: set[str] = set()
        self._flushing = TaskSet()
        self._wake = asyncio.Event()
        self._last_flush = 0.0
        self._writer = OwnedTask("emban-ingest-writer")
        self.listeners: list[FlushListener] = []
        self.flushes = 0

    def start(self) -> None:
        self._writer.start(self._run)

    async def stop(self) -> None:
        await self._writer.stop()
        # Flushes already started finish: their rows may be durable, so they get answered.
        await self._flushing.wait()

    async def submit(self, rows: list[EventRow], generated: Sequence[bool] | None = None) -> int:
        """Queue rows (all of one org) and wait until they are durable; returns how many were
        new (``generated``, which ids the server made, is for the WAL writer)."""
        # The insert runs in the writer's task, so the store's own guard cannot see the caller's
        # transaction: waiting for it inside one is the same stall.
        refuse_inside_transaction("waiting for an ingest flush")
        org = rows[0].org_id if rows else ""
        if any(row.org_id != org for row in rows):
            raise ValueError("one submit carries the rows of one org")
        self.start()
        pending = _Pending(rows)
        self._pending.setdefault(org, deque()).append(pending)
        self.queued_rows += len(rows)
        self._wake.set()
        return await pending.done

    def undrained(self, org_id: str) -> int:
        """Rows of ``org_id`` acknowledged and not yet in the engine (none: acks wait for it)."""
        return 0

    async def visible(
        self, wait: float = 0.0, *, org: str | None = None, readable: bool = False
    ) -> bool:
        """Every acknowledged row is in the engine already: acks wait for the INSERT."""
        return True

    def _ready_rows(self) -> int:
        return sum(
            len(item.rows)
            for org, queue in self._pending.items()
            if org not in self._in_flight
            for item in queue
        )

    def _has_ready(self) -> bool:
        return any(queue and org not in self._in_flight for org, queue in self._pending.items())

    def take_batch(self) -> list[_Pending]:
        """The next flush's requests, by the fairness rules above (their orgs marked in
        flight)."""
        batch: list[_Pending] = []
        total = 0
        for org in [o for o, q in self._pending.items() if q and o not in self._in_flight]:
            if total >= MAX_BATCH_ROWS:
                break
            queue = self._pending[org]
            count, taken = 0, 0
            for item in queue:
                size = len(item.rows)
                if count and (taken + size > ORG_BATCH_ROWS or total + size > MAX_BATCH_ROWS):
                    break
                count += 1
                taken += size
            heavy = taken > SHARED_FLUSH_ROWS
            if heavy and batch:
                continue  # alone, in a later flush; it keeps its place in the round
            del self._pending[org]
            batch.extend(queue.popleft() for _ in range(count))
            total += taken
            self.queued_rows -= taken
            self._in_flight.add(org)
            if queue:
                self._pending[org] = queue  # back of the round
            if heavy:
                break
        return batch

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while len(self._flushing) < MAX_CONCURRENT_FLUSHES and self._has_ready():
                # Linger briefly when flushes are slow (under load): clients whose acks just came
                # back are about to send again, and one bigger insert beats several small ones.
                deadline = time.perf_counter() + min(MAX_LINGER, self._last_flush / 4)
                while self._ready_rows() < MAX_BATCH_ROWS:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    await asyncio.sleep(min(remaining, 0.002))
                batch = self.take_batch()
                orgs = {item.rows[0].org_id if item.rows else "" for item in batch}
                self._flushing.spawn(self._flush_and_answer(batch, orgs))

    async def _flush_and_answer(self, batch: list[_Pending], orgs: set[str]) -> None:
        size = sum(len(item.rows) for item in batch)
        started = time.perf_counter()
        try:
            try:
                new_counts, touched = await self._flush(batch)
                if self._on_stored is not None:
                    await self._record(touched.stored)
            except Exception as exc:
                if not isinstance(exc, Unavailable):  # the store logged the outage once
                    log.exception("ingest flush of %d rows failed", size)
                if self._metrics is not None:
                    self._metrics.ingest_flush_failed.inc()
                    self._metrics.ingest_failed.inc(size)
                    self._metrics.ingest_flush_duration.observe(time.perf_counter() - started)
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)
                return
            self._last_flush = time.perf_counter() - started
            if self._metrics is not None:
                stored = sum(new_counts)
                self._metrics.ingest_flush_ok.inc()
                self._metrics.ingest_stored.inc(stored)
                self._metrics.ingest_duplicate.inc(size - stored)
                self._metrics.ingest_flush_duration.observe(self._last_flush)
            log.debug(
                "flushed %d rows from %d requests of %d org(s) in %.1f ms",
                size,
                len(batch),
                len(orgs),
                self._last_flush * 1000,
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
        finally:
            self._in_flight.difference_update(orgs)
            self._flushing.release_current()
            self._wake.set()

    async def _record(self, stored: dict[str, int]) -> None:
        """Usage accounting once per flush; the rows are durable, so a failure here is logged,
        not turned into a failed ingest (which the client would retry). While the metadata
        database is unreachable the counts are kept and added to the next flush's."""
        assert self._on_stored is not None
        for org, count in self._usage_pending.items():
            stored = {**stored, org: stored.get(org, 0) + count}
        self._usage_pending = {}
        try:
            await self._on_stored(stored)
        except Exception as exc:
            if dependency_failure(exc) is None:
                log.exception("recording usage for %s failed", stored)
            else:  # the outage itself is logged once (dependencies.py)
                # Added, not assigned: another lane's flush may have kept counts meanwhile.
                for org, count in stored.items():
                    self._usage_pending[org] = self._usage_pending.get(org, 0) + count

    async def count_new(self, rows: list[EventRow]) -> int:
        """How many of ``rows`` a flush would store now: ids not seen in the last day, each once.
        The monthly cap counts these, so a resend of stored events is not refused near the cap
        (in-flight requests not yet flushed are not seen, as in the cap check itself)."""
        refuse_inside_transaction("counting new events")
        by_scope = _scope_ids(rows)
        seen = await self._seen(by_scope, background=len(rows) >= OFF_LOOP_ROWS)
        keys = {(r.org_id, r.environment_id, r.event_id) for r in rows}
        return len(keys - seen)

    async def _seen(
        self, by_scope: dict[tuple[str, str], list[str]], *, background: bool
    ) -> set[tuple[str, str, str]]:
        """The (org, environment, event id) keys among ``by_scope`` stored in the last day."""
        encoded = {scope: json_lines(ids) for scope, ids in by_scope.items()}
        return await self._seen_lines(encoded, background=background)

    async def _seen_lines(
        self, by_scope: dict[tuple[str, str], str], *, background: bool
    ) -> set[tuple[str, str, str]]:
        """:meth:`_seen`, with each scope's ids already as JSON lines (:func:`json_lines`)."""
        seen: set[tuple[str, str, str]] = set()
        for (org, env), lines in by_scope.items():
            # The ids go as one String of JSON lines read by format(): ``IN {ids:Array(String)}``
            # compares each stored row with every element (100,000 ids against 100,000 stored
            # rows ran for minutes), while a subquery's set is hashed once (under a second).
            result = await self._store.query(
                f"SELECT event_id FROM {EVENT_IDS} WHERE org_id = {{org:String}} "
                "AND environment_id = {env:String} AND event_id IN (SELECT event_id FROM "
                "format(JSONCompactEachRow, 'event_id String', {ids:String})) "
                "AND seen_at > now() - INTERVAL 1 DAY",
                {"org": org, "env": env, "ids": lines},
                background=background,
            )
            seen.update((org, env, str(row[0])) for row in result.rows)
        return seen

    async def _flush(self, batch: list[_Pending]) -> tuple[list[int], Touched]:
        # A big flush's Python work (sets of ids, one JSON line per row) runs on a worker thread:
        # on the loop it would hold every other request for tens of milliseconds per burst flush.
        big = sum(len(item.rows) for item in batch) >= OFF_LOOP_ROWS
        by_scope = await in_background(_ids_by_scope, batch) if big else _ids_by_scope(batch)
        seen = await self._seen(by_scope, background=big)
        fresh = await in_background(_fresh, batch, seen) if big else _fresh(batch, seen)
        if fresh.rows:
            # Two tables, two pooled connections, in parallel: both must land before any ack.
            await asyncio.gather(
                self._store.insert_json(EVENTS, EVENT_COLUMNS, fresh.payload, COMPACT),
                self._store.insert_json(
                    EVENT_IDS, ["org_id", "environment_id", "event_id"], fresh.ids_payload, COMPACT
                ),
            )
        return fresh.counts, Touched(fresh.touched, fresh.stored)


def json_lines(ids: list[str]) -> str:
    """Each id as a one-element JSON array, one per line (JSONCompactEachRow)."""
    encode = msgspec.json.Encoder().encode
    return b"\n".join([encode((i,)) for i in ids]).decode()


def _ids_by_scope(batch: list[_Pending]) -> dict[tuple[str, str], list[str]]:
    return _scope_ids(row for item in batch for row in item.rows)


def _scope_ids(rows: Iterable[EventRow]) -> dict[tuple[str, str], list[str]]:
    by_scope: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        by_scope.setdefault((row.org_id, row.environment_id), set()).add(row.event_id)
    return {scope: sorted(ids) for scope, ids in by_scope.items()}


@dataclass(frozen=True)
class _Fresh:
    """A flush's rows not seen before, encoded for the two inserts."""

    rows: int
    counts: list[int]  # new rows per request, in batch order
    payload: bytes
    ids_payload: bytes
    touched: frozenset[tuple[str, str, str, str]]
    stored: dict[str, int]


def _fresh(batch: list[_Pending], seen: set[tuple[str, str, str]]) -> _Fresh:
    seen = set(seen)
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
    encode = msgspec.json.Encoder().encode
    stored: dict[str, int] = {}
    for row in fresh:
        stored[row.org_id] = stored.get(row.org_id, 0) + 1
    return _Fresh(
        rows=len(fresh),
        counts=counts,
        payload=b"\n".join([encode(row) for row in fresh]),
        ids_payload=b"\n".join([encode((r.org_id, r.environment_id, r.event_id)) for r in fresh]),
        touched=frozenset((r.org_id, r.environment_id, r.tenant_id, r.event_name) for r in fresh),
        stored=stored,
    )
