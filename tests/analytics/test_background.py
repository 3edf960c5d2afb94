"""Work that may wait runs on threads of lower CPU priority; the loop thread keeps its own."""

from __future__ import annotations

import asyncio
import os
import threading

from emban.analytics.background import (
    BACKGROUND_NICE,
    deferrable,
    in_background,
    is_deferrable,
)


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
