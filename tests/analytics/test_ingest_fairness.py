"""Defect 10: one org's ingest burst must not delay another org's ack beyond one flush.

The writer runs over a recording store whose first insert of org A's rows is held: with A's
backlog of 600,000 rows queued, org B's single event must be flushed — and acknowledged — while
A's first flush is still held, and every flush must respect the per-org budget. Assertions are on
flush composition and order, not on timings.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import msgspec

from emban.analytics.ingest import (
    MAX_BATCH_ROWS,
    ORG_BATCH_ROWS,
    SHARED_FLUSH_ROWS,
    EventRow,
    IngestWriter,
)
from emban.analytics.store import QueryResult

REQUEST_ROWS = 10_000  # the largest request POST /v1/events accepts


def rows(org: str, count: int, start: int = 0) -> list[EventRow]:
    return [
        EventRow(org, "env", "t", "x", "2026-01-01 00:00:00.000", f"{org}-{n}", "", {}, {})
        for n in range(start, start + count)
    ]


class RecordingStore:
    """Records each events insert as {org: rows}; holds the first one containing ``held_org``."""

    def __init__(self, held_org: str | None) -> None:
        self.held_org = held_org
        self.release = asyncio.Event()
        self.held = asyncio.Event()
        self.flushes: list[Counter[str]] = []

    async def ping(self) -> None:
        return None

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        return None

    async def query(
        self, sql: str, params: dict[str, Any] | None = None, *, background: bool = False
    ) -> QueryResult:
        return QueryResult([], [])  # no event id seen before

    async def insert_json(
        self, table: str, columns: list[str], payload: bytes, fmt: str = "JSONEachRow"
    ) -> None:
        if table != "events":
            return
        orgs = Counter(msgspec.json.decode(line)[0] for line in payload.split(b"\n"))
        self.flushes.append(orgs)
        if self.held_org is not None and self.held_org in orgs:
            self.held_org = None
            self.held.set()
            await self.release.wait()

    async def close(self) -> None:
        return None


async def test_another_orgs_event_is_in_the_next_flush_despite_a_backlog() -> None:
    store = RecordingStore(held_org="A")
    writer = IngestWriter(store)
    backlog = 60
    a_acks = [
        asyncio.create_task(writer.submit(rows("A", REQUEST_ROWS, n * REQUEST_ROWS)))
        for n in range(backlog)
    ]
    await asyncio.wait_for(store.held.wait(), 30)  # A's first flush is in the engine
    b_ack = asyncio.create_task(writer.submit(rows("B", 1)))
    # B is acknowledged while A's first flush is still held: it never queued behind A.
    assert await asyncio.wait_for(b_ack, 30) == 1
    assert not any(task.done() for task in a_acks)
    assert store.flushes == [Counter({"A": ORG_BATCH_ROWS}), Counter({"B": 1})]

    store.release.set()
    assert await asyncio.wait_for(asyncio.gather(*a_acks), 60) == [REQUEST_ROWS] * backlog
    # Every later flush is A's alone and within its budget; nothing is lost or stored twice.
    assert all(f["A"] <= ORG_BATCH_ROWS and set(f) == {"A"} for f in store.flushes[2:])
    assert sum(f["A"] for f in store.flushes) == backlog * REQUEST_ROWS
    assert writer.flushes == len(store.flushes)
    await writer.stop()


async def test_a_flush_takes_every_waiting_org_round_robin_within_budgets() -> None:
    store = RecordingStore(held_org="hold")
    writer = IngestWriter(store)
    # Occupy one flush slot with a held flush first; everything else goes through the other.
    hold = asyncio.create_task(writer.submit(rows("hold", 1)))
    await asyncio.wait_for(store.held.wait(), 30)
    sizes = {"A": [REQUEST_ROWS] * 8, "B": [5], "C": [REQUEST_ROWS] * 3, "D": [3, 4]}
    queued = [
        asyncio.create_task(writer.submit(rows(org, size, n * REQUEST_ROWS)))
        for org, org_sizes in sizes.items()
        for n, size in enumerate(org_sizes)
    ]
    acks = await asyncio.wait_for(asyncio.gather(*queued), 60)
    assert acks == [size for org_sizes in sizes.values() for size in org_sizes]
    store.release.set()
    assert await hold == 1
    flushed = store.flushes[1:]
    # A (first in the round, over SHARED_FLUSH_ROWS) flushes alone within its budget; then the
    # small orgs B and D share one flush, passing C, which keeps its place and flushes alone next.
    assert flushed[:3] == [
        Counter({"A": ORG_BATCH_ROWS}),
        Counter({"B": 5, "D": 7}),
        Counter({"C": ORG_BATCH_ROWS}),
    ]
    # The rest follows in rounds, a big org alone each time; each org's rows arrive in full.
    total: Counter[str] = Counter()
    for flush in flushed:
        total.update(flush)
        assert all(count <= ORG_BATCH_ROWS for count in flush.values())
        assert sum(flush.values()) <= MAX_BATCH_ROWS
        big = [org for org, count in flush.items() if count > SHARED_FLUSH_ROWS]
        assert not big or len(flush) == 1
    assert total == Counter({"A": 8 * REQUEST_ROWS, "B": 5, "C": 3 * REQUEST_ROWS, "D": 7})
    await writer.stop()


async def test_one_orgs_flushes_never_overlap() -> None:
    store = RecordingStore(held_org="A")
    writer = IngestWriter(store)
    first = asyncio.create_task(writer.submit(rows("A", 5)))
    await asyncio.wait_for(store.held.wait(), 30)
    second = asyncio.create_task(writer.submit(rows("A", 5, 5)))
    other = asyncio.create_task(writer.submit(rows("B", 2)))
    assert await asyncio.wait_for(other, 30) == 2
    # A's second request waits for A's first flush (de-duplication reads, then writes, per org).
    assert not second.done()
    assert store.flushes == [Counter({"A": 5}), Counter({"B": 2})]
    store.release.set()
    assert await asyncio.wait_for(asyncio.gather(first, second), 30) == [5, 5]
    assert store.flushes[2:] == [Counter({"A": 5})]
    await writer.stop()
