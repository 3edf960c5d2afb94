"""Work that may wait: bulk ingest decoding and inserts, ad-hoc SQL. It runs on threads the
operating system schedules after everyone else's.

On a machine whose cores are busy, latency goes to whoever gets the CPU. An org's ingest burst
(decoding 10,000-event bodies, de-duplicating, inserting through the rollup views) or a heavy
ad-hoc query would otherwise take its share of the cores at the same priority as another org's
1-event ack, its embed reads and ``/healthz``. Linux applies a nice value per thread, so these
threads lower their own priority once, when they start (``BACKGROUND_NICE``); the loop thread and
the read pool keep theirs. Where the platform has no per-thread priority this is a plain pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

BACKGROUND_NICE = 10
_WORKERS = 6

P = ParamSpec("P")
R = TypeVar("R")


def _lower_priority() -> None:
    setpriority = getattr(os, "setpriority", None)
    if setpriority is None:
        return
    with contextlib.suppress(OSError):
        # On Linux the "process" id of a thread is its own id: this renices this thread only.
        setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


_pool = ThreadPoolExecutor(
    max_workers=_WORKERS, thread_name_prefix="emban-background", initializer=_lower_priority
)


_deferrable: contextvars.ContextVar[bool] = contextvars.ContextVar("deferrable", default=False)


@contextlib.contextmanager
def deferrable() -> Iterator[None]:
    """Engine queries made inside run on the low-priority threads (live refreshes: a viewer
    waiting for a push can wait longer than a request waiting for its answer)."""
    token = _deferrable.set(True)
    try:
        yield
    finally:
        _deferrable.reset(token)


def is_deferrable() -> bool:
    return _deferrable.get()


async def in_background(func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """``await asyncio.to_thread(func, …)`` on the low-priority pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _pool, functools.partial(_at_low_priority, functools.partial(func, *args, **kwargs))
    )


def _at_low_priority(job: Callable[[], R]) -> R:
    """Run ``job`` at the background nice value, and leave the thread there: an engine query
    with ``os_thread_priority`` sets the calling thread's nice value for the query and puts it
    back to 0 when the query ends, which would leave this thread at the ordinary priority."""
    _lower_priority()
    try:
        return job()
    finally:
        _lower_priority()


# The embedded engine's own threads that only catch up (merging parts written by inserts): at the
# same priority as everyone else's requests they took a quarter of a core during a burst.
ENGINE_BACKGROUND_THREADS = ("MergeMutate",)


def lower_engine_background_threads(prefixes: tuple[str, ...] = ENGINE_BACKGROUND_THREADS) -> int:
    """Give this process's threads whose names start with ``prefixes`` the background nice value
    (Linux: ``/proc/self/task``; elsewhere nothing). Threads the engine starts later are found on
    the next call. Returns how many threads were lowered."""
    setpriority = getattr(os, "setpriority", None)
    tasks = Path("/proc/self/task")
    if setpriority is None or not tasks.is_dir():
        return 0
    lowered = 0
    for task in tasks.iterdir():
        with contextlib.suppress(OSError, ValueError):
            if not (task / "comm").read_text().startswith(prefixes):
                continue
            tid = int(task.name)
            if os.getpriority(os.PRIO_PROCESS, tid) < BACKGROUND_NICE:
                setpriority(os.PRIO_PROCESS, tid, BACKGROUND_NICE)
                lowered += 1
    return lowered
