"""Ingest through a write-ahead log: acknowledged when fsync'd, drained in large INSERTs.

``submit`` frames a request's rows as one WAL record and waits for the fsync that holds it; every
request arriving while an fsync runs shares the next one (group commit), so the ack costs a few
milliseconds whatever the engine is doing. The drainer seals the current segment once it could be
drained at once, and stores sealed segments in chunks of whole records (``DRAIN_CHUNK_ROWS``): per
chunk it drops event ids already stored in the last day and duplicates inside the chunk
(select-then-insert, exact because within a process no two chunks holding one org's rows run at
once and, across processes sharing one ClickHouse, the drain lease lets one process drain at a
time), inserts the events and then their ids, each INSERT named ``<wal id>-<segment>-<chunk>``
(``insert_deduplication_token``) and announces the touched keys to live refresh. The fast lane
drains two segments at once when they share no org; an org's segments are drained in the order
they were written. Once a segment's chunks are in the engine its readers go ahead and the drainer
goes on, while the accountant records the segments' usage and deletes them, in order. A crash
anywhere replays the segments left on disk: the same chunks get the same tokens, so a chunk whose
events INSERT had landed is dropped by the engine, and one whose ids had landed too finds every id
already seen.

Fairness between orgs (a burst never delays another org's small ack): acks wait only for an
fsync, which a burst's bytes lengthen by milliseconds; the engine work is off the ack path. Bulk
requests, and orgs sending many rows a second, go to a lane of their own (:class:`WalIngestWriter`),
so another org's rows reach the engine without waiting behind a burst's backlog.

Read-your-writes within a process: :meth:`WalIngestWriter.visible` (``readable=True``) waits
until every row of the reading org acknowledged before the call is in the engine (bounded); the
app's store awaits it before every read (``guarded(store, before_read=...)``), so a query
started after an ack sees the acknowledged events, and never waits for another org's backlog.
Without ``readable`` it also waits for those rows' usage (the plan's cap, ``/v1/usage``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec

from emban.analytics.background import in_background
from emban.analytics.decode_pool import DecodePool, PoolUnavailable
from emban.analytics.drain_lock import DrainLock, ProcessLock
from emban.analytics.ingest import (
    COMPACT,
    EVENT_COLUMNS,
    EventRow,
    IngestWriter,
    StoredHook,
    Touched,
    json_lines,
)
from emban.analytics.store import EventStore
from emban.analytics.tables import EVENT_IDS, EVENTS
from emban.analytics.wal import (
    RecordRows,
    WriteAheadLog,
    encode_record,
    read_chunk_at,
    remove_segment,
    segment_path,
)
from emban.background_tasks import OwnedTask
from emban.errors import Unavailable
from emban.metadata import refuse_inside_transaction
from emban.metrics import Metrics

log = logging.getLogger("emban.ingest")
R = TypeVar("R")

DRAIN_CHUNK_ROWS = 20_000  # rows per drain INSERT (whole records); part of each chunk's token
OFF_LOOP_ROWS = 2_000  # a request this big is framed on a worker thread
VISIBLE_WAIT = 10.0  # seconds a read waits for the drain before reading anyway
STOP_DRAIN = 5.0  # seconds shutdown spends draining; the rest is replayed on the next start
RETRY_DRAIN = 1.0  # seconds between attempts while the engine refuses a drain
BULK_ROWS = 1_000  # a request this big goes to the bulk lane
BULK_RATE = 5_000  # rows a second: an org sending more goes to the bulk lane
FAST_LANE_DIR = "fast"  # the fast lane's WAL, inside the bulk lane's directory
PRUNE_RATES = 10_000  # orgs tracked before idle ones are forgotten
FAST_LANE_DRAINS = 2  # segments of different orgs the fast lane drains at once

# A drained chunk: its new rows per org (usage) and its records' (org, rows) (undrained counts).
DrainedChunk = tuple[dict[str, int], list[tuple[str, int]]]


class IngestBacklogFull(Exception):
    """The WAL holds more undrained bytes than the configured bound: refuse, retry later."""

    def __init__(self, backlog: int, limit: int) -> None:
        super().__init__(f"ingest backlog {backlog} bytes is over {limit} bytes")
        self.backlog = backlog
        self.limit = limit


_encode = msgspec.json.Encoder().encode


def frame(rows: list[EventRow], generated: Sequence[bool] | None = None) -> bytes:
    """One request's rows (all of one org and environment) as a framed WAL record. A row whose
    event id the server generated (``generated[i]``) is recorded without it: no client knows
    that id (ingest answers a count), so no resend can repeat it, and the drain neither looks it
    up nor stores it in ``event_ids`` (the row itself holds it)."""
    first = rows[0]
    if generated is None:
        generated = [False] * len(rows)
    return encode_record(
        first.org_id,
        first.environment_id,
        [
            (r.tenant_id, r.event_name, "" if fresh else r.event_id, _encode(r))
            for r, fresh in zip(rows, generated, strict=True)
        ],
    )


class Offload(Protocol):
    def __call__(self, func: Callable[..., R], /, *args: Any) -> Awaitable[R]: ...


class _RecentRows:
    """Rows acknowledged per org over about the last second (two one-second windows)."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int, int]] = {}  # org → (second, this, previous)

    def add(self, org: str, rows: int) -> float:
        """Count ``rows`` for ``org`` now; its rate (rows per second) including them."""
        now = time.monotonic()
        second = int(now)
        window, this, previous = self._windows.get(org, (second, 0, 0))
        if second != window:
            previous, this = (this if second == window + 1 else 0), 0
        this += rows
        self._windows[org] = (second, this, previous)
        if len(self._windows) > PRUNE_RATES:
            self._windows = {o: w for o, w in self._windows.items() if w[0] >= second - 1}
        return this + previous * (1.0 - (now - second))


class _Lane:
    """One write-ahead log and the tasks that serve it: the appender (group commit: every record
    queued while an fsync runs shares the next one), the drainer (sealed segments, in chunks of
    whole records, each INSERT named by the lane's WAL id, the segment and the chunk index; up
    to ``parallel`` segments at once when they share no org) and the accountant (each drained
    segment's usage, then its file deleted, in the segments' order)."""

    def __init__(self, owner: WalIngestWriter, name: str, directory: Path, *, bulk: bool) -> None:
        self.owner = owner
        self.name = name
        # The bulk lane's work (reading and sorting big chunks) runs on the low-priority threads;
        # the fast lane's small chunks at normal priority, as the requests waiting for them.
        self.offload: Offload = in_background if bulk else asyncio.to_thread
        self.wal = WriteAheadLog(directory)
        self._queue: list[tuple[bytes, asyncio.Future[int], int, str]] = []
        self.undrained: dict[str, int] = {}  # org → rows acknowledged in this run, not drained
        self.org_seq: dict[str, int] = {}  # org → the last segment holding its acknowledged rows
        self._queued = asyncio.Event()
        self._io = asyncio.Lock()  # one blocking WAL operation at a time
        self._appender = OwnedTask(f"emban-ingest-wal-{name}")
        self._drainer = OwnedTask(f"emban-ingest-drain-{name}")
        # Usage and the segment's deletion are recorded by a task of their own, in order, so
        # the drainer goes on to the next segment as soon as a segment's rows are readable.
        self._accountant = OwnedTask(f"emban-ingest-account-{name}")
        self._to_account: asyncio.Queue[tuple[int, list[DrainedChunk]]] = asyncio.Queue()
        self._work = asyncio.Event()  # the drainer has something to look at
        self._drained = asyncio.Condition()
        self.acked_seq = max(self.wal.sealed, default=0)  # everything up to here is acked
        self.drained_below = min(self.wal.sealed, default=1)  # every seq below it is drained
        # Every seq below it is in the engine (readable), its usage perhaps not yet recorded nor
        # its segment deleted: reads wait for this, accounting waits for ``drained_below``.
        self.readable_below = self.drained_below
        self.replayed = max(self.wal.sealed, default=0)  # the last segment of an earlier run
        # Segments drained at once (the fast lane: 2, so that one org's drain never waits for
        # another's; the bulk lane: 1). Two segments sharing an org never drain at once, nor a
        # later one before an earlier: an org's rows reach the engine in the order acknowledged.
        self.parallel = 1 if bulk else FAST_LANE_DRAINS
        self.seg_orgs: dict[int, set[str]] = {}  # orgs per segment of this run (replayed: unknown)
        self._running: dict[int, asyncio.Task[None]] = {}  # seq → its drain
        self._readable: set[int] = set()  # drained segments, until the accountant retires them
        self._finished: dict[int, list[DrainedChunk]] = {}  # drained, not yet handed on in order
        self._handed = 0  # the last segment handed to the accountant (they go in order)
        self.drain_failing = False  # the last drain attempt failed (the engine refused it)

    def start(self) -> None:
        self._appender.start(self._append_loop)
        self._drainer.start(self._drain_loop)
        self._accountant.start(self._account_loop)
        self._work.set()

    @property
    def draining(self) -> bool:
        return self._drainer.running

    async def stop_appending(self) -> None:
        while self._queue:  # noqa: ASYNC110 (the appender empties it within one fsync)
            await asyncio.sleep(0.005)
        await self._appender.stop()

    async def stop_draining(self) -> None:
        await self._drainer.stop()
        # What was drained is accounted (usage recorded, segments deleted) before the WAL
        # closes; a segment left undeleted is replayed and found stored on the next start.
        if self._accountant.running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._to_account.join(), STOP_DRAIN)
        await self._accountant.stop()
        await asyncio.to_thread(self.wal.close)

    def full(self) -> bool:
        if self.wal.backlog_bytes >= self.owner.backlog_limit:
            self._work.set()
            return True
        return False

    async def append(self, record: bytes, rows: int, org: str) -> int:
        self._appender.start(self._append_loop)  # the drainer starts with start()
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((record, done, rows, org))
        self._queued.set()
        return await done

    async def _append_loop(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    async with self._io:
                        split = self._split_before({b[3] for b in batch})
                        seq = await asyncio.to_thread(
                            self._write, [b[0] for b in batch], split=split
                        )
                except Exception as exc:
                    log.exception("ingest WAL append of %d records failed", len(batch))
                    for _, done, _, _ in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                self.acked_seq = max(self.acked_seq, seq)
                self.owner.flushes += 1  # group commits: each fsync acknowledges a group
                orgs = self.seg_orgs.setdefault(seq, set())
                for _, done, count, org in batch:
                    self.undrained[org] = self.undrained.get(org, 0) + count
                    self.org_seq[org] = seq
                    orgs.add(org)
                    self.owner.queued_rows += count
                    if not done.done():
                        done.set_result(count)
                self._work.set()

    def _split_before(self, orgs: set[str]) -> bool:
        """Whether records of ``orgs`` start a segment of their own instead of joining the
        current one: when the current segment waits for an earlier segment of one of its orgs
        to drain (so it cannot start) and ``orgs`` have nothing to wait for, a new segment lets
        their rows drain now instead of behind another org's slow drain."""
        current = self.wal.current
        if current is None or self.parallel == 1 or orgs & self.seg_orgs.get(current, set()):
            return False
        sealed = list(self.wal.sealed)
        if self._startable(current, sealed):
            return False  # it can start as soon as a drain is free: no one waits behind it
        for seq in sealed:
            if seq in self._readable:
                continue
            theirs = self.seg_orgs.get(seq)
            if theirs is None or orgs & theirs:
                return False  # these orgs wait for an earlier segment anyway
        return True

    def _write(self, records: list[bytes], *, split: bool) -> int:
        """On the WAL's thread: end the current segment first (``split``), then append."""
        if split:
            self.wal.seal()
        return self.wal.append(records)

    def target(self, org: str | None) -> int | None:
        """The segment a read of ``org`` (any org: None) must see drained, or None when
        everything it needs is in the engine already."""
        # Segments left by the last run hold rows of orgs unknown until read: every read waits
        # for them.
        seq = self.acked_seq if org is None else max(self.org_seq.get(org, 0), self.replayed)
        return seq if seq >= self.drained_below else None

    async def wait_drained(
        self, target: int, wait: float, *, readable: bool = False, org: str | None = None
    ) -> bool:
        """Wait until segment ``target`` is drained (in the engine, its usage recorded and the
        segment deleted), or only in the engine (``readable``); False after ``wait`` seconds.
        ``org`` (with ``readable``): the segment ``org``'s rows are last in, once readable, is
        enough whatever other orgs' earlier segments still drain (an org's segments drain in
        order), with every segment of an earlier run."""

        def done() -> bool:
            if not readable:
                return self.drained_below > target
            if self.readable_below > target:
                return True
            last = self.org_seq.get(org) if org is not None else None
            return last == target and last in self._readable and self.readable_below > self.replayed

        if done() or not self._drainer.running or self.drain_failing:
            # While the engine refuses drains a read would wait for nothing: it goes ahead (and
            # meets the same outage: 503 unavailable) instead of holding the caller.
            return done()
        self._work.set()

        try:
            async with self._drained:
                await asyncio.wait_for(self._drained.wait_for(done), wait)
        except TimeoutError:
            return False
        return True

    async def _drain_loop(self) -> None:
        """Start the drain of each sealed segment once it may (:meth:`_startable`) and a drain
        is free, and seal the current segment once it could start at once."""
        try:
            while True:
                # A copy: the accountant's thread removes retired segments from the list.
                sealed = list(self.wal.sealed)
                waiting = [s for s in sealed if s not in self._readable and s not in self._running]
                started = False
                for seq in waiting:
                    if len(self._running) >= self.parallel:
                        break
                    if self._startable(seq, sealed):
                        self._running[seq] = asyncio.create_task(
                            self._drain(seq), name=f"emban-ingest-drain-{self.name}-{seq}"
                        )
                        started = True
                if started:
                    continue
                # The current segment is sealed once it could start at once: while it holds rows
                # of an org whose earlier segment still drains, it gathers that org's next rows.
                current = self.wal.current
                free = len(self._running) < self.parallel
                if free and current is not None and self._startable(current, sealed):
                    async with self._io:
                        await asyncio.to_thread(self.wal.seal)
                    continue
                await self._work.wait()
                self._work.clear()
        finally:
            running, self._running = list(self._running.values()), {}
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _startable(self, seq: int, sealed: list[int]) -> bool:
        """No earlier segment still to drain shares an org with ``seq`` (a segment left by an
        earlier run shares every org: its orgs are unknown until it is read)."""
        orgs = self.seg_orgs.get(seq)
        for earlier in sealed:
            if earlier >= seq:
                return True
            if earlier in self._readable:
                continue
            theirs = self.seg_orgs.get(earlier)
            if orgs is None or theirs is None or orgs & theirs:
                return False
        return True

    async def _drain(self, seq: int) -> None:
        """Drain segment ``seq`` (retrying while the engine refuses), then let its readers go."""
        while True:
            try:
                stored = await self._drain_segment(seq)
                break
            except Exception as exc:
                self.drain_failing = True
                if self.owner.metrics is not None:
                    self.owner.metrics.ingest_flush_failed.inc()
                # An outage is logged once by the store (dependencies.py); acknowledged rows
                # stay in the WAL and are drained when the engine is back.
                if not isinstance(exc, Unavailable):
                    log.exception("draining ingest WAL segment %d failed; retrying", seq)
                await asyncio.sleep(RETRY_DRAIN)
        self.drain_failing = False
        # Readers go ahead as soon as the rows are in the engine, and the drainer goes on to the
        # next segment: recording usage (a metadata write, which may queue behind other orgs'
        # writes) and deleting the segment (an unlink and a directory fsync) are the
        # accountant's, in order, on neither's way.
        self._running.pop(seq, None)
        self._readable.add(seq)
        self._finished[seq] = stored
        sealed = list(self.wal.sealed)
        for s in sealed:  # hand on, in order, every drained segment up to the first undrained
            if s <= self._handed:
                continue
            if s not in self._finished:
                break
            self._handed = s
            self._to_account.put_nowait((s, self._finished.pop(s)))
        async with self._drained:
            first = next((s for s in sealed if s not in self._readable), None)
            if first is None:  # every sealed segment is readable
                first = self.wal.current if self.wal.current is not None else self.wal.next_seq
            self.readable_below = first
            self._drained.notify_all()
        self._work.set()

    async def _account_loop(self) -> None:
        """Per drained segment, in order: its usage, its rows no longer undrained, its file
        deleted (and the next one made, off the ack path); then accounting waiters go ahead."""
        while True:
            seq, stored = await self._to_account.get()
            try:
                await self._account(seq, stored)
            except Exception:
                # The rows are in the engine: a segment whose file could not be deleted is
                # found stored when it is replayed on the next start. Never drained again here.
                log.exception("accounting for drained ingest WAL segment %d failed", seq)
                if seq in self.wal.sealed:
                    async with self._io:
                        self.wal.forget(seq)
            async with self._drained:
                self._readable.discard(seq)
                self.seg_orgs.pop(seq, None)
                self.drained_below = self._following(seq)
                self.org_seq = {o: s for o, s in self.org_seq.items() if s >= self.drained_below}
                self._drained.notify_all()
            self._to_account.task_done()

    async def _account(self, seq: int, stored: list[DrainedChunk]) -> None:
        for chunk_stored, records in stored:
            if chunk_stored:
                await self.owner.record_usage(chunk_stored)
            for org, rows in records:
                left = self.undrained.get(org, 0) - rows
                if left > 0:
                    self.undrained[org] = left
                else:  # rows replayed from an earlier run were never counted
                    self.undrained.pop(org, None)
        # Only the bookkeeping and the next segment's file hold the WAL's lock (acks wait for
        # it); the file's deletion and its directory sync run beside them.
        async with self._io:
            path = self.wal.forget(seq)
        await asyncio.to_thread(remove_segment, path)
        async with self._io:
            await asyncio.to_thread(self.wal.prepare_next)

    def _following(self, seq: int) -> int:
        """The first seq after ``seq`` that may still hold undrained rows."""
        later = [s for s in list(self.wal.sealed) if s > seq]
        if later:
            return later[0]
        return self.wal.current if self.wal.current is not None else self.wal.next_seq

    async def _drain_segment(self, seq: int) -> list[DrainedChunk]:
        """Store every chunk of segment ``seq``; per chunk, the new rows per org (for usage)
        and its records' (org, rows), to account for once readers were let through."""
        path = segment_path(self.wal.directory, seq)
        offset, index = 0, 0
        done: list[DrainedChunk] = []
        while True:
            prepared = await self.owner.prepare_chunk(path, offset, self.offload)
            if prepared is None:
                return done
            stored = await self.owner.drain_chunk(
                prepared, path, offset, f"{self.wal.id}-{seq}-{index}", self.offload
            )
            done.append((stored, prepared.records))
            offset = prepared.end
            index += 1


class WalIngestWriter(IngestWriter):
    """Two lanes, each a write-ahead log with its own drainer, so that a bulk backlog never
    stands between another org and the engine: a request of ``BULK_ROWS`` rows or more, and
    every request of an org sending over ``BULK_RATE`` rows a second, goes to the bulk lane;
    the rest to the fast lane. An org with rows still undrained in the bulk lane stays there
    (its reads wait for them anyway). The lanes drain at the same time; two chunks never hold
    rows of the same org at once (the drain lock is per org within a process), so
    de-duplication by event id stays exact. A read waits only for the lanes holding its own
    org's acknowledged rows (:meth:`visible`)."""

    def __init__(
        self,
        store: EventStore,
        wal_dir: Path,
        *,
        backlog_limit: int,
        on_stored: StoredHook | None = None,
        chunk_rows: int = DRAIN_CHUNK_ROWS,
        lock: DrainLock | None = None,
        metrics: Metrics | None = None,
        decode_pool: DecodePool | None = None,
    ) -> None:
        super().__init__(store, on_stored, metrics)
        self.decode_pool = decode_pool
        self.lock: DrainLock = lock if lock is not None else ProcessLock()
        self.backlog_limit = backlog_limit
        self.chunk_rows = chunk_rows
        # The bulk lane keeps the WAL directory of the single-lane writer, so segments written
        # before an upgrade are replayed.
        self.bulk = _Lane(self, "bulk", wal_dir, bulk=True)
        self.fast = _Lane(self, "fast", wal_dir / FAST_LANE_DIR, bulk=False)
        self.lanes = (self.fast, self.bulk)
        self._rates = _RecentRows()
        self._stopping = False
        self.drains = 0

    @property
    def metrics(self) -> Metrics | None:
        return self._metrics

    def start(self) -> None:
        for lane in self.lanes:
            lane.start()

    async def stop(self) -> None:
        """Answer every request already queued, then drain for up to ``STOP_DRAIN`` seconds; the
        rest stays in the WAL and is drained on the next start."""
        self._stopping = True
        for lane in self.lanes:
            await lane.stop_appending()
        if any(lane.draining for lane in self.lanes):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.visible(STOP_DRAIN), STOP_DRAIN + 1)
        for lane in self.lanes:
            await lane.stop_draining()
        await self.lock.close()

    def lane_for(self, org: str, rows: int) -> _Lane:
        """Where a request of ``rows`` rows from ``org`` goes (and counts them in its rate)."""
        rate = self._rates.add(org, rows)
        if self.bulk.undrained.get(org) or rows >= BULK_ROWS or rate >= BULK_RATE:
            return self.bulk
        return self.fast

    async def submit(self, rows: list[EventRow], generated: Sequence[bool] | None = None) -> int:
        """Append rows (one request, of one org and environment) to a lane's WAL and wait until
        they are fsync'd; returns how many rows were accepted. ``generated``: which rows' event
        ids the server made (:func:`frame`)."""
        refuse_inside_transaction("waiting for the ingest WAL")
        if not rows:
            return 0
        org, env = rows[0].org_id, rows[0].environment_id
        if any(r.org_id != org or r.environment_id != env for r in rows):
            raise ValueError("one submit carries the rows of one org and environment")
        lane = self.lane_for(org, len(rows))
        if self._stopping or lane.full():
            raise IngestBacklogFull(lane.wal.backlog_bytes, self.backlog_limit)
        framing = functools.partial(frame, rows, generated)
        record = await in_background(framing) if len(rows) >= OFF_LOOP_ROWS else framing()
        return await lane.append(record, len(rows), org)

    async def submit_record(self, record: bytes, rows: int, org: str) -> int:
        """Append a record framed elsewhere (:func:`frame`: ``rows`` rows of ``org``, one
        environment) and wait until it is fsync'd; returns ``rows``."""
        refuse_inside_transaction("waiting for the ingest WAL")
        lane = self.lane_for(org, rows)
        if self._stopping or lane.full():
            raise IngestBacklogFull(lane.wal.backlog_bytes, self.backlog_limit)
        return await lane.append(record, rows, org)

    def undrained(self, org_id: str) -> int:
        return sum(lane.undrained.get(org_id, 0) for lane in self.lanes)

    async def visible(
        self, wait: float = VISIBLE_WAIT, *, org: str | None = None, readable: bool = False
    ) -> bool:
        """Wait until every row of ``org`` (of every org: None) acknowledged before this call is
        in the engine and counted in its org's usage (True), or ``wait`` seconds passed (False).
        ``readable``: in the engine is enough (reads; the usage is recorded just after)."""
        targets = [(lane, lane.target(org)) for lane in self.lanes]
        waits = [
            lane.wait_drained(t, wait, readable=readable, org=org)
            for lane, t in targets
            if t is not None
        ]
        if not waits:
            return True
        if all(await asyncio.gather(*waits)):
            return True
        log.warning("reading before the ingest drain caught up (%.1f s)", wait)
        return False

    async def prepare_chunk(
        self, path: Path, offset: int, offload: Offload
    ) -> PreparedChunk | None:
        """The chunk of segment ``path`` at ``offset`` ready to store as if none of its ids were
        stored yet (None past the last chunk); a bulk chunk is read and prepared by a worker
        process when the app has them (the per-row work would hold the loop's GIL)."""
        if self.decode_pool is not None and offload is in_background:
            with contextlib.suppress(PoolUnavailable):
                return await self.decode_pool.run(prepare_chunk, path, offset, self.chunk_rows)
        return await offload(prepare_chunk, path, offset, self.chunk_rows)

    async def drain_chunk(
        self, prepared: PreparedChunk, path: Path, offset: int, token: str, offload: Offload
    ) -> dict[str, int]:
        """Store one chunk; its new rows per org, whose usage the caller records."""
        started = time.perf_counter()
        orgs = sorted({org for org, _ in prepared.records})
        async with self.lock.hold(orgs):  # no other drain of these orgs between read and insert
            seen = await self._seen_lines(prepared.scopes, background=offload is in_background)
            fresh = prepared.fresh
            if seen:  # a resend of stored events (rare): the chunk is read again and filtered
                chunk, _ = await offload(read_chunk_at, path, offset, self.chunk_rows)
                fresh = await offload(_fresh_chunk, chunk, seen)
            if fresh.rows:
                # Events first, then their ids: a crash between the two replays this chunk,
                # finds none of its ids, and the engine drops the events INSERT (same token).
                await self._store.insert_json(
                    EVENTS, EVENT_COLUMNS, fresh.payload, COMPACT, token=token
                )
            if fresh.ids_payload:
                await self._store.insert_json(
                    EVENT_IDS,
                    ["org_id", "environment_id", "event_id"],
                    fresh.ids_payload,
                    COMPACT,
                    token=token,
                )
        self.drains += 1
        total = sum(rows for _, rows in prepared.records)
        self.queued_rows = max(0, self.queued_rows - total)
        if self._metrics is not None:
            self._metrics.ingest_flush_ok.inc()
            self._metrics.ingest_stored.inc(fresh.rows)
            self._metrics.ingest_duplicate.inc(total - fresh.rows)
            self._metrics.ingest_flush_duration.observe(time.perf_counter() - started)
        log.debug(
            "drained %d rows (%d new) in %.1f ms",
            total,
            fresh.rows,
            (time.perf_counter() - started) * 1000,
        )
        if fresh.touched:
            touched = Touched(fresh.touched, fresh.stored)
            for listener in self.listeners:
                try:
                    await listener(touched)
                except Exception:
                    log.exception("flush listener failed")
        return fresh.stored if fresh.rows else {}

    async def record_usage(self, stored: dict[str, int]) -> None:
        """Add a drained chunk's new rows to each org's usage (the ``on_stored`` hook)."""
        if self._on_stored is not None:
            await self._record(stored)


@dataclass(frozen=True)
class PreparedChunk:
    """A chunk of whole records, ready to store: where the next chunk starts, each record's org
    and row count, its ids per (org, environment) as JSON lines, and its rows as if none were
    stored yet (duplicates inside the chunk dropped)."""

    end: int
    records: list[tuple[str, int]]
    scopes: dict[tuple[str, str], str]
    fresh: _FreshChunk


def prepare_chunk(path: Path, offset: int, chunk_rows: int) -> PreparedChunk | None:
    """The chunk of segment ``path`` at ``offset`` (:func:`read_chunk_at`), prepared; None past
    the last one. Runs on a thread or in a worker process."""
    chunk, end = read_chunk_at(path, offset, chunk_rows)
    if not chunk:
        return None
    return PreparedChunk(
        end=end,
        records=[(org, len(rows)) for org, _, rows in chunk],
        scopes=_chunk_scopes(chunk),
        fresh=_fresh_chunk(chunk, set()),
    )


def _chunk_scopes(chunk: list[RecordRows]) -> dict[tuple[str, str], str]:
    """Per (org, environment), the chunk's event ids as the JSON lines :meth:`_seen_lines`
    binds (built off the loop with the rest of a big chunk's work)."""
    by_scope: dict[tuple[str, str], set[str]] = {}
    for org, env, rows in chunk:
        by_scope.setdefault((org, env), set()).update(r[2] for r in rows if r[2])
    return {scope: json_lines(sorted(ids)) for scope, ids in by_scope.items() if ids}


class _FreshChunk(msgspec.Struct):
    rows: int
    payload: bytes
    ids_payload: bytes
    touched: frozenset[tuple[str, str, str, str]]
    stored: dict[str, int]


def _fresh_chunk(chunk: list[RecordRows], seen: set[tuple[str, str, str]]) -> _FreshChunk:
    seen = set(seen)
    lines: list[bytes] = []
    ids: list[bytes] = []
    touched: set[tuple[str, str, str, str]] = set()
    stored: dict[str, int] = {}
    for org, env, rows in chunk:
        for tenant, name, event_id, line in rows:
            if event_id:  # a client's id: once (an id generated here is recorded as "")
                key = (org, env, event_id)
                if key in seen:
                    continue
                seen.add(key)
                ids.append(_encode(key))
            lines.append(line)
            touched.add((org, env, tenant, name))
            stored[org] = stored.get(org, 0) + 1
    return _FreshChunk(
        rows=len(lines),
        payload=b"\n".join(lines),
        ids_payload=b"\n".join(ids),
        touched=frozenset(touched),
        stored=stored,
    )
