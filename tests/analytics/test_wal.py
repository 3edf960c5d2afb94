"""The ingest write-ahead log: whole records only after a torn tail or damage, and a replay after
a crash stores every acknowledged event exactly once (events and rollups), on the real chDB."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emban.analytics import wal_ingest
from emban.analytics.drain_lock import PostgresLock, lock_key
from emban.analytics.ingest import COMPACT, EVENT_COLUMNS, EventRow
from emban.analytics.store import EventStore, QueryResult
from emban.analytics.wal import (
    HEADER,
    WalLocked,
    WriteAheadLog,
    encode_record,
    read_chunks,
    read_records,
    segment_path,
)
from emban.analytics.wal_ingest import (
    BULK_RATE,
    BULK_ROWS,
    IngestBacklogFull,
    PreparedChunk,
    WalIngestWriter,
    frame,
)
from emban.runtime import Runtime


def record_rows(n: int, size: int) -> list[tuple[str, str, str, bytes]]:
    return [("t", "x", f"r{n}-{i}", f'["line {n} {i}"]'.encode()) for i in range(size)]


def write_segment(directory: Path, sizes: list[int]) -> tuple[Path, list[int]]:
    """A sealed segment of records of ``sizes`` rows; returns its path and each record's end."""
    wal = WriteAheadLog(directory)
    ends = []
    end = 0
    for n, size in enumerate(sizes):
        data = encode_record("org", "env", record_rows(n, size))
        seq = wal.append([data])
        end += len(data)
        ends.append(end)
    wal.close()
    return segment_path(directory, seq), ends


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sizes=st.lists(st.integers(0, 30), min_size=1, max_size=8), data=st.data())
def test_a_torn_tail_keeps_the_whole_records_before_it(
    tmp_path: Path, sizes: list[int], data: st.DataObject
) -> None:
    directory = tmp_path / uuid.uuid4().hex
    path, ends = write_segment(directory, sizes)
    cut = data.draw(st.integers(0, ends[-1]), label="cut")
    with path.open("r+b") as file:
        file.truncate(cut)
    whole = sum(1 for end in ends if end <= cut)
    expected = [("org", "env", record_rows(n, sizes[n])) for n in range(whole)]
    assert list(read_records(path)) == expected


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sizes=st.lists(st.integers(1, 20), min_size=1, max_size=6), data=st.data())
def test_a_damaged_record_ends_the_segment(
    tmp_path: Path, sizes: list[int], data: st.DataObject
) -> None:
    directory = tmp_path / uuid.uuid4().hex
    path, ends = write_segment(directory, sizes)
    damaged = data.draw(st.integers(0, len(sizes) - 1), label="record")
    start = ends[damaged - 1] if damaged else 0
    position = data.draw(st.integers(start + HEADER.size, ends[damaged] - 1), label="byte")
    raw = bytearray(path.read_bytes())
    raw[position] ^= 0x5A
    path.write_bytes(bytes(raw))
    expected = [("org", "env", record_rows(n, sizes[n])) for n in range(damaged)]
    assert list(read_records(path)) == expected


def test_chunks_are_whole_records_cut_by_content_only(tmp_path: Path) -> None:
    path, _ = write_segment(tmp_path / "wal", [3, 4, 2, 5, 1])
    cuts = [[len(r[2]) for r in chunk] for chunk in read_chunks(path, 6)]
    assert cuts == [[3, 4], [2, 5], [1]]
    assert [[len(r[2]) for r in c] for c in read_chunks(path, 6)] == cuts


def test_one_process_owns_a_wal_directory(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    with pytest.raises(WalLocked):
        WriteAheadLog(tmp_path / "wal")
    wal.close()
    WriteAheadLog(tmp_path / "wal").close()


def test_segments_left_on_disk_are_drained_in_order_after_a_restart(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    first = wal.append([encode_record("o", "e", record_rows(0, 1))])
    wal.seal()
    second = wal.append([encode_record("o", "e", record_rows(1, 1))])
    wal.close()  # a crash leaves the current segment unsealed: it is replayed as well
    again = WriteAheadLog(tmp_path / "wal")
    assert (again.sealed, again.current, again.next_seq) == ([first, second], None, second + 1)
    assert again.backlog_bytes == sum(
        segment_path(tmp_path / "wal", s).stat().st_size for s in (first, second)
    )
    again.close()


def test_the_next_segment_file_is_made_when_a_segment_is_retired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retiring a drained segment creates the next one's file (and syncs the directory), so the
    append that starts it, on an ack's path, creates no file; an unused one is removed on close,
    and one left by a crash is an empty segment, replayed as nothing."""
    directory = tmp_path / "wal"
    wal = WriteAheadLog(directory)
    first = wal.append([encode_record("o", "e", record_rows(0, 1))])
    wal.seal()
    wal.retire(first)
    spare = segment_path(directory, first + 1)
    assert (spare.stat().st_size, wal.sealed, wal.current, wal.next_seq) == (0, [], None, first + 1)
    wal.prepare_next()  # a spare is ready: no second one
    assert sorted(p.name for p in directory.glob("*.wal")) == [spare.name]
    synced: list[Path] = []
    monkeypatch.setattr("emban.analytics.wal._fsync_dir", synced.append)
    record = encode_record("o", "e", record_rows(1, 1))
    assert wal.append([record]) == first + 1
    assert synced == []  # the append synced its data only: the entry was durable already
    assert (wal.current, wal.next_seq, spare.stat().st_size) == (first + 1, first + 2, len(record))
    monkeypatch.undo()
    wal.seal()
    wal.retire(first + 1)
    wal.close()  # the unused spare goes with the process
    assert list(directory.glob("*.wal")) == []
    # A crash leaves the spare behind: an empty segment, which reads as no records.
    crashed = WriteAheadLog(directory)
    crashed.prepare_next()
    left = segment_path(directory, crashed.next_seq)
    assert crashed._spare is not None
    crashed._spare[1].close()
    crashed._spare = None  # as if the process died holding it
    crashed.close()
    again = WriteAheadLog(directory)
    assert again.sealed == [int(left.name.removesuffix(".wal"))]
    assert list(read_records(left)) == []
    again.close()


# --- on the real engine ---------------------------------------------------------------------------


def rows(org: str, count: int, start: int = 0) -> list[EventRow]:
    return [
        EventRow(
            org, "env", "tenant", "api.call", "2026-11-01 10:00:00.000", f"id-{n}", f"u{n}",
            {"model": "m"}, {"tokens": 1.0},
        )
        for n in range(start, start + count)
    ]  # fmt: skip


class EngineProbe:
    """The engine, passed through, with hooks around each INSERT (subclasses crash, hold, delay
    or record there)."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner

    async def query(
        self, sql: str, params: dict[str, Any] | None = None, *, background: bool = False
    ) -> QueryResult:
        return await self.inner.query(sql, params, background=background)

    async def insert_json(
        self,
        table: str,
        columns: list[str],
        payload: bytes,
        fmt: str = "JSONEachRow",
        *,
        token: str | None = None,
    ) -> None:
        async def insert() -> None:
            await self.inner.insert_json(table, columns, payload, fmt, token=token)

        await self.around_insert(table, payload, token, insert)

    async def around_insert(
        self, table: str, payload: bytes, token: str | None, insert: Callable[[], Awaitable[None]]
    ) -> None:
        """Runs each INSERT (``insert()``); by default after :meth:`before_insert`."""
        await self.before_insert(table, token)
        await insert()

    async def before_insert(self, table: str, token: str | None) -> None:
        pass


class CrashingStore(EngineProbe):
    """The engine, except that the INSERT into ``crash_on`` raises (a crash at that point)."""

    def __init__(self, inner: EventStore, crash_on: str | None) -> None:
        super().__init__(inner)
        self.crash_on = crash_on

    async def before_insert(self, table: str, token: str | None) -> None:
        if table == self.crash_on:
            raise RuntimeError(f"crash before the {table} INSERT")


async def counts(runtime: Runtime, org: str) -> dict[str, int]:
    out = {}
    for table, measure in (
        ("events", "count()"),
        ("event_ids", "count()"),
        ("events_hourly_rollup", "sum(events)"),
        ("events_daily_rollup", "sum(events)"),
        ("events_hourly_dim_rollup", "sum(events)"),
        ("events_daily_dim_rollup", "sum(events)"),
    ):
        result = await runtime.events.query(
            f"SELECT {measure} FROM {table} WHERE org_id = {{org:String}}",  # noqa: S608
            {"org": org},
        )
        out[table] = int(result.rows[0][0])
    return out


def exactly(n: int) -> dict[str, int]:
    """Every table holding n events once (5 dimensions per event in the dimension rollups)."""
    return {
        "events": n,
        "event_ids": n,
        "events_hourly_rollup": n,
        "events_daily_rollup": n,
        "events_hourly_dim_rollup": 5 * n,
        "events_daily_dim_rollup": 5 * n,
    }


@pytest.mark.parametrize("crash_on", ["event_ids", None])
async def test_a_replay_after_a_crash_stores_each_event_once(
    runtime: Runtime, tmp_path: Path, crash_on: str | None
) -> None:
    """A crash after the events INSERT and before the ids INSERT (crash_on=event_ids), or after
    both and before the segment is deleted (None): the restarted writer replays the segment and
    every table holds each event once, the rollups included."""
    org = f"wal-{uuid.uuid4().hex[:10]}"
    engine: EventStore = runtime.ingest._store  # the engine under the app's read barrier
    before = WalIngestWriter(
        CrashingStore(engine, crash_on),  # type: ignore[arg-type]
        tmp_path / "wal",
        backlog_limit=1 << 30,
        chunk_rows=250,
    )
    # Acked through the WAL (appender only; this process "crashes" before draining normally).
    # Six small requests of one org at a modest rate: all in the fast lane.
    lane = before.fast
    answers = await asyncio.gather(*(before.submit(rows(org, 100, 100 * i)) for i in range(6)))
    assert answers == [100] * 6
    await lane.stop_appending()
    assert before.bulk.wal.current is None and before.bulk.wal.sealed == []
    lane.wal.seal()
    (seq,) = lane.wal.sealed
    if crash_on is None:
        await lane._drain_segment(seq)  # every chunk stored; the crash comes before delete
    else:
        with pytest.raises(RuntimeError, match="crash before the event_ids INSERT"):
            await lane._drain_segment(seq)
    assert (await counts(runtime, org))["events"] == (600 if crash_on is None else 300)
    for each in before.lanes:
        each.wal.close()

    after = WalIngestWriter(engine, tmp_path / "wal", backlog_limit=1 << 30, chunk_rows=250)
    after.start()
    assert await after.visible() is True
    assert [(lane.wal.sealed, lane.wal.backlog_bytes) for lane in after.lanes] == [([], 0)] * 2
    assert await counts(runtime, org) == exactly(600)
    await after.stop()


class HeldStore(EngineProbe):
    """The engine, with every events INSERT whose token starts with ``prefix`` (a lane's WAL id)
    held until ``release`` is set."""

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self.prefix = "?"
        self.release = asyncio.Event()
        self.held = asyncio.Event()

    async def before_insert(self, table: str, token: str | None) -> None:
        if table == "events" and (token or "").startswith(self.prefix):
            self.held.set()
            await self.release.wait()


class HeldUsage:
    """A writer's usage hook that holds every usage write until ``release``; ``recording`` is set
    once one is waiting, ``recorded`` lists what was written."""

    def __init__(self) -> None:
        self.recording, self.release = asyncio.Event(), asyncio.Event()
        self.recorded: list[dict[str, int]] = []

    async def on_stored(self, stored: dict[str, int]) -> None:
        self.recording.set()
        await self.release.wait()
        self.recorded.append(stored)

    def writer(self, runtime: Runtime, tmp_path: Path) -> WalIngestWriter:
        """A started writer on the suite's engine, with this hook."""
        writer = WalIngestWriter(
            runtime.ingest._store,  # type: ignore[attr-defined]
            tmp_path / "wal",
            backlog_limit=1 << 30,
            on_stored=self.on_stored,
        )
        writer.start()
        return writer


async def test_readers_go_ahead_before_the_usage_is_recorded(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Once a segment's rows are in the engine, a read (``readable``) goes ahead while the usage
    write (a metadata write that may queue behind other orgs' writes) and the segment's deletion
    still run; the plan's cap and ``/v1/usage`` (``visible()``) wait for the usage too."""
    org = f"wal-{uuid.uuid4().hex[:10]}"
    usage = HeldUsage()
    writer = usage.writer(runtime, tmp_path)
    recording, release, recorded = usage.recording, usage.release, usage.recorded
    assert await writer.submit(rows(org, 3)) == 3
    await asyncio.wait_for(recording.wait(), 10)  # the usage write is held
    assert await writer.visible(5, org=org, readable=True) is True
    assert (await counts(runtime, org))["events"] == 3  # a read sees the rows
    assert await writer.visible(0.2, org=org) is False  # the usage is not recorded yet
    assert writer.undrained(org) == 3  # so the cap check still counts the rows
    assert writer.fast.wal.sealed  # nor is the segment deleted
    release.set()
    assert await writer.visible(5, org=org) is True
    assert recorded == [{org: 3}]
    assert writer.undrained(org) == 0
    assert writer.fast.wal.sealed == []
    await writer.stop()


async def test_the_next_segment_drains_while_a_usage_write_is_held(
    runtime: Runtime, tmp_path: Path
) -> None:
    """The drainer goes on to the next segment as soon as a segment's rows are readable: while
    the first segment's usage write is held, a later ack's rows reach the engine and a read sees
    them; the accounting (usage, undrained rows, the segment files) then follows in order."""
    org = f"wal-{uuid.uuid4().hex[:10]}"
    usage = HeldUsage()
    writer = usage.writer(runtime, tmp_path)
    recording, release, recorded = usage.recording, usage.release, usage.recorded
    assert await writer.submit(rows(org, 3)) == 3
    await asyncio.wait_for(recording.wait(), 10)  # the first segment's usage write is held
    assert await writer.submit(rows(org, 4, 3)) == 4  # a later segment
    assert await writer.visible(5, org=org, readable=True) is True
    assert (await counts(runtime, org))["events"] == 7
    assert recorded == []
    assert writer.undrained(org) == 7  # the cap check still counts every row
    assert len(writer.fast.wal.sealed) == 2  # neither segment is deleted yet
    assert await writer.visible(0.2, org=org) is False
    release.set()
    assert await writer.visible(5, org=org) is True
    assert recorded == [{org: 3}, {org: 4}]  # in order, once each
    assert writer.undrained(org) == 0
    assert writer.fast.wal.sealed == []
    await writer.stop()


async def test_an_ack_never_waits_for_a_drained_segments_deletion(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting a drained segment's file (an unlink and a directory sync, slow on a busy disk)
    holds no ack: only the bookkeeping and the next segment's file take the WAL's lock."""
    org = f"wal-{uuid.uuid4().hex[:10]}"
    removing, release = threading.Event(), threading.Event()
    real_remove = wal_ingest.remove_segment

    def held_remove(path: Path) -> None:
        removing.set()
        release.wait(10)
        real_remove(path)

    monkeypatch.setattr(wal_ingest, "remove_segment", held_remove)
    writer = WalIngestWriter(
        runtime.ingest._store,  # type: ignore[attr-defined]
        tmp_path / "wal",
        backlog_limit=1 << 30,
    )
    writer.start()
    try:
        assert await writer.submit(rows(org, 2)) == 2
        assert await asyncio.to_thread(removing.wait, 10)  # the first segment's deletion is held
        assert await asyncio.wait_for(writer.submit(rows(org, 3, 2)), 2) == 3
        assert await writer.visible(5, org=org, readable=True) is True
        assert (await counts(runtime, org))["events"] == 5
    finally:
        release.set()
    assert await writer.visible(5, org=org) is True
    assert writer.fast.wal.sealed == []
    assert sorted((tmp_path / "wal" / "fast").glob("*.wal")) == [
        segment_path(tmp_path / "wal" / "fast", writer.fast.wal.next_seq)  # made ahead
    ]
    await writer.stop()


class CountInserts(EngineProbe):
    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self.tokens: list[str] = []

    async def before_insert(self, table: str, token: str | None) -> None:
        if table == "events":
            self.tokens.append(token or "")


@pytest.mark.parametrize("failing", ["usage", "deletion"])
async def test_a_segment_whose_accounting_fails_is_not_drained_again(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """A failure while accounting for a drained segment (its usage, its file's deletion) is
    logged; the segment's rows are stored once, it is never drained again in this run (its file
    is replayed, and found stored, on the next start), and the lane goes on."""
    org = f"wal-{uuid.uuid4().hex[:10]}"
    real_remove = wal_ingest.remove_segment
    failures: list[str] = []

    def failing_once(path: Path) -> None:
        if failing == "deletion" and not failures:
            failures.append(str(path))
            raise OSError("disk says no")
        real_remove(path)

    monkeypatch.setattr(wal_ingest, "remove_segment", failing_once)
    engine = CountInserts(runtime.ingest._store)  # type: ignore[attr-defined]
    recorded: list[dict[str, int]] = []

    async def on_stored(stored: dict[str, int]) -> None:
        recorded.append(stored)

    writer = WalIngestWriter(engine, tmp_path / "wal", backlog_limit=1 << 30, on_stored=on_stored)
    real_usage = writer.record_usage

    async def usage_failing_once(stored: dict[str, int]) -> None:
        if failing == "usage" and not failures:
            failures.append("usage")
            raise RuntimeError("usage says no")
        await real_usage(stored)

    monkeypatch.setattr(writer, "record_usage", usage_failing_once)
    writer.start()
    assert await writer.submit(rows(org, 2)) == 2
    assert await writer.visible(5, org=org) is True
    assert failures
    assert await writer.submit(rows(org, 3, 2)) == 3
    assert await writer.visible(5, org=org) is True
    await asyncio.sleep(0.2)  # time for a wrong second drain of the first segment
    assert len(engine.tokens) == len(set(engine.tokens)) == 2
    assert recorded == ([{org: 2}] if failing == "deletion" else []) + [{org: 3}]
    assert (await counts(runtime, org))["events"] == 5
    assert writer.fast.wal.sealed == []
    # The first segment's file is left for the next start (a replay finds it stored).
    assert len(list((tmp_path / "wal" / "fast").glob("*.wal"))) == 2
    await writer.stop()


class HoldOrg(EngineProbe):
    """The engine, except that an events INSERT holding rows of ``org`` waits for ``release``;
    records each events INSERT's org (held or not) and token, as it starts and as it ends."""

    def __init__(self, inner: EventStore, org: str) -> None:
        super().__init__(inner)
        self.org = org
        self.release = asyncio.Event()
        self.log: list[tuple[str, str, str]] = []

    async def around_insert(
        self, table: str, payload: bytes, token: str | None, insert: Callable[[], Awaitable[None]]
    ) -> None:
        held = self.org.encode() in payload
        who = self.org if held else "other"
        if table == "events":
            self.log.append(("start", who, token or ""))
            if held:
                await self.release.wait()
        await insert()
        if table == "events":
            self.log.append(("end", who, token or ""))


async def test_one_orgs_drain_in_the_engine_holds_no_other_org_in_its_lane(
    runtime: Runtime, tmp_path: Path
) -> None:
    """The fast lane drains segments of different orgs at once: while org A's drain is held in
    the engine, org B's later events reach the engine and B's reads go ahead; A's own later
    events wait for A's earlier ones (an org's rows are stored in the order acknowledged), and
    the accounting (usage, segment files) still follows the segments' order."""
    org_a, org_b = (f"wal-{uuid.uuid4().hex[:10]}" for _ in range(2))
    recorded: list[dict[str, int]] = []

    async def on_stored(stored: dict[str, int]) -> None:
        recorded.append(stored)

    engine = HoldOrg(runtime.ingest._store, org_a)  # type: ignore[attr-defined]
    writer = WalIngestWriter(engine, tmp_path / "wal", backlog_limit=1 << 30, on_stored=on_stored)
    writer.start()
    assert await writer.submit(rows(org_a, 3)) == 3
    while not engine.log:  # noqa: ASYNC110 (the drain's INSERT starts on its own)
        await asyncio.sleep(0.01)
    assert engine.log[0][:2] == ("start", org_a)  # A's first drain is held in the engine
    assert await writer.submit(rows(org_b, 2)) == 2
    assert await writer.visible(5, org=org_b, readable=True) is True
    assert (await counts(runtime, org_b))["events"] == 2
    assert await writer.submit(rows(org_b, 1, 2)) == 1
    assert await writer.visible(5, org=org_b, readable=True) is True
    assert (await counts(runtime, org_b))["events"] == 3
    assert await writer.submit(rows(org_a, 4, 3)) == 4  # A's next rows wait for its first
    # B's next rows start a segment of their own rather than wait in A's.
    assert await writer.submit(rows(org_b, 1, 3)) == 1
    assert await writer.visible(5, org=org_b, readable=True) is True
    assert (await counts(runtime, org_b))["events"] == 4
    assert await writer.visible(0.3, org=org_a, readable=True) is False
    assert (await counts(runtime, org_a))["events"] == 0
    assert [who for step, who, _ in engine.log if step == "start"].count(org_a) == 1
    assert recorded == []  # usage goes in the segments' order: A's first is not drained
    assert writer.undrained(org_b) == 4
    engine.release.set()
    assert await writer.visible(5, org=org_a) is True
    assert await writer.visible(5, org=org_b) is True
    assert (await counts(runtime, org_a))["events"] == 7
    a_steps = [(step, token) for step, who, token in engine.log if who == org_a]
    assert [step for step, _ in a_steps] == ["start", "end", "start", "end"]  # one at a time
    assert a_steps[0][1] != a_steps[2][1]  # two segments, in the order acknowledged
    # The segments' order: A's second segment was written before B's last.
    assert recorded == [{org_a: 3}, {org_b: 2}, {org_b: 1}, {org_a: 4}, {org_b: 1}]
    assert writer.undrained(org_a) == 0
    assert writer.undrained(org_b) == 0
    assert writer.fast.wal.sealed == []
    await writer.stop()


class SlowEngine(EngineProbe):
    """The engine with a random delay before each events INSERT; records, per org, the event ids
    in the order they were inserted, and the most INSERTs of one org ever in flight at once."""

    def __init__(self, inner: EventStore, rng: random.Random) -> None:
        super().__init__(inner)
        self.rng = rng
        self.inserted: dict[str, list[str]] = {}
        self.in_flight: dict[str, int] = {}
        self.most_at_once = 0

    async def around_insert(
        self, table: str, payload: bytes, token: str | None, insert: Callable[[], Awaitable[None]]
    ) -> None:
        if table != "events":
            await insert()
            return
        lines = [msgspec.json.decode(line) for line in payload.splitlines() if line]
        orgs = {line[0] for line in lines}
        for org in orgs:
            self.in_flight[org] = self.in_flight.get(org, 0) + 1
            self.most_at_once = max(self.most_at_once, self.in_flight[org])
        try:
            await asyncio.sleep(self.rng.choice((0, 0, 0.005, 0.02, 0.05)))
            await insert()
        finally:
            for org in orgs:
                self.in_flight[org] -= 1
        for line in lines:
            self.inserted.setdefault(line[0], []).append(line[5])


class JitteryWriter(WalIngestWriter):
    """A writer whose chunks take a random while to prepare (as when the worker threads are
    busy), so drains started in order may reach the engine in any order."""

    rng = random.Random(0)  # noqa: S311 - reproducible timing, not secrets

    async def prepare_chunk(self, path: Path, offset: int, offload: Any) -> PreparedChunk | None:
        await asyncio.sleep(self.rng.choice((0, 0, 0.003, 0.03)))
        return await super().prepare_chunk(path, offset, offload)


async def test_the_lanes_store_each_orgs_rows_once_and_in_order_whatever_the_timing(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Random rounds of three orgs' small ingests (the fast lane, drained two segments at a
    time), every other round with bulk ones too, under random engine delays: every row is stored
    once, each org's rows in the order they were acknowledged within a lane, never two INSERTs
    of one org at once, the usage is each org's rows, and the WAL is empty at the end."""
    rng = random.Random(8)  # noqa: S311 - reproducible timing, not secrets
    for round_ in range(10):
        orgs = [f"wal-{round_}-{uuid.uuid4().hex[:8]}" for _ in range(3)]
        with_bulk = round_ % 2 == 1  # the lanes drain at once: no order between them
        recorded: dict[str, int] = {}

        async def on_stored(stored: dict[str, int], into: dict[str, int] = recorded) -> None:
            for org, n in stored.items():
                into[org] = into.get(org, 0) + n

        engine = SlowEngine(runtime.ingest._store, rng)  # type: ignore[attr-defined]
        writer = JitteryWriter(
            engine, tmp_path / f"wal-{round_}", backlog_limit=1 << 30, on_stored=on_stored
        )
        writer.start()
        sent = dict.fromkeys(orgs, 0)
        pending = []
        for _ in range(14):
            org = rng.choice(orgs)
            size = rng.choice((1, 1, 2, 3, BULK_ROWS) if with_bulk else (1, 1, 2, 3))
            pending.append(asyncio.create_task(writer.submit(rows(org, size, sent[org]))))
            sent[org] += size
            await asyncio.sleep(rng.choice((0, 0.002, 0.01, 0.03)))
            await asyncio.gather(*pending)  # acknowledged in the order sent
            pending.clear()
        assert await writer.visible(30) is True
        for org in orgs:
            expected = [f"id-{n}" for n in range(sent[org])]
            inserted = engine.inserted.get(org, [])
            if with_bulk:
                assert sorted(inserted) == sorted(expected)
            else:
                assert inserted == expected
            assert (await counts(runtime, org))["events"] == sent[org]
            assert writer.undrained(org) == 0
        assert engine.most_at_once == 1
        assert recorded == {org: n for org, n in sent.items() if n}
        assert writer.fast.wal.sealed == []
        assert writer.bulk.wal.sealed == []
        await writer.stop()


async def test_a_burst_held_in_the_engine_delays_no_other_org(
    runtime: Runtime, tmp_path: Path
) -> None:
    """While one org's burst is held in the engine (its drain stuck in the bulk lane), another
    org's event is acknowledged and drained, and a read of that org does not wait for the burst;
    once the bulk lane's undrained bytes reach the bound, the burst is refused until the drain
    catches up, while the other org is still accepted."""
    burst, small = f"wal-{uuid.uuid4().hex[:10]}", f"wal-{uuid.uuid4().hex[:10]}"
    store = HeldStore(runtime.ingest._store)
    bound = len(frame(rows(burst, 10_000)))
    writer = WalIngestWriter(store, tmp_path / "wal", backlog_limit=bound)  # type: ignore[arg-type]
    store.prefix = writer.bulk.wal.id
    writer.start()
    assert await writer.submit(rows(burst, 10_000)) == 10_000
    await store.held.wait()  # the burst's drain is in the engine, held
    assert await writer.submit(rows(small, 1)) == 1
    assert await writer.visible(5, org=small) is True  # drained past the held burst
    assert (await counts(runtime, small))["events"] == 1
    assert writer.bulk.wal.backlog_bytes == bound
    with pytest.raises(IngestBacklogFull) as refused:
        await writer.submit(rows(burst, 1, start=10_000))  # the burst org stays in its lane
    assert (refused.value.backlog, refused.value.limit) == (bound, bound)
    assert await writer.submit(rows(small, 1, start=1)) == 1  # its own lane has room
    assert await writer.visible(0.2, org=burst) is False  # the burst is not drained yet
    assert await writer.visible(0.2) is False  # nor is "every org"
    store.release.set()
    assert await writer.visible() is True
    assert writer.bulk.wal.backlog_bytes == 0
    assert await writer.submit(rows(burst, 1, start=10_000)) == 1
    assert await writer.visible() is True
    assert (await counts(runtime, burst))["events"] == 10_001
    assert (await counts(runtime, small))["events"] == 2
    await writer.stop()


async def test_requests_are_routed_to_the_bulk_lane_by_size_rate_and_backlog(
    tmp_path: Path,
) -> None:
    writer = WalIngestWriter(EngineProbe(None), tmp_path / "wal", backlog_limit=1 << 30)  # type: ignore[arg-type]
    assert writer.lane_for("a", BULK_ROWS - 1) is writer.fast
    assert writer.lane_for("b", BULK_ROWS) is writer.bulk  # size
    assert writer.lane_for("b", 1) is writer.fast  # b has nothing undrained in the bulk lane
    for _ in range(BULK_RATE // (BULK_ROWS - 1)):
        writer.lane_for("c", BULK_ROWS - 1)
    assert writer.lane_for("c", BULK_ROWS - 1) is writer.bulk  # rate: over BULK_RATE rows/s
    assert writer.lane_for("a", 1) is writer.fast  # another org's rate is its own
    writer.bulk.undrained["d"] = 1
    assert writer.lane_for("d", 1) is writer.bulk  # sticky while its bulk rows are undrained
    for lane in writer.lanes:
        lane.wal.close()


async def test_one_org_in_both_lanes_stores_each_event_id_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    """An org's small request drains in the fast lane (held in the engine) while its big request
    holding the same event ids waits in the bulk lane: the per-org drain lock keeps the two
    chunks from reading stored ids at the same time, so each id is stored once."""
    org = f"wal-{uuid.uuid4().hex[:10]}"
    store = HeldStore(runtime.ingest._store)
    writer = WalIngestWriter(store, tmp_path / "wal", backlog_limit=1 << 30)  # type: ignore[arg-type]
    store.prefix = writer.fast.wal.id
    writer.start()
    assert await writer.submit(rows(org, 100)) == 100  # fast lane
    await store.held.wait()
    assert await writer.submit(rows(org, BULK_ROWS)) == BULK_ROWS  # bulk lane, ids 0..999
    await asyncio.sleep(0.3)  # the bulk drain waits for the org's lock
    assert writer.bulk.drained_below <= writer.bulk.acked_seq
    store.release.set()
    assert await writer.visible() is True
    assert await counts(runtime, org) == exactly(BULK_ROWS)
    await writer.stop()


# --- several processes on one ClickHouse ----------------------------------------------------------


async def test_two_writers_sharing_one_engine_store_each_event_id_once(
    runtime: Runtime, tmp_path: Path, database_url: str
) -> None:
    """Two WALs (two processes' writers) holding the same event ids drain into one engine at
    once; the drain lock (a PostgreSQL advisory lock, one session per writer) keeps the
    select-then-insert exact: each id is stored once, the rollups count each event once."""
    org = f"wal-{uuid.uuid4().hex[:10]}"
    key = lock_key(f"http://clickhouse.test:8123/{org}")
    writers = [
        WalIngestWriter(
            runtime.ingest._store,
            tmp_path / f"wal-{n}",
            backlog_limit=1 << 30,
            chunk_rows=500,
            lock=PostgresLock(database_url, key),
        )
        for n in range(2)
    ]
    for writer in writers:  # everything acknowledged first, then both drains start together
        sent = [writer.submit(rows(org, 500, 500 * i)) for i in range(4)]
        assert await asyncio.gather(*sent) == [500] * 4
    for writer in writers:
        writer.start()
    assert await asyncio.gather(*(w.visible() for w in writers)) == [True, True]
    assert await counts(runtime, org) == exactly(2000)
    for writer in writers:
        await writer.stop()


HOLDER = """
import asyncio, sys
from emban.analytics.drain_lock import PostgresLock

async def main() -> None:
    lock = PostgresLock(sys.argv[1], int(sys.argv[2]))
    async with lock.hold():
        print("held", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_the_drain_lock_excludes_another_process_until_it_dies(
    tmp_path: Path, database_url: str
) -> None:
    key = lock_key(f"http://clickhouse.test:8123/{uuid.uuid4().hex}")
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, database_url, str(key), stdout=asyncio.subprocess.PIPE
    )
    assert holder.stdout is not None
    assert await holder.stdout.readline() == b"held\n"
    lock = PostgresLock(database_url, key)
    entered = asyncio.Event()

    async def take() -> None:
        async with lock.hold():
            entered.set()

    taking = asyncio.create_task(take())
    await asyncio.sleep(0.5)
    assert not entered.is_set()  # the other process holds it
    holder.kill()  # SIGKILL: its session ends, PostgreSQL releases the lock
    await holder.wait()
    await asyncio.wait_for(taking, 30)
    assert entered.is_set()
    await lock.close()


async def test_an_insert_without_a_token_is_never_dropped_as_a_repeat(runtime: Runtime) -> None:
    """The tables keep a deduplication window for the WAL's tokens; an INSERT without a token
    (sample data, the demo's writer) whose data repeats an earlier one is stored again."""
    org = f"wal-{uuid.uuid4().hex[:10]}"
    row = rows(org, 1)[0]
    payload = msgspec.json.encode(row)
    for _ in range(2):
        await runtime.ingest._store.insert_json("events", EVENT_COLUMNS, payload, COMPACT)
    assert (await counts(runtime, org))["events"] == 2


async def test_a_restart_on_an_emptied_wal_never_reuses_a_token(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Seqs start again at 1 in an emptied WAL: after a clean stop and a restart, the new
    segments' INSERTs must not carry tokens the engine remembers from the last run, or it drops
    new events as replays (found by the browser reconnect test: a restarted server showed no
    event ingested after the restart)."""
    org = f"wal-{uuid.uuid4().hex[:10]}"
    engine: EventStore = runtime.ingest._store
    tokens: list[str] = []

    class Recording(EngineProbe):
        async def before_insert(self, table: str, token: str | None) -> None:
            if table == "events" and token is not None:
                tokens.append(token)

    for run in range(3):
        writer = WalIngestWriter(
            Recording(engine),  # type: ignore[arg-type]
            tmp_path / "wal",
            backlog_limit=1 << 30,
        )
        writer.start()
        assert await writer.submit(rows(org, 10, 10 * run)) == 10
        assert await writer.visible() is True
        await writer.stop()
        assert await counts(runtime, org) == exactly(10 * (run + 1))
    assert len(tokens) == len(set(tokens)) == 3


class Counting(EngineProbe):
    """The engine, counting the statements that read or write ``event_ids``."""

    def __init__(self, inner: EventStore) -> None:
        super().__init__(inner)
        self.id_lookups = 0
        self.id_inserts = 0

    async def query(
        self, sql: str, params: dict[str, Any] | None = None, *, background: bool = False
    ) -> QueryResult:
        self.id_lookups += "FROM event_ids" in sql
        return await super().query(sql, params, background=background)

    async def before_insert(self, table: str, token: str | None) -> None:
        self.id_inserts += table == "event_ids"


@pytest.mark.parametrize("replay", [False, True])
async def test_ids_the_server_generated_are_neither_looked_up_nor_kept(
    runtime: Runtime, tmp_path: Path, replay: bool
) -> None:
    """Rows whose ids the server made (no client knows them, so none can be resent) skip the
    id lookup and the ``event_ids`` INSERT; the client's ids in the same batch are still
    de-duplicated. A replay after a crash that came after the INSERT stores them once (the
    engine drops the INSERT by its token)."""
    org = f"wal-{uuid.uuid4().hex[:10]}"
    engine: EventStore = runtime.ingest._store
    mixed = rows(org, 10)
    generated = [n % 2 == 0 for n in range(10)]  # ids 0, 2, 4, 6, 8: "generated"
    probe = Counting(engine)
    writer = WalIngestWriter(probe, tmp_path / "wal", backlog_limit=1 << 30)  # type: ignore[arg-type]
    if replay:
        lane = writer.fast
        assert await writer.submit(mixed, generated) == 10
        await lane.stop_appending()
        lane.wal.seal()
        (seq,) = lane.wal.sealed
        await lane._drain_segment(seq)  # stored; the "crash" comes before the segment's delete
        for each in writer.lanes:
            each.wal.close()
        writer = WalIngestWriter(probe, tmp_path / "wal", backlog_limit=1 << 30)  # type: ignore[arg-type]
    writer.start()
    if not replay:
        assert await writer.submit(mixed, generated) == 10
        resent = [row for row, made in zip(mixed, generated, strict=True) if not made]
        assert await writer.submit(resent, [False] * 5) == 5  # the client's ids, again
    assert await writer.visible() is True
    await writer.stop()
    stored = await counts(runtime, org)
    assert stored == {**exactly(10), "event_ids": 5}
    # One lookup per drained chunk holding client ids (the resend's, the replay's too); the 5
    # client ids inserted once.
    assert (probe.id_lookups, probe.id_inserts) == (2, 1)
