"""Work that may wait runs on threads of lower CPU priority; the loop thread keeps its own."""

from __future__ import annotations

import asyncio
import os
import threading

import chdb

from emban.analytics.background import (
    BACKGROUND_NICE,
    deferrable,
    in_background,
    is_deferrable,
)
from emban.analytics.chdb_store import ChdbStore
from emban.runtime import Runtime


def _own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_background_threads_run_at_the_lower_priority_and_the_loop_keeps_its_own() -> None:
    loop_nice = _own_nice()
    niced = await asyncio.gather(*(in_background(_own_nice) for _ in range(8)))
    assert niced == [BACKGROUND_NICE] * 8
    assert _own_nice() == loop_nice  # the loop thread (and the default executor) untouched
    assert await asyncio.to_thread(_own_nice) == loop_nice


async def test_deferrable_marks_engine_work_of_the_block_only() -> None:
    async def probe() -> bool:
        await asyncio.sleep(0)
        return is_deferrable()

    assert not await asyncio.create_task(probe())
    with deferrable():
        # tasks started inside inherit the mark (live refreshes gather widget computations)
        assert await asyncio.create_task(probe())
    assert not is_deferrable()
    assert not await asyncio.create_task(probe())


async def test_a_thread_stays_low_after_an_engine_query_put_it_back(runtime: Runtime) -> None:
    """The engine applies ``os_thread_priority`` to the calling thread for the query and sets it
    back to 0 when the query ends; a background thread must not stay at the ordinary priority."""
    # One embedded engine per process: a connection of its own to the app's data directory.
    engine = runtime.events.inner
    assert isinstance(engine, ChdbStore)
    connection = await asyncio.to_thread(chdb.connect, str(engine.path))

    def query() -> int:
        connection.query("SELECT 1 SETTINGS os_thread_priority = 10", "CSV")
        return threading.get_native_id()

    try:
        tid = await in_background(query)
        assert os.getpriority(os.PRIO_PROCESS, tid) == BACKGROUND_NICE

        def unprotected() -> int:  # the engine's reset itself, on a thread lowered by hand
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
            query()
            return _own_nice()

        assert await asyncio.to_thread(unprotected) == 0
    finally:
        await asyncio.to_thread(connection.close)
